#include "exporter/service.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <set>
#include <thread>

#include "aggregation/rollup.h"
#include "aggregation/schema.h"
#include "analytics/access.h"
#include "analytics/analytics.h"
#include "billing/billing.h"
#include "billing/schema.h"
#include "common/config_reload.h"
#include "common/http_client.h"
#include "common/ids.h"
#include "common/logging.h"
#include "common/migrate.h"
#include "common/pg_pool.h"
#include "common/pg_statements.h"
#include "common/time.h"
#include "console/routes.h"
#include "http/endpoint.h"
#include "http/server.h"
#include "identity/api_keys.h"
#include "identity/audit.h"
#include "identity/schema.h"
#include "identity/users.h"
#include "ingestion/ingest_metrics.h"
#include "ingestion/schema.h"
#include "ingestion/spool.h"
#include "ingestion/store.h"
#include "ingestion/usage_routes.h"
#include "ingestion/writer.h"

namespace bpmc::exporter {

using aggregation::Rollup;
using aggregation::RollupOptions;
using analytics::AccessControl;
using analytics::AnalyticsOptions;
using billing::BillingRouteOptions;
using identity::Directory;
using ingestion::IngestMetrics;
using ingestion::Spool;
using ingestion::Writer;

namespace {

// The analytics options from the config (time zone, currency, analytics_* limits).
AnalyticsOptions AnalyticsOptionsFrom(const Config& config) {
  AnalyticsOptions o;
  o.time_zone = config.reporting_time_zone;
  o.currency = config.reporting_currency;
  o.default_days = 30;
  o.limits.requests_per_minute = config.analytics_requests_per_minute;
  o.limits.burst = config.analytics_burst;
  o.limits.concurrent_per_user = config.analytics_concurrent_per_user;
  o.limits.max_days_admin = config.analytics_max_days_admin;
  o.limits.max_days_manager = config.analytics_max_days_manager;
  o.limits.max_days_support = config.analytics_max_days_support;
  o.limits.max_days_user = config.analytics_max_days_user;
  o.limits.pool_wait_ms = config.analytics_pool_wait_ms;
  o.cache.ttl_ms = config.analytics_cache_ms;
  o.cache.max_bytes = config.analytics_cache_bytes;
  return o;
}

bool MakeDirs(const std::string& path) {
  std::string cur;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      if (!cur.empty() && mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) return false;
    }
    if (i < path.size()) cur.push_back(path[i]);
  }
  return true;
}

}  // namespace

std::vector<const SchemaModule*> DatabaseSchema() {
  return {&identity::Schema(), &ingestion::Schema(), &aggregation::Schema(), &billing::Schema()};
}

struct Service::Impl {
  Config config;  // as started: a reload changes only the live keys below
  const Clock* clock = nullptr;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<IngestMetrics> metrics;
  std::unique_ptr<Spool> spool;
  std::unique_ptr<Directory> directory;
  std::unique_ptr<Writer> writer;
  std::unique_ptr<http::Server> server;
  std::unique_ptr<PgPool> pool;  // analytics and audit-log reads
  // Analytics reads on a streaming replica (config analytics_database_url), or null.
  std::unique_ptr<PgPool> replica_pool;
  // Token checks and audit rows, and billing events, on connections of their
  // own: a burst of analytics reads cannot hold back either (issue 14 §5).
  std::unique_ptr<PgPool> access_pool;
  std::unique_ptr<PgPool> billing_pool;
  std::unique_ptr<Rollup> rollup;                       // aggregates (docs/AGGREGATION.md)
  std::unique_ptr<AccessControl> access;                // shared by analytics and audit routes
  std::vector<std::unique_ptr<http::Endpoint>> routes;  // analytics, billing, audit
  // The console (console/routes.h): logins on the access pool, the receiver's APIs.
  std::unique_ptr<identity::SessionStore> sessions;
  std::unique_ptr<HttpClient> receiver_client;
  std::atomic<bool> shutting_down{false};
  bool stopped = false;

  // Reloading (docs/OPERATIONS.md, "Reloading the config").
  ConfigLoader load_config;
  std::mutex reload_mu;                         // one reload at a time
  std::atomic<int> audit_retention_days{0};     // live
  std::unique_ptr<ReloadRecord> reload_record;  // bpmc_exporter_config_* metrics

  std::thread maintenance;
  std::mutex maintenance_mu;
  std::condition_variable maintenance_cv;
  bool maintenance_stop = false;

