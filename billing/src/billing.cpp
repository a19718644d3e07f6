// Billing events from the platform: parser, platform-token cache, the route
// that applies events, and their metrics. docs/BILLING.md is the user's view.
//
// Validation rules of ParseBillingEvents
//   Body: a JSON object (one event) or a JSON array of 1..max_batch_events
//   objects (0 -> 400 "batch is empty", more -> 413, field ""). Malformed JSON,
//   invalid UTF-8, out-of-range numbers, nesting deeper than 1024 -> 400, "".
//   Unknown keys are ignored (kept in `body`); `null` means absent. A known key
//   twice -> 400 "duplicate key". Any string of the event (unknown keys
//   included) containing U+0000 -> 400 (PostgreSQL cannot store it).
//   Checked in this order:
//     event_id         required, UUID (either case) -> canonical lowercase
//     type             required, one of the five type names (exact)
//     occurred_at      required, RFC 3339; <= now + max_future_us;
//                      >= min_occurred_us (2000-01-01)
//     customer         required string, 1..100 characters
//     subscription_id  required string, 1..100 characters
//   subscription_started:
//     connector        required string, 1..50 characters
//     plan             required string, 1..100 characters
//     trial            required boolean
//     price            required money
//   subscription_cancelled:
//     reason           optional string, <= 1000 characters
//   payment_succeeded / payment_failed:
//     payment_id       required string, 1..100 characters
//     connector        required string, 1..50 characters
//     amount           required money
//     reason           payment_failed: required string, 1..100 characters;
//                      payment_succeeded: ignored
//   Keys a type does not use are ignored. Money is an object
//   {"amount_minor": integer 0..2^63-1, "currency": "ABC"}: a JSON number with
//   a fraction or exponent (12.5, 12.0, 1e3) is refused, the currency is three
//   uppercase ASCII letters. Errors of nested keys name the path
//   ("price.amount_minor"). Strings count Unicode code points; "" for a
//   required string -> "must not be empty".

#include "billing/billing.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cstring>
#include <exception>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <unordered_map>
#include <utility>

#include "billing/payment_reason.h"
#include "common/ids.h"
#include "common/json_depth.h"
#include "common/pg_pool.h"
#include "common/time.h"
#include "common/time_format.h"
#include "identity/users.h"  // BearerToken
#include "simdjson.h"

