#include "exporter/access.h"

#include <nlohmann/json.hpp>
#include <prometheus/counter.h>
#include <spdlog/spdlog.h>

#include <pqxx/pqxx>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <vector>

#include "common/ids.h"
#include "common/time_format.h"
#include "exporter/analytics_limits.h"
#include "exporter/ingest_metrics.h"

namespace bpmc::exporter {
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
std::string CleanText(std::string_view s, size_t max_bytes) {
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

// ------------------------------------------------------------- helpers ----

std::string Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  return true;
}

constexpr const char* kAdminsOnly = "the audit log is for admins only";
constexpr size_t kMaxCachedTokens = 10000;

AccessDecision Allow(bool pseudonymise, std::string forced_customer = "") {
  AccessDecision d;
  d.allowed = true;
  d.pseudonymise_ids = pseudonymise;
  d.scrub_pii = true;
  d.forced_customer = std::move(forced_customer);
  return d;
}

AccessDecision Deny(std::string why) {
  AccessDecision d;
  d.allowed = false;
  d.denial = std::move(why);
  return d;
}

}  // namespace

// ---------------------------------------------------------------- policy ----

const char* RoleName(Role role) {
  switch (role) {
    case Role::kAdmin: return "admin";
    case Role::kManager: return "manager";
    case Role::kSupport: return "support";
    case Role::kUser: return "user";
  }
  return "user";
}

std::optional<Role> ParseRole(std::string_view name) {
  for (Role r : {Role::kAdmin, Role::kManager, Role::kSupport, Role::kUser})
    if (name == RoleName(r)) return r;
  return std::nullopt;
}

const char* DataKindName(DataKind kind) {
  switch (kind) {
    case DataKind::kAggregate: return "aggregate";
    case DataKind::kCustomerUsage: return "customer_usage";
    case DataKind::kFinancial: return "financial";
    case DataKind::kUserStats: return "user_stats";
    case DataKind::kAudit: return "audit";
  }
  return "aggregate";
}

AccessDecision Decide(const Principal& principal, const AccessRequest& request) {
  // Naming a customer makes any request per-customer data.
  const bool one_customer = !request.customer_id.empty();
  switch (principal.role) {
    case Role::kAdmin:
      return Allow(false);
    case Role::kManager:
      if (request.kind == DataKind::kAudit) return Deny(kAdminsOnly);
      if (request.kind == DataKind::kCustomerUsage || one_customer)
        return Deny("managers see aggregated data only, not one customer's");
      return Allow(true);
    case Role::kSupport:
      if (request.kind == DataKind::kAudit) return Deny(kAdminsOnly);
      if (request.kind == DataKind::kFinancial) return Deny("support has no access to financial data");
      if (request.kind == DataKind::kUserStats)
        return Deny("support has no access to user statistics; read one customer's usage instead");
      if (request.kind == DataKind::kCustomerUsage && !one_customer)
        return Deny("support reads one customer's data at a time: name the customer");
      if (one_customer) {
        if (!request.has_reason) return Deny(kReasonRequired);
        return Allow(false);
      }
      return Allow(true);
    case Role::kUser:
      if (principal.customer_id.empty()) return Deny("this user is not bound to a customer");
      if (request.kind == DataKind::kAudit) return Deny(kAdminsOnly);
      if (one_customer && request.customer_id != principal.customer_id)
        return Deny("users may read only their own customer's data");
      return Allow(false, principal.customer_id);
  }
  return Deny("unknown role");
}

// --------------------------------------------------------- AccessControl ----

