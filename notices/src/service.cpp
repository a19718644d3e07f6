#include "notices/service.h"

#include <prometheus/counter.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "common/pg_pool.h"
#include "common/pii.h"
#include "common/time_format.h"
#include "notices/store.h"
#include "notifier/telegram.h"

namespace bpmc::notices {
namespace {

using Json = nlohmann::json;
using Response = NoticeService::Response;

constexpr int64_t kLinkCodeTtlUs = 3600LL * 1000000;  // one hour, as people's codes

constexpr std::string_view kMaintenance = "/api/v1/maintenance";
constexpr std::string_view kNotices = "/api/v1/notices";
constexpr std::string_view kStatus = "/api/v1/notices/status";
constexpr std::string_view kContacts = "/api/v1/notices/contacts/";
constexpr std::string_view kWindow = "/api/v1/maintenance/";
constexpr std::string_view kPreferences = "/api/v1/notices/preferences/";
constexpr std::string_view kTelegramLink = "/api/v1/notices/telegram-link-code";

// The {customer} of a per-customer path: 1-100 bytes, no '/'; "" when not.
std::string CustomerOfPath(const std::string& path, std::string_view prefix) {
  const std::string customer = path.substr(prefix.size());
  if (customer.empty() || customer.size() > 100 || customer.find('/') != std::string::npos)
    return "";
  return customer;
}
Response Error(int status, const std::string& message, const std::string& field = "",
               std::vector<std::pair<std::string, std::string>> headers = {}) {
  return http::Error(status, message, field, std::move(headers));
}

Response Ok(int status, Json body) {
  body["status"] = "ok";
  Response r;
  r.status = status;
  r.body = body.dump();
  return r;
}

// The value of the first `name` in a query string, percent-decoded ("" when absent).
std::string QueryParam(const std::string& query, const char* name) {
  std::string_view q = query;
  while (!q.empty()) {
    const size_t amp = q.find('&');
    const std::string_view pair = q.substr(0, amp);
    const size_t eq = pair.find('=');
    if (eq != std::string_view::npos && http::PercentDecode(pair.substr(0, eq)) == name)
      return http::PercentDecode(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return "";
}

// A non-negative integer query parameter in [0, max], or nullopt when malformed.
std::optional<int64_t> IntParam(const std::string& query, const char* name, int64_t fallback,
                                int64_t max) {
  const std::string v = QueryParam(query, name);
  if (v.empty()) return fallback;
  if (v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  const int64_t n = std::stoll(v);
  return n > max ? std::nullopt : std::optional<int64_t>(n);
}

// Counters of the notices library (series from fixed label sets).
class NoticeMetrics {
 public:
  explicit NoticeMetrics(prometheus::Registry& r)
      : notices_(prometheus::BuildCounter()
                     .Name("bpmc_receiver_notices_total")
                     .Help("Notices to platform users created, by kind.")
                     .Register(r)),
        emails_(
            prometheus::BuildCounter()
                .Name("bpmc_receiver_notice_emails_total")
                .Help("Notice e-mails: enqueued outbox rows, and notices not e-mailed by reason "
                      "(no_channel, no_contact, rate_limited).")
                .Register(r)),
        requests_(prometheus::BuildCounter()
                      .Name("bpmc_receiver_notice_api_requests_total")
                      .Help("Requests to the maintenance and notices API, by endpoint and code.")
                      .Register(r)) {
    for (const std::string& k : NoticeKinds()) Get(notices_, {{"kind", k}});
    for (const char* k : {"enqueued", "no_channel", "no_contact", "rate_limited"})
      Get(emails_, {{"result", k}});
  }
  void Count(const StepCounts& c) {
    for (const auto& [kind, n] : c.notices) Get(notices_, {{"kind", kind}}).Increment(n);
    for (const auto& [result, n] : c.emails) Get(emails_, {{"result", result}}).Increment(n);
  }
  void CountRequest(const std::string& endpoint, int code) {
    Get(requests_, {{"endpoint", endpoint}, {"code", std::to_string(code)}}).Increment();
  }

 private:
  prometheus::Counter& Get(prometheus::Family<prometheus::Counter>& f,
                           const std::map<std::string, std::string>& labels) {
    std::lock_guard<std::mutex> lock(mu_);  // Family::Add returns the existing series
    return f.Add(labels);
  }
  prometheus::Family<prometheus::Counter>& notices_;
  prometheus::Family<prometheus::Counter>& emails_;
  prometheus::Family<prometheus::Counter>& requests_;
  std::mutex mu_;
};

std::string EndpointName(std::string_view uri) {
  if (uri == kMaintenance || uri.rfind(kWindow, 0) == 0) return "maintenance";
  if (uri.rfind(kPreferences, 0) == 0) return "preferences";
  if (uri.rfind(kContacts, 0) == 0) return "contacts";
  if (uri == kStatus) return "status";
  if (uri == kTelegramLink) return "telegram_link_code";
  return "notices";
}

}  // namespace

struct NoticeService::Impl {
  const std::string database_url;
  const NoticesConfig config;
  const NoticeDeps deps;
  NoticeMetrics metrics;
  RequestLimiter limiter;
  PgPool pool;

  std::thread engine;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  bool wake = false;

  Impl(std::string url, NoticesConfig c, NoticeDeps d)
      : database_url(std::move(url)),
        config(std::move(c)),
        deps(std::move(d)),
        metrics(*deps.registry),
        limiter(config.api_limit, config.api_limit_per_us),
        pool(database_url, static_cast<size_t>(config.database_connections)) {}

  void CountFailure(const std::string& reason) {
    if (deps.count_failure) deps.count_failure(reason);
  }

  // --- The engine ---------------------------------------------------------
  void EngineLoop() {
    std::unique_ptr<pqxx::connection> conn;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait_for(lock, std::chrono::microseconds(config.poll_interval_us),
                    [&] { return stop || wake; });
        if (stop) return;
        wake = false;
      }
      EnginePass(conn);
    }
  }

  void EnginePass(std::unique_ptr<pqxx::connection>& conn) {
    try {
      if (!conn || !conn->is_open()) conn = std::make_unique<pqxx::connection>(database_url);
      const StepCounts counts = RunNoticeStep(*conn, config, deps.clock->NowMicros());
      metrics.Count(counts);
      if (counts.enqueued() > 0 && deps.wake_delivery) deps.wake_delivery();
    } catch (const std::exception& e) {
      conn.reset();  // also ends the session's advisory lock
      spdlog::warn("notices: engine pass failed: {}", ScrubPii(e.what()));
      CountFailure("notices_pass");
    }
  }

  // --- The API ------------------------------------------------------------
  Response Route(const Request& r, const Caller& caller) {
    if (r.path == kMaintenance) {
      if (r.method == "POST") return PostMaintenance(r, caller);
      if (r.method == "GET") return GetMaintenance(caller);
      return Error(405, "method not allowed", "", {{"Allow", "GET, POST"}});
    }
    if (r.path == kNotices) {
      if (r.method == "GET") return GetNotices(r, caller);
      return Error(405, "method not allowed", "", {{"Allow", "GET"}});
    }
    if (r.path == kStatus) {
      if (r.method == "GET") return GetStatus(r, caller);
      return Error(405, "method not allowed", "", {{"Allow", "GET"}});
    }
    if (r.path == kTelegramLink) {
      if (r.method == "POST") return PostTelegramLinkCode(r, caller);
      return Error(405, "method not allowed", "", {{"Allow", "POST"}});
    }
    if (r.path.rfind(kWindow, 0) == 0) return WindowItem(r, caller);
    if (r.path.rfind(kPreferences, 0) == 0) {
      const std::string customer = CustomerOfPath(r.path, kPreferences);
      if (customer.empty()) return Error(404, "no such endpoint");
      if (caller.role != "admin") return Error(403, "only an admin sets customers' preferences");
      if (r.method == "PUT") return PutPreferences(r, customer);
      if (r.method == "GET") return GetPreferencesOf(customer);
      return Error(405, "method not allowed", "", {{"Allow", "GET, PUT"}});
    }
    const std::string customer = CustomerOfPath(r.path, kContacts);
    if (customer.empty()) return Error(404, "no such endpoint");
    if (caller.role != "admin") return Error(403, "only an admin manages notice contacts");
    if (r.method == "PUT") return PutContacts(r, customer);
    if (r.method == "GET") return GetContacts(customer);
    return Error(405, "method not allowed", "", {{"Allow", "GET, PUT"}});
  }

  // Runs `fn(txn)` in a pooled transaction; a database failure answers 503.
  template <typename Fn>
  Response WithDatabase(Fn fn) {
    try {
      return InPooledTransaction(pool, fn);
    } catch (const std::exception& e) {
      spdlog::warn("notices: API database error: {}", ScrubPii(e.what()));
      CountFailure("notices_api");
      return Error(503, "the database is not available; retry later", "", {{"Retry-After", "5"}});
    }
  }

  Response PostMaintenance(const Request& r, const Caller& caller) {
    if (caller.role != "admin") return Error(403, "only an admin schedules maintenance");
    auto parsed = ParseMaintenanceRequest(r.body, deps.clock->NowMicros());
    if (auto* e = std::get_if<FieldError>(&parsed)) return Error(400, e->message, e->field);
    const MaintenanceRequest& req = std::get<MaintenanceRequest>(parsed);
    Response out = WithDatabase([&](pqxx::work& txn) {
      return Ok(201, {{"window", CreateWindow(txn, req, caller.name)}});
    });
    if (out.status == 201) {
      spdlog::info("notices: {} scheduled maintenance of {} connector(s)", caller.name,
                   req.connectors.size());
      Wake();
    }
    return out;
  }

  // PATCH or PUT (edit: the given keys over the stored window) and DELETE (cancel)
  // /api/v1/maintenance/{id}: admin only. PUT is there for the console, whose
  // forwarding route has no PATCH.
  Response WindowItem(const Request& r, const Caller& caller) {
    const std::string id_text = r.path.substr(kWindow.size());
    if (id_text.empty() || id_text.size() > 18 ||
        id_text.find_first_not_of("0123456789") != std::string::npos)
      return Error(404, "no such maintenance window", "id");
    const bool edit = r.method == "PATCH" || r.method == "PUT";
    if (!edit && r.method != "DELETE")
      return Error(405, "method not allowed", "", {{"Allow", "PATCH, PUT, DELETE"}});
    if (caller.role != "admin") return Error(403, "only an admin edits or cancels maintenance");
    const int64_t id = std::stoll(id_text);
    const int64_t now = deps.clock->NowMicros();
    WindowChange change;
    Response out = WithDatabase([&](pqxx::work& txn) {
      change = edit ? UpdateWindow(txn, id, r.body, caller.name, now)
                    : CancelWindow(txn, id, caller.name, now);
      // A refusal changed nothing (UpdateWindow and CancelWindow write last).
      if (change.status != 200) return Error(change.status, change.error, change.field);
      return Ok(200, {{"window", change.window}});
    });
    if (out.status == 200) {
      spdlog::info("notices: {} {} maintenance window {}", caller.name,
                   edit ? "edited" : "cancelled", id);
      Wake();
    }
    return out;
  }

  Response PutPreferences(const Request& r, const std::string& customer) {
    auto parsed = ParsePreferencesRequest(r.body);
    if (auto* e = std::get_if<FieldError>(&parsed)) return Error(400, e->message, e->field);
    const CustomerPrefs& prefs = std::get<CustomerPrefs>(parsed);
    return WithDatabase([&](pqxx::work& txn) {
      SetPreferences(txn, customer, prefs);
      return Ok(
          200,
          {{"customer_id", customer}, {"locale", prefs.locale}, {"time_zone", prefs.time_zone}});
    });
  }

  Response GetPreferencesOf(const std::string& customer) {
    return WithDatabase([&](pqxx::work& txn) {
      const CustomerPrefs prefs = GetPreferences(txn, customer);
      return Ok(
          200,
          {{"customer_id", customer}, {"locale", prefs.locale}, {"time_zone", prefs.time_zone}});
    });
  }

  Response GetMaintenance(const Caller& caller) {
    if (caller.role == "user") return Error(403, "role user may not list maintenance windows");
    return WithDatabase([&](pqxx::work& txn) {
      return Ok(200, {{"windows", ListWindows(txn, deps.clock->NowMicros())}});
    });
  }

  Response GetNotices(const Request& r, const Caller& caller) {
    const FeedAccess access = DecideFeedAccess(caller, QueryParam(r.query, "customer"));
    if (access.status != 200) return Error(access.status, access.error, "customer");
    const auto before = IntParam(r.query, "before", 0, INT64_MAX / 2);
    if (!before) return Error(400, "must be a notice id", "before");
    const auto limit = IntParam(r.query, "limit", 50, 500);
    if (!limit || *limit == 0) return Error(400, "must be 1 to 500", "limit");
    return WithDatabase([&](pqxx::work& txn) {
      return Ok(200, ListNotices(txn, access, *before, static_cast<int>(*limit)));
    });
  }

  // One customer's service status: a user's own, or any named one for an admin.
  Response GetStatus(const Request& r, const Caller& caller) {
    const FeedAccess access = DecideFeedAccess(caller, QueryParam(r.query, "customer"));
    if (access.status != 200) return Error(access.status, access.error, "customer");
    if (access.customer_id.empty()) return Error(400, "name the customer", "customer");
    if (access.customer_id.size() > 100) return Error(400, "must be at most 100 bytes", "customer");
    return WithDatabase([&](pqxx::work& txn) {
      return Ok(200, CustomerStatus(txn, access.customer_id, deps.clock->NowMicros()));
    });
  }

  Response PutContacts(const Request& r, const std::string& customer) {
    auto parsed = ParseContactsRequest(r.body);
    if (auto* e = std::get_if<FieldError>(&parsed)) return Error(400, e->message, e->field);
    const auto& emails = std::get<std::vector<std::string>>(parsed);
    return WithDatabase([&](pqxx::work& txn) {
      SetContacts(txn, customer, emails);
      return Ok(200, {{"customer_id", customer}, {"emails", emails}});
    });
  }

  // A one-time code that links a Telegram chat to the customer's notices
  // ("/start <code>" to the telegram_channel's bot; docs/NOTICES.md "Telegram").
  Response PostTelegramLinkCode(const Request& r, const Caller& caller) {
    if (config.telegram_channel.empty())
      return Error(404, "notices by Telegram are not configured (notices.telegram_channel)");
    const LinkCodeTarget target = DecideLinkCodeTarget(caller, r.body);
    if (target.status != 200) return Error(target.status, target.error, target.field);
    const int64_t now = deps.clock->NowMicros();
    return WithDatabase([&](pqxx::work& txn) {
      const std::string code =
          notifier::CreateTelegramCustomerLinkCode(txn, target.customer_id, now, kLinkCodeTtlUs);
      return Ok(201, {{"customer_id", target.customer_id},
                      {"code", code},
                      {"expires_at", FormatRfc3339Micros(now + kLinkCodeTtlUs)},
                      {"command", "/start " + code}});
    });
  }

  Response GetContacts(const std::string& customer) {
    return WithDatabase([&](pqxx::work& txn) {
      Json emails = Json::array();
      for (const auto& row : txn.exec_params(
               "SELECT address FROM notice_contacts WHERE customer_id = $1 AND channel = 'email'"
               " ORDER BY address",
               customer))
        emails.push_back(row[0].as<std::string>());
      return Ok(200, {{"customer_id", customer}, {"emails", emails}});
    });
  }

  void Wake() {
    {
      std::lock_guard<std::mutex> lock(mu);
      wake = true;
    }
    cv.notify_all();
  }
};

NoticeService::NoticeService(std::string database_url, NoticesConfig config, NoticeDeps deps)
    : impl_(std::make_unique<Impl>(std::move(database_url), std::move(config), std::move(deps))) {}

NoticeService::~NoticeService() { Stop(); }

void NoticeService::Start() {
  if (impl_->engine.joinable()) return;
  Impl* raw = impl_.get();
  impl_->engine = std::thread([raw] { raw->EngineLoop(); });
}

void NoticeService::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  if (impl_->engine.joinable()) impl_->engine.join();
}

void NoticeService::Wake() { impl_->Wake(); }

bool NoticeService::Serves(std::string_view uri) {
  return uri == kMaintenance || uri == kNotices || uri == kStatus || uri == kTelegramLink ||
         uri.rfind(kContacts, 0) == 0 || uri.rfind(kWindow, 0) == 0 ||
         uri.rfind(kPreferences, 0) == 0;
}

NoticeService::Response NoticeService::Answer(const Request& request) {
  std::optional<Caller> caller;
  try {
    caller = impl_->deps.authenticate(request);
  } catch (const std::exception& e) {
    impl_->CountFailure("notices_api");
    return Error(503, "cannot check the token now; retry later", "", {{"Retry-After", "5"}});
  }
  if (!caller)
    return Error(401, "a valid bearer token is required", "Authorization",
                 {{"WWW-Authenticate", "Bearer realm=\"bpmc-receiver\""}});
  int64_t retry_us = 0;
  if (!impl_->limiter.Allow(caller->name, impl_->deps.clock->NowMicros(), &retry_us))
    return Error(429, "too many requests; slow down", "",
                 {{"Retry-After", std::to_string(retry_us / 1000000 + 1)}});
  return impl_->Route(request, *caller);
}

NoticeService::Response NoticeService::Serve(const Request& request) {
  Response out = Answer(request);
  CountRequest(request.path, out.status);
  return out;
}

void NoticeService::CountRequest(std::string_view uri, int status) {
  impl_->metrics.CountRequest(EndpointName(uri), status);
}

}  // namespace bpmc::notices