namespace bpmc::billing {
namespace {

namespace dom = simdjson::dom;

constexpr std::string_view kTypeNames[kBillingEventTypeCount] = {
    "subscription_started", "trial_converted", "subscription_cancelled",
    "payment_succeeded",    "payment_failed",
};

enum Key : int {
  kEventId,
  kType,
  kOccurredAt,
  kCustomer,
  kSubscriptionId,
  kConnector,
  kPlan,
  kTrial,
  kPrice,
  kAmount,
  kPaymentId,
  kReason,
  kKeyCount,
};

constexpr std::string_view kKeyNames[kKeyCount] = {
    "event_id", "type",  "occurred_at", "customer", "subscription_id", "connector",
    "plan",     "trial", "price",       "amount",   "payment_id",      "reason",
};

int KeyOf(std::string_view k) {
  for (int i = 0; i < kKeyCount; ++i)
    if (kKeyNames[i] == k) return i;
  return -1;
}

// An error inside one event; `field` is relative to the event ("" = the event).
struct Failure {
  int http_status = 400;
  std::string message;
  std::string field;
};

Failure Fail(std::string_view field, std::string_view what) {
  Failure f;
  f.field.assign(field.data(), field.size());
  f.message = f.field;
  f.message.append(what);
  return f;
}

// "[3].price.currency", "[3]", "price.currency" or "".
std::string FieldPath(int64_t index, const std::string& field) {
  if (index < 0) return field;
  std::string out = "[" + std::to_string(index) + "]";
  if (!field.empty()) out += "." + field;
  return out;
}

size_t CountChars(std::string_view s) {
  size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  return n;
}

bool HasNul(std::string_view s) { return std::memchr(s.data(), 0, s.size()) != nullptr; }

// Reads a string value: *out empty (and true) for null or "".
bool GetString(const dom::element* v, std::string_view field, size_t max_chars,
               std::string_view* out, Failure* f) {
  *out = {};
  if (v == nullptr || v->is_null()) return true;
  if (v->get_string().get(*out) != simdjson::SUCCESS) {
    *f = Fail(field, " must be a string");
    return false;
  }
  if (HasNul(*out)) {
    *f = Fail(field, " must not contain U+0000");
    return false;
  }
  if (out->size() > max_chars && CountChars(*out) > max_chars) {
    *f = Fail(field, " is longer than " + std::to_string(max_chars) + " characters");
    return false;
  }
  return true;
}

bool GetRequiredString(const dom::element* v, std::string_view field, size_t max_chars,
                       std::string* out, Failure* f) {
  if (v == nullptr || v->is_null()) {
    *f = Fail(field, " is required");
    return false;
  }
  std::string_view s;
  if (!GetString(v, field, max_chars, &s, f)) return false;
  if (s.empty()) {
    *f = Fail(field, " must not be empty");
    return false;
  }
  out->assign(s.data(), s.size());
  return true;
}

// {"amount_minor": <int64 >= 0>, "currency": "ABC"} under key `name`.
bool GetMoney(const dom::element* v, std::string_view name, Money* out, Failure* f) {
  if (v == nullptr || v->is_null()) {
    *f = Fail(name, " is required");
    return false;
  }
  dom::object obj;
  if (v->get_object().get(obj) != simdjson::SUCCESS) {
    *f = Fail(name, " must be an object like {\"amount_minor\": 150000, \"currency\": \"RUB\"}");
    return false;
  }
  const std::string amount_field = std::string(name) + ".amount_minor";
  const std::string currency_field = std::string(name) + ".currency";
  dom::element amount, currency;
  bool has_amount = false, has_currency = false;
  for (const dom::key_value_pair& kv : obj) {
    bool* seen = kv.key == "amount_minor" ? &has_amount
                 : kv.key == "currency"   ? &has_currency
                                          : nullptr;
    if (seen == nullptr) continue;
    if (*seen) {
      f->message = "duplicate key";
      f->field = kv.key == "amount_minor" ? amount_field : currency_field;
      return false;
    }
    *seen = true;
    (kv.key == "amount_minor" ? amount : currency) = kv.value;
  }
  if (!has_amount || amount.is_null()) {
    *f = Fail(amount_field, " is required");
    return false;
  }
  switch (amount.type()) {
    case dom::element_type::INT64: {
      int64_t n = 0;
      if (amount.get_int64().get(n) != simdjson::SUCCESS) return false;
      if (n < 0) {
        *f = Fail(amount_field, " must not be negative");
        return false;
      }
      out->amount_minor = n;
      break;
    }
    case dom::element_type::UINT64:
      *f = Fail(amount_field, " is too large (at most 9223372036854775807)");
      return false;
    case dom::element_type::DOUBLE:
      *f = Fail(amount_field,
                " must be an integer number of minor units (money is exact: 1250.50 RUB is "
                "125050), not a number with a fraction or exponent");
      return false;
    default:
      *f = Fail(amount_field, " must be an integer");
      return false;
  }
  std::string code;
  if (!GetRequiredString(has_currency ? &currency : nullptr, currency_field, 3, &code, f))
    return false;
  bool ok = code.size() == 3;
  for (const char c : code) ok = ok && c >= 'A' && c <= 'Z';
  if (!ok) {
    *f = Fail(currency_field, " must be an ISO 4217 code of three uppercase letters, e.g. RUB");
    return false;
  }
  out->currency = std::move(code);
  return true;
}

// True when any key or string value under `e` contains U+0000.
// Depth is bounded by kMaxJsonDepth, checked before parsing.
bool ContainsNul(dom::element e) {
  switch (e.type()) {
    case dom::element_type::STRING: {
      std::string_view s;
      return e.get_string().get(s) == simdjson::SUCCESS && HasNul(s);
    }
    case dom::element_type::ARRAY: {
      dom::array a;
      if (e.get_array().get(a) != simdjson::SUCCESS) return false;
      for (dom::element c : a)
        if (ContainsNul(c)) return true;
      return false;
    }
    case dom::element_type::OBJECT: {
      dom::object o;
      if (e.get_object().get(o) != simdjson::SUCCESS) return false;
      for (const dom::key_value_pair& kv : o)
        if (HasNul(kv.key) || ContainsNul(kv.value)) return true;
      return false;
    }
    default:
      return false;
  }
}

bool ParseEvent(dom::element item, const BillingParseOptions& options, BillingEvent* e,
                Failure* f) {
  dom::object obj;
  if (item.get_object().get(obj) != simdjson::SUCCESS) {
    f->message = "event must be a JSON object";
    return false;
  }
  dom::element values[kKeyCount];
  bool seen[kKeyCount] = {};
  for (const dom::key_value_pair& kv : obj) {
    const int key = KeyOf(kv.key);
    if (key < 0) continue;
    if (seen[key]) {
      f->message = "duplicate key";
      f->field = std::string(kKeyNames[key]);
      return false;
    }
    seen[key] = true;
    values[key] = kv.value;
  }
  auto value = [&](int key) -> const dom::element* { return seen[key] ? &values[key] : nullptr; };
  auto required = [&](int key, size_t max_chars, std::string* out) {
    return GetRequiredString(value(key), kKeyNames[key], max_chars, out, f);
  };

  // event_id
  {
    std::string s;
    if (!required(kEventId, SIZE_MAX, &s)) return false;
    std::optional<std::string> id = CanonicalUuid(s);
    if (!id) {
      *f = Fail("event_id", " must be a UUID (8-4-4-4-12 hexadecimal digits)");
      return false;
    }
    e->event_id = std::move(*id);
  }
  // type
  {
    std::string s;
    if (!required(kType, SIZE_MAX, &s)) return false;
    size_t t = 0;
    while (t < kBillingEventTypeCount && kTypeNames[t] != s) ++t;
    if (t == kBillingEventTypeCount) {
      *f = Fail("type",
                " must be one of subscription_started, trial_converted, "
                "subscription_cancelled, payment_succeeded, payment_failed");
      return false;
    }
    e->type = static_cast<BillingEventType>(t);
  }
  // occurred_at
  {
    std::string s;
    if (!required(kOccurredAt, SIZE_MAX, &s)) return false;
    const std::optional<int64_t> ts = ParseRfc3339Micros(s);
    if (!ts) {
      *f = Fail("occurred_at",
                " must be an RFC 3339 date-time with a time zone, e.g. 2026-11-25T10:00:00.000Z");
      return false;
    }
    int64_t latest = 0;
    if (__builtin_add_overflow(options.now_us, options.max_future_us, &latest)) latest = INT64_MAX;
    if (*ts > latest) {
      *f = Fail("occurred_at", " is more than " +
                                   std::to_string(options.max_future_us / kMicrosPerHour) +
                                   "h in the future");
      return false;
    }
    if (*ts < options.min_occurred_us) {
      *f = Fail("occurred_at", " is before " + FormatRfc3339Micros(options.min_occurred_us));
      return false;
    }
    e->occurred_us = *ts;
  }
  if (!required(kCustomer, kMaxCustomerChars, &e->customer) ||
      !required(kSubscriptionId, kMaxSubscriptionIdChars, &e->subscription_id)) {
    return false;
  }

  switch (e->type) {
    case BillingEventType::kSubscriptionStarted: {
      if (!required(kConnector, kMaxConnectorChars, &e->connector) ||
          !required(kPlan, kMaxPlanChars, &e->plan)) {
        return false;
      }
      const dom::element* t = value(kTrial);
      if (t == nullptr || t->is_null()) {
        *f = Fail("trial", " is required");
        return false;
      }
      if (t->get_bool().get(e->trial) != simdjson::SUCCESS) {
        *f = Fail("trial", " must be true or false");
        return false;
      }
      if (!GetMoney(value(kPrice), "price", &e->money, f)) return false;
      break;
    }
    case BillingEventType::kTrialConverted:
      break;
    case BillingEventType::kSubscriptionCancelled: {
      std::string_view s;
      if (!GetString(value(kReason), "reason", kMaxCancelReasonChars, &s, f)) return false;
      e->reason.assign(s.data(), s.size());
      break;
    }
    case BillingEventType::kPaymentSucceeded:
    case BillingEventType::kPaymentFailed:
      if (!required(kPaymentId, kMaxPaymentIdChars, &e->payment_id) ||
          !required(kConnector, kMaxConnectorChars, &e->connector) ||
          !GetMoney(value(kAmount), "amount", &e->money, f)) {
        return false;
      }
      if (e->type == BillingEventType::kPaymentFailed &&
          !required(kReason, kMaxFailureReasonChars, &e->reason)) {
        return false;
      }
      break;
  }

  if (ContainsNul(item)) {
    f->message = "event must not contain U+0000 in any string (PostgreSQL cannot store it)";
    return false;
  }
  e->body = simdjson::minify(item);
  return true;
}

RequestError BodyError(int status, std::string message) {
  return RequestError{status, std::move(message), std::string()};
}

std::optional<RequestError> SyntaxError(simdjson::error_code err) {
  switch (err) {
    case simdjson::SUCCESS:
      return std::nullopt;
    case simdjson::UTF8_ERROR:
      return BodyError(400, "body is not valid UTF-8");
    case simdjson::EMPTY:
      return BodyError(400, "body is empty");
    case simdjson::DEPTH_ERROR:
      return BodyError(400, "body is nested too deeply");
    case simdjson::NUMBER_ERROR:
      return BodyError(400, "body is not valid JSON: malformed or out-of-range number");
    case simdjson::CAPACITY:
    case simdjson::MEMALLOC:
      return BodyError(413, "body is too large");
    default:
      return BodyError(400, "body is not valid JSON");
  }
}

// --- Platform tokens -----------------------------------------------------

// Active platform tokens by SHA-256, re-read from PostgreSQL when older than
// the refresh interval, and at once (at most every 200 ms) on a miss, so a
// token created a moment ago works and a revoked one stops within the
// interval. While PostgreSQL is unreachable the last snapshot stays in use.
class PlatformTokens {
 public:
  enum class Verdict { kValid, kInvalid, kUnavailable };

