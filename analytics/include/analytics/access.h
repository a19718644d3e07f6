#pragma once
// Access control, audit and pseudonymisation of the analytics API
// (docs/ACCESS.md). The pure parts (Decide, ScrubPii) are table-tested; the
// stateful part (AccessControl) authenticates bearer tokens against `users`,
// writes `audit_log` and makes pseudonyms.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <pqxx/connection>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/clock.h"
#include "common/pg_pool.h"
#include "common/pii.h"
#include "http/endpoint.h"
#include "identity/audit.h"
#include "identity/users.h"

namespace bpmc::analytics {

// Roles and people are identity's (identity/users.h).
using identity::ParseRole;
using identity::Principal;
using identity::Role;
using identity::RoleName;

// What a request asks for, in the terms of the policy.
enum class DataKind {
  kAggregate,      // platform-wide or per-connector numbers
  kCustomerUsage,  // usage/errors of one customer
  kFinancial,      // revenue, payments, ARPU, LTV
  kUserStats,      // the users endpoint (active/new users, conversion, churn)
  kAudit,          // the audit log
};
// "aggregate", "customer_usage", "financial", "user_stats", "audit".
const char* DataKindName(DataKind kind);

struct AccessRequest {
  DataKind kind = DataKind::kAggregate;
  std::string customer_id;  // "" when not customer-scoped
  bool has_reason = false;  // a non-blank X-Access-Reason header came with it
};

struct AccessDecision {
  bool allowed = false;
  std::string denial;  // why not, when !allowed (sent as the 403 message)
  // When allowed:
  bool pseudonymise_ids = false;  // show customer and Make account ids as Pseudonym()s
  bool scrub_pii = true;          // pass error messages through ScrubPii (always true)
  std::string forced_customer;    // non-empty: the query is limited to this customer
};

// The access policy. Pure; thread-safe.
//
//   kind \ role     admin  manager          support                     user
//   kAggregate      yes    yes, pseudonyms  yes, pseudonyms             yes, own customer only
//   kCustomerUsage  yes    NO               yes, one customer + reason  yes, own customer only
//   kFinancial      yes    yes, pseudonyms  NO                          yes, own customer only
//   kUserStats      yes    yes, pseudonyms  NO                          yes, own customer only
//   kAudit          yes    NO               NO                          NO
//
// Any request naming a customer (customer_id != "") is per-customer data
// whatever its kind: managers are refused, support needs a reason, a user
// may name only their own customer. Error messages are scrubbed for every
// role. See docs/ACCESS.md for the reasons behind each cell.
AccessDecision Decide(const Principal& principal, const AccessRequest& request);

// Denial messages of Decide that callers may want to recognise.
inline constexpr const char* kReasonRequired =
    "X-Access-Reason required: support must state why it reads a customer's data";

// Removes personal data from free text (error messages in reports, logs):
// e-mail addresses become "[email]", phone numbers "[phone]", and the user
// part of a URL ("https://user:password@host") becomes "[email]". Dates,
// times, ids, amounts and short numbers are kept. Pure; thread-safe; linear
// time. The exact rules are in docs/ACCESS.md. Lives in common/ (common/pii.h)
// so that the receiver, incidents and notices scrub their logs the same way.
using bpmc::ScrubPii;

// One row of audit_log. Text fields are made valid UTF-8 and truncated
// before they are stored, so no client input can make the insert fail.
struct AuditRecord {
  std::optional<Principal> principal;         // nullopt: no token, or an unknown one
  std::string method;                         // "GET"
  std::string endpoint;                       // request path, e.g. /api/v1/analytics/errors
  std::map<std::string, std::string> params;  // decoded query parameters
  std::string ip;                             // peer address of the connection
  std::string reason;                         // AccessReason(), "" when absent
  bool allowed = false;
  int status = 0;      // HTTP status sent
  std::string denial;  // why it was refused, when !allowed
};

// Why a request reads a customer's data: the X-Access-Reason header, or else the
// `reason` query parameter (a download link cannot send headers), trimmed.
std::string AccessReason(const http::Request& request);

// Authentication, audit and pseudonyms for the analytics routes. One
// instance per service, shared by the routes (it must outlive them).
// Thread-safe.
class AccessControl {
 public:
  // Successful lookups are cached this long, so disabling a user takes
  // effect within it (the contract is at most 2 s).
  static constexpr std::chrono::milliseconds kCacheTtl{1000};

  // `pool` and `metrics` (nullable) must outlive this object. An empty
  // `pseudonym_key` is allowed but then every pseudonymised view answers 503
  // (see Admit); the constructor logs a warning.
  //
  // Refusals (allowed == false) are recorded at most kRefusalsPerMinute per
  // client address (a burst of kRefusalBurst), so that nobody can flood the
  // log by being refused; the records left out are counted in
  // failures_total{reason="audit_refusal_dropped"}. Allowed requests are
  // always recorded. `clock` (not owned) paces that limit.
  static constexpr int kRefusalsPerMinute = identity::AuditLog::kRefusalsPerMinute;
  static constexpr int kRefusalBurst = identity::AuditLog::kRefusalBurst;
  // `registry` (nullable) gets bpmc_exporter_analytics_access_total;
  // `count_failure` (may be empty) counts the failures survived.
  AccessControl(PgPool& pool, std::string pseudonym_key, prometheus::Registry* registry = nullptr,
                std::function<void(const std::string&)> count_failure = {},
                const Clock* clock = &SystemClock::Get());
  ~AccessControl();

