#pragma once
// How one billing event changes the billing tables (billing_events,
// subscriptions, payments) inside the request's transaction. Private to the
// billing library; the route (billing_route.cpp) owns the transaction.

#include <optional>
#include <pqxx/pqxx>

#include "billing/billing.h"
#include "billing_metrics.h"
#include "event_failure.h"

namespace bpmc::billing {

// Applies `ev` inside `txn` and describes what changed in *out. An event_id
// seen before is a duplicate and changes nothing. A Failure (409/422, its
// field relative to the event) means the whole request must be rolled back.
// Throws pqxx errors.
std::optional<Failure> ApplyEvent(pqxx::work& txn, const BillingEvent& ev, Effect* out);

}  // namespace bpmc::billing
