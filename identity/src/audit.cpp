#include "identity/audit.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "common/ids.h"
#include "common/pii.h"

namespace bpmc::identity {
namespace {

// ---------------------------------------------------------------- UTF-8 ----

// Decodes the UTF-8 sequence at s[i] (RFC 3629: no overlongs, surrogates or
// code points past U+10FFFF). Returns its length and sets *cp, or returns 0.
size_t DecodeUtf8(std::string_view s, size_t i, uint32_t* cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  size_t len;
  uint32_t min;
  if ((b0 & 0xe0) == 0xc0) {
    len = 2, min = 0x80, *cp = b0 & 0x1f;
  } else if ((b0 & 0xf0) == 0xe0) {
    len = 3, min = 0x800, *cp = b0 & 0x0f;
  } else if ((b0 & 0xf8) == 0xf0) {
    len = 4, min = 0x10000, *cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xc0) != 0x80) return 0;
    *cp = (*cp << 6) | (b & 0x3f);
  }
  if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff)) return 0;
  return len;
}

// `s` as valid UTF-8 of at most `max_bytes` bytes: invalid bytes and NUL
// become U+FFFD (PostgreSQL refuses both in text and jsonb), and the text is
// cut at a character boundary.
std::string CleanTextImpl(std::string_view s, size_t max_bytes) {
  static constexpr std::string_view kReplacement = "\xef\xbf\xbd";
  std::string out;
  out.reserve(std::min(s.size(), max_bytes));
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    size_t len = DecodeUtf8(s, i, &cp);
    std::string_view piece = s.substr(i, len);
    if (len == 0 || cp == 0) {
      piece = kReplacement;
      len = 1;
    }
    if (out.size() + piece.size() > max_bytes) break;
    out.append(piece);
    i += len;
  }
  return out;
}

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
  if (v.size() <= max_bytes) return CleanTextImpl(v, max_bytes);
  return "sha256:" + HexEncode(Sha256(v)).substr(0, 16) + " (" + std::to_string(v.size()) +
         " bytes)";
}

}  // namespace

std::string CleanText(std::string_view s, size_t max_bytes) { return CleanTextImpl(s, max_bytes); }

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