  PlatformTokens(PgPool* pool, std::chrono::milliseconds refresh,
                 std::function<void(const std::string&)> count_failure)
      : pool_(pool), refresh_(refresh), count_failure_(std::move(count_failure)) {}

  Verdict Check(std::string_view token) {
    const std::string hash = Sha256(token);
    const auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!loaded_ || now - loaded_at_ >= refresh_) Reload(now);
      if (hashes_.count(hash)) return Verdict::kValid;
      if (now - last_miss_reload_ >= std::chrono::milliseconds(200)) {
        last_miss_reload_ = now;
        Reload(now);
        if (hashes_.count(hash)) return Verdict::kValid;
      }
      return loaded_ ? Verdict::kInvalid : Verdict::kUnavailable;
    }
  }

 private:
  // Called with mu_ held. Billing requests are rare: holding the lock during
  // the query keeps one reload per interval without a background thread.
  void Reload(std::chrono::steady_clock::time_point now) {
    if (attempted_ && now - attempted_at_ < std::chrono::milliseconds(100)) return;
    attempted_ = true;
    attempted_at_ = now;
    std::unordered_map<std::string, std::string> next;
    try {
      PgPool::Lease conn = pool_->Acquire();
      try {
        pqxx::read_transaction txn(*conn);
        for (const auto& row :
             txn.exec("SELECT token_hash, name FROM platform_tokens WHERE revoked_at IS NULL")) {
          next.emplace(pqxx::binarystring(row[0]).str(), row[1].as<std::string>());
        }
        txn.commit();
      } catch (...) {
        conn.MarkBroken();
        throw;
      }
    } catch (const std::exception&) {
      if (count_failure_) count_failure_("billing_token_refresh");
      return;
    }
    hashes_ = std::move(next);
    loaded_ = true;
    loaded_at_ = now;
  }