  // The route table of the HTTP layer (http/include/http/server.h).
  std::vector<http::Route> HttpRoutes() {
    ingestion::UsageRouteOptions usage;
    usage.directory = directory.get();
    usage.writer = writer.get();
    usage.clock = clock;
    usage.retention_days = config.retention_days;
    usage.discard = config.sink == "discard";
    usage.max_event_body_bytes = config.max_event_body_bytes;
    usage.max_batch_body_bytes = config.max_batch_body_bytes;
    usage.shutting_down = &shutting_down;
    std::vector<http::Route> out = ingestion::UsageRoutes(usage);
    // /metrics: IngestMetrics writes its connector_* series and the registry's.
    for (http::Route& r : http::OperationalRoutes(
             *registry, [this] { return !shutting_down && directory->loaded() && writer->Ready(); },
             [m = metrics.get()](http::ExpositionSink& out) { m->AppendExposition(out); })) {
      out.push_back(std::move(r));
    }
    for (const auto& route : routes) {
      http::Endpoint* r = route.get();
      http::Route h;
      h.name = r->Name();
      h.handler = [r](const http::Request& req) { return r->Handle(req); };
      h.on_refusal = [r](const http::Request& req, const http::Response& resp) {
        r->OnRefusal(req, resp);
      };
      if (h.name == "billing") {
        h.path = "/v1/billing/events";
        h.methods = {"POST"};
        h.authenticate = [r](const http::Request& req) { return r->Authenticate(req); };
        h.require_json = true;
        h.max_body_bytes = billing::kMaxBillingBodyBytes;
      } else {
        // analytics and audit: GET only, no body, user tokens (audited).
        h.path = h.name == "audit" ? "/api/v1/audit" : "/api/v1/analytics/";
        h.prefix = h.name != "audit";
        h.methods = {"GET"};
        h.authenticate = [a = access.get()](const http::Request& req) { return a->Check(req); };
        h.on_refusal = [a = access.get()](const http::Request& req, const http::Response& resp) {
          a->AuditRefusal(req, resp);
        };
      }
      out.push_back(std::move(h));
    }
    out.push_back(ReloadRoute());
    console::ConsoleOptions c;
    c.users = &access->users();
    c.sessions = sessions.get();
    c.audit = &access->audit_log();
    c.http = receiver_client.get();
    c.receiver_url = config.receiver_url;
    c.secure_cookie = config.console_secure_cookie;
    c.count_failure = [m = metrics.get()](const std::string& reason) { m->CountFailure(reason); };
    for (http::Route& r : console::ConsoleRoutes(c)) out.push_back(std::move(r));
    return out;
  }

  // --- Reloading the config ---------------------------------------------
  void RegisterReloadMetrics() {
    reload_record = std::make_unique<ReloadRecord>(*registry, "bpmc_exporter", *clock);
  }

  bool Reload(std::string* error) {
    std::lock_guard<std::mutex> lock(reload_mu);
    if (shutting_down) {
      *error = "shutting down";
      return false;
    }
    if (!load_config) {
      *error = "no config source";
      return false;
    }
    std::string load_error;
    const std::optional<Config> next = load_config(&load_error);
    const ReloadVerdict verdict =
        DecideReload(next.has_value(), load_error,
                     next ? KeysNeedingRestart(config, *next) : std::vector<std::string>{});
    if (!reload_record->Count(verdict)) {
      *error = verdict.error;
      return false;
    }
    ConfigureLogging(next->log_format, next->log_level);
    audit_retention_days = next->audit_retention_days;
    reload_record->Applied();
    spdlog::info("config reloaded (log_format {}, log_level {}, audit_retention_days {})",
                 next->log_format, next->log_level, next->audit_retention_days);
    return true;
  }

  // Records a POST /-/reload in the audit log, like the analytics routes.
  void AuditReload(const http::Request& req, int status, const std::string& denial) {
    identity::AuditEntry entry;
    if (!req.principal.empty())
      entry.actor = identity::AuditActor{req.principal_id, req.principal, req.principal_role};
    entry.method = req.method;
    entry.endpoint = req.path;
    entry.ip = req.remote_ip;
    entry.allowed = status < 400;
    entry.status = status;
    entry.denial = denial;
    if (!access->audit_log().Record(entry)) metrics->CountFailure("audit");
  }

