// PlatformTokens: the snapshot of active platform tokens (platform_tokens.h).

#include "identity/platform_tokens.h"

#include <exception>
#include <pqxx/pqxx>
#include <utility>

#include "common/ids.h"

namespace bpmc::identity {

PlatformTokens::PlatformTokens(PgPool& pool, std::chrono::milliseconds refresh,
                               std::function<void(const std::string&)> count_failure)
    : pool_(pool), refresh_(refresh), count_failure_(std::move(count_failure)) {}

TokenLookup PlatformTokens::Find(std::string_view token) {
  const std::string hash = Sha256(token);
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  if (!loaded_ || now - loaded_at_ >= refresh_) Reload(now);
  if (hashes_.count(hash)) return TokenLookup::kFound;
  if (now - last_miss_reload_ >= kMissReloadInterval) {
    last_miss_reload_ = now;
    Reload(now);
    if (hashes_.count(hash)) return TokenLookup::kFound;
  }
  return loaded_ ? TokenLookup::kUnknown : TokenLookup::kError;
}

// Called with mu_ held. Billing requests are rare: holding the lock during
// the query keeps one reload per interval without a background thread.
void PlatformTokens::Reload(std::chrono::steady_clock::time_point now) {
  if (attempted_ && now - attempted_at_ < std::chrono::milliseconds(100)) return;
  attempted_ = true;
  attempted_at_ = now;
  std::unordered_map<std::string, std::string> next;
  try {
    PgPool::Lease conn = pool_.Acquire();
    try {
      pqxx::read_transaction txn(*conn);
      for (const auto& row :
           txn.exec("SELECT token_hash, name FROM platform_tokens WHERE revoked_at IS NULL")) {
        next.emplace(pqxx::binarystring(row[0]).str(), row[1].as<std::string>());
      }
      txn.commit();
    } catch (...) {
      conn.MarkBroken();
      throw;
    }
  } catch (const std::exception&) {
    if (count_failure_) count_failure_("billing_token_refresh");
    return;
  }
  hashes_ = std::move(next);
  loaded_ = true;
  loaded_at_ = now;
}

}  // namespace bpmc::identity