  PgPool* const pool_;
  const std::chrono::milliseconds refresh_;
  const std::function<void(const std::string&)> count_failure_;
  std::mutex mu_;                                        // guards everything below
  std::unordered_map<std::string, std::string> hashes_;  // sha256 -> name
  bool loaded_ = false;
  bool attempted_ = false;
  std::chrono::steady_clock::time_point loaded_at_{};
  std::chrono::steady_clock::time_point attempted_at_{};
  std::chrono::steady_clock::time_point last_miss_reload_{};
};

// --- Metrics -------------------------------------------------------------

// What applying one event changed; recorded on /metrics after COMMIT.
struct Effect {
  BillingEventType type = BillingEventType::kSubscriptionStarted;
  bool duplicate = false;
  bool new_subscription = false;
  bool trial = false;
  bool newly_converted = false;
  bool newly_cancelled = false;
  bool new_payment = false;
  Money money;
  std::string reason;
};

constexpr size_t kMaxCurrencyLabels = 50;

class BillingMetrics {
 public:
  explicit BillingMetrics(prometheus::Registry& registry)
      : payments_(prometheus::BuildCounter()
                      .Name("bpmc_payments_total")
                      .Help("Payments newly recorded, by status and failure reason category "
                            "(\"none\" for succeeded; insufficient_funds, card_declined, "
                            "expired_card, fraud_suspected, processing_error or other).")
                      .Register(registry)),
        amounts_(prometheus::BuildCounter()
                     .Name("bpmc_payment_amount_minor_total")
                     .Help("Sum of newly recorded payment amounts in minor units, by status and "
                           "currency (\"other\" past 50 currencies).")
                     .Register(registry)),
        events_(prometheus::BuildCounter()
                    .Name("bpmc_billing_events_total")
                    .Help("Billing events by type and result: applied, duplicate (event_id seen "
                          "before), rejected (one per refused request; type \"unknown\" when the "
                          "body could not be read).")
                    .Register(registry)),
        started_(prometheus::BuildCounter()
                     .Name("bpmc_subscriptions_started_total")
                     .Help("New subscriptions, by whether they started as a trial.")
                     .Register(registry)),
        cancelled_(prometheus::BuildCounter()
                       .Name("bpmc_subscriptions_cancelled_total")
                       .Help("Subscriptions cancelled (first cancellation of each).")
                       .Register(registry)
                       .Add({})),
        converted_(prometheus::BuildCounter()
                       .Name("bpmc_trials_converted_total")
                       .Help("Trial subscriptions converted to paid (first conversion of each).")
                       .Register(registry)
                       .Add({})) {
    for (size_t t = 0; t < kBillingEventTypeCount; ++t) {
      const std::string type(kTypeNames[t]);
      applied_[t] = &events_.Add({{"type", type}, {"result", "applied"}});
      duplicate_[t] = &events_.Add({{"type", type}, {"result", "duplicate"}});
      rejected_[t] = &events_.Add({{"type", type}, {"result", "rejected"}});
    }
    rejected_unknown_ = &events_.Add({{"type", "unknown"}, {"result", "rejected"}});
    started_trial_ = &started_.Add({{"trial", "true"}});
    started_paid_ = &started_.Add({{"trial", "false"}});
    succeeded_ = &payments_.Add({{"status", "succeeded"}, {"reason", "none"}});
    // The reason is free text (it may name the card holder): only its category
    // is a label, so the label set is closed and visible at 0 from the start.
    for (std::string_view category : kPaymentFailureCategories) {
      failed_.emplace(std::string(category),
                      &payments_.Add({{"status", "failed"}, {"reason", std::string(category)}}));
    }
  }