  // The enabled user whose token is `bearer_token`, or nullopt (unknown,
  // disabled, or the database could not be asked).
  std::optional<Principal> Authenticate(std::string_view bearer_token);

  // Writes one audit row synchronously (committed when it returns true).
  // False when it could not be written: the caller must then not serve data
  // (Finish answers 503). Failures are counted as failures_total{reason=
  // "audit_write"}.
  bool Audit(const AuditRecord& record);

  // Stable pseudonym of a customer id: "c_" + the first 16 hex digits of
  // HMAC-SHA256(key, id). Same key and id, same pseudonym; another key,
  // another one. Without a key: "c_unavailable" (never the id itself).
  std::string Pseudonym(std::string_view customer_id) const;
  // The same for a Make account id, in its own domain ("m_" + 16 hex of
  // HMAC-SHA256(key, "make_account:" + id)), so equal customer and account
  // ids do not get linkable pseudonyms.
  std::string AccountPseudonym(std::string_view make_account_id) const;
  bool has_pseudonym_key() const { return pseudonyms_.has_key(); }

  // The request-level helper the analytics routes use:
  //
  //   auto adm = access.Admit(req, DataKind::kCustomerUsage, query.customer);
  //   if (!adm.admitted) return adm.response;       // 401/403/503, already audited
  //   http::Response resp = Compute(adm.principal, adm.decision);  // 200 or 400
  //   return access.Finish(adm, std::move(resp));   // audited, or 503
  //
  // Admit reads the bearer token (401 when missing/unknown/disabled, 503 when
  // the database cannot be asked), the X-Access-Reason header and the query
  // parameters, applies Decide (403 with the denial), and refuses a
  // pseudonymised view when no key is configured (503). Every refusal is
  // audited here. Finish audits the allowed request with the response's
  // final status before it is sent, and turns it into 503 when the audit row
  // cannot be written: no data leaves unaudited.
  //
  // Admit (token lookup, refusal audit) and Finish borrow a connection of the
  // pool for one short statement: never call them while holding a Lease of
  // the same pool, or N such requests on a pool of N connections deadlock.
  struct Admission {
    bool admitted = false;
    http::Response response;  // when !admitted: what to send
    Principal principal;      // when admitted
    AccessDecision decision;  // when admitted
    AuditRecord record;       // prepared for Finish
  };
  Admission Admit(const http::Request& request, DataKind kind, std::string_view customer_id);
  http::Response Finish(const Admission& admission, http::Response response);

  // The HTTP layer's authenticate step for the analytics and audit routes:
  // Admit's token part alone (401 missing/unknown/disabled, 503 when the
  // database cannot be asked), audited and counted like Admit's refusals.
  http::AuthResult Check(const http::Request& request);
  // Audits a request the HTTP layer refused before the route ran (405, 413,
  // 429, ...); 401 and 503 were audited by Check already.
  void AuditRefusal(const http::Request& request, const http::Response& response);

  // Counts a failure the caller survived in failures_total{reason} (when the
  // service's metrics were given).
  void CountFailure(const std::string& reason);

  // The directory and the audit log behind Admit, for the console's logins.
  identity::UserDirectory& users() { return users_; }
  identity::AuditLog& audit_log() { return audit_log_; }

 private:
  // Admit's token step: true with out->principal, or false with out->response
  // (401/503) after auditing and counting the refusal.
  bool AdmitToken(const http::Request& request, Admission* out);
  void Count(const char* role, const char* result);

  const std::function<void(const std::string&)> count_failure_;
  prometheus::Family<prometheus::Counter>* access_family_ = nullptr;

  identity::UserDirectory users_;
  identity::Pseudonyms pseudonyms_;
  identity::AuditLog audit_log_;  // rows of Audit (identity/audit.h)
};

using identity::PruneAuditLog;  // identity/audit.h

// GET /api/v1/audit?from=&to=&user=&endpoint=&limit= : the audit log for admins,
// newest first, {"records":[...]}. from/to are RFC 3339 (to exclusive),
// user is an exact user name, endpoint an exact path or a prefix ending in `*`
// (AuditEndpointPattern), limit 1..1000 (default 100). Audited itself.
std::unique_ptr<http::Endpoint> NewAuditRoute(AccessControl* access, PgPool* pool);

// The SQL LIKE pattern (escape character `\`) of the audit route's `endpoint`
// value: the value with `\`, `%` and `_` escaped, and a final `*` turned into
// `%` (a prefix: "/api/v1/analytics/*" -> "/api/v1/analytics/%"); a `*`
// elsewhere is literal. nullopt when the value is empty or over 256 bytes. Pure.
std::optional<std::string> AuditEndpointPattern(std::string_view endpoint);
inline constexpr size_t kMaxAuditEndpoint = 256;

}  // namespace bpmc::analytics
