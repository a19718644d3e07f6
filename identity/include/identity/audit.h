#pragma once
// The audit log of both binaries (docs/ACCESS.md "Audit"): one audit_log row per
// access to data — who, what, when, from where, why — written synchronously
// before the answer leaves. The first piece of the identity library (issue 13:
// users, roles, tokens and audit for both binaries); audit_log's DDL is still in
// exporter/migrations (0004, 0010).

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <pqxx/connection>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/clock.h"
#include "common/pg_pool.h"
#include "common/token_bucket.h"

namespace bpmc::identity {

// Who made a request, as recorded (never a secret).
struct AuditActor {
  std::string user_id;  // UUID of users.id, or "" when unknown
  std::string name;
  std::string role;  // "admin", "manager", "support", "user", or ""
};

// One row of audit_log. Text fields are made valid UTF-8 and cut to bounded
// sizes before they are stored, so no client input can make the insert fail.
struct AuditEntry {
  std::optional<AuditActor> actor;            // nullopt: no token, or an unknown one
  std::string method;                         // "GET"
  std::string endpoint;                       // request path
  std::map<std::string, std::string> params;  // decoded query parameters
  std::string ip;                             // client address (after trusted proxies)
  std::string reason;                         // X-Access-Reason, "" when absent
  bool allowed = false;
  int status = 0;      // HTTP status sent
  std::string denial;  // why it was refused, when !allowed
};

// Writes audit rows on its own pool. Thread-safe.
//
// Refusals (allowed == false) can come from anyone, so they are recorded
// compactly (at most 8 parameters of 128 bytes, a longer value as its hash and
// length; ~2 KB a row) and at most kRefusalsPerMinute per client address (a
// burst of kRefusalBurst): the rest are counted through `count_failure`
// ("audit_refusal_dropped"), never stored. Allowed requests are always recorded.
class AuditLog {
 public:
  static constexpr int kRefusalsPerMinute = 120;
  static constexpr int kRefusalBurst = 60;
  using FailureCounter = std::function<void(const std::string& reason)>;

  // `pool` and `clock` must outlive this object; `count_failure` may be empty.
  AuditLog(PgPool& pool, FailureCounter count_failure, const Clock* clock = &SystemClock::Get());

  // Writes one row synchronously (committed when it returns true). False when
  // it could not be written: the caller must then not serve data (answer 503).
  // Failures are counted as "audit_write". A refusal left out by the rate
  // limit returns true (nothing is served either way).
  bool Record(const AuditEntry& entry);

 private:
  bool TakeRefusalToken(const std::string& ip);

  PgPool& pool_;
  const FailureCounter count_failure_;
  const Clock* const clock_;
  std::mutex mu_;  // guards buckets_
  // Per client address; cleared when it passes 10,000 addresses (a spread-out
  // flood then gets a fresh burst per address, still bounded per request).
  std::unordered_map<std::string, TokenBucket> buckets_;
};

// Deletes the audit_log rows older than `retention_days` (> 0) in one
// transaction that declares the retention to the append-only trigger
// (migration 0010); returns how many. Throws pqxx exceptions.
int64_t PruneAuditLog(pqxx::connection& conn, int retention_days);

}  // namespace bpmc::identity
