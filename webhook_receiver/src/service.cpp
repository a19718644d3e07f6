#include "webhook_receiver/service.h"

#include <CivetServer.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "common/http_response.h"
#include "common/migrate.h"
#include "notices/service.h"
#include "notices/store.h"
#include "notifier/deliverer.h"
#include "webhook_receiver/auth.h"
#include "webhook_receiver/metrics.h"
#include "webhook_receiver/platform_users.h"
#include "webhook_receiver/store.h"
#include "webhook_receiver/writer.h"
#include "incidents_hook.h"

namespace bpmc::webhook_receiver {
namespace {

using Json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr const char* kJson = "application/json";
constexpr auto kProbeInterval = std::chrono::seconds(1);
constexpr auto kRetentionInterval = std::chrono::hours(1);

std::string ErrorBody(const std::string& message, const std::string& field) {
  return Json{{"status", "error"}, {"error", message}, {"field", field}}.dump();
}

// The value of `name` in a query string, percent-decoded ("" when absent).
std::string QueryParam(const char* query, const char* name) {
  if (query == nullptr) return "";
  char buf[1024];
  const int n = mg_get_var(query, strlen(query), name, buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

struct Endpoint {
  const char* path;
  Source source;
};
constexpr Endpoint kEndpoints[] = {
    {"/v1/alertmanager", Source::kAlertmanager}, {"/v1/generic", Source::kGeneric},
    {"/v1/sentry", Source::kSentry},             {"/v1/datadog", Source::kDatadog},
    {"/v1/newrelic", Source::kNewRelic},
};

}  // namespace

struct Service::Impl : public CivetHandler {
  ReceiverConfig config;
  ServiceDeps deps;
  std::unique_ptr<HttpClient> own_http;
  std::unique_ptr<notifier::Mailer> own_mailer;
  prometheus::Registry registry;
  std::unique_ptr<ReceiverMetrics> metrics;
  std::unique_ptr<IntakeWriter> writer;  // group commit of webhooks
  std::unique_ptr<notifier::Deliverer> deliverer;
  std::unique_ptr<CivetServer> server;
  // Notices to platform users and the maintenance mute hook (StartNotices).
  MuteCheck is_muted;
  // The exporter's analytics people, who may use the incidents and notices APIs.
  std::unique_ptr<PlatformUsers> users;
  std::unique_ptr<notices::NoticeService> notices;
  std::unique_ptr<IncidentsHook> incidents;  // incident engine and API (StartIncidents)
  std::atomic<bool> shutting_down{false};
  std::atomic<bool> migrated{false};
  std::atomic<bool> database_up{false};
  bool stopped = false;

  std::thread maintenance;
  std::mutex maintenance_mu;
  std::condition_variable maintenance_cv;
  bool maintenance_stop = false;

  bool handleGet(CivetServer*, mg_connection* c) override { return Dispatch(c); }
  bool handlePost(CivetServer*, mg_connection* c) override { return Dispatch(c); }
  bool handlePut(CivetServer*, mg_connection* c) override { return Dispatch(c); }
  bool handleDelete(CivetServer*, mg_connection* c) override { return Dispatch(c); }
  bool handlePatch(CivetServer*, mg_connection* c) override { return Dispatch(c); }

  bool Dispatch(mg_connection* c) {
    const mg_request_info* ri = mg_get_request_info(c);
    const std::string_view method = ri->request_method;
    const std::string_view uri = ri->local_uri ? ri->local_uri : "";
    auto only = [&](std::string_view allowed) {
      if (method == allowed) return true;
      WriteResponse(c, 405, kJson, ErrorBody("method not allowed", ""),
                    "Allow: " + std::string(allowed) + "\r\n");
      return false;
    };
    for (const Endpoint& e : kEndpoints) {
      if (uri == e.path) {
        if (only("POST")) Intake(c, e.source);
        return true;
      }
    }
    if (notices && notices->Handle(c, method, uri)) return true;
    if (incidents && incidents->Handle(c, method, uri)) return true;
    if (uri == "/metrics") {
      if (only("GET"))
        WriteResponse(c, 200, "text/plain; version=0.0.4; charset=utf-8",
                      prometheus::TextSerializer().Serialize(registry.Collect()));
    } else if (uri == "/healthz") {
      if (only("GET")) WriteResponse(c, 200, "text/plain", "ok\n");
    } else if (uri == "/readyz") {
      if (only("GET")) {
        const bool ready = !shutting_down && migrated && database_up;
        WriteResponse(c, ready ? 200 : 503, "text/plain", ready ? "ready\n" : "not ready\n");
      }
    } else {
      WriteResponse(c, 404, kJson, ErrorBody("no such endpoint", ""));
    }
    return true;
  }

  void Refuse(mg_connection* c, Source source, const std::string& result, int status,
              const std::string& message, const std::string& field,
              std::string_view headers = {}) {
    metrics->CountWebhook(source, result);
    WriteResponse(c, status, kJson, ErrorBody(message, field), headers);
  }

  // Reads the body into *body; false (after answering 413) past the limit.
  bool ReadBody(mg_connection* c, Source source, std::string* body) {
    const mg_request_info* ri = mg_get_request_info(c);
    const uint64_t limit = config.max_body_bytes;
    const std::string too_large = "body is larger than " + std::to_string(limit) + " bytes";
    if (ri->content_length > 0 && static_cast<uint64_t>(ri->content_length) > limit) {
      Refuse(c, source, "too_large", 413, too_large, "", "Connection: close\r\n");
      return false;
    }
    if (ri->content_length > 0) body->reserve(static_cast<size_t>(ri->content_length));
    char buf[16384];
    for (;;) {
      const int n = mg_read(c, buf, sizeof buf);
      if (n <= 0) return true;
      body->append(buf, static_cast<size_t>(n));
      if (body->size() > limit) {
        Refuse(c, source, "too_large", 413, too_large, "", "Connection: close\r\n");
        return false;
      }
    }
  }

  void Intake(mg_connection* c, Source source) {
    const auto started = SteadyClock::now();
    if (shutting_down) {
      Refuse(c, source, "shutting_down", 503, "shutting down", "",
             "Retry-After: 1\r\nConnection: close\r\n");
      return;
    }
    const char* authz = mg_get_header(c, "Authorization");
    const std::string query_token = QueryParam(mg_get_request_info(c)->query_string, "token");
    const AuthResult auth = Authenticate(config.auth, authz ? authz : "", query_token);
    if (auth != AuthResult::kOk) {
      Refuse(c, source, "unauthorized", 401,
             auth == AuthResult::kMissing ? "credentials required" : "invalid credentials",
             "Authorization", "WWW-Authenticate: Bearer realm=\"bpmc-receiver\"\r\n");
      return;
    }
    std::string body;
    if (!ReadBody(c, source, &body)) return;
    IntakeResult parsed = ParseWebhook(source, body);
    if (auto* err = std::get_if<IntakeError>(&parsed)) {
      Refuse(c, source, err->status == 413 ? "too_large" : "malformed", err->status, err->message,
             err->field);
      return;
    }
    const Webhook& webhook = std::get<Webhook>(parsed);
    std::vector<PlannedAlert> planned;
    planned.reserve(webhook.alerts.size());
    for (const IncomingAlert& a : webhook.alerts)
      planned.push_back(PlanAlert(a, config.routes, config.notifier, config.default_severity));
    if (!migrated) {
      Refuse(c, source, "unavailable", 503, "the database is not ready; retry later", "",
             "Retry-After: 5\r\n");
      return;
    }
    const std::optional<StoreResult> stored =
        writer->Submit(WebhookToStore{&webhook, body, &planned, deps.clock->NowMicros(), &is_muted});
    if (!stored) {
      Refuse(c, source, "unavailable", 503, "cannot store the webhook now; retry later", "",
             "Retry-After: 5\r\n");
      return;
    }
    metrics->ObserveStore(std::chrono::duration<double>(SteadyClock::now() - started).count());
    Respond(c, webhook, *stored);
  }

  void Respond(mg_connection* c, const Webhook& webhook, const StoreResult& stored) {
    metrics->CountWebhook(webhook.source, "accepted");
    if (webhook.truncated_alerts > 0) metrics->CountTruncated(webhook.source, webhook.truncated_alerts);
    Json counts = Json::object();
    for (AlertOutcome o : stored.outcomes) {
      metrics->CountAlert(webhook.source, o);
      counts[OutcomeName(o)] = counts.value(OutcomeName(o), 0) + 1;
    }
    int enqueued = 0;
    for (const auto& [channel, n] : stored.enqueued) {
      metrics->CountEnqueued(channel, n);
      enqueued += n;
    }
    if (enqueued > 0 && deliverer) deliverer->Wake();
    if (incidents && !stored.outcomes.empty()) incidents->Wake();
    Json out = {{"status", "ok"},
                {"webhook_id", stored.webhook_id},
                {"alerts", counts},
                {"enqueued", enqueued}};
    if (!webhook.ignored_reason.empty()) out["ignored"] = webhook.ignored_reason;
    WriteResponse(c, 200, kJson, out.dump());
  }

  // --- Background: database probe, migrations until done, retention. ------
  void MaintenanceLoop() {
    std::unique_ptr<pqxx::connection> conn;
    auto last_retention = SteadyClock::now() - kRetentionInterval;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(maintenance_mu);
        maintenance_cv.wait_for(lock, kProbeInterval, [&] { return maintenance_stop; });
        if (maintenance_stop) return;
      }
      MaintenanceStep(conn, last_retention);
    }
  }

