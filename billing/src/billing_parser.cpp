// The parser of POST /v1/billing/events bodies (ParseBillingEvents): pure, no
// database. docs/BILLING.md is the user's view.
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

#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <utility>

#include "billing/billing.h"
#include "common/ids.h"
#include "common/json_depth.h"
#include "common/time.h"
#include "common/time_format.h"
#include "event_failure.h"
#include "http/json_body.h"
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

// The known keys of one event object, each at most once.
using Fields = http::KnownKeys<kKeyCount>;

bool GetRequiredKey(const Fields& fields, int key, size_t max_chars, std::string* out, Failure* f) {
  return GetRequiredString(fields.Get(key), kKeyNames[key], max_chars, out, f);
}

// event_id: a UUID, kept in canonical lowercase form.
bool ParseEventId(const Fields& fields, std::string* out, Failure* f) {
  std::string s;
  if (!GetRequiredKey(fields, kEventId, SIZE_MAX, &s, f)) return false;
  std::optional<std::string> id = CanonicalUuid(s);
  if (!id) {
    *f = Fail("event_id", " must be a UUID (8-4-4-4-12 hexadecimal digits)");
    return false;
  }
  *out = std::move(*id);
  return true;
}

// type: one of kTypeNames, exactly.
bool ParseType(const Fields& fields, BillingEventType* out, Failure* f) {
  std::string s;
  if (!GetRequiredKey(fields, kType, SIZE_MAX, &s, f)) return false;
  size_t t = 0;
  while (t < kBillingEventTypeCount && kTypeNames[t] != s) ++t;
  if (t == kBillingEventTypeCount) {
    *f = Fail("type",
              " must be one of subscription_started, trial_converted, "
              "subscription_cancelled, payment_succeeded, payment_failed");
    return false;
  }
  *out = static_cast<BillingEventType>(t);
  return true;
}

// occurred_at: RFC 3339, within [min_occurred_us, now_us + max_future_us].
bool ParseOccurredAt(const Fields& fields, const BillingParseOptions& options, int64_t* out,
                     Failure* f) {
  std::string s;
  if (!GetRequiredKey(fields, kOccurredAt, SIZE_MAX, &s, f)) return false;
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
  *out = *ts;
  return true;
}

// subscription_started: connector, plan, trial, price.
bool ParseStarted(const Fields& fields, BillingEvent* e, Failure* f) {
  if (!GetRequiredKey(fields, kConnector, kMaxConnectorChars, &e->connector, f) ||
      !GetRequiredKey(fields, kPlan, kMaxPlanChars, &e->plan, f)) {
    return false;
  }
  const dom::element* t = fields.Get(kTrial);
  if (t == nullptr || t->is_null()) {
    *f = Fail("trial", " is required");
    return false;
  }
  if (t->get_bool().get(e->trial) != simdjson::SUCCESS) {
    *f = Fail("trial", " must be true or false");
    return false;
  }
  return GetMoney(fields.Get(kPrice), "price", &e->money, f);
}

// The keys of e->type; keys a type does not use are ignored.
bool ParseTypeFields(const Fields& fields, BillingEvent* e, Failure* f) {
  switch (e->type) {
    case BillingEventType::kSubscriptionStarted:
      return ParseStarted(fields, e, f);
    case BillingEventType::kTrialConverted:
      return true;
    case BillingEventType::kSubscriptionCancelled: {
      std::string_view s;
      if (!GetString(fields.Get(kReason), "reason", kMaxCancelReasonChars, &s, f)) return false;
      e->reason.assign(s.data(), s.size());
      return true;
    }
    case BillingEventType::kPaymentSucceeded:
    case BillingEventType::kPaymentFailed:
      if (!GetRequiredKey(fields, kPaymentId, kMaxPaymentIdChars, &e->payment_id, f) ||
          !GetRequiredKey(fields, kConnector, kMaxConnectorChars, &e->connector, f) ||
          !GetMoney(fields.Get(kAmount), "amount", &e->money, f)) {
        return false;
      }
      return e->type != BillingEventType::kPaymentFailed ||
             GetRequiredKey(fields, kReason, kMaxFailureReasonChars, &e->reason, f);
  }
  return true;
}

// One event of the body; keys are checked in the order of the rules above.
bool ParseEvent(dom::element item, const BillingParseOptions& options, BillingEvent* e,
                Failure* f) {
  dom::object obj;
  if (item.get_object().get(obj) != simdjson::SUCCESS) {
    f->message = "event must be a JSON object";
    return false;
  }
  Fields fields;
  if (const int duplicate = fields.Collect(obj, KeyOf); duplicate >= 0) {
    f->message = "duplicate key";
    f->field = std::string(kKeyNames[duplicate]);
    return false;
  }
  if (!ParseEventId(fields, &e->event_id, f) || !ParseType(fields, &e->type, f) ||
      !ParseOccurredAt(fields, options, &e->occurred_us, f) ||
      !GetRequiredKey(fields, kCustomer, kMaxCustomerChars, &e->customer, f) ||
      !GetRequiredKey(fields, kSubscriptionId, kMaxSubscriptionIdChars, &e->subscription_id, f) ||
      !ParseTypeFields(fields, e, f)) {
    return false;
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
    if (auto err = http::JsonSyntaxError(parser.parse(body.data(), body.size(), true).get(root)))
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

}  // namespace bpmc::billing