  void Rejected(std::optional<BillingEventType> type) {
    (type ? rejected_[static_cast<size_t>(*type)] : rejected_unknown_)->Increment();
  }

  void Record(const std::vector<Effect>& effects) {
    for (const Effect& e : effects) {
      const auto t = static_cast<size_t>(e.type);
      (e.duplicate ? duplicate_[t] : applied_[t])->Increment();
      if (e.new_subscription) (e.trial ? started_trial_ : started_paid_)->Increment();
      if (e.newly_converted) converted_.Increment();
      if (e.newly_cancelled) cancelled_.Increment();
      if (e.new_payment) {
        const bool ok = e.type == BillingEventType::kPaymentSucceeded;
        const char* status = ok ? "succeeded" : "failed";
        std::lock_guard<std::mutex> lock(mu_);
        (ok ? succeeded_ : failed_.at(std::string(PaymentFailureCategory(e.reason))))->Increment();
        Capped(amounts_, amounts_by_key_, kMaxCurrencyLabels * 2, "status", status, "currency",
               e.money.currency)
            ->Increment(static_cast<double>(e.money.amount_minor));
      }
    }
  }

 private:
  // The counter for (k1=v1, k2=v2); past `cap` distinct entries v2 becomes
  // "other". Called with mu_ held.
  static prometheus::Counter* Capped(prometheus::Family<prometheus::Counter>& family,
                                     std::unordered_map<std::string, prometheus::Counter*>& cache,
                                     size_t cap, const std::string& k1, const std::string& v1,
                                     const std::string& k2, const std::string& v2) {
    const std::string key = v1 + '\0' + v2;
    if (auto it = cache.find(key); it != cache.end()) return it->second;
    const bool overflow = cache.size() >= cap;
    prometheus::Counter* c = &family.Add({{k1, v1}, {k2, overflow ? "other" : v2}});
    if (!overflow) cache.emplace(key, c);
    return c;
  }

  prometheus::Family<prometheus::Counter>& payments_;
  prometheus::Family<prometheus::Counter>& amounts_;
  prometheus::Family<prometheus::Counter>& events_;
  prometheus::Family<prometheus::Counter>& started_;
  prometheus::Counter& cancelled_;
  prometheus::Counter& converted_;
  prometheus::Counter* applied_[kBillingEventTypeCount];
  prometheus::Counter* duplicate_[kBillingEventTypeCount];
  prometheus::Counter* rejected_[kBillingEventTypeCount];
  prometheus::Counter* rejected_unknown_;
  prometheus::Counter* started_trial_;
  prometheus::Counter* started_paid_;
  prometheus::Counter* succeeded_;
  std::mutex mu_;                                                         // guards the caches
  std::unordered_map<std::string, prometheus::Counter*> failed_;          // by category, fixed
  std::unordered_map<std::string, prometheus::Counter*> amounts_by_key_;  // status \0 currency
};

