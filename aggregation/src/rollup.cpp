// Rollup: the incremental aggregation step, its background thread and its
// metrics (rollup.h); the SQL it runs is built in rollup_sql.cpp.

#include "aggregation/rollup.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <pqxx/pqxx>
#include <thread>

#include "common/pg_statements.h"
#include "rollup_sql.h"

namespace bpmc::aggregation {
namespace {

using SteadyClock = std::chrono::steady_clock;

}  // namespace

bool IsKnownTimeZone(pqxx::connection& conn, const std::string& zone) {
  pqxx::nontransaction tx(conn);
  return tx
      .exec_params("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)", zone)[0][0]
      .as<bool>();
}

struct Rollup::Impl {
  RollupOptions options;
  std::shared_ptr<prometheus::Registry> registry;
  FailureHook on_failure;

  prometheus::Gauge* lag_seconds_gauge = nullptr;
  prometheus::Gauge* lag_events_gauge = nullptr;
  prometheus::Counter* steps_ok = nullptr;
  prometheus::Counter* steps_error = nullptr;
  prometheus::Counter* events_total = nullptr;
  prometheus::Histogram* step_seconds = nullptr;

  std::mutex mu;  // serialises steps; guards conn, zone_checked, lag bookkeeping
  std::unique_ptr<pqxx::connection> conn;
  // The step and lag statements (prepared, or unnamed behind PgBouncer).
  const PgStatements statements = [] {
    PgStatements s;
    s.Add("bpmc_rollup_step", IncrementalSql());
    s.Add("bpmc_rollup_lag", LagSql());
    return s;
  }();
  bool zone_checked = false;
  bool zone_known = true;
  bool zone_warned = false;
  SteadyClock::time_point last_good = SteadyClock::now();
  double last_good_lag = 0;
  std::atomic<double> lag_seconds{0};
  std::atomic<double> lag_events{0};

  std::thread thread;
  std::mutex thread_mu;
  std::condition_variable thread_cv;
  std::atomic<bool> stop{false};
  // The connection of a running step, so Stop can cancel its query.
  std::mutex running_mu;
  pqxx::connection* running = nullptr;

