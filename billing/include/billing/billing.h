#pragma once

// Billing facts from the platform: POST /v1/billing/events (docs/BILLING.md).
// The parser is a pure function; the route applies events to the
// subscriptions / payments tables idempotently and counts them on /metrics.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <pqxx/connection>
#include <pqxx/transaction>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/clock.h"
#include "common/request_error.h"
#include "http/endpoint.h"

namespace prometheus {
class Registry;
}

namespace bpmc {
class PgPool;
}

namespace bpmc::billing {

enum class BillingEventType {
  kSubscriptionStarted,
  kTrialConverted,
  kSubscriptionCancelled,
  kPaymentSucceeded,
  kPaymentFailed,
};
inline constexpr size_t kBillingEventTypeCount = 5;

// "subscription_started", "trial_converted", ... (the JSON `type` values).
std::string_view BillingEventTypeName(BillingEventType type);

// Limits of the billing JSON (VARCHAR(n) counts characters).
inline constexpr size_t kMaxCustomerChars = 100;
inline constexpr size_t kMaxSubscriptionIdChars = 100;
inline constexpr size_t kMaxPlanChars = 100;
inline constexpr size_t kMaxPaymentIdChars = 100;
inline constexpr size_t kMaxFailureReasonChars = 100;
inline constexpr size_t kMaxCancelReasonChars = 1000;
inline constexpr size_t kMaxBillingBatchEvents = 1000;
inline constexpr size_t kMaxBillingBodyBytes = 4 * 1024 * 1024;
// 2000-01-01T00:00:00Z: older occurred_at values are refused as typos.
inline constexpr int64_t kMinBillingOccurredUs = 946'684'800LL * 1'000'000;

// An exact amount of money: integer minor units (kopecks, cents) and an
// ISO 4217 code (three uppercase ASCII letters). Value type.
struct Money {
  int64_t amount_minor = 0;  // >= 0
  std::string currency;

  bool operator==(const Money& o) const {
    return amount_minor == o.amount_minor && currency == o.currency;
  }
};

// One validated billing event. Fields that the type does not use are empty.
// Value type.
struct BillingEvent {
  std::string event_id;  // canonical lowercase UUID; the idempotency key
  BillingEventType type = BillingEventType::kSubscriptionStarted;
  int64_t occurred_us = 0;  // microseconds since the Unix epoch, UTC
  std::string customer;     // api_keys.owner
  std::string subscription_id;
  std::string connector;   // subscription_started, payments
  std::string plan;        // subscription_started
  bool trial = false;      // subscription_started
  Money money;             // `price` (subscription_started) or `amount` (payments)
  std::string payment_id;  // payments
  std::string reason;      // payment_failed (required); subscription_cancelled (optional)
  std::string body;        // the event object as received, minified (billing_events.body)

  bool operator==(const BillingEvent& o) const {
    return event_id == o.event_id && type == o.type && occurred_us == o.occurred_us &&
           customer == o.customer && subscription_id == o.subscription_id &&
           connector == o.connector && plan == o.plan && trial == o.trial && money == o.money &&
           payment_id == o.payment_id && reason == o.reason && body == o.body;
  }
};

struct BillingParseOptions {
  int64_t now_us = 0;                             // the server's current time
  int64_t max_future_us = 24LL * 3600 * 1000000;  // occurred_at at most this far ahead
  int64_t min_occurred_us = kMinBillingOccurredUs;
  size_t max_batch_events = kMaxBillingBatchEvents;
};

// A parsed request body: one event object, or an array of them.
struct BillingRequest {
  bool batch = false;  // the body was a JSON array
  std::vector<BillingEvent> events;
};

// Parses and validates the body of POST /v1/billing/events: a JSON object
// (one event) or a JSON array of 1..max_batch_events objects, all or nothing.
// Rules are listed in billing_parser.cpp and docs/BILLING.md. Errors are 400 with the
// offending key as `field` ("price.currency"; "[3].occurred_at" in a batch)
// or 413 for too many items. Pure and thread-safe; never throws.
std::variant<BillingRequest, RequestError> ParseBillingEvents(std::string_view body,
                                                              const BillingParseOptions& options);

// Applies parsed events inside `txn`, in order, exactly as POST /v1/billing/events
// does (an event_id applied before changes nothing), but counts nothing on
// /metrics: for tools that load billing facts straight into the database
// (`bpmc-exporter demo-data`). Returns the first refusal (409/422; `field` is
// "[i].<key>", i the event's index) -- the caller must then roll `txn` back --
// or nullopt when every event was applied or a duplicate. Throws pqxx errors.
std::optional<RequestError> ApplyBillingEvents(pqxx::work& txn,
                                               const std::vector<BillingEvent>& events);

struct BillingRouteOptions {
  PgPool* pool = nullptr;  // not owned; outlives the route
  std::shared_ptr<prometheus::Registry> registry;
  const Clock* clock = nullptr;  // not owned
  // Platform tokens are re-read from PostgreSQL at least this often, so a
  // revoked token is refused within it.
  int token_refresh_ms = 2000;
  // Counts a failure the route survived ("billing_store", ...), normally
  // IngestMetrics::CountFailure. May be empty.
  std::function<void(const std::string&)> count_failure;
};

// The http::Endpoint serving POST /v1/billing/events. Registers the bpmc_payments_*,
// bpmc_billing_* and bpmc_subscriptions_* families on `registry`.
// Thread-safe.
std::unique_ptr<http::Endpoint> NewBillingRoute(BillingRouteOptions options);

}  // namespace bpmc::billing