// --- The route -------------------------------------------------------------

constexpr const char* kPath = "/v1/billing/events";

class BillingRoute final : public http::Endpoint {
 public:
  explicit BillingRoute(BillingRouteOptions options)
      : options_(std::move(options)),
        tokens_(options_.pool, std::chrono::milliseconds(options_.token_refresh_ms),
                options_.count_failure),
        metrics_(*options_.registry) {}

  bool Matches(const std::string& path) const override { return path == kPath; }
  std::string Name() const override { return "billing"; }

  // The platform token, before the body is read (the HTTP layer's step 3).
  http::AuthResult Authenticate(const http::Request& req) override {
    const std::string auth = req.Header("authorization");
    const std::string_view token = identity::BearerToken(auth);
    if (token.empty()) return http::AuthResult::Unauthorized("missing bearer platform token");
    switch (tokens_.Check(token)) {
      case PlatformTokens::Verdict::kValid:
        return http::AuthResult::Ok("platform");
      case PlatformTokens::Verdict::kUnavailable:
        return http::AuthResult::Unavailable("cannot verify platform tokens now; retry later");
      case PlatformTokens::Verdict::kInvalid:
        break;
    }
    return http::AuthResult::Unauthorized("unknown or revoked platform token",
                                          "Bearer error=\"invalid_token\"");
  }
  // 415 and 413 from the HTTP layer are rejected billing requests too.
  void OnRefusal(const http::Request&, const http::Response& response) override {
    if (response.status == 415 || response.status == 413) metrics_.Rejected(std::nullopt);
  }

  http::Response Handle(const http::Request& req) override {
    try {
      return Serve(req);
    } catch (const std::exception&) {  // std::bad_alloc; nothing else is expected
      CountFailure("billing_internal");
      return http::Error(500, "internal error", "");
    }
  }

 private:
  // The HTTP layer checked the method, the platform token (Authenticate), the
  // Content-Type and the body limit before this runs (http/route.h).
  http::Response Serve(const http::Request& req) {
    // 400, 413
    BillingParseOptions popts;
    popts.now_us = options_.clock->NowMicros();
    auto parsed = ParseBillingEvents(req.body, popts);
    if (auto* err = std::get_if<RequestError>(&parsed)) {
      metrics_.Rejected(std::nullopt);
      return http::Error(err->http_status, err->message, err->field);
    }
    return Apply(std::get<BillingRequest>(parsed));
  }

  void CountFailure(const std::string& reason) {
    if (options_.count_failure) options_.count_failure(reason);
  }

  // Applies every event in one transaction: all or nothing. Deadlocks
  // between concurrent batches are retried.
  http::Response Apply(const BillingRequest& request) {
    constexpr int kAttempts = 4;
    for (int attempt = 1;; ++attempt) {
      std::optional<PgPool::Lease> lease;
      try {
        lease.emplace(options_.pool->Acquire());
      } catch (const std::exception&) {
        CountFailure("billing_store");
        return Unavailable();
      }
      try {
        std::vector<Effect> effects;
        effects.reserve(request.events.size());
        pqxx::work txn(**lease);
        for (size_t i = 0; i < request.events.size(); ++i) {
          effects.emplace_back();
          if (std::optional<Failure> f = ApplyOne(txn, request.events[i], &effects.back())) {
            metrics_.Rejected(request.events[i].type);
            return http::Error(f->http_status, f->message,
                               FieldPath(request.batch ? static_cast<int64_t>(i) : -1, f->field));
          }
        }
        txn.commit();
        metrics_.Record(effects);
        return Success(request, effects);
      } catch (const pqxx::in_doubt_error&) {
        lease->MarkBroken();
        CountFailure("billing_commit_unknown");
        return Unavailable();
      } catch (const pqxx::broken_connection&) {
        lease->MarkBroken();
        CountFailure("billing_store");
        return Unavailable();
      } catch (const pqxx::sql_error& e) {
        const std::string& state = e.sqlstate();
        if ((state == "40P01" || state == "40001") && attempt < kAttempts) {
          CountFailure("billing_retry");
          continue;
        }
        if (state == "23503") {  // a connector or subscription vanished meanwhile
          metrics_.Rejected(std::nullopt);
          return http::Error(422, "unknown connector or subscription", "");
        }
        lease->MarkBroken();
        CountFailure("billing_rejected");
        return http::Error(500, "the database refused the billing events", "");
      } catch (const std::exception&) {
        lease->MarkBroken();
        CountFailure("billing_store");
        return Unavailable();
      }
    }
  }

