#include "identity/users.h"

#include <spdlog/spdlog.h>

#include <pqxx/pqxx>

#include "common/auth_header.h"
#include "common/ids.h"
#include "common/pii.h"
#include "identity/sessions.h"

namespace bpmc::identity {
namespace {

constexpr size_t kMaxCachedTokens = 10000;

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kAdmin:
      return "admin";
    case Role::kManager:
      return "manager";
    case Role::kSupport:
      return "support";
    case Role::kUser:
      return "user";
  }
  return "user";
}

std::optional<Role> ParseRole(std::string_view name) {
  for (Role r : {Role::kAdmin, Role::kManager, Role::kSupport, Role::kUser})
    if (name == RoleName(r)) return r;
  return std::nullopt;
}

std::string_view BearerToken(std::string_view header) {
  return AuthCredentials(header, "bearer").value_or(std::string_view());
}

UserDirectory::UserDirectory(PgPool& pool, std::function<void(const std::string&)> count_failure)
    : pool_(pool), count_failure_(std::move(count_failure)) {}

uint64_t UserDirectory::lookup_failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_;
}

bool UserDirectory::Cached(const std::string& key, Principal* out) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cache_.find(key);
  if (it == cache_.end()) return false;
  if (it->second.expires > std::chrono::steady_clock::now()) {
    *out = it->second.principal;
    return true;
  }
  cache_.erase(it);
  return false;
}

void UserDirectory::Cache(const std::string& key, const Principal& p) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cache_.size() >= kMaxCachedTokens) cache_.clear();
  cache_[key] = CacheEntry{p, std::chrono::steady_clock::now() + kCacheTtl};
}

void UserDirectory::CountFailure() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++failures_;
  }
  if (count_failure_) count_failure_("auth_lookup");
}

UserDirectory::Lookup UserDirectory::Find(std::string_view token, Principal* out) {
  // Every token CreateUser issues looks like this; others are not looked up.
  if (token.size() != 49 || token.substr(0, 6) != "bpmcu_") return Lookup::kUnknown;
  const std::string hash = Sha256(token);
  if (Cached(hash, out)) return Lookup::kFound;
  std::optional<pqxx::result> r;
  try {
    r = InPooledTransaction(pool_, [&](pqxx::work& txn) {
      return txn.exec_params(
          "SELECT id::text, name, role, COALESCE(customer_id, '') FROM users "
          "WHERE token_hash = $1 AND disabled_at IS NULL",
          pqxx::binarystring(hash));
    });
  } catch (const std::exception& e) {
    CountFailure();
    spdlog::warn("cannot look up a user token: {}", ScrubPii(e.what()));
    return Lookup::kError;  // not cached: the next request asks again
  }
  if (r->empty()) return Lookup::kUnknown;
  const auto role = ParseRole((*r)[0][2].c_str());
  if (!role) return Lookup::kUnknown;
  Principal p{(*r)[0][0].c_str(), (*r)[0][1].c_str(), *role, (*r)[0][3].c_str()};
  Cache(hash, p);
  *out = std::move(p);
  return Lookup::kFound;
}

UserDirectory::Lookup UserDirectory::FindSession(std::string_view session_id, Principal* out) {
  const std::string hash = Sha256(session_id);
  if (Cached("s" + hash, out)) return Lookup::kFound;
  std::optional<pqxx::result> r;
  try {
    r = InPooledTransaction(pool_, [&](pqxx::work& txn) {
      // Valid sessions only; last_seen_at moves at most once a minute (one write
      // a minute per active session, not one per request).
      return txn.exec_params(
          "WITH s AS (SELECT s.id_hash, u.id::text AS uid, u.name, u.role, "
          "COALESCE(u.customer_id, '') AS customer, "
          "s.last_seen_at < now() - interval '60 seconds' AS stale "
          "FROM user_sessions s JOIN users u ON u.id = s.user_id "
          "WHERE s.id_hash = $1 AND s.ended_at IS NULL AND u.disabled_at IS NULL "
          "AND now() < s.expires_at AND now() < s.last_seen_at + s.idle_timeout), "
          "touched AS (UPDATE user_sessions SET last_seen_at = now() "
          "WHERE id_hash IN (SELECT id_hash FROM s WHERE stale)) "
          "SELECT uid, name, role, customer FROM s",
          pqxx::binarystring(hash));
    });
  } catch (const std::exception& e) {
    CountFailure();
    spdlog::warn("cannot look up a console session: {}", ScrubPii(e.what()));
    return Lookup::kError;
  }
  if (r->empty()) return Lookup::kUnknown;
  const auto role = ParseRole((*r)[0][2].c_str());
  if (!role) return Lookup::kUnknown;
  Principal p{(*r)[0][0].c_str(), (*r)[0][1].c_str(), *role, (*r)[0][3].c_str()};
  Cache("s" + hash, p);
  *out = std::move(p);
  return Lookup::kFound;
}

void UserDirectory::ForgetSession(std::string_view session_id) {
  std::lock_guard<std::mutex> lock(mu_);
  cache_.erase("s" + Sha256(session_id));
}

RequestAuth UserDirectory::FindRequest(const http::Request& request, Principal* out) {
  auto of = [](Lookup l) {
    switch (l) {
      case Lookup::kFound:
        return RequestAuth::kFound;
      case Lookup::kError:
        return RequestAuth::kError;
      case Lookup::kUnknown:
        break;
    }
    return RequestAuth::kUnknown;
  };
  const std::string authorization = request.Header("authorization");
  if (authorization.find_first_not_of(" \t") != std::string::npos)
    return of(Find(BearerToken(authorization), out));
  const std::string cookie = request.Header("cookie");
  const std::string_view session_id = SessionIdFromCookie(cookie);
  if (session_id.empty()) return RequestAuth::kMissing;
  // The browser sends the cookie with any request to this origin; a change of
  // state must also prove the page that sent it read the session's token.
  const bool reads = request.method == "GET" || request.method == "HEAD";
  if (!reads && !ConstantTimeEquals(request.Header("x-csrf-token"), CsrfToken(session_id)))
    return RequestAuth::kCsrfRefused;
  return of(FindSession(session_id, out));
}

http::AuthResult AuthResultOf(RequestAuth found, const Principal& who, std::string_view realm) {
  const std::string challenge = "Bearer realm=\"" + std::string(realm) + "\"";
  switch (found) {
    case RequestAuth::kFound:
      return http::AuthResult::Ok(who.name, who.user_id, RoleName(who.role));
    case RequestAuth::kMissing:
      return http::AuthResult::Unauthorized(
          "log in, or send a platform user's bearer token in Authorization", challenge);
    case RequestAuth::kUnknown:
      return http::AuthResult::Unauthorized("unknown, disabled or expired credentials",
                                            challenge + ", error=\"invalid_token\"");
    case RequestAuth::kCsrfRefused:
      return http::AuthResult::Forbidden(
          "a change through the console's session needs the session's X-CSRF-Token header",
          "X-CSRF-Token");
    case RequestAuth::kError:
      break;
  }
  return http::AuthResult::Unavailable("cannot check the credentials now; retry later");
}

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

std::string Pseudonyms::Customer(std::string_view customer_id) const {
  if (key_.empty()) return "c_unavailable";
  return "c_" + HexEncode(HmacSha256(key_, customer_id)).substr(0, 16);
}

std::string Pseudonyms::Account(std::string_view make_account_id) const {
  if (key_.empty()) return "m_unavailable";
  return "m_" +
         HexEncode(HmacSha256(key_, "make_account:" + std::string(make_account_id))).substr(0, 16);
}

}  // namespace bpmc::identity
