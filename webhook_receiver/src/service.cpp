#include "webhook_receiver/service.h"

#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <set>
#include <thread>
#include <tuple>

#include "billing/schema.h"
#include "button_press.h"
#include "common/config_reload.h"
#include "common/ids.h"
#include "common/logging.h"
#include "common/migrate.h"
#include "common/pg_pool.h"
#include "common/pg_statements.h"
#include "common/pii.h"
#include "http/server.h"
#include "identity/audit.h"
#include "identity/schema.h"
#include "identity/users.h"
#include "incidents/schema.h"
#include "incidents_hook.h"
#include "notices/schema.h"
#include "notices/service.h"
#include "notices/store.h"
#include "notifier/deliverer.h"
#include "notifier/schema.h"
#include "oncall/ical.h"
#include "oncall_feed.h"
#include "receiver/schema.h"
#include "slack_interactions.h"
#include "telegram_bot.h"
#include "webhook_receiver/auth.h"
#include "webhook_receiver/heartbeats.h"
#include "webhook_receiver/metrics.h"
#include "webhook_receiver/silences.h"
#include "webhook_receiver/store.h"
#include "webhook_receiver/writer.h"

namespace bpmc::webhook_receiver {

std::vector<const SchemaModule*> DatabaseSchema() {
  return {&identity::Schema(), &billing::Schema(),   &webhook_receiver::Schema(),
          &notifier::Schema(), &incidents::Schema(), &notices::Schema()};
}
std::vector<std::string> KeysNeedingRestart(const ReceiverConfig& running,
                                            const ReceiverConfig& next) {
  std::vector<std::string> keys;
  auto check = [&keys](bool same, const char* key) {
    if (!same) keys.push_back(key);
  };
  check(running.listen == next.listen, "listen");
  check(running.database_url == next.database_url, "database_url");
  check(running.database_pooling == next.database_pooling, "database_pooling");
  check(running.max_body_bytes == next.max_body_bytes, "max_body_bytes");
  check(running.http_threads == next.http_threads, "http_threads");
  check(running.request_deadline_ms == next.request_deadline_ms, "request_deadline_ms");
  check(running.max_requests_per_client == next.max_requests_per_client, "max_requests_per_client");
  check(running.trusted_proxies == next.trusted_proxies, "trusted_proxies");
  check(running.database_connections == next.database_connections, "database_connections");
  const notices::NoticesConfig& a = running.notices;
  const notices::NoticesConfig& b = next.notices;
  check(std::tie(a.enabled, a.email_channel, a.telegram_channel, a.maintenance_notice_before_us,
                 a.connector_problem_after_us, a.payment_lookback_us, a.poll_interval_us,
                 a.email_limit, a.email_limit_per_us, a.api_limit, a.api_limit_per_us,
                 a.database_connections, a.templates) ==
            std::tie(b.enabled, b.email_channel, b.telegram_channel, b.maintenance_notice_before_us,
                     b.connector_problem_after_us, b.payment_lookback_us, b.poll_interval_us,
                     b.email_limit, b.email_limit_per_us, b.api_limit, b.api_limit_per_us,
                     b.database_connections, b.templates),
        "notices");
  return keys;
}

namespace {

using Json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr const char* kJson = "application/json";
constexpr auto kProbeInterval = std::chrono::seconds(1);
constexpr auto kRetentionInterval = std::chrono::hours(1);

constexpr const char* kRealm = "Bearer realm=\"bpmc-receiver\"";
constexpr const char* kHeartbeatPrefix = "/v1/heartbeat/";
constexpr const char* kReloadPath = "/-/reload";

// The heartbeat name of a /v1/heartbeat/<name> path (unchecked).
std::string_view HeartbeatName(std::string_view path) {
  return path.substr(std::string_view(kHeartbeatPrefix).size());
}

using http::Text;

struct Endpoint {
  const char* path;
  Source source;
};
constexpr Endpoint kEndpoints[] = {
    {"/v1/alertmanager", Source::kAlertmanager},
    {"/v1/generic", Source::kGeneric},
    {"/v1/sentry", Source::kSentry},
    {"/v1/datadog", Source::kDatadog},
    {"/v1/newrelic", Source::kNewRelic},
};

// What a reload replaces (docs/RECEIVER.md, "Reloading the config"): the
// config and the components built from it. Handlers hold a snapshot for the
// whole request, so a request that began before a reload ends with the old one.
struct Runtime {
  ReceiverConfig config;  // first: the components below keep references to it
  std::unique_ptr<notifier::Deliverer> deliverer;
  std::unique_ptr<IncidentsHook> incidents;      // incident engine and API (StartIncidents)
  std::unique_ptr<HeartbeatMonitor> heartbeats;  // with `heartbeats:` (StartHeartbeats)
  // One per Telegram bot with poll_updates (StartMessengers, docs/RECEIVER.md "Telegram").
  std::vector<std::unique_ptr<TelegramBot>> telegram;
  // With a Slack app channel: POST /v1/slack/interactions (docs/RECEIVER.md "Slack app").
  std::unique_ptr<SlackInteractions> slack;