  void MaintenanceStep(std::unique_ptr<pqxx::connection>& conn,
                       SteadyClock::time_point& last_retention) {
    try {
      if (!conn || !conn->is_open()) conn = std::make_unique<pqxx::connection>(config.database_url);
      if (!migrated) Migrate(*conn);
      pqxx::nontransaction(*conn).exec("SELECT 1");
      SetDatabaseUp(true);
      if (SteadyClock::now() - last_retention >= kRetentionInterval) {
        const int64_t n = DeleteOldWebhooks(*conn, config.webhook_retention_days);
        if (n > 0) spdlog::info("retention: deleted {} webhook(s)", n);
        last_retention = SteadyClock::now();
      }
    } catch (const std::exception& e) {
      conn.reset();
      if (database_up) spdlog::warn("database probe failed: {}", e.what());
      SetDatabaseUp(false);
      metrics->CountFailure("database_probe");
    }
  }

  void Migrate(pqxx::connection& conn) {
    const int applied = ApplyMigrations(conn, Migrations(), kMigrationsTable);
    if (applied > 0) spdlog::info("applied {} migration(s)", applied);
    migrated = true;
  }

  void SetDatabaseUp(bool up) {
    database_up = up;
    metrics->SetDatabaseUp(up);
  }

  // Starts the Deliverer (unless deps say not to).
  void StartDelivery() {
    if (!deps.start_delivery) return;
    if (!deps.http) {
      own_http = NewCurlHttpClient();
      deps.http = own_http.get();
    }
    if (!deps.mailer) {
      own_mailer = notifier::NewCurlMailer();
      deps.mailer = own_mailer.get();
    }
    notifier::Deliverer::Options options;
    options.database_url = config.database_url;
    options.threads = config.delivery_threads;
    deliverer = std::make_unique<notifier::Deliverer>(options, config.notifier, *deps.http,
                                                      *deps.mailer, *deps.clock, registry);
    deliverer->Start();
  }