  // POST /-/reload: an admin's token or console session; no body.
  http::Route ReloadRoute() {
    http::Route r;
    r.name = "reload";
    r.path = "/-/reload";
    r.methods = {"POST"};
    r.authenticate = [this](const http::Request& req) {
      identity::Principal who;
      return identity::AuthResultOf(access->users().FindRequest(req, &who), who, "bpmc-exporter");
    };
    r.max_body_bytes = 0;  // a body is 413 before it is read
    r.handler = [this](const http::Request& req) {
      if (req.principal_role != "admin") {
        AuditReload(req, 403, "only an admin may reload the config");
        return http::Error(403, "only an admin may reload the config", "Authorization");
      }
      if (!load_config) {
        AuditReload(req, 404, "no config file to reload");
        return http::Error(404, "this exporter has no config file to reload");
      }
      // On a thread of its own: parsing YAML on CivetWeb's small handler stack
      // is not worth the risk.
      auto done = std::async(std::launch::async, [this] {
        std::string error;
        const bool ok = Reload(&error);
        return std::make_pair(ok, error);
      });
      const auto [ok, error] = done.get();
      AuditReload(req, ok ? 200 : 400, ok ? "" : "config not reloaded");
      if (!ok) return http::Error(400, "config not reloaded: " + error, "config");
      return http::Text(200, nlohmann::json{{"status", "reloaded"}}.dump(), "application/json");
    };
    r.on_refusal = [this](const http::Request& req, const http::Response& resp) {
      AuditReload(req, resp.status, "HTTP " + std::to_string(resp.status));
    };
    return r;
  }

  // --- Background maintenance -------------------------------------------
  void MaintenanceLoop() {
    auto last_partition_run = std::chrono::steady_clock::now() - std::chrono::hours(2);
    std::unique_ptr<pqxx::connection> conn;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(maintenance_mu);
        maintenance_cv.wait_for(lock, std::chrono::milliseconds(config.key_refresh_ms),
                                [&] { return maintenance_stop; });
        if (maintenance_stop) return;
      }
      if (!directory->Refresh()) metrics->CountFailure("directory_refresh");
      if (std::chrono::steady_clock::now() - last_partition_run < std::chrono::hours(1)) continue;
      try {
        if (!conn || !conn->is_open())
          conn = std::make_unique<pqxx::connection>(config.database_url);
        const int64_t now = clock->NowMicros();
        ingestion::EnsureDayPartitions(*conn, now - kMicrosPerDay, now + 2 * kMicrosPerDay);
        for (const auto& name : ingestion::DropExpiredPartitions(*conn, now, config.retention_days))
          spdlog::info("retention: dropped partition {}", name);
        if (const int days = audit_retention_days.load(); days > 0) {
          if (const int64_t n = identity::PruneAuditLog(*conn, days); n > 0)
            spdlog::info("retention: deleted {} audit_log rows older than {} days", n, days);
        }
        last_partition_run = std::chrono::steady_clock::now();
      } catch (const std::exception& e) {
        conn.reset();
        metrics->CountFailure("maintenance");
        spdlog::warn("partition maintenance failed: {}", e.what());
      }
    }
  }
};