  void RegisterMetrics() {
    lag_seconds_gauge =
        &prometheus::BuildGauge()
             .Name("bpmc_exporter_aggregation_lag_seconds")
             .Help("Age of the oldest event not yet in the aggregates (0 when none).")
             .Register(*registry)
             .Add({});
    lag_events_gauge = &prometheus::BuildGauge()
                            .Name("bpmc_exporter_aggregation_lag_events")
                            .Help("Event sequence numbers not yet aggregated (an upper bound).")
                            .Register(*registry)
                            .Add({});
    auto& steps = prometheus::BuildCounter()
                      .Name("bpmc_exporter_aggregation_steps_total")
                      .Help("Aggregation steps, by result.")
                      .Register(*registry);
    steps_ok = &steps.Add({{"result", "ok"}});
    steps_error = &steps.Add({{"result", "error"}});
    events_total = &prometheus::BuildCounter()
                        .Name("bpmc_exporter_aggregated_events_total")
                        .Help("Raw events added to the aggregates by this process.")
                        .Register(*registry)
                        .Add({});
    step_seconds = &prometheus::BuildHistogram()
                        .Name("bpmc_exporter_aggregation_step_duration_seconds")
                        .Help("Duration of aggregation steps that aggregated events.")
                        .Register(*registry)
                        .Add({}, prometheus::Histogram::BucketBoundaries{
                                     0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
  }

  void SetLag(double seconds, double events) {
    lag_seconds = seconds;
    lag_events = events;
    lag_seconds_gauge->Set(seconds);
    lag_events_gauge->Set(events);
  }

  // The step statement is prepared once per connection with a generic plan:
  // planning it over every day partition costs ~50 ms, more than a live
  // step's execution (`seq` cannot prune partitions, so a custom plan gains
  // nothing; measured: no slower for a 100k-event backlog either). Behind
  // PgBouncer in transaction mode both are sent unnamed and planned each step
  // (docs/SCALING.md "PgBouncer").
  pqxx::connection& Conn() {
    if (!conn || !conn->is_open()) {
      conn.reset();
      conn = std::make_unique<pqxx::connection>(options.database_url);
      if (statements.prepared())
        pqxx::nontransaction(*conn).exec("SET plan_cache_mode = force_generic_plan");
      statements.PrepareOn(*conn);
    }
    return *conn;
  }

  // Checks the zone once per process, on the first connection.
  void CheckZone(pqxx::connection& c) {
    if (zone_checked) return;
    zone_known = IsKnownTimeZone(c, options.time_zone);
    zone_checked = true;
    if (!zone_known) {
      spdlog::error(
          "reporting_time_zone: unknown time zone '{}' (not in pg_timezone_names); "
          "aggregation is stopped",
          options.time_zone);
      return;
    }
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec(kLastSeq);
    if (r.empty()) return;
    const std::string stored = r[0][1].as<std::string>();
    if (stored != options.time_zone && r[0][0].as<int64_t>() > 0) WarnZone(stored);
  }

  void WarnZone(const std::string& stored) {
    if (zone_warned) return;
    zone_warned = true;
    spdlog::warn(
        "reporting_time_zone is '{}' but the aggregates were built in '{}': new day and month "
        "buckets use '{}'; run `bpmc-exporter reaggregate --from ... --to ...` to rebuild past "
        "ones",
        options.time_zone, stored, options.time_zone);
  }

  // Measures the lag after a step (outside its transaction).
  void MeasureLag(pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = statements.Exec(tx, "bpmc_rollup_lag");
    const double seconds = std::max(0.0, r[0][0].as<double>());
    SetLag(seconds, r[0][1].as<double>());
    last_good = SteadyClock::now();
    last_good_lag = seconds;
  }

  // One step; throws on database errors. Called with mu held. *idle is set
  // when nothing was beyond the watermark (the lag is then 0).
  RollupResult StepOrThrow(bool* idle) {
    RollupResult result;
    pqxx::connection& c = Conn();
    {
      std::lock_guard<std::mutex> lock(running_mu);
      running = &c;
    }
    struct Clear {
      Impl* impl;
      ~Clear() {
        std::lock_guard<std::mutex> lock(impl->running_mu);
        impl->running = nullptr;
      }
    } clear{this};
    if (stop) throw std::runtime_error("stopping");
    CheckZone(c);
    if (!zone_known) {
      result.ok = false;
      result.error = "reporting_time_zone: unknown time zone '" + options.time_zone + "'";
      return result;
    }
    {
      // Cheap check first: nothing new means no lock and no write at all.
      pqxx::nontransaction tx(c);
      pqxx::result r = tx.exec(std::string("SELECT (") + kSeqLastValue +
                               ") <= (SELECT last_seq FROM rollup_state WHERE name = 'usage')");
      if (!r.empty() && r[0][0].as<bool>()) {
        result.caught_up = true;
        *idle = true;
        return result;
      }
    }
    const auto started = SteadyClock::now();
    pqxx::work txn(c);
    txn.exec(kStepSettings);
    pqxx::result state = txn.exec(std::string(kLastSeq) + " FOR UPDATE");
    if (state.empty()) throw std::runtime_error("rollup_state has no 'usage' row");
    const int64_t last = state[0][0].as<int64_t>();
    const std::string stored_zone = state[0][1].as<std::string>();
    if (stored_zone != options.time_zone && last > 0) WarnZone(stored_zone);
    int64_t current = 0;
    {
      // Wait for every transaction that is inserting into connector_usage:
      // afterwards no seq <= the sequence's value can still commit. Rolling
      // back to the savepoint releases the lock at once.
      pqxx::subtransaction wait(txn, "wait_inserters");
      wait.exec("SET LOCAL lock_timeout = " + std::to_string(options.lock_timeout_ms));
      wait.exec("LOCK TABLE connector_usage IN EXCLUSIVE MODE");
      current = wait.exec(kSeqLastValue)[0][0].as<int64_t>();
      wait.abort();
    }
    const int64_t cap = last + static_cast<int64_t>(options.max_step_events);
    const int64_t upper = std::min(current, cap);
    result.caught_up = upper >= current;
    if (upper > last) {
      result.events = statements.Exec(txn, "bpmc_rollup_step", last, upper, options.time_zone)[0][0]
                          .as<uint64_t>();
      txn.exec_params(
          "UPDATE rollup_state SET last_seq = $1, time_zone = $2, updated_at = now() "
          "WHERE name = 'usage'",
          upper, options.time_zone);
    }
    txn.commit();
    if (result.events > 0) {
      step_seconds->Observe(std::chrono::duration<double>(SteadyClock::now() - started).count());
      events_total->Increment(static_cast<double>(result.events));
    }
    return result;
  }

  RollupResult StepLocked() {
    RollupResult result;
    try {
      bool idle = false;
      result = StepOrThrow(&idle);
      if (result.ok && idle) {
        SetLag(0, 0);
        last_good = SteadyClock::now();
        last_good_lag = 0;
      } else if (result.ok && conn) {
        MeasureLag(*conn);
      }
    } catch (const std::exception& e) {
      conn.reset();  // the next step reconnects
      result.ok = false;
      result.error = e.what();
    }
    if (result.ok) {
      steps_ok->Increment();
    } else if (stop) {
      // Cancelled by Stop: not a failure.
    } else {
      steps_error->Increment();
      if (on_failure) on_failure("rollup");
      // Without a fresh measurement the lag grows with the time since the
      // last good one, so an alert on it fires while aggregation is broken.
      const double since = std::chrono::duration<double>(SteadyClock::now() - last_good).count();
      SetLag(last_good_lag + since, lag_events);
      spdlog::warn("aggregation step failed: {}", result.error);
    }
    return result;
  }

  void Loop() {
    for (;;) {
      RollupResult r;
      {
        std::lock_guard<std::mutex> lock(mu);
        r = StepLocked();
      }
      std::unique_lock<std::mutex> lock(thread_mu);
      if (stop) return;
      if (r.ok && !r.caught_up) continue;  // backlog: go on at once
      thread_cv.wait_for(lock, std::chrono::milliseconds(options.interval_ms),
                         [&] { return stop.load(); });
      if (stop) return;
    }
  }
};

Rollup::Rollup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Rollup::~Rollup() { Stop(); }

std::unique_ptr<Rollup> Rollup::Create(RollupOptions options,
                                       std::shared_ptr<prometheus::Registry> registry,
                                       FailureHook on_failure, std::string* error) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->registry = registry ? std::move(registry) : std::make_shared<prometheus::Registry>();
  impl->on_failure = std::move(on_failure);
  impl->RegisterMetrics();
  try {
    impl->CheckZone(impl->Conn());
  } catch (const std::exception& e) {
    impl->conn.reset();
    impl->zone_checked = false;
    spdlog::warn("aggregation: cannot reach the database now ({}); will retry", e.what());
  }
  if (impl->zone_checked && !impl->zone_known) {
    *error = "reporting_time_zone: unknown time zone '" + impl->options.time_zone +
             "' (not in pg_timezone_names)";
    return nullptr;
  }
  return std::unique_ptr<Rollup>(new Rollup(std::move(impl)));
}

RollupResult Rollup::Step() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->StepLocked();
}

RollupResult Rollup::CatchUp() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  RollupResult total;
  for (;;) {
    RollupResult r = impl_->StepLocked();
    total.events += r.events;
    if (impl_->stop && !r.caught_up) {
      total.ok = false;
      total.error = "stopping";
      return total;
    }
    if (!r.ok) {
      total.ok = false;
      total.error = r.error;
      return total;
    }
    if (r.caught_up) {
      total.caught_up = true;
      return total;
    }
  }
}

void Rollup::StartBackground() {
  std::lock_guard<std::mutex> lock(impl_->thread_mu);
  if (impl_->thread.joinable() || impl_->stop) return;
  Impl* impl = impl_.get();
  impl_->thread = std::thread([impl] { impl->Loop(); });
}

void Rollup::Stop() {
  if (!impl_) return;
  {
    std::lock_guard<std::mutex> lock(impl_->thread_mu);
    impl_->stop = true;
  }
  impl_->thread_cv.notify_all();
  {
    // A long step (a backlog) would delay shutdown: cancel its query; the
    // transaction rolls back and the next start redoes it.
    std::lock_guard<std::mutex> lock(impl_->running_mu);
    if (impl_->running) {
      try {
        impl_->running->cancel_query();
      } catch (const std::exception&) {
      }
    }
  }
  if (impl_->thread.joinable()) impl_->thread.join();
}

double Rollup::lag_seconds() const { return impl_->lag_seconds; }
double Rollup::lag_events() const { return impl_->lag_events; }

}  // namespace bpmc::aggregation