  // The threads that start once the server is up (or the runtime is swapped in).
  void StartPollers() {
    if (heartbeats) heartbeats->Start();
    for (auto& bot : telegram) bot->Start();
  }
  void StopPollers() {
    if (heartbeats) heartbeats->Stop();
    for (auto& bot : telegram) bot->Stop();  // releases the bot's lease for the next poller
  }
  // Joins the threads; handlers still holding this snapshot keep working.
  void Stop() {
    StopPollers();
    if (incidents) incidents->Stop();
    if (deliverer) deliverer->Stop();
  }
};

}  // namespace

struct Service::Impl {
  // The config the service started with: the settings a reload cannot change
  // (KeysNeedingRestart). Everything else is read from Rt()->config.
  ReceiverConfig boot;
  std::shared_ptr<Runtime> runtime;             // std::atomic_load / std::atomic_store only
  std::mutex reload_mu;                         // one reload at a time
  std::unique_ptr<ReloadRecord> reload_record;  // bpmc_receiver_config_* metrics
  ServiceDeps deps;
  std::unique_ptr<HttpClient> own_http;
  std::unique_ptr<notifier::Mailer> own_mailer;
  prometheus::Registry registry;
  std::unique_ptr<ReceiverMetrics> metrics;
  std::unique_ptr<IntakeWriter> writer;  // group commit of webhooks
  std::unique_ptr<http::Server> server;
  // Notices to platform users and the maintenance mute hook (StartNotices).
  MuteCheck is_muted;
  // Silences: the mute hook and the API (silences.h), on connections of their own.
  MuteCheck is_silenced = &Silenced;
  std::unique_ptr<PgPool> silences_pool;
  std::unique_ptr<SilenceApi> silences;
  // The exporter's analytics people, who may use the incidents and notices APIs.
  std::unique_ptr<PgPool> users_pool;  // token lookups, 2 connections of their own
  std::unique_ptr<identity::UserDirectory> users;
  std::unique_ptr<notices::NoticeService> notices;
  std::unique_ptr<OnCallFeed> feed;  // on-call calendar feeds (oncall_feed.h)
  // The audit log of the APIs (identity/audit.h), on connections of its own.
  std::unique_ptr<PgPool> audit_pool;
  std::unique_ptr<identity::AuditLog> audit;
  std::atomic<bool> shutting_down{false};
  std::atomic<bool> migrated{false};
  std::atomic<bool> database_up{false};
  bool stopped = false;

  std::thread maintenance;
  std::mutex maintenance_mu;
  std::condition_variable maintenance_cv;
  bool maintenance_stop = false;

  std::shared_ptr<Runtime> Rt() const { return std::atomic_load(&runtime); }

  // A platform user (identity/users.h) from the Authorization header:
  // 401 when unknown, 503 + Retry-After when the database cannot be asked.
  http::AuthResult AuthenticateUser(const http::Request& r) {
    identity::Principal u;
    const identity::RequestAuth found = users->FindRequest(r, &u);
    if (found == identity::RequestAuth::kError) metrics->CountFailure("user_lookup");
    return identity::AuthResultOf(found, u, "bpmc-receiver");
  }

  // Every answer of the data APIs (/api/...: incidents, on-call, maintenance,
  // notices, customer contacts) and of acknowledgement links is recorded in
  // audit_log before it is sent, as the exporter records analytics; webhook
  // intakes read no data, and health and metrics hold none. An ack link's token
  // is a credential: only its hash is recorded.
  bool AuditAccess(const http::AuditEvent& e) {
    const bool ack = e.path.rfind("/ack/", 0) == 0;
    if (!ack && e.path.rfind("/api/", 0) != 0 && e.path != kReloadPath) return true;
    identity::AuditEntry entry;
    if (!e.principal.empty())
      entry.actor = identity::AuditActor{e.principal_id, e.principal, e.principal_role};
    entry.method = e.method;
    entry.endpoint =
        ack ? "/ack/sha256:" + HexEncode(Sha256(e.path.substr(5))).substr(0, 16) : e.path;
    entry.params = http::ParseQuery(e.query);
    // A calendar feed's signature is a credential too: only its hash.
    if (auto sig = entry.params.find("sig"); sig != entry.params.end())
      sig->second = "sha256:" + HexEncode(Sha256(sig->second)).substr(0, 16);
    entry.ip = e.client_address;
    entry.reason = e.reason;
    entry.allowed = e.status < 400;
    entry.status = e.status;
    if (!entry.allowed) entry.denial = "HTTP " + std::to_string(e.status);
    return audit->Record(entry);
  }

