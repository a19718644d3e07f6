#include "webhook_receiver/platform_users.h"

#include <spdlog/spdlog.h>

#include <pqxx/pqxx>

#include "common/ids.h"
#include "common/pg_pool.h"
#include "common/pii.h"

namespace bpmc::webhook_receiver {
namespace {

constexpr size_t kMaxCachedTokens = 10000;

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

}  // namespace

PlatformUsers::PlatformUsers(std::string database_url)
    : pool_(std::make_unique<PgPool>(std::move(database_url), 2)) {}

PlatformUsers::~PlatformUsers() = default;

std::string_view PlatformUsers::BearerToken(std::string_view header) {
  while (!header.empty() && header.front() == ' ') header.remove_prefix(1);
  if (header.size() < 7 || !IEquals(header.substr(0, 7), "bearer ")) return {};
  header.remove_prefix(7);
  while (!header.empty() && header.front() == ' ') header.remove_prefix(1);
  while (!header.empty() && (header.back() == ' ' || header.back() == '\r'))
    header.remove_suffix(1);
  return header;
}

uint64_t PlatformUsers::lookup_failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_;
}

std::optional<PlatformUser> PlatformUsers::Authenticate(std::string_view authorization_header) {
  PlatformUser user;
  if (Find(authorization_header, &user) != Lookup::kFound) return std::nullopt;
  return user;
}

PlatformUsers::Lookup PlatformUsers::Find(std::string_view authorization_header,
                                          PlatformUser* out) {
  const std::string_view token = BearerToken(authorization_header);
  // Every token the exporter issues looks like this; others are not looked up.
  if (token.size() != 49 || token.substr(0, 6) != "bpmcu_") return Lookup::kUnknown;
  const std::string hash = Sha256(token);
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(hash);
    if (it != cache_.end() && it->second.expires > now) {
      if (!it->second.user) return Lookup::kUnknown;
      *out = *it->second.user;
      return Lookup::kFound;
    }
  }
  std::optional<PlatformUser> user;
  try {
    auto lease = pool_->Acquire();
    try {
      pqxx::work txn(*lease);
      // A database without the exporter's tables knows nobody (not an error).
      const bool has_users = txn.exec1("SELECT to_regclass('users') IS NOT NULL")[0].as<bool>();
      if (has_users) {
        const pqxx::result r = txn.exec_params(
            "SELECT name, role, COALESCE(customer_id, '') FROM users "
            "WHERE token_hash = $1 AND disabled_at IS NULL",
            pqxx::binarystring(hash));
        if (!r.empty()) {
          user = PlatformUser{r[0][0].c_str(), r[0][1].c_str(), r[0][2].c_str()};
        }
      }
      txn.commit();
    } catch (...) {
      lease.MarkBroken();
      throw;
    }
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(mu_);
    ++failures_;
    spdlog::warn("cannot look up a platform user token: {}", ScrubPii(e.what()));
    return Lookup::kError;  // not cached: the next request asks again
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (cache_.size() >= kMaxCachedTokens) cache_.clear();
  cache_[hash] = Entry{user, now + kCacheTtl};
  if (!user) return Lookup::kUnknown;
  *out = *user;
  return Lookup::kFound;
}

}  // namespace bpmc::webhook_receiver