  static http::Response Unavailable() {
    http::Response r = http::Error(503, "cannot store billing events now; retry later", "");
    r.headers.emplace_back("Retry-After", "5");
    return r;
  }

  static http::Response Success(const BillingRequest& request, const std::vector<Effect>& effects) {
    size_t applied = 0;
    for (const Effect& e : effects) applied += !e.duplicate;
    http::Response r;
    r.status = applied > 0 ? 201 : 200;
    if (!request.batch) {
      r.body = "{\"event_id\":\"" + request.events[0].event_id + "\",\"result\":\"" +
               (applied ? "applied" : "duplicate") + "\"}";
      return r;
    }
    r.body = "{\"applied\":" + std::to_string(applied) +
             ",\"duplicates\":" + std::to_string(effects.size() - applied) + ",\"results\":[";
    for (size_t i = 0; i < effects.size(); ++i) {
      r.body += i ? "," : "";
      r.body += effects[i].duplicate ? "\"duplicate\"" : "\"applied\"";
    }
    r.body += "]}";
    return r;
  }

  static Failure Reject(int status, std::string field, std::string message) {
    return Failure{status, std::move(message), std::move(field)};
  }

  // Applies one event inside `txn`; a Failure (409/422) means the whole
  // request must be rolled back. Throws pqxx errors.
  static std::optional<Failure> ApplyOne(pqxx::work& txn, const BillingEvent& ev, Effect* out) {
    out->type = ev.type;
    out->money = ev.money;
    out->reason = ev.reason;
    out->trial = ev.trial;
    const std::string occurred = FormatRfc3339Micros(ev.occurred_us);
    const pqxx::result logged = txn.exec_params(
        "INSERT INTO billing_events (event_id, type, occurred_at, body) "
        "VALUES ($1::uuid, $2, $3::timestamptz, $4::jsonb) "
        "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
        ev.event_id, std::string(BillingEventTypeName(ev.type)), occurred, ev.body);
    if (logged.empty()) {
      out->duplicate = true;
      return std::nullopt;
    }
    const bool is_payment = ev.type == BillingEventType::kPaymentSucceeded ||
                            ev.type == BillingEventType::kPaymentFailed;
    if (ev.type == BillingEventType::kSubscriptionStarted || is_payment) {
      if (txn.exec_params("SELECT 1 FROM connectors WHERE id = $1", ev.connector).empty())
        return Reject(422, "connector", "unknown connector '" + ev.connector + "'");
    }

    if (ev.type == BillingEventType::kSubscriptionStarted) {
      // A repeated start (new event id) corrects plan, trial, price and
      // started_at; customer and connector of a subscription never change.
      const pqxx::result r = txn.exec_params(
          "INSERT INTO subscriptions (id, customer_id, connector_id, plan, trial, price_minor, "
          "currency, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::timestamptz) "
          "ON CONFLICT (id) DO UPDATE SET plan = EXCLUDED.plan, trial = EXCLUDED.trial, "
          "price_minor = EXCLUDED.price_minor, currency = EXCLUDED.currency, "
          "started_at = EXCLUDED.started_at, updated_at = now() "
          "WHERE subscriptions.customer_id = EXCLUDED.customer_id "
          "AND subscriptions.connector_id = EXCLUDED.connector_id "
          "RETURNING (xmax = 0)",
          ev.subscription_id, ev.customer, ev.connector, ev.plan, ev.trial, ev.money.amount_minor,
          ev.money.currency, occurred);
      if (r.empty())
        return Reject(409, "subscription_id",
                      "subscription '" + ev.subscription_id +
                          "' already exists for another customer or connector");
      out->new_subscription = r[0][0].as<bool>();
      return std::nullopt;
    }

    // Every other event refers to a known subscription of the same customer.
    const pqxx::result sub = txn.exec_params(
        "SELECT customer_id, connector_id, trial, trial_converted_at IS NULL, "
        "cancelled_at IS NULL FROM subscriptions WHERE id = $1 FOR UPDATE",
        ev.subscription_id);
    if (sub.empty())
      return Reject(422, "subscription_id",
                    "unknown subscription '" + ev.subscription_id +
                        "' (send its subscription_started first)");
    if (sub[0][0].as<std::string>() != ev.customer)
      return Reject(422, "customer",
                    "customer does not match subscription '" + ev.subscription_id + "'");

    switch (ev.type) {
      case BillingEventType::kTrialConverted:
        if (!sub[0][2].as<bool>())
          return Reject(422, "subscription_id",
                        "subscription '" + ev.subscription_id + "' is not a trial");
        txn.exec_params(
            "UPDATE subscriptions SET trial_converted_at = LEAST(trial_converted_at, "
            "$2::timestamptz), updated_at = now() WHERE id = $1",
            ev.subscription_id, occurred);
        out->newly_converted = sub[0][3].as<bool>();
        return std::nullopt;
      case BillingEventType::kSubscriptionCancelled:
        // The earliest cancellation wins, with its reason.
        txn.exec_params(
            "UPDATE subscriptions SET cancel_reason = CASE WHEN cancelled_at IS NULL OR "
            "$2::timestamptz < cancelled_at THEN NULLIF($3, '') ELSE cancel_reason END, "
            "cancelled_at = LEAST(cancelled_at, $2::timestamptz), updated_at = now() "
            "WHERE id = $1",
            ev.subscription_id, occurred, ev.reason);
        out->newly_cancelled = sub[0][4].as<bool>();
        return std::nullopt;
      default:
        break;
    }

    // Payments.
    if (sub[0][1].as<std::string>() != ev.connector)
      return Reject(422, "connector",
                    "connector does not match subscription '" + ev.subscription_id +
                        "' (connector '" + sub[0][1].as<std::string>() + "')");
    const bool failed = ev.type == BillingEventType::kPaymentFailed;
    const pqxx::result paid = txn.exec_params(
        "INSERT INTO payments (id, subscription_id, customer_id, connector_id, amount_minor, "
        "currency, status, failure_reason, occurred_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, NULLIF($8, ''), $9::timestamptz) "
        "ON CONFLICT (id) DO NOTHING RETURNING id",
        ev.payment_id, ev.subscription_id, ev.customer, ev.connector, ev.money.amount_minor,
        ev.money.currency, std::string(failed ? "failed" : "succeeded"),
        failed ? ev.reason : std::string(), occurred);
    if (paid.empty())
      return Reject(409, "payment_id",
                    "payment '" + ev.payment_id + "' was already recorded by another event");
    out->new_payment = true;
    return std::nullopt;
  }