AccessControl::AccessControl(PgPool& pool, std::string pseudonym_key, IngestMetrics* metrics,
                             const Clock* clock)
    : pool_(pool), key_(std::move(pseudonym_key)), metrics_(metrics), clock_(clock) {
  if (metrics_) {
    access_family_ = &prometheus::BuildCounter()
                          .Name("bpmc_exporter_analytics_access_total")
                          .Help("Analytics and audit requests by role and outcome "
                                "(allowed, denied, unauthenticated, unavailable)")
                          .Register(metrics_->registry());
  }
  if (key_.empty()) {
    spdlog::warn(
        "pseudonym_key is not set ($BPMC_PSEUDONYM_KEY or pseudonym_key_file): analytics views "
        "with pseudonyms (managers, support without a customer) answer 503");
  } else if (key_.size() < 16) {
    spdlog::warn("pseudonym_key is shorter than 16 bytes; use 32 random bytes");
  }
}

AccessControl::~AccessControl() = default;

void AccessControl::CountFailure(const std::string& reason) {
  if (metrics_) metrics_->CountFailure(reason);
}

void AccessControl::Count(const char* role, const char* result) {
  if (access_family_) access_family_->Add({{"role", role}, {"result", result}}).Increment();
}

AccessControl::Lookup AccessControl::Find(std::string_view token, Principal* out) {
  // Every token this service issues looks like this; others are not looked up.
  if (token.size() != 49 || token.substr(0, 6) != "bpmcu_") return Lookup::kUnknown;
  const std::string hash = Sha256(token);
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(hash);
    if (it != cache_.end()) {
      if (it->second.expires > now) {
        *out = it->second.principal;
        return Lookup::kFound;
      }
      cache_.erase(it);
    }
  }
  Principal p;
  try {
    auto lease = pool_.Acquire();
    try {
      pqxx::work txn(*lease);
      const pqxx::result r = txn.exec_params(
          "SELECT id::text, name, role, COALESCE(customer_id, '') FROM users "
          "WHERE token_hash = $1 AND disabled_at IS NULL",
          pqxx::binarystring(hash));
      txn.commit();
      if (r.empty()) return Lookup::kUnknown;
      const auto role = ParseRole(r[0][2].c_str());
      if (!role) return Lookup::kUnknown;
      p.user_id = r[0][0].c_str();
      p.name = r[0][1].c_str();
      p.role = *role;
      p.customer_id = r[0][3].c_str();
    } catch (...) {
      lease.MarkBroken();
      throw;
    }
  } catch (const std::exception& e) {
    if (metrics_) metrics_->CountFailure("auth_lookup");
    spdlog::warn("cannot look up an analytics token: {}", ScrubPii(e.what()));
    return Lookup::kError;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cache_.size() >= kMaxCachedTokens) cache_.clear();
    cache_[hash] = CacheEntry{p, now + kCacheTtl};
  }
  *out = std::move(p);
  return Lookup::kFound;
}

std::optional<Principal> AccessControl::Authenticate(std::string_view bearer_token) {
  Principal p;
  if (Find(bearer_token, &p) != Lookup::kFound) return std::nullopt;
  return p;
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
  if (v.size() <= max_bytes) return CleanText(v, max_bytes);
  return "sha256:" + HexEncode(Sha256(v)).substr(0, 16) + " (" + std::to_string(v.size()) +
         " bytes)";
}

bool AccessControl::TakeRefusalToken(const std::string& ip) {
  std::lock_guard<std::mutex> lock(refusal_mu_);
  if (refusal_buckets_.size() > 10000) refusal_buckets_.clear();
  auto [it, fresh] = refusal_buckets_.try_emplace(ip, -1.0, 0);
  (void)fresh;
  const RateDecision d = TakeToken(TokenBucket{it->second.first, it->second.second},
                                   clock_->NowMicros(), kRefusalsPerMinute, kRefusalBurst);
  it->second = {d.next.tokens, d.next.updated_us};
  return d.allowed;
}