  // With a `notices:` section: the notice engine, its API, and muting the alerts of
  // connectors under maintenance (docs/NOTICES.md).
  void StartNotices() {
    if (!config.notices.enabled) return;
    is_muted = &notices::InMaintenance;
    notices::NoticeDeps d;
    d.clock = deps.clock;
    d.registry = &registry;
    d.authenticate = [this](std::string_view header) -> std::optional<notices::Caller> {
      auto u = users->Authenticate(header);
      if (!u) return std::nullopt;
      return notices::Caller{u->name, u->role, u->customer_id};
    };
    d.wake_delivery = [this] { if (deliverer) deliverer->Wake(); };
    d.count_failure = [this](const std::string& reason) { metrics->CountFailure(reason); };
    notices = std::make_unique<notices::NoticeService>(config.database_url, config.notices,
                                                       std::move(d));
    notices->Start();
  }
  // Incidents, escalation and on-call (docs/INCIDENTS.md); muted by the notices' hook.
  void StartIncidents() {
    incidents = std::make_unique<IncidentsHook>(
        config, *users, deps.clock, registry, is_muted, [this] { if (deliverer) deliverer->Wake(); },
        [this](const std::string& reason) { metrics->CountFailure(reason); });
    incidents->Start();
  }

};

Service::Service(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Service::~Service() { Shutdown(); }

std::unique_ptr<Service> Service::Start(const ReceiverConfig& config, ServiceDeps deps,
                                        std::string* error) {
  // libpq waits this long for a connection before we call the database down.
  setenv("PGCONNECT_TIMEOUT", "2", 0);
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  if (!deps.clock) deps.clock = &SystemClock::Get();
  impl->deps = deps;
  impl->metrics = std::make_unique<ReceiverMetrics>(impl->registry);
  Impl* raw = impl.get();
  impl->writer = std::make_unique<IntakeWriter>(
      IntakeWriter::Options{config.database_url, config.database_connections, 64},
      [raw](const std::string& ch) { return notifier::HasChannel(raw->config.notifier, ch); },
      [raw](const std::string& reason) { raw->metrics->CountFailure(reason); });
  try {
    pqxx::connection conn(config.database_url);
    impl->Migrate(conn);
    impl->SetDatabaseUp(true);
  } catch (const std::exception& e) {
    spdlog::warn("cannot migrate the database now ({}); retrying in the background", e.what());
    impl->metrics->CountFailure("migrate");
    impl->SetDatabaseUp(false);
  }
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
    return nullptr;
  }
  impl->StartDelivery();
  impl->users = std::make_unique<PlatformUsers>(config.database_url);
  impl->StartNotices();
  impl->StartIncidents();
  impl->server->addHandler("/", impl.get());
  impl->maintenance = std::thread([raw] { raw->MaintenanceLoop(); });
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
  // The HTTP server first: it waits for in-flight webhooks (the writer is
  // still storing them); then the writer, the Deliverer, and maintenance.
  if (impl_->server) impl_->server->close();
  if (impl_->writer) impl_->writer->Stop();
  if (impl_->notices) impl_->notices->Stop();
  if (impl_->incidents) impl_->incidents->Stop();
  if (impl_->deliverer) impl_->deliverer->Stop();
  {
    std::lock_guard<std::mutex> lock(impl_->maintenance_mu);
    impl_->maintenance_stop = true;
  }
  impl_->maintenance_cv.notify_all();
  if (impl_->maintenance.joinable()) impl_->maintenance.join();
}

}  // namespace bpmc::webhook_receiver