  const BillingRouteOptions options_;
  PlatformTokens tokens_;
  BillingMetrics metrics_;
};

}  // namespace

std::string_view BillingEventTypeName(BillingEventType type) {
  return kTypeNames[static_cast<size_t>(type)];
}

std::variant<BillingRequest, RequestError> ParseBillingEvents(std::string_view body,
                                                              const BillingParseOptions& options) {
  try {
    // ContainsNul walks the document recursively: bound its depth first. Each
    // event may nest kMaxJsonDepth levels, also inside a batch's array.
    const size_t first = body.find_first_not_of(" \t\r\n");
    const bool batch = first != std::string_view::npos && body[first] == '[';
    if (auto path = FindTooDeep(body, kMaxJsonDepth + (batch ? 1 : 0)))
      return RequestError{400,
                          "body nests JSON deeper than " + std::to_string(kMaxJsonDepth) +
                              " levels at " + (path->empty() ? std::string("the top") : *path),
                          *path};
    dom::parser parser;
    dom::element root;
    if (auto err = SyntaxError(parser.parse(body.data(), body.size(), true).get(root)))
      return std::move(*err);
    BillingRequest out;
    Failure f;
    if (root.type() == dom::element_type::OBJECT) {
      out.events.emplace_back();
      if (!ParseEvent(root, options, &out.events.back(), &f))
        return RequestError{f.http_status, std::move(f.message), std::move(f.field)};
      return out;
    }
    dom::array items;
    if (root.get_array().get(items) != simdjson::SUCCESS)
      return BodyError(400, "body must be a JSON object (one event) or a JSON array of events");
    out.batch = true;
    size_t count = 0;
    for (dom::element item : items) {
      (void)item;
      if (++count > options.max_batch_events) break;
    }
    if (count == 0) return BodyError(400, "batch is empty");
    if (count > options.max_batch_events)
      return BodyError(
          413, "batch has more than " + std::to_string(options.max_batch_events) + " events");
    out.events.reserve(count);
    int64_t index = 0;
    for (dom::element item : items) {
      out.events.emplace_back();
      if (!ParseEvent(item, options, &out.events.back(), &f))
        return RequestError{f.http_status, std::move(f.message), FieldPath(index, f.field)};
      ++index;
    }
    return out;
  } catch (const std::exception&) {  // std::bad_alloc
    return BodyError(413, "body is too large");
  }
}

std::unique_ptr<http::Endpoint> NewBillingRoute(BillingRouteOptions options) {
  return std::make_unique<BillingRoute>(std::move(options));
}

}  // namespace bpmc::billing