  // The route table of the HTTP layer (http/include/http/server.h).
  std::vector<http::Route> HttpRoutes() {
    std::vector<http::Route> out;
    for (const Endpoint& e : kEndpoints) {
      const Source source = e.source;
      http::Route r;
      r.name = SourceName(source);
      r.path = e.path;
      r.methods = {"POST"};
      r.authenticate = [this](const http::Request& req) {
        const AuthResult auth = Authenticate(Rt()->config.auth, req.Header("authorization"),
                                             http::ParseQuery(req.query)["token"]);
        if (auth == AuthResult::kOk) return http::AuthResult::Ok("webhook");
        return http::AuthResult::Unauthorized(
            auth == AuthResult::kMissing ? "credentials required" : "invalid credentials", kRealm);
      };
      r.max_body_bytes = boot.max_body_bytes;
      r.handler = [this, source](const http::Request& req) { return Intake(req, source); };
      r.on_refusal = [this, source](const http::Request&, const http::Response& resp) {
        if (resp.status == 401) metrics->CountWebhook(source, "unauthorized");
        if (resp.status == 413) metrics->CountWebhook(source, "too_large");
      };
      out.push_back(std::move(r));
    }
    out.push_back(HeartbeatRoute());  // 404 for every name without `heartbeats:`
    auto user = [this](const http::Request& req) { return AuthenticateUser(req); };
    // A platform user's API route: the user is authenticated before any body byte,
    // JSON bodies only, at most `body` bytes (0: none).
    auto api = [&out, user](
                   const char* name, const char* path, bool prefix,
                   std::vector<std::string> methods, uint64_t body, http::Handler handler,
                   std::function<void(const http::Request&, const http::Response&)> refused =
                       nullptr) {
      out.push_back({name, path, prefix, std::move(methods), user, true, body, std::move(handler),
                     std::move(refused)});
    };
    auto silence = [this](const http::Request& req) { return silences->Answer(req); };
    api("silences", "/api/v1/silences", false, {"GET", "POST"}, kMaxSilenceBody, silence);
    api("silences", "/api/v1/silences/", true, {"GET", "DELETE"}, 0, silence);
    if (notices) {
      notices::NoticeService* n = notices.get();
      auto serve = [n](const http::Request& req) { return n->Serve(req); };
      auto count = [n](const http::Request& req, const http::Response& resp) {
        n->CountRequest(req.path, resp.status);
      };
      const uint64_t limit = notices::NoticeService::kMaxBody;
      api("maintenance", "/api/v1/maintenance", false, {"GET", "POST"}, limit, serve, count);
      api("maintenance", "/api/v1/maintenance/", true, {"PATCH", "PUT", "DELETE"}, limit, serve,
          count);
      api("notice_preferences", "/api/v1/notices/preferences/", true, {"GET", "PUT"}, limit, serve,
          count);
      api("notices", "/api/v1/notices", false, {"GET"}, 0, serve, count);
      api("notices", "/api/v1/notices/status", false, {"GET"}, 0, serve, count);
      api("notice_contacts", "/api/v1/notices/contacts/", true, {"GET", "PUT"}, limit, serve,
          count);
      api("notice_telegram_link", "/api/v1/notices/telegram-link-code", false, {"POST"}, 4096,
          serve, count);
    }
    {
      auto answer = [this](const http::Request& req) {
        const std::shared_ptr<Runtime> rt = Rt();
        return rt->incidents->api().Answer(req);
      };
      constexpr uint64_t kNoteBody = 64 * 1024;  // notes and overrides are small
      api("incidents", "/api/v1/incidents", false, {"GET"}, 0, answer);
      api("incidents", "/api/v1/incidents/", true, {"GET", "POST"}, kNoteBody, answer);
      api("oncall", "/api/v1/oncall", false, {"GET"}, 0, answer);
      api("oncall", "/api/v1/oncall/policies", false, {"GET"}, 0, answer);
      api("overrides", "/api/v1/overrides", false, {"GET", "POST"}, kNoteBody, answer);
      api("overrides", "/api/v1/overrides/", true, {"DELETE"}, 0, answer);
      // On-call calendar feeds: the signed URLs for a platform user; the feeds
      // themselves are public routes whose handler checks the URL's signature.
      api("oncall_feed_links", "/api/v1/oncall/ical-links", false, {"GET"}, 0,
          [this](const http::Request& req) {
            const std::shared_ptr<Runtime> rt = Rt();
            return feed->Links(req, rt->incidents->engine());
          });
      out.push_back({"oncall_feed",
                     std::string(oncall::kFeedPathPrefix),
                     true,
                     {"GET"},
                     http::Public(),
                     false,
                     0,
                     [this](const http::Request& req) {
                       const std::shared_ptr<Runtime> rt = Rt();
                       return feed->Feed(req, rt->incidents->engine(), *deps.clock);
                     },
                     nullptr});
      api("telegram_link_codes", "/api/v1/telegram/link-codes", false, {"POST"},
          TelegramBot::kMaxLinkCodeBody, [this](const http::Request& req) {
            const std::shared_ptr<Runtime> rt = Rt();
            if (rt->telegram.empty())
              return http::Error(404, "no telegram channel polls for updates (poll_updates)");
            return rt->telegram.front()->CreateLinkCode(req);
          });
      out.push_back({"slack_interactions",
                     "/v1/slack/interactions",
                     false,
                     {"POST"},
                     http::Public(),  // the handler checks Slack's signature over the body
                     false,
                     SlackInteractions::kMaxBody,
                     [this](const http::Request& req) {
                       const std::shared_ptr<Runtime> rt = Rt();
                       if (!rt->slack)
                         return http::Error(404, "no slack channel has a bot_token (Slack app)");
                       return rt->slack->Answer(req);
                     },
                     nullptr});
      // Signed links: the handler checks the token in the path; a form POST has no fields.
      out.push_back({"ack_link",
                     "/ack/",
                     true,
                     {"GET", "POST"},
                     http::Public(),
                     false,
                     4096,
                     answer,
                     nullptr});
    }
    // Reloading the config: an admin's bearer token (docs/RECEIVER.md).
    api("reload", kReloadPath, false, {"POST"}, 0,
        [this](const http::Request& req) { return ReloadRequest(req); });
    for (http::Route& r : http::OperationalRoutes(
             registry, [this] { return !shutting_down && migrated && database_up; })) {
      out.push_back(std::move(r));
    }
    return out;
  }

