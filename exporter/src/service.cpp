#include "exporter/service.h"

#include <CivetServer.h>
#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <pqxx/pqxx>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>

#include "common/ids.h"
#include "common/migrate.h"
#include "exporter/access.h"
#include "exporter/analytics.h"
#include "exporter/api_keys.h"
#include "exporter/billing.h"
#include "common/pg_pool.h"
#include "exporter/event.h"
#include "exporter/http.h"
#include "exporter/ingest_metrics.h"
#include "exporter/rollup.h"
#include "exporter/spool.h"
#include "exporter/store.h"
#include "exporter/writer.h"
#include "http_util.h"

namespace bpmc::exporter {

const std::vector<bpmc::Migration>& Migrations();  // generated from migrations/*.sql

namespace {

constexpr int64_t kMicrosPerDay = 86'400'000'000LL;
constexpr const char* kJson = "application/json";

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

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  return true;
}

}  // namespace

struct Service::Impl : public CivetHandler {
  Config config;
  const Clock* clock = nullptr;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<IngestMetrics> metrics;
  std::unique_ptr<Spool> spool;
  std::unique_ptr<Directory> directory;
  std::unique_ptr<Writer> writer;
  std::unique_ptr<CivetServer> server;
  std::unique_ptr<PgPool> pool;                // for routes' queries
  std::unique_ptr<Rollup> rollup;              // aggregates (docs/AGGREGATION.md)
  std::unique_ptr<AccessControl> access;       // shared by analytics and audit routes
  std::vector<std::unique_ptr<Route>> routes;  // analytics, billing, audit
  std::atomic<bool> shutting_down{false};
  bool stopped = false;

  std::thread maintenance;
  std::mutex maintenance_mu;
  std::condition_variable maintenance_cv;
  bool maintenance_stop = false;

  // --- CivetHandler: every method goes through Dispatch. -----------------
  bool handleGet(CivetServer*, mg_connection* c) override { return Dispatch(c); }
  bool handlePost(CivetServer*, mg_connection* c) override { return Dispatch(c); }
  bool handlePut(CivetServer*, mg_connection* c) override { return Dispatch(c); }
  bool handleDelete(CivetServer*, mg_connection* c) override { return Dispatch(c); }
  bool handlePatch(CivetServer*, mg_connection* c) override { return Dispatch(c); }
  bool handleHead(CivetServer*, mg_connection* c) override { return Dispatch(c); }
  bool handleOptions(CivetServer*, mg_connection* c) override { return Dispatch(c); }

  void Respond(mg_connection* c, const std::string& route, int status, std::string_view type,
               std::string_view body, std::string_view headers = {}) {
    WriteResponse(c, status, type, body, headers);
    metrics->RecordRequest(route, status);
  }
  void RespondError(mg_connection* c, const std::string& route, int status,
                    std::string_view message, std::string_view field,
                    std::string_view headers = {}) {
    Respond(c, route, status, kJson, ErrorBody(message, field), headers);
  }

  bool Dispatch(mg_connection* c) {
    const mg_request_info* ri = mg_get_request_info(c);
    const std::string_view method = ri->request_method;
    const std::string_view uri = ri->local_uri ? ri->local_uri : "";
    auto only = [&](std::string_view allowed, const std::string& route) {
      if (method == allowed) return true;
      RespondError(c, route, 405, "method not allowed", "",
                   "Allow: " + std::string(allowed) + "\r\n");
      return false;
    };
    if (uri == "/v1/connector/usage") {
      if (only("POST", "usage")) Ingest(c, "usage", false);
    } else if (uri == "/v1/connector/usage/batch") {
      if (only("POST", "usage_batch")) Ingest(c, "usage_batch", true);
    } else if (uri == "/metrics") {
      if (only("GET", "metrics")) ServeMetrics(c);
    } else if (uri == "/healthz") {
      if (only("GET", "healthz")) Respond(c, "healthz", 200, "text/plain", "ok\n");
    } else if (uri == "/readyz") {
      if (only("GET", "readyz")) {
        const bool ready = !shutting_down && directory->loaded() && writer->Ready();
        Respond(c, "readyz", ready ? 200 : 503, "text/plain", ready ? "ready\n" : "not ready\n");
      }
    } else {
      for (const auto& route : routes) {
        if (route->Matches(std::string(uri))) {
          ServeRoute(c, *route);
          return true;
        }
      }
      RespondError(c, "other", 404, "no such endpoint", "");
    }
    return true;
  }