Service::Service(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Service::~Service() { Shutdown(); }

std::unique_ptr<Service> Service::Start(const Config& config, const Clock& clock,
                                        std::string* error, ConfigLoader load_config) {
  // libpq waits this long for a connection before we treat the database as
  // down (and acknowledge through the spool).
  setenv("PGCONNECT_TIMEOUT", "2", 0);
  // Before any library opens a connection (common/pg_statements.h).
  SetPgPooling(config.database_pooling == "transaction" ? PgPooling::kTransaction
                                                        : PgPooling::kSession);
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->clock = &clock;
  impl->metrics = std::make_unique<IngestMetrics>(impl->registry, config.max_label_sets);
  impl->load_config = std::move(load_config);
  impl->audit_retention_days = config.audit_retention_days;
  impl->RegisterReloadMetrics();

  try {
    pqxx::connection conn(config.database_url);
    const int applied = ApplySchema(conn, DatabaseSchema());
    if (applied > 0) spdlog::info("applied {} migration(s)", applied);
  } catch (const std::exception& e) {
    // Serve anyway: events go to the spool until the database is back.
    spdlog::warn("cannot migrate the database now ({}); starting with the spool", e.what());
    impl->metrics->CountFailure("migrate");
  }

  const std::string spool_dir = config.data_dir + "/spool";
  if (!MakeDirs(spool_dir)) {
    *error = "data_dir: cannot create " + spool_dir;
    return nullptr;
  }
  std::string spool_error;
  impl->spool = Spool::Open(spool_dir, config.spool_max_bytes, &spool_error);
  if (!impl->spool) {
    *error = "data_dir: cannot open the spool: " + spool_error;
    return nullptr;
  }
  if (impl->spool->PendingRecords() > 0)
    spdlog::info("spool holds {} events to replay", impl->spool->PendingRecords());

  impl->directory =
      std::make_unique<Directory>(config.database_url, config.data_dir + "/directory.json");
  if (!impl->directory->Refresh()) spdlog::warn("cannot load API keys and connectors yet");

  Writer::Options wopts;
  wopts.connections = config.writer_connections;
  wopts.max_commit_events = config.max_commit_events;
  const std::string url = config.database_url;
  impl->writer = std::make_unique<Writer>(
      wopts, [url] { return ingestion::NewPgEventStore(url); }, impl->spool.get(),
      impl->metrics.get());

  impl->pool = std::make_unique<PgPool>(config.database_url, 8);
  if (!config.analytics_database_url.empty())
    impl->replica_pool = std::make_unique<PgPool>(config.analytics_database_url, 8);
  impl->access_pool = std::make_unique<PgPool>(config.database_url, 4);
  impl->billing_pool = std::make_unique<PgPool>(config.database_url, 4);
  {
    RollupOptions ropts;
    ropts.database_url = config.database_url;
    ropts.time_zone = config.reporting_time_zone;
    ropts.interval_ms = config.rollup_interval_ms;
    impl->rollup = Rollup::Create(
        ropts, impl->registry,
        [m = impl->metrics.get()](const std::string& reason) { m->CountFailure(reason); }, error);
    if (!impl->rollup) {
      impl->writer->Stop();
      return nullptr;
    }
  }
  // Routes of the other components (billing, analytics, audit) are added here.
  impl->access = std::make_unique<AccessControl>(
      *impl->access_pool, config.pseudonym_key, impl->registry.get(),
      [m = impl->metrics.get()](const std::string& reason) { m->CountFailure(reason); }, &clock);
  impl->sessions = std::make_unique<identity::SessionStore>(
      *impl->access_pool,
      identity::SessionPolicy{std::chrono::seconds(config.console_session_idle_s),
                              std::chrono::seconds(config.console_session_lifetime_s)},
      &clock);
  if (!config.receiver_url.empty()) impl->receiver_client = NewCurlHttpClient();
  impl->routes.push_back(analytics::NewAuditRoute(impl->access.get(), impl->pool.get()));
  impl->routes.push_back(analytics::NewAnalyticsRoute(impl->pool.get(), impl->access.get(), [&] {
    AnalyticsOptions o = AnalyticsOptionsFrom(config);
    o.clock = &clock;
    o.registry = impl->registry.get();
    o.replica = impl->replica_pool.get();
    o.fanout = config.database_pooling != "transaction";
    return o;
  }()));
  impl->routes.push_back(billing::NewBillingRoute(BillingRouteOptions{
      impl->billing_pool.get(), impl->registry, &clock, config.key_refresh_ms,
      [m = impl->metrics.get()](const std::string& reason) { m->CountFailure(reason); }}));

  if (config.sink == "discard")
    spdlog::warn("sink=discard: events are acknowledged and NOT stored (benchmark mode)");

  http::ServerOptions http_options;
  http_options.listen = config.listen;
  http_options.threads = config.http_threads;
  http_options.request_deadline_ms = config.request_deadline_ms;
  http_options.max_requests_per_client = config.max_requests_per_client;
  for (const std::string& cidr : config.trusted_proxies)
    http_options.trusted_proxies.push_back(*http::ParseCidr(cidr));  // validated
  http::ServerHooks hooks;
  hooks.on_response = [m = impl->metrics.get()](const std::string& route, int status) {
    m->RecordRequest(route, status);
  };
  impl->server = http::Server::Start(http_options, impl->HttpRoutes(), std::move(hooks),
                                     *impl->registry, error);
  if (!impl->server) {
    impl->writer->Stop();
    return nullptr;
  }
  Impl* raw = impl.get();
  impl->maintenance = std::thread([raw] { raw->MaintenanceLoop(); });
  if (config.rollup_enabled) impl->rollup->StartBackground();
  return std::unique_ptr<Service>(new Service(std::move(impl)));
}

int Service::port() const { return impl_->server->port(); }

bool Service::Reload(std::string* error) { return impl_->Reload(error); }

void Service::Shutdown() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  impl_->shutting_down = true;
  // Stop the HTTP server first: it waits for in-flight handlers, whose events
  // the still-running writer commits. Then drain the writer.
  if (impl_->server) impl_->server->Close();
  impl_->writer->Stop();
  {
    std::lock_guard<std::mutex> lock(impl_->maintenance_mu);
    impl_->maintenance_stop = true;
  }
  impl_->maintenance_cv.notify_all();
  if (impl_->maintenance.joinable()) impl_->maintenance.join();
  if (impl_->rollup) impl_->rollup->Stop();
}

}  // namespace bpmc::exporter