  // POST (or GET) /v1/heartbeat/<name>: that heartbeat's own token, checked
  // before the body is read; an unknown name passes to the handler's 404.
  http::Route HeartbeatRoute() {
    http::Route r;
    r.name = "heartbeat";
    r.path = kHeartbeatPrefix;
    r.prefix = true;
    r.methods = {"GET", "POST"};
    r.authenticate = [this](const http::Request& req) {
      const std::shared_ptr<Runtime> rt = Rt();
      const HeartbeatConfig* h = FindHeartbeat(*rt, req.path);
      if (!h) return http::AuthResult::Ok("heartbeat");
      AuthConfig own;
      own.bearer_tokens = {h->token};
      own.allow_query_token = rt->config.auth.allow_query_token;
      const AuthResult auth =
          Authenticate(own, req.Header("authorization"), http::ParseQuery(req.query)["token"]);
      if (auth == AuthResult::kOk) return http::AuthResult::Ok("heartbeat:" + h->name);
      return http::AuthResult::Unauthorized(
          auth == AuthResult::kMissing ? "credentials required" : "invalid credentials", kRealm);
    };
    r.max_body_bytes = kMaxHeartbeatBody;
    r.handler = [this](const http::Request& req) { return HeartbeatCheckIn(req); };
    r.on_refusal = [this](const http::Request& req, const http::Response& resp) {
      const std::shared_ptr<Runtime> rt = Rt();
      const HeartbeatConfig* h = FindHeartbeat(*rt, req.path);
      if (h && resp.status == 401) metrics->CountCheckin(h->name, "unauthorized");
    };
    return r;
  }

  // The token was checked by the HTTP layer; the body is ignored.
  static const HeartbeatConfig* FindHeartbeat(const Runtime& rt, std::string_view path) {
    return rt.heartbeats ? rt.heartbeats->Find(HeartbeatName(path)) : nullptr;
  }