  // Reads the body into *body; answers 413 (and returns false) past `limit`.
  bool ReadBody(mg_connection* c, const std::string& route, uint64_t limit, std::string* body) {
    const mg_request_info* ri = mg_get_request_info(c);
    const std::string too_large = "body is larger than " + std::to_string(limit) + " bytes";
    if (ri->content_length > 0 && static_cast<uint64_t>(ri->content_length) > limit) {
      RespondError(c, route, 413, too_large, "", "Connection: close\r\n");
      return false;
    }
    if (ri->content_length > 0) body->reserve(static_cast<size_t>(ri->content_length));
    char buf[16384];
    for (;;) {
      const int n = mg_read(c, buf, sizeof buf);
      if (n <= 0) return true;
      body->append(buf, static_cast<size_t>(n));
      if (body->size() > limit) {
        RespondError(c, route, 413, too_large, "", "Connection: close\r\n");
        return false;
      }
    }
  }

  // Reads the request fully and hands it to `route`.
  void ServeRoute(mg_connection* c, Route& route) {
    const mg_request_info* ri = mg_get_request_info(c);
    HttpRequest req;
    req.method = ri->request_method;
    req.path = ri->local_uri ? ri->local_uri : "";
    req.query = ri->query_string ? ri->query_string : "";
    req.remote_ip = ri->remote_addr;
    for (int i = 0; i < ri->num_headers; ++i) {
      std::string name = ri->http_headers[i].name;
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      req.headers[name] = ri->http_headers[i].value;
    }
    if (!ReadBody(c, route.Name(), config.max_batch_body_bytes, &req.body)) return;
    HttpResponse resp = route.Handle(req);
    std::string headers;
    for (const auto& [k, v] : resp.headers) headers += k + ": " + v + "\r\n";
    Respond(c, route.Name(), resp.status, resp.content_type, resp.body, headers);
  }

  void ServeMetrics(mg_connection* c) {
    const std::string text = prometheus::TextSerializer().Serialize(registry->Collect());
    Respond(c, "metrics", 200, "text/plain; version=0.0.4; charset=utf-8", text);
  }

