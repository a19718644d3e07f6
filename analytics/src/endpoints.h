#pragma once
// Private to bpmc::analytics: the answers of the analytics endpoints, one
// function each (endpoint_*.cpp), called by the route (analytics_route.cpp)
// once the request is admitted and its Scope read. Each reads through
// `q` (concurrently where it can, all in the request's snapshot) and throws
// on a database failure. docs/ANALYTICS.md describes every field.

#include <string>

#include "analytics/access.h"
#include "answer.h"
#include "fanout.h"
#include "query_scope.h"

namespace bpmc::analytics::analytics_internal {

// overview: active users and subscriptions, operations, error rate, a row per
// connector and the series. The revenue in `currency` (and by currency) only
// `with_revenue`; otherwise "revenue" is null (financial data is not for the
// role).
Answer Overview(Fanout& q, const Scope& s, bool with_revenue, const std::string& currency);

// connectors (`only` empty): every connector in scope; connectors/{id}
// (`only` = the id, also the scope's connector): that one, with its series
// and the p95 of each operation.
Answer ConnectorsList(Fanout& q, const Scope& s, const std::string& only);

// users: active and new users, trial conversion, churn, the activity
// distribution and the most active accounts. `pseudonyms` non-null: customer
// and Make account ids shown as its pseudonyms.
Answer Users(Fanout& q, const Scope& s, const AccessControl* pseudonyms);

// financial: revenue (in `currency` and by currency), its series and split by
// connector, ARPU, LTV, churn and failed payments by reason category.
Answer Financial(Fanout& q, const Scope& s, const std::string& currency);

// errors: totals, series, by connector and type, the ten most frequent
// groups and the trend against the previous period. `hide_messages`:
// pseudonymised views get no last_message (free text that may name
// customers and Make accounts in clear).
Answer Errors(Fanout& q, const Scope& s, bool hide_messages);

}  // namespace bpmc::analytics::analytics_internal
