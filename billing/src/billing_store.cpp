// ApplyEvent: the SQL of one billing event, inside the route's transaction
// (billing_store.h). billing/migrations/ has the tables.

#include "billing_store.h"

#include <string>
#include <utility>
#include <vector>

#include "common/time_format.h"

namespace bpmc::billing {
namespace {

Failure Reject(int status, std::string field, std::string message) {
  return Failure{status, std::move(message), std::move(field)};
}

// subscription_started. A repeated start (new event id) corrects plan, trial,
// price and started_at; customer and connector of a subscription never change.
std::optional<Failure> ApplyStarted(pqxx::work& txn, const BillingEvent& ev,
                                    const std::string& occurred, Effect* out) {
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

// payment_succeeded / payment_failed; `sub` is the subscription's row
// (customer_id, connector_id, ...), locked.
std::optional<Failure> ApplyPayment(pqxx::work& txn, const BillingEvent& ev,
                                    const std::string& occurred, const pqxx::row& sub,
                                    Effect* out) {
  if (sub[1].as<std::string>() != ev.connector)
    return Reject(422, "connector",
                  "connector does not match subscription '" + ev.subscription_id +
                      "' (connector '" + sub[1].as<std::string>() + "')");
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

// Every event but subscription_started refers to a known subscription of the
// same customer.
std::optional<Failure> ApplyToSubscription(pqxx::work& txn, const BillingEvent& ev,
                                           const std::string& occurred, Effect* out) {
  const pqxx::result sub = txn.exec_params(
      "SELECT customer_id, connector_id, trial, trial_converted_at IS NULL, "
      "cancelled_at IS NULL FROM subscriptions WHERE id = $1 FOR UPDATE",
      ev.subscription_id);
  if (sub.empty())
    return Reject(
        422, "subscription_id",
        "unknown subscription '" + ev.subscription_id + "' (send its subscription_started first)");
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
      return ApplyPayment(txn, ev, occurred, sub[0], out);
  }
}

}  // namespace

std::optional<Failure> ApplyEvent(pqxx::work& txn, const BillingEvent& ev, Effect* out) {
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
  const bool is_payment =
      ev.type == BillingEventType::kPaymentSucceeded || ev.type == BillingEventType::kPaymentFailed;
  if (ev.type == BillingEventType::kSubscriptionStarted || is_payment) {
    if (txn.exec_params("SELECT 1 FROM connectors WHERE id = $1", ev.connector).empty())
      return Reject(422, "connector", "unknown connector '" + ev.connector + "'");
  }
  if (ev.type == BillingEventType::kSubscriptionStarted)
    return ApplyStarted(txn, ev, occurred, out);
  return ApplyToSubscription(txn, ev, occurred, out);
}

std::optional<RequestError> ApplyBillingEvents(pqxx::work& txn,
                                               const std::vector<BillingEvent>& events) {
  for (size_t i = 0; i < events.size(); ++i) {
    Effect effect;
    if (std::optional<Failure> f = ApplyEvent(txn, events[i], &effect))
      return RequestError{f->http_status, f->message, FieldPath(static_cast<int64_t>(i), f->field)};
  }
  return std::nullopt;
}

}  // namespace bpmc::billing
