#include "identity/audit.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "common/ids.h"
#include "common/pii.h"
#include "common/utf8.h"

namespace bpmc::identity {
namespace {

// Bounds of one audit row. A refusal (no or a bad token, a forbidden view)
// can come from anyone, so its record is compact: a few short parameters, and
// a longer value only as its hash and length; at most ~2 KB a row.
struct AuditBounds {
  size_t params, key, value, endpoint, reason;
};
constexpr AuditBounds kAllowedBounds{64, 200, 1000, 2000, 1000};
constexpr AuditBounds kRefusedBounds{8, 64, 128, 256, 256};

// `v` as stored in a refusal's params: itself when short, else
// "sha256:<16 hex> (<n> bytes)" (enough to match a repeated probe, nothing more).
std::string CompactValue(std::string_view v, size_t max_bytes) {
  if (v.size() <= max_bytes) return CleanText(v, max_bytes);
  return "sha256:" + HexEncode(Sha256(v)).substr(0, 16) + " (" + std::to_string(v.size()) +
         " bytes)";
}

}  // namespace

AuditLog::AuditLog(PgPool& pool, FailureCounter count_failure, const Clock* clock)
    : pool_(pool), count_failure_(std::move(count_failure)), clock_(clock) {}

bool AuditLog::TakeRefusalToken(const std::string& ip) {
  std::lock_guard<std::mutex> lock(mu_);
  if (buckets_.size() > 10000) buckets_.clear();
  TokenBucket& bucket = buckets_[ip];
  const RateDecision d = TakeToken(bucket, clock_->NowMicros(), kRefusalsPerMinute, kRefusalBurst);
  bucket = d.next;
  return d.allowed;
}

bool AuditLog::Record(const AuditEntry& record) {
  if (!record.allowed && !TakeRefusalToken(record.ip)) {
    if (count_failure_) count_failure_("audit_refusal_dropped");
    return true;  // nothing was served; the refusal goes out unrecorded, and counted
  }
  const AuditBounds& b = record.allowed ? kAllowedBounds : kRefusedBounds;
  nlohmann::json params = nlohmann::json::object();
  size_t n = 0;
  for (const auto& [k, v] : record.params) {
    if (++n > b.params) break;  // a query string is bounded by CivetWeb; this bounds the row
    params[CleanText(k, b.key)] = CompactValue(v, b.value);
  }
  const AuditActor* p = record.actor ? &*record.actor : nullptr;
  try {
    auto lease = pool_.Acquire();
    try {
      pqxx::work txn(*lease);
      txn.exec_params(
          "INSERT INTO audit_log (user_id, user_name, role, method, endpoint, params, ip, reason, "
          "allowed, status, denial) VALUES (NULLIF($1, '')::uuid, NULLIF($2, ''), NULLIF($3, ''), "
          "NULLIF($4, ''), $5, $6::jsonb, NULLIF($7, ''), NULLIF($8, ''), $9, $10, NULLIF($11, "
          "''))",
          p ? p->user_id : "", p ? CleanText(p->name, 100) : "", p ? CleanText(p->role, 20) : "",
          CleanText(record.method, 10), CleanText(record.endpoint, b.endpoint),
          params.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
          CleanText(record.ip, 64), CleanText(record.reason, b.reason), record.allowed,
          record.status, CleanText(record.denial, 1000));
      txn.commit();
    } catch (...) {
      lease.MarkBroken();
      throw;
    }
  } catch (const std::exception& e) {
    if (count_failure_) count_failure_("audit_write");
    spdlog::warn("cannot write an audit record: {}", ScrubPii(e.what()));
    return false;
  }
  return true;
}

int64_t PruneAuditLog(pqxx::connection& conn, int retention_days) {
  pqxx::work txn(conn);
  txn.exec_params("SELECT set_config('bpmc.audit_retention_days', $1, true)",
                  std::to_string(retention_days));
  const auto r = txn.exec_params(
      "DELETE FROM audit_log WHERE at < now() - make_interval(days => $1)", retention_days);
  txn.commit();
  return static_cast<int64_t>(r.affected_rows());
}

}  // namespace bpmc::identity