  http::Response HeartbeatCheckIn(const http::Request& req) {
    const std::shared_ptr<Runtime> rt = Rt();
    const HeartbeatConfig* h = FindHeartbeat(*rt, req.path);
    if (!h) {
      metrics->CountCheckin("(unknown)", "unknown");
      return http::Error(404, "no heartbeat of that name is configured", "name");
    }
    std::optional<HeartbeatMonitor::CheckInResult> done;
    if (!shutting_down && migrated) done = rt->heartbeats->CheckIn(*h);
    if (!done) {
      metrics->CountCheckin(h->name, "unavailable");
      return http::Error(503, "cannot record the check-in now; retry later", "",
                         {{"Retry-After", "5"}});
    }
    metrics->CountCheckin(h->name, "ok");
    const Json out = {
        {"name", h->name},
        {"checked_in_at", FormatAlertTime(done->checked_in_us)},
        {"next_due_at", FormatAlertTime(done->checked_in_us + h->interval_us)},
        {"missed_after", FormatAlertTime(done->checked_in_us + h->interval_us + h->grace_us)},
        {"resolved", done->resolved}};
    return Text(200, out.dump(), kJson);
  }

  // What every stored webhook does to the metrics, the Deliverer and incidents;
  // returns the notifications it enqueued.
  int AfterStore(Source source, const StoreResult& stored) {
    for (AlertOutcome o : stored.outcomes) metrics->CountAlert(source, o);
    int enqueued = 0;
    for (const auto& [channel, n] : stored.enqueued) {
      metrics->CountEnqueued(channel, n);
      enqueued += n;
    }
    const std::shared_ptr<Runtime> rt = Rt();
    if (enqueued > 0 && rt->deliverer) rt->deliverer->Wake();
    if (!stored.outcomes.empty()) rt->incidents->Wake();
    return enqueued;
  }
  void HeartbeatStored(const StoreResult& stored) { AfterStore(Source::kHeartbeat, stored); }

  http::Response Refuse(Source source, const std::string& result, int status,
                        const std::string& message, const std::string& field,
                        std::vector<std::pair<std::string, std::string>> headers = {}) {
    metrics->CountWebhook(source, result);
    return http::Error(status, message, field, std::move(headers));
  }

  // Credentials and the body limit were checked by the HTTP layer.
  http::Response Intake(const http::Request& req, Source source) {
    const auto started = SteadyClock::now();
    if (shutting_down)
      return Refuse(source, "shutting_down", 503, "shutting down", "",
                    {{"Retry-After", "1"}, {"Connection", "close"}});
    const std::string& body = req.body;
    IntakeResult parsed = ParseWebhook(source, body);
    if (auto* err = std::get_if<IntakeError>(&parsed))
      return Refuse(source, err->status == 413 ? "too_large" : "malformed", err->status,
                    err->message, err->field);
    const Webhook& webhook = std::get<Webhook>(parsed);
    std::vector<PlannedAlert> planned;
    planned.reserve(webhook.alerts.size());
    const std::shared_ptr<Runtime> rt = Rt();
    const ReceiverConfig& config = rt->config;
    for (const IncomingAlert& a : webhook.alerts)
      planned.push_back(PlanAlert(a, config.routes, config.notifier, config.default_severity));
    if (!migrated)
      return Refuse(source, "unavailable", 503, "the database is not ready; retry later", "",
                    {{"Retry-After", "5"}});
    const std::optional<StoreResult> stored = writer->Submit(
        WebhookToStore{&webhook, body, &planned, deps.clock->NowMicros(), &is_muted, &is_silenced});
    if (!stored)
      return Refuse(source, "unavailable", 503, "cannot store the webhook now; retry later", "",
                    {{"Retry-After", "5"}});
    metrics->ObserveStore(std::chrono::duration<double>(SteadyClock::now() - started).count());
    return Respond(webhook, *stored);
  }

  http::Response Respond(const Webhook& webhook, const StoreResult& stored) {
    metrics->CountWebhook(webhook.source, "accepted");
    if (webhook.truncated_alerts > 0)
      metrics->CountTruncated(webhook.source, webhook.truncated_alerts);
    Json counts = Json::object();
    for (AlertOutcome o : stored.outcomes)
      counts[OutcomeName(o)] = counts.value(OutcomeName(o), 0) + 1;
    const int enqueued = AfterStore(webhook.source, stored);
    Json out = {{"status", "ok"},
                {"webhook_id", stored.webhook_id},
                {"alerts", counts},
                {"enqueued", enqueued}};
    if (!webhook.ignored_reason.empty()) out["ignored"] = webhook.ignored_reason;
    return Text(200, out.dump(), kJson);
  }

