#include "identity/users.h"

#include <spdlog/spdlog.h>

#include <pqxx/pqxx>

#include "common/auth_header.h"
#include "common/ids.h"
#include "common/pii.h"

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

UserDirectory::Lookup UserDirectory::Find(std::string_view token, Principal* out) {
  // Every token CreateUser issues looks like this; others are not looked up.
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
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++failures_;
    }
    if (count_failure_) count_failure_("auth_lookup");
    spdlog::warn("cannot look up a user token: {}", ScrubPii(e.what()));
    return Lookup::kError;  // not cached: the next request asks again
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cache_.size() >= kMaxCachedTokens) cache_.clear();
    cache_[hash] = CacheEntry{p, now + kCacheTtl};
  }
  *out = std::move(p);
  return Lookup::kFound;
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