bool AccessControl::Audit(const AuditRecord& record) {
  if (!record.allowed && !TakeRefusalToken(record.ip)) {
    if (metrics_) metrics_->CountFailure("audit_refusal_dropped");
    return true;  // nothing was served; the refusal goes out unrecorded, and counted
  }
  const AuditBounds& b = record.allowed ? kAllowedBounds : kRefusedBounds;
  nlohmann::json params = nlohmann::json::object();
  size_t n = 0;
  for (const auto& [k, v] : record.params) {
    if (++n > b.params) break;  // a query string is bounded by CivetWeb; this bounds the row
    params[CleanText(k, b.key)] = CompactValue(v, b.value);
  }
  const Principal* p = record.principal ? &*record.principal : nullptr;
  try {
    auto lease = pool_.Acquire();
    try {
      pqxx::work txn(*lease);
      txn.exec_params(
          "INSERT INTO audit_log (user_id, user_name, role, method, endpoint, params, ip, reason, "
          "allowed, status, denial) VALUES (NULLIF($1, '')::uuid, NULLIF($2, ''), NULLIF($3, ''), "
          "NULLIF($4, ''), $5, $6::jsonb, NULLIF($7, ''), NULLIF($8, ''), $9, $10, NULLIF($11, ''))",
          p ? p->user_id : "", p ? CleanText(p->name, 100) : "", p ? RoleName(p->role) : "",
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
    if (metrics_) metrics_->CountFailure("audit_write");
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

std::string AccessControl::Pseudonym(std::string_view customer_id) const {
  if (key_.empty()) return "c_unavailable";
  return "c_" + HexEncode(HmacSha256(key_, customer_id)).substr(0, 16);
}

std::string AccessControl::AccountPseudonym(std::string_view make_account_id) const {
  if (key_.empty()) return "m_unavailable";
  return "m_" +
         HexEncode(HmacSha256(key_, "make_account:" + std::string(make_account_id))).substr(0, 16);
}

bool AccessControl::AdmitToken(const HttpRequest& request, Admission* out) {
  Admission& adm = *out;
  AuditRecord& rec = adm.record;
  rec.method = request.method;
  rec.endpoint = request.path;
  rec.params = ParseQuery(request.query);
  rec.ip = request.remote_ip;
  rec.reason = Trim(request.Header("x-access-reason"));

  auto refuse = [&](int status, const std::string& message, const std::string& field,
                    std::vector<std::pair<std::string, std::string>> headers, const char* result) {
    adm.admitted = false;
    adm.response = JsonError(status, message, field);
    adm.response.headers = std::move(headers);
    rec.allowed = false;
    rec.status = status;
    rec.denial = message;
    Audit(rec);  // a refusal serves no data, so it stands even when unaudited (counted)
    Count("anonymous", result);
    return false;
  };
  const std::string auth = Trim(request.Header("authorization"));
  if (!StartsWithNoCase(auth, "Bearer ") || Trim(auth.substr(7)).empty())
    return refuse(401, "missing bearer token", "Authorization", {{"WWW-Authenticate", "Bearer"}},
                  "unauthenticated");
  const std::string token = Trim(auth.substr(7));
  switch (Find(token, &adm.principal)) {
    case Lookup::kError:
      return refuse(503, "cannot verify the token now; retry later", "", {{"Retry-After", "5"}},
                    "unavailable");
    case Lookup::kUnknown:
      return refuse(401, "unknown or disabled token", "Authorization",
                    {{"WWW-Authenticate", "Bearer error=\"invalid_token\""}}, "unauthenticated");
    case Lookup::kFound:
      break;
  }
  return true;
}

http::AuthResult AccessControl::Check(const HttpRequest& request) {
  Admission adm;
  if (AdmitToken(request, &adm)) return http::AuthResult::Ok(adm.principal.name);
  if (adm.response.status == 503) return http::AuthResult::Unavailable(adm.record.denial);
  return http::AuthResult::Unauthorized(adm.record.denial, adm.response.Header("WWW-Authenticate"));
}

void AccessControl::AuditRefusal(const HttpRequest& request, const HttpResponse& response) {
  if (response.status == 401 || response.status == 503) return;  // Check audited it
  AuditRecord rec;
  rec.method = request.method;
  rec.endpoint = request.path;
  rec.params = ParseQuery(request.query);
  rec.ip = request.remote_ip;
  rec.reason = Trim(request.Header("x-access-reason"));
  rec.allowed = false;
  rec.status = response.status;
  const auto body = nlohmann::json::parse(response.body, nullptr, false);
  rec.denial = body.is_object() && body.contains("message") && body["message"].is_string()
                   ? body["message"].get<std::string>()
                   : "refused";
  Audit(rec);
}

AccessControl::Admission AccessControl::Admit(const HttpRequest& request, DataKind kind,
                                              std::string_view customer_id) {
  Admission adm;
  if (!AdmitToken(request, &adm)) return adm;
  AuditRecord& rec = adm.record;
  Principal principal = adm.principal;
  auto refuse = [&](int status, const std::string& message, const std::string& field,
                    const char* role, const char* result) {
    adm.admitted = false;
    adm.response = JsonError(status, message, field);
    rec.allowed = false;
    rec.status = status;
    rec.denial = message;
    Audit(rec);  // a refusal serves no data, so it stands even when unaudited (counted)
    Count(role, result);
    return adm;
  };
  rec.principal = principal;
  const char* role = RoleName(principal.role);

  AccessRequest ar;
  ar.kind = kind;
  ar.customer_id = std::string(customer_id);
  ar.has_reason = !rec.reason.empty();
  const AccessDecision decision = Decide(principal, ar);
  if (!decision.allowed) {
    const std::string field = decision.denial == kReasonRequired ? "X-Access-Reason"
                              : customer_id.empty()               ? ""
                                                                  : "customer";
    return refuse(403, decision.denial, field, role, "denied");
  }
  if (decision.pseudonymise_ids && !has_pseudonym_key()) {
    if (metrics_) metrics_->CountFailure("pseudonym_key_missing");
    return refuse(503,
                  "this view shows pseudonyms and no pseudonym key is configured: set "
                  "BPMC_PSEUDONYM_KEY or pseudonym_key_file",
                  "", role, "unavailable");
  }
  adm.admitted = true;
  adm.principal = std::move(principal);
  adm.decision = decision;
  rec.allowed = true;
  return adm;
}

HttpResponse AccessControl::Finish(const Admission& admission, HttpResponse response) {
  if (!admission.admitted) return admission.response;
  AuditRecord rec = admission.record;
  rec.allowed = true;
  rec.status = response.status;
  const char* role = RoleName(admission.principal.role);
  if (!Audit(rec)) {
    Count(role, "unavailable");
    HttpResponse r = JsonError(503, "cannot write the audit record; retry later", "");
    r.headers.emplace_back("Retry-After", "5");
    return r;
  }
  Count(role, "allowed");
  return response;
}

// ------------------------------------------------------------------ CLI ----

std::optional<std::string> CreateUser(pqxx::connection& conn, const std::string& name, Role role,
                                      const std::string& customer_id) {
  const std::string token = "bpmcu_" + Base64UrlEncode(RandomBytes(32));
  pqxx::work txn(conn);
  const pqxx::result r = txn.exec_params(
      "INSERT INTO users (name, role, customer_id, token_hash) "
      "VALUES ($1, $2, NULLIF($3, ''), $4) ON CONFLICT (name) DO NOTHING RETURNING id",
      name, RoleName(role), customer_id, pqxx::binarystring(Sha256(token)));
  txn.commit();
  if (r.empty()) return std::nullopt;
  return token;
}

bool DisableUser(pqxx::connection& conn, const std::string& name) {
  pqxx::work txn(conn);
  const pqxx::result r = txn.exec_params(
      "UPDATE users SET disabled_at = now() WHERE name = $1 AND disabled_at IS NULL", name);
  txn.commit();
  return r.affected_rows() > 0;
}

// ----------------------------------------------------------- audit route ----

namespace {

class AuditRoute : public Route {
 public:
  AuditRoute(AccessControl* access, PgPool* pool) : access_(access), pool_(pool) {}

  bool Matches(const std::string& path) const override { return path == "/api/v1/audit"; }
  std::string Name() const override { return "audit"; }

  HttpResponse Handle(const HttpRequest& request) override {
    auto adm = access_->Admit(request, DataKind::kAudit, "");
    if (!adm.admitted) return adm.response;
    return access_->Finish(adm, Serve(request));
  }

 private:
  HttpResponse Serve(const HttpRequest& request) {
    if (request.method != "GET") {
      HttpResponse r = JsonError(405, "method not allowed", "");
      r.headers.emplace_back("Allow", "GET");
      return r;
    }
    const auto q = ParseQuery(request.query);
    std::string from = "-infinity", to = "infinity", user;
    long long limit = 100;
    for (const auto& [key, value] : q) {
      if (key == "from" || key == "to") {
        const auto us = ParseRfc3339Micros(value);
        if (!us) return JsonError(400, key + " must be an RFC 3339 date-time", key);
        (key == "from" ? from : to) = FormatRfc3339Micros(*us);
      } else if (key == "user") {
        if (value.empty() || value.size() > 100)
          return JsonError(400, "user must be 1..100 characters", "user");
        user = value;
      } else if (key == "limit") {
        char* end = nullptr;
        errno = 0;
        limit = std::strtoll(value.c_str(), &end, 10);
        if (value.empty() || *end != '\0' || errno != 0 || limit < 1 || limit > 1000)
          return JsonError(400, "limit must be an integer from 1 to 1000", "limit");
      }
    }
    nlohmann::json records = nlohmann::json::array();
    try {
      auto lease = pool_->Acquire();
      try {
        pqxx::work txn(*lease);
        const pqxx::result r = txn.exec_params(
            "SELECT id, (extract(epoch FROM at) * 1000000)::bigint, user_id::text, user_name, "
            "role, method, endpoint, params::text, ip, reason, allowed, status, denial "
            "FROM audit_log WHERE at >= $1::timestamptz AND at < $2::timestamptz "
            "AND ($3 = '' OR user_name = $3) ORDER BY at DESC, id DESC LIMIT $4",
            from, to, user, limit);
        txn.commit();
        auto text = [](const pqxx::field& f) -> nlohmann::json {
          if (f.is_null()) return nullptr;
          return f.c_str();
        };
        for (const auto& row : r) {
          records.push_back({
              {"id", row[0].as<long long>()},
              {"at", FormatRfc3339Micros(row[1].as<long long>())},
              {"user_id", text(row[2])},
              {"user", text(row[3])},
              {"role", text(row[4])},
              {"method", text(row[5])},
              {"endpoint", text(row[6])},
              {"params", nlohmann::json::parse(row[7].c_str(), nullptr, false)},
              {"ip", text(row[8])},
              {"reason", text(row[9])},
              {"allowed", row[10].as<bool>()},
              {"status", row[11].as<int>()},
              {"denial", text(row[12])},
          });
        }
      } catch (...) {
        lease.MarkBroken();
        throw;
      }
    } catch (const std::exception& e) {
      access_->CountFailure("audit_read");
      spdlog::warn("cannot read the audit log: {}", ScrubPii(e.what()));
      HttpResponse r = JsonError(503, "cannot read the audit log now; retry later", "");
      r.headers.emplace_back("Retry-After", "5");
      return r;
    }
    HttpResponse r;
    r.body = nlohmann::json{{"records", std::move(records)}}.dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);
    return r;
  }

  AccessControl* const access_;
  PgPool* const pool_;
};

}  // namespace

std::unique_ptr<Route> NewAuditRoute(AccessControl* access, PgPool* pool) {
  return std::make_unique<AuditRoute>(access, pool);
}

}  // namespace bpmc::exporter
