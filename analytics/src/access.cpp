#include "analytics/access.h"

#include <prometheus/counter.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <vector>

#include "common/ids.h"
#include "common/time_format.h"

namespace bpmc::analytics {
namespace {

// ------------------------------------------------------------- helpers ----

std::string Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

constexpr const char* kAdminsOnly = "the audit log is for admins only";

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

std::string AccessReason(const http::Request& request) {
  std::string reason = Trim(request.Header("x-access-reason"));
  if (!reason.empty()) return reason;
  const auto params = http::ParseQuery(request.query);
  const auto it = params.find("reason");
  return it == params.end() ? "" : Trim(it->second);
}

// ---------------------------------------------------------------- policy ----

const char* DataKindName(DataKind kind) {
  switch (kind) {
    case DataKind::kAggregate:
      return "aggregate";
    case DataKind::kCustomerUsage:
      return "customer_usage";
    case DataKind::kFinancial:
      return "financial";
    case DataKind::kUserStats:
      return "user_stats";
    case DataKind::kAudit:
      return "audit";
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
      if (request.kind == DataKind::kFinancial)
        return Deny("support has no access to financial data");
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

AccessControl::AccessControl(PgPool& pool, std::string pseudonym_key,
                             prometheus::Registry* registry,
                             std::function<void(const std::string&)> count_failure,
                             const Clock* clock)
    : count_failure_(std::move(count_failure)),
      users_(pool, count_failure_),
      pseudonyms_(std::move(pseudonym_key)),
      audit_log_(pool, count_failure_, clock) {
  if (registry) {
    access_family_ = &prometheus::BuildCounter()
                          .Name("bpmc_exporter_analytics_access_total")
                          .Help(
                              "Analytics and audit requests by role and outcome "
                              "(allowed, denied, unauthenticated, unavailable)")
                          .Register(*registry);
  }
  if (!pseudonyms_.has_key()) {
    spdlog::warn(
        "pseudonym_key is not set ($BPMC_PSEUDONYM_KEY or pseudonym_key_file): analytics views "
        "with pseudonyms (managers, support without a customer) answer 503");
  } else if (pseudonyms_.key_size() < 16) {
    spdlog::warn("pseudonym_key is shorter than 16 bytes; use 32 random bytes");
  }
}

AccessControl::~AccessControl() = default;

void AccessControl::CountFailure(const std::string& reason) {
  if (count_failure_) count_failure_(reason);
}

void AccessControl::Count(const char* role, const char* result) {
  if (access_family_) access_family_->Add({{"role", role}, {"result", result}}).Increment();
}

std::optional<Principal> AccessControl::Authenticate(std::string_view bearer_token) {
  Principal p;
  if (users_.Find(bearer_token, &p) != identity::UserDirectory::Lookup::kFound) return std::nullopt;
  return p;
}

bool AccessControl::Audit(const AuditRecord& record) {
  identity::AuditEntry entry;
  if (record.principal)
    entry.actor = identity::AuditActor{record.principal->user_id, record.principal->name,
                                       RoleName(record.principal->role)};
  entry.method = record.method;
  entry.endpoint = record.endpoint;
  entry.params = record.params;
  entry.ip = record.ip;
  entry.reason = record.reason;
  entry.allowed = record.allowed;
  entry.status = record.status;
  entry.denial = record.denial;
  return audit_log_.Record(entry);
}

std::string AccessControl::Pseudonym(std::string_view customer_id) const {
  return pseudonyms_.Customer(customer_id);
}

std::string AccessControl::AccountPseudonym(std::string_view make_account_id) const {
  return pseudonyms_.Account(make_account_id);
}

bool AccessControl::AdmitToken(const http::Request& request, Admission* out) {
  Admission& adm = *out;
  AuditRecord& rec = adm.record;
  rec.method = request.method;
  rec.endpoint = request.path;
  rec.params = http::ParseQuery(request.query);
  rec.ip = request.remote_ip;
  rec.reason = AccessReason(request);

  auto refuse = [&](int status, const std::string& message, const std::string& field,
                    std::vector<std::pair<std::string, std::string>> headers, const char* result) {
    adm.admitted = false;
    adm.response = http::Error(status, message, field);
    adm.response.headers = std::move(headers);
    rec.allowed = false;
    rec.status = status;
    rec.denial = message;
    Audit(rec);  // a refusal serves no data, so it stands even when unaudited (counted)
    Count("anonymous", result);
    return false;
  };
  // A bearer token, or the console's session cookie (identity/sessions.h).
  switch (users_.FindRequest(request, &adm.principal)) {
    case identity::RequestAuth::kMissing:
      return refuse(401, "missing bearer token", "Authorization", {{"WWW-Authenticate", "Bearer"}},
                    "unauthenticated");
    case identity::RequestAuth::kError:
      return refuse(503, "cannot verify the token now; retry later", "", {{"Retry-After", "5"}},
                    "unavailable");
    case identity::RequestAuth::kUnknown:
      return refuse(401, "unknown or disabled token", "Authorization",
                    {{"WWW-Authenticate", "Bearer error=\"invalid_token\""}}, "unauthenticated");
    case identity::RequestAuth::kCsrfRefused:
      return refuse(403, "a change through the console's session needs its X-CSRF-Token header",
                    "X-CSRF-Token", {}, "denied");
    case identity::RequestAuth::kFound:
      break;
  }
  return true;
}

http::AuthResult AccessControl::Check(const http::Request& request) {
  Admission adm;
  if (AdmitToken(request, &adm)) return http::AuthResult::Ok(adm.principal.name);
  if (adm.response.status == 503) return http::AuthResult::Unavailable(adm.record.denial);
  if (adm.response.status == 403)
    return http::AuthResult::Forbidden(adm.record.denial, "X-CSRF-Token");
  return http::AuthResult::Unauthorized(adm.record.denial, adm.response.Header("WWW-Authenticate"));
}

void AccessControl::AuditRefusal(const http::Request& request, const http::Response& response) {
  if (response.status == 401 || response.status == 503) return;  // Check audited it
  AuditRecord rec;
  rec.method = request.method;
  rec.endpoint = request.path;
  rec.params = http::ParseQuery(request.query);
  rec.ip = request.remote_ip;
  rec.reason = AccessReason(request);
  rec.allowed = false;
  rec.status = response.status;
  const auto body = nlohmann::json::parse(response.body, nullptr, false);
  rec.denial = body.is_object() && body.contains("message") && body["message"].is_string()
                   ? body["message"].get<std::string>()
                   : "refused";
  Audit(rec);
}

AccessControl::Admission AccessControl::Admit(const http::Request& request, DataKind kind,
                                              std::string_view customer_id) {
  Admission adm;
  if (!AdmitToken(request, &adm)) return adm;
  AuditRecord& rec = adm.record;
  Principal principal = adm.principal;
  auto refuse = [&](int status, const std::string& message, const std::string& field,
                    const char* role, const char* result) {
    adm.admitted = false;
    adm.response = http::Error(status, message, field);
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
                              : customer_id.empty()              ? ""
                                                                 : "customer";
    return refuse(403, decision.denial, field, role, "denied");
  }
  if (decision.pseudonymise_ids && !has_pseudonym_key()) {
    CountFailure("pseudonym_key_missing");
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

http::Response AccessControl::Finish(const Admission& admission, http::Response response) {
  if (!admission.admitted) return admission.response;
  AuditRecord rec = admission.record;
  rec.allowed = true;
  rec.status = response.status;
  const char* role = RoleName(admission.principal.role);
  if (!Audit(rec)) {
    Count(role, "unavailable");
    http::Response r = http::Error(503, "cannot write the audit record; retry later", "");
    r.headers.emplace_back("Retry-After", "5");
    return r;
  }
  Count(role, "allowed");
  return response;
}

// ----------------------------------------------------------- audit route ----

namespace {

class AuditRoute : public http::Endpoint {
 public:
  AuditRoute(AccessControl* access, PgPool* pool) : access_(access), pool_(pool) {}

  bool Matches(const std::string& path) const override { return path == "/api/v1/audit"; }
  std::string Name() const override { return "audit"; }

  http::Response Handle(const http::Request& request) override {
    auto adm = access_->Admit(request, DataKind::kAudit, "");
    if (!adm.admitted) return adm.response;
    return access_->Finish(adm, Serve(request));
  }

 private:
  http::Response Serve(const http::Request& request) {
    if (request.method != "GET") {
      http::Response r = http::Error(405, "method not allowed", "");
      r.headers.emplace_back("Allow", "GET");
      return r;
    }
    const auto q = http::ParseQuery(request.query);
    std::string from = "-infinity", to = "infinity", user, endpoint;
    long long limit = 100;
    for (const auto& [key, value] : q) {
      if (key == "from" || key == "to") {
        const auto us = ParseRfc3339Micros(value);
        if (!us) return http::Error(400, key + " must be an RFC 3339 date-time", key);
        (key == "from" ? from : to) = FormatRfc3339Micros(*us);
      } else if (key == "user") {
        if (value.empty() || value.size() > 100)
          return http::Error(400, "user must be 1..100 characters", "user");
        user = value;
      } else if (key == "endpoint") {
        const auto pattern = AuditEndpointPattern(value);
        if (!pattern)
          return http::Error(400,
                             "endpoint must be 1.." + std::to_string(kMaxAuditEndpoint) +
                                 " bytes: a path, or a prefix ending in *",
                             "endpoint");
        endpoint = *pattern;
      } else if (key == "limit") {
        char* end = nullptr;
        errno = 0;
        limit = std::strtoll(value.c_str(), &end, 10);
        if (value.empty() || *end != '\0' || errno != 0 || limit < 1 || limit > 1000)
          return http::Error(400, "limit must be an integer from 1 to 1000", "limit");
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
            "AND ($3 = '' OR user_name = $3) AND ($5 = '' OR endpoint LIKE $5 ESCAPE '\\') "
            "ORDER BY at DESC, id DESC LIMIT $4",
            from, to, user, limit, endpoint);
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
      http::Response r = http::Error(503, "cannot read the audit log now; retry later", "");
      r.headers.emplace_back("Retry-After", "5");
      return r;
    }
    http::Response r;
    r.body = nlohmann::json{{"records", std::move(records)}}.dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);
    return r;
  }

  AccessControl* const access_;
  PgPool* const pool_;
};

}  // namespace

std::optional<std::string> AuditEndpointPattern(std::string_view endpoint) {
  if (endpoint.empty() || endpoint.size() > kMaxAuditEndpoint) return std::nullopt;
  const bool prefix = endpoint.back() == '*';
  if (prefix) endpoint.remove_suffix(1);
  std::string out;
  for (char c : endpoint) {
    if (c == '\\' || c == '%' || c == '_') out += '\\';
    out += c;
  }
  if (prefix) out += '%';
  return out;
}

std::unique_ptr<http::Endpoint> NewAuditRoute(AccessControl* access, PgPool* pool) {
  return std::make_unique<AuditRoute>(access, pool);
}

}  // namespace bpmc::analytics