  // Stops the writer, notices, incidents, the Deliverer and maintenance (after the server).
  void StopAll() {
    const std::shared_ptr<Runtime> rt = Rt();
    if (rt) rt->StopPollers();
    if (writer) writer->Stop();
    if (notices) notices->Stop();
    if (rt) rt->Stop();
    {
      std::lock_guard<std::mutex> lock(maintenance_mu);
      maintenance_stop = true;
    }
    maintenance_cv.notify_all();
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
      if (!conn || !conn->is_open()) conn = std::make_unique<pqxx::connection>(boot.database_url);
      if (!migrated) Migrate(*conn);
      pqxx::nontransaction(*conn).exec("SELECT 1");
      SetDatabaseUp(true);
      ReleaseSilenced(*conn);
      if (SteadyClock::now() - last_retention >= kRetentionInterval) {
        const int64_t n = DeleteOldWebhooks(*conn, Rt()->config.webhook_retention_days);
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

  // Pages the still-firing alerts whose silence ended (ReleaseEndedSilences).
  void ReleaseSilenced(pqxx::connection& conn) {
    try {
      const std::shared_ptr<Runtime> rt = Rt();
      const ReceiverConfig& config = rt->config;
      pqxx::work txn(conn);
      const int n = ReleaseEndedSilences(
          txn, deps.clock->NowMicros(),
          ReleasePlan{&config.routes, &config.notifier, config.default_severity});
      txn.commit();
      if (n == 0) return;
      spdlog::info("silences: {} still-firing alert(s) paged after their silence ended", n);
      if (rt->deliverer) rt->deliverer->Wake();
      rt->incidents->Wake();
    } catch (const pqxx::broken_connection&) {
      throw;  // the probe's failure
    } catch (const std::exception& e) {
      spdlog::warn("silences: releasing ended silences failed: {}", ScrubPii(e.what()));
      metrics->CountFailure("silence_release");
    }
  }

  void Migrate(pqxx::connection& conn) {
    const int applied = ApplySchema(conn, DatabaseSchema());
    if (applied > 0) spdlog::info("applied {} migration(s)", applied);
    migrated = true;
  }

  void SetDatabaseUp(bool up) {
    database_up = up;
    metrics->SetDatabaseUp(up);
  }

  // Starts the Deliverer of `rt` (unless deps say not to).
  void StartDelivery(Runtime& rt) {
    if (!deps.start_delivery) return;
    const ReceiverConfig& config = rt.config;
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
    options.reassign_choices = ReassignChoices(config.oncall);
    rt.deliverer = std::make_unique<notifier::Deliverer>(options, config.notifier, *deps.http,
                                                         *deps.mailer, *deps.clock, registry);
    rt.deliverer->Start();
  }

  // With a `notices:` section: the notice engine, its API, and muting the alerts of
  // connectors under maintenance (docs/NOTICES.md).
  void StartNotices() {
    const ReceiverConfig& config = boot;
    if (!config.notices.enabled) return;
    is_muted = &notices::InMaintenance;
    notices::NoticeDeps d;
    d.clock = deps.clock;
    d.registry = &registry;
    d.authenticate = [this](const http::Request& req) -> std::optional<notices::Caller> {
      identity::Principal u;
      const identity::RequestAuth found = users->FindRequest(req, &u);
      if (found == identity::RequestAuth::kError)
        throw std::runtime_error("cannot look up the platform user");   // answered 503
      if (found != identity::RequestAuth::kFound) return std::nullopt;  // the route refused first
      return notices::Caller{u.name, identity::RoleName(u.role), u.customer_id};
    };
    d.wake_delivery = [this] {
      const std::shared_ptr<Runtime> rt = Rt();
      if (rt->deliverer) rt->deliverer->Wake();
    };
    d.count_failure = [this](const std::string& reason) { metrics->CountFailure(reason); };
    notices =
        std::make_unique<notices::NoticeService>(config.database_url, config.notices, std::move(d));
    notices->Start();
  }
  // Heartbeats (docs/RECEIVER.md "Heartbeats"): the monitor its route needs;
  // the checker thread starts with StartHeartbeatChecker.
  void StartHeartbeats(Runtime& rt) {
    if (rt.config.heartbeats.empty()) return;
    HeartbeatMonitor::Deps d;
    d.clock = deps.clock;
    d.metrics = metrics.get();
    d.is_muted = &is_muted;
    d.is_silenced = &is_silenced;
    d.stored = [this](const StoreResult& s) { HeartbeatStored(s); };
    d.ready = [this] { return migrated && !shutting_down; };
    rt.heartbeats = std::make_unique<HeartbeatMonitor>(rt.config, std::move(d));
  }
  // Slack app buttons (docs/RECEIVER.md "Slack app"), and Telegram buttons and /start
  // (docs/RECEIVER.md "Telegram"): one poller per bot token.
  void StartMessengers(Runtime& rt) {
    if (!rt.incidents) return;
    SlackInteractions::Deps sd;
    for (const auto& [name, channel] : rt.config.notifier.channels)
      if (channel.type == notifier::ChannelType::kSlack && !channel.slack.bot_token.empty())
        sd.signing_secrets.push_back(channel.slack.signing_secret);
    if (!sd.signing_secrets.empty()) {
      sd.members = SlackMembers(rt.config.oncall);
      sd.clock = deps.clock;
      sd.engine = &rt.incidents->engine();
      sd.audit = audit.get();
      sd.pool = audit_pool.get();
      sd.count_failure = [this](const std::string& reason) { metrics->CountFailure(reason); };
      rt.slack = std::make_unique<SlackInteractions>(std::move(sd));
    }
    if (!deps.start_delivery) return;
    std::set<std::string> bots;
    for (const auto& [name, channel] : rt.config.notifier.channels) {
      if (channel.type != notifier::ChannelType::kTelegram || !channel.telegram.poll_updates ||
          !bots.insert(channel.telegram.bot_token).second)
        continue;
      TelegramBot::Deps d;
      d.database_url = rt.config.database_url;
      d.channel = channel;
      d.http = deps.http;
      d.clock = deps.clock;
      d.engine = &rt.incidents->engine();
      d.audit = audit.get();
      d.oncall = rt.config.oncall;
      d.count_failure = [this](const std::string& reason) { metrics->CountFailure(reason); };
      d.ready = [this] { return migrated && !shutting_down; };
      rt.telegram.push_back(std::make_unique<TelegramBot>(std::move(d)));
    }
  }
  // Incidents, escalation and on-call (docs/INCIDENTS.md); muted by the notices' hook.
  void StartIncidents(Runtime& rt) {
    rt.incidents = std::make_unique<IncidentsHook>(
        rt.config, *users, deps.clock, registry, is_muted,
        [this] {
          const std::shared_ptr<Runtime> now = Rt();
          if (now && now->deliverer) now->deliverer->Wake();
        },
        [this](const std::string& reason) { metrics->CountFailure(reason); });
    rt.incidents->Start();
  }

  // The components of a new runtime for `config`, started.
  std::shared_ptr<Runtime> StartRuntime(const ReceiverConfig& config) {
    auto rt = std::make_shared<Runtime>();
    rt->config = config;
    StartDelivery(*rt);
    StartIncidents(*rt);
    StartHeartbeats(*rt);
    StartMessengers(*rt);
    return rt;
  }

  void RegisterReloadMetrics() {
    reload_record = std::make_unique<ReloadRecord>(registry, "bpmc_receiver", *deps.clock);
  }

  // Swaps in `next` (already parsed and validated) unless it changes a setting
  // that needs a restart. The new components start before the old ones stop.
  bool Reload(const std::optional<ReceiverConfig>& next, const std::string& load_error,
              std::string* error) {
    std::lock_guard<std::mutex> lock(reload_mu);
    if (shutting_down) {
      *error = "shutting down";
      return false;
    }
    const ReloadVerdict verdict =
        DecideReload(next.has_value(), load_error,
                     next ? KeysNeedingRestart(boot, *next) : std::vector<std::string>{});
    if (!reload_record->Count(verdict)) {
      *error = verdict.error;
      return false;
    }
    std::shared_ptr<Runtime> fresh = StartRuntime(*next);
    std::shared_ptr<Runtime> old = std::atomic_exchange(&runtime, fresh);
    fresh->StartPollers();
    old->Stop();  // in-flight escalations continue from PostgreSQL in the new engine
    if (fresh->deliverer) fresh->deliverer->Wake();
    fresh->incidents->Wake();
    ConfigureLogging(next->log_format, next->log_level);
    reload_record->Applied();
    spdlog::info("config reloaded");
    return true;
  }

  // POST /-/reload: an admin re-reads the config (the HTTP layer authenticated the user).
  http::Response ReloadRequest(const http::Request& req) {
    if (req.principal_role != "admin")
      return http::Error(403, "only an admin may reload the config", "Authorization");
    if (!deps.load_config) return http::Error(404, "this receiver has no config file to reload");
    // Parsing the YAML and starting threads on a thread of its own: CivetWeb's
    // handler stacks are small.
    auto done = std::async(std::launch::async, [this] {
      std::string error;
      const bool ok = ReloadFromSource(&error);
      return std::make_pair(ok, error);
    });
    const auto [ok, error] = done.get();
    if (!ok) return http::Error(400, "config not reloaded: " + error, "config");
    return Text(200, Json{{"status", "reloaded"}}.dump(), kJson);
  }

  bool ReloadFromSource(std::string* error) {
    if (!deps.load_config) {
      *error = "no config source";
      return false;
    }
    std::string load_error;
    std::optional<ReceiverConfig> next = deps.load_config(&load_error);
    return Reload(next, load_error, error);
  }
};

Service::Service(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Service::~Service() { Shutdown(); }

std::unique_ptr<Service> Service::Start(const ReceiverConfig& config, ServiceDeps deps,
                                        std::string* error) {
  // libpq waits this long for a connection before we call the database down.
  setenv("PGCONNECT_TIMEOUT", "2", 0);
  // Before any library opens a connection (common/pg_statements.h).
  SetPgPooling(config.database_pooling == "transaction" ? PgPooling::kTransaction
                                                        : PgPooling::kSession);
  auto impl = std::make_unique<Impl>();
  impl->boot = config;
  if (!deps.clock) deps.clock = &SystemClock::Get();
  impl->deps = deps;
  impl->metrics = std::make_unique<ReceiverMetrics>(impl->registry);
  impl->RegisterReloadMetrics();
  Impl* raw = impl.get();
  impl->writer = std::make_unique<IntakeWriter>(
      IntakeWriter::Options{config.database_url, config.database_connections, 64},
      [raw](const std::string& ch) { return notifier::HasChannel(raw->Rt()->config.notifier, ch); },
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
  impl->users_pool = std::make_unique<PgPool>(config.database_url, 2);
  impl->users = std::make_unique<identity::UserDirectory>(*impl->users_pool);
  impl->silences_pool = std::make_unique<PgPool>(config.database_url, 2);
  impl->silences = std::make_unique<SilenceApi>(
      *impl->silences_pool, *impl->deps.clock,
      [m = impl->metrics.get()](const std::string& reason) { m->CountFailure(reason); });
  impl->StartNotices();
  impl->feed = std::make_unique<OnCallFeed>(impl->registry);
  impl->audit_pool = std::make_unique<PgPool>(config.database_url, 2);
  impl->audit = std::make_unique<identity::AuditLog>(
      *impl->audit_pool,
      [m = impl->metrics.get()](const std::string& reason) { m->CountFailure(reason); },
      impl->deps.clock);  // before the runtime: its Telegram bots audit their presses
  std::atomic_store(&impl->runtime, impl->StartRuntime(config));
  http::ServerOptions http_options;
  http_options.listen = config.listen;
  http_options.threads = config.http_threads;
  http_options.request_deadline_ms = config.request_deadline_ms;
  http_options.max_requests_per_client = config.max_requests_per_client;
  for (const std::string& cidr : config.trusted_proxies)
    http_options.trusted_proxies.push_back(*http::ParseCidr(cidr));  // validated
  http::ServerHooks hooks;
  hooks.audit = [raw = impl.get()](const http::AuditEvent& e) { return raw->AuditAccess(e); };
  impl->server = http::Server::Start(http_options, impl->HttpRoutes(), std::move(hooks),
                                     impl->registry, error);
  if (!impl->server) {
    impl->StopAll();
    return nullptr;
  }
  impl->maintenance = std::thread([raw] { raw->MaintenanceLoop(); });
  if (auto rt = impl->Rt(); rt) rt->StartPollers();
  return std::unique_ptr<Service>(new Service(std::move(impl)));
}

bool Service::Reload(const ReceiverConfig& config, std::string* error) {
  return impl_->Reload(config, "", error);
}

bool Service::ReloadFromSource(std::string* error) { return impl_->ReloadFromSource(error); }

int Service::port() const { return impl_->server->port(); }

void Service::Shutdown() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  impl_->shutting_down = true;
  // The HTTP server first: it waits for in-flight webhooks (the writer is
  // still storing them); then the writer, the Deliverer, and maintenance.
  if (impl_->server) impl_->server->Close();
  {
    // A reload from another thread (POST /-/reload finished with the server;
    // SIGHUP comes from this one) has either swapped its runtime in or not begun.
    std::lock_guard<std::mutex> lock(impl_->reload_mu);
    impl_->StopAll();
  }
  if (impl_->maintenance.joinable()) impl_->maintenance.join();
}

}  // namespace bpmc::webhook_receiver