  void Ingest(mg_connection* c, const std::string& route, bool batch) {
    if (shutting_down) {
      RespondError(c, route, 503, "shutting down", "", "Retry-After: 1\r\nConnection: close\r\n");
      return;
    }
    // 401: Authorization: Bearer <key>
    const char* auth = mg_get_header(c, "Authorization");
    std::string_view auth_sv = auth ? auth : "";
    if (!StartsWithNoCase(auth_sv, "Bearer ")) {
      RespondError(c, route, 401, "missing bearer API key", "Authorization",
                   "WWW-Authenticate: Bearer\r\n");
      return;
    }
    std::string_view key = auth_sv.substr(7);
    while (!key.empty() && key.front() == ' ') key.remove_prefix(1);
    while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
    const std::optional<std::string> api_key_id = directory->ApiKeyId(key);
    if (!api_key_id && !directory->loaded()) {
      // Started while PostgreSQL was down: no key can be checked yet.
      RespondError(c, route, 503, "cannot verify API keys yet; retry later", "",
                   "Retry-After: 5\r\n");
      return;
    }
    if (!api_key_id) {
      RespondError(c, route, 401, "unknown or revoked API key", "Authorization",
                   "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n");
      return;
    }
    // 415: JSON only.
    const char* ctype = mg_get_header(c, "Content-Type");
    std::string_view ct = ctype ? ctype : "";
    if (!StartsWithNoCase(ct, "application/json") ||
        (ct.size() > 16 && ct[16] != ';' && ct[16] != ' ')) {
      RespondError(c, route, 415, "Content-Type must be application/json", "Content-Type");
      return;
    }
    // 413: body size.
    std::string body;
    if (!ReadBody(c, route, batch ? config.max_batch_body_bytes : config.max_event_body_bytes,
                  &body))
      return;
    // 400/413: parse and validate.
    ParseOptions options;
    options.now_us = clock->NowMicros();
    options.min_timestamp_us =
        (options.now_us / kMicrosPerDay - config.retention_days) * kMicrosPerDay;
    std::vector<UsageEvent> events;
    if (batch) {
      auto parsed = ParseUsageBatch(body, options);
      if (auto* err = std::get_if<RequestError>(&parsed)) {
        RespondError(c, route, err->http_status, err->message, err->field);
        return;
      }
      events = std::move(std::get<std::vector<UsageEvent>>(parsed));
    } else {
      auto parsed = ParseUsageEvent(body, options);
      if (auto* err = std::get_if<RequestError>(&parsed)) {
        RespondError(c, route, err->http_status, err->message, err->field);
        return;
      }
      events.push_back(std::move(std::get<UsageEvent>(parsed)));
    }
    // 422: connectors must exist.
    for (size_t i = 0; i < events.size(); ++i) {
      if (!directory->ConnectorExists(events[i].connector)) {
        const std::string field =
            batch ? "[" + std::to_string(i) + "].connector" : std::string("connector");
        RespondError(c, route, 422, "unknown connector '" + events[i].connector + "'", field);
        return;
      }
    }
    for (UsageEvent& e : events) {
      if (e.id.empty()) e.id = NewUuidV7(options.now_us);
      e.api_key_id = *api_key_id;
    }
    std::string ok_body = batch ? "{\"accepted\":" + std::to_string(events.size()) + "}"
                                : "{\"id\":\"" + events[0].id + "\"}";
    if (config.sink == "discard") {
      Respond(c, route, 201, kJson, ok_body);
      return;
    }
    const Writer::Result r = writer->Submit(std::move(events));
    switch (r.outcome) {
      case Writer::Outcome::kStored:
        Respond(c, route, 201, kJson, ok_body);
        return;
      case Writer::Outcome::kSpoolFull:
        RespondError(c, route, 503, "database unavailable and spool full; retry later", "",
                     "Retry-After: 5\r\n");
        return;
      case Writer::Outcome::kRejected:
        // Keys and connectors were checked above (migration 0005 explains why
        // the table has no foreign keys): a refusal here is a server fault.
        RespondError(c, route, 500, "the database refused the events", "");
        return;
      case Writer::Outcome::kConflict: {
        // docs/INGESTION.md: an event id names one event; nothing is stored.
        const std::string field =
            batch ? "[" + std::to_string(r.event_index) + "].event_id" : std::string("event_id");
        RespondError(c, route, 409,
                     "event_id already names a different event (its " + r.difference +
                         " differs); send a new event_id for a new event",
                     field);
        return;
      }
      case Writer::Outcome::kUnavailable:
      case Writer::Outcome::kShuttingDown:
        RespondError(c, route, 503, "cannot store events now; retry later", "",
                     "Retry-After: 5\r\n");
        return;
    }
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
        if (!conn || !conn->is_open()) conn = std::make_unique<pqxx::connection>(config.database_url);
        const int64_t now = clock->NowMicros();
        EnsureDayPartitions(*conn, now - kMicrosPerDay, now + 2 * kMicrosPerDay);
        for (const auto& name : DropExpiredPartitions(*conn, now, config.retention_days))
          spdlog::info("retention: dropped partition {}", name);
        if (config.audit_retention_days > 0) {
          if (const int64_t n = PruneAuditLog(*conn, config.audit_retention_days); n > 0)
            spdlog::info("retention: deleted {} audit_log rows older than {} days", n,
                         config.audit_retention_days);
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
                                        std::string* error) {
  // libpq waits this long for a connection before we treat the database as
  // down (and acknowledge through the spool).
  setenv("PGCONNECT_TIMEOUT", "2", 0);
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->clock = &clock;
  impl->metrics = std::make_unique<IngestMetrics>(impl->registry, config.max_label_sets);

  try {
    pqxx::connection conn(config.database_url);
    const int applied = ApplyMigrations(conn, Migrations());
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
      wopts, [url] { return NewPgEventStore(url); }, impl->spool.get(), impl->metrics.get());

  impl->pool = std::make_unique<PgPool>(config.database_url, 8);
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
  impl->access =
      std::make_unique<AccessControl>(*impl->pool, config.pseudonym_key, impl->metrics.get());
  impl->routes.push_back(NewAuditRoute(impl->access.get(), impl->pool.get()));
  impl->routes.push_back(NewAnalyticsRoute(
      impl->pool.get(), impl->access.get(), [&] {
        AnalyticsOptions o = AnalyticsOptionsFrom(config);
        o.clock = &clock;
        return o;
      }()));
  impl->routes.push_back(NewBillingRoute(BillingRouteOptions{
      impl->pool.get(), impl->registry, &clock, config.key_refresh_ms,
      [m = impl->metrics.get()](const std::string& reason) { m->CountFailure(reason); }}));

  if (config.sink == "discard")
    spdlog::warn("sink=discard: events are acknowledged and NOT stored (benchmark mode)");

  std::vector<std::string> options = {
      "listening_ports", config.listen,
      "num_threads", std::to_string(config.http_threads),
      "tcp_nodelay", "1",
      "enable_keep_alive", "yes",
      "keep_alive_timeout_ms", "60000",
      "request_timeout_ms", "30000",
      "enable_auth_domain_check", "no",
  };
  try {
    impl->server = std::make_unique<CivetServer>(options);
  } catch (const std::exception& e) {
    *error = "listen: cannot listen on " + config.listen + ": " + e.what();
    impl->writer->Stop();
    return nullptr;
  }
  impl->server->addHandler("/", impl.get());
  Impl* raw = impl.get();
  impl->maintenance = std::thread([raw] { raw->MaintenanceLoop(); });
  if (config.rollup_enabled) impl->rollup->StartBackground();
  return std::unique_ptr<Service>(new Service(std::move(impl)));
}

int Service::port() const {
  auto ports = impl_->server->getListeningPorts();
  return ports.empty() ? 0 : ports[0];
}

void Service::Shutdown() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  impl_->shutting_down = true;
  // Stop the HTTP server first: it waits for in-flight handlers, whose events
  // the still-running writer commits. Then drain the writer.
  if (impl_->server) impl_->server->close();
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
