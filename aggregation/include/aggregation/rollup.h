#pragma once

#include <prometheus/registry.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <pqxx/connection>
#include <string>
#include <string_view>

namespace bpmc::aggregation {

// Incremental aggregation of connector_usage into the aggregate tables of
// migrations/0002_aggregates.sql (docs/AGGREGATION.md has the algorithm, the
// tables and the error bounds).
//
// Raw events carry a bigserial `seq`; rollup_state('usage').last_seq is the
// watermark: every event with seq <= last_seq is in the aggregates, none
// with a larger one. A step, in one transaction, locks the rollup_state row
// (several exporters on one database take turns), waits for in-flight
// inserters (a brief LOCK ... EXCLUSIVE in a rolled-back savepoint) so no
// smaller seq can still appear, aggregates (last_seq, current] with
// INSERT ... ON CONFLICT DO UPDATE (adding counts, sums, histograms; uniting
// HLL sketches) and moves the watermark. Late events get new seqs, so they
// land in their old buckets; duplicates never reach connector_usage; a step
// that fails rolls back whole, watermark included.

struct RollupOptions {
  std::string database_url;  // secret: never logged
  // IANA zone for day and month buckets (Config::reporting_time_zone).
  std::string time_zone = "UTC";
  int interval_ms = 1000;  // background step period (Config::rollup_interval_ms)
  // Events per step (per transaction) at most: a backlog is worked off in
  // several transactions instead of one huge one.
  uint64_t max_step_events = 200000;
  // How long a step waits for in-flight inserting transactions.
  int lock_timeout_ms = 10000;
};

// The outcome of Step / CatchUp, as a value.
struct RollupResult {
  bool ok = true;
  uint64_t events = 0;     // raw events aggregated
  bool caught_up = false;  // the watermark reached every event committed before the step
  std::string error;       // when !ok; never contains the connection string
};

// Thread-safe. Step and CatchUp may be called from any thread (they are
// serialised inside); the background thread started by StartBackground
// calls Step every interval_ms, and again at once while there is a backlog.
//
// Metrics registered on the given registry:
//   bpmc_exporter_aggregation_lag_seconds  now - created_at of the oldest
//       event not yet aggregated (0 when none), measured after each step;
//       while steps fail it grows by the time since the last good step
//   bpmc_exporter_aggregation_lag_events   sequence numbers not yet
//       aggregated (upper bound: gaps from duplicates count until the next step)
//   bpmc_exporter_aggregation_steps_total{result="ok"|"error"}
//   bpmc_exporter_aggregated_events_total
//   bpmc_exporter_aggregation_step_duration_seconds (histogram)
// Every failed step is also reported to `on_failure` with reason "rollup"
// (the service counts it in bpmc_exporter_failures_total).
class Rollup {
 public:
  using FailureHook = std::function<void(const std::string& reason)>;

  // Connects and checks options.time_zone against pg_timezone_names.
  // Returns nullptr and sets *error ("reporting_time_zone: ...") when the zone
  // is unknown. When the database is unreachable it still returns the object
  // and checks the zone on the first step that connects (an unknown zone then
  // makes every step fail). When rollup_state.time_zone differs from the
  // configured zone (and something was aggregated already) it logs a warning:
  // new buckets use the configured zone; `reaggregate` rebuilds older ones.
  // `registry` may be null (a private one is used).
  static std::unique_ptr<Rollup> Create(RollupOptions options,
                                        std::shared_ptr<prometheus::Registry> registry,
                                        FailureHook on_failure, std::string* error);
  ~Rollup();  // stops the background thread

  Rollup(const Rollup&) = delete;
  Rollup& operator=(const Rollup&) = delete;

  // One step of at most max_step_events events. Never throws.
  RollupResult Step();
  // Steps until the watermark reaches every event committed when it started
  // (so a reader that calls it sees its own and all earlier writes), or
  // until a step fails. `events` is the total.
  RollupResult CatchUp();

  // Starts / stops the background thread. Stop is idempotent; it cancels the
  // query of a running step (whose transaction then rolls back, to be redone
  // by the next step anywhere) and waits for it. Steps after Stop fail.
  void StartBackground();
  void Stop();

  // The last measured lag (the gauge values).
  double lag_seconds() const;
  double lag_events() const;

  struct Impl;

 private:
  explicit Rollup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The table of the two-month activity windows starting in months of parity
// `month_parity` (0: February, April, ...; 1: January, March, ...;
// migration 0008).
const char* ActivityWindowTable(int month_parity);

// True when `zone` is a name in pg_timezone_names. Throws pqxx exceptions.
bool IsKnownTimeZone(pqxx::connection& conn, const std::string& zone);

// A bound of a reaggregate range: an RFC 3339 timestamp or a YYYY-MM-DD date
// (midnight in the reporting time zone).
struct TimeBound {
  bool is_date = false;
  std::string text;  // "YYYY-MM-DD", or the timestamp normalised to UTC RFC 3339
};
// Parses either form; nullopt when it is neither (e.g. "2026-02-30").
std::optional<TimeBound> ParseTimeBound(std::string_view text);

struct ReaggregateResult {
  bool ok = true;
  std::string error;
  std::string first_day;  // first local day rebuilt (YYYY-MM-DD)
  std::string last_day;   // last local day rebuilt (inclusive)
  uint64_t events = 0;    // raw events read
  int transactions = 0;   // one per calendar month touched
};

// Rebuilds, exactly from raw events, every aggregate bucket of the range
// [from, to) rounded out to whole days in `time_zone` (hourly buckets: the
// UTC hours covering those days). Monthly rows of the months touched are
// re-derived from their daily rows, and account_first_seen is recomputed for
// the accounts seen in the range. Works one calendar month per transaction;
// each holds the rollup_state row lock, so it never races the incremental
// rollup, and reads only events with seq <= last_seq (later ones arrive
// incrementally). Never throws.
ReaggregateResult Reaggregate(pqxx::connection& conn, const TimeBound& from, const TimeBound& to,
                              const std::string& time_zone);

}  // namespace bpmc::aggregation
