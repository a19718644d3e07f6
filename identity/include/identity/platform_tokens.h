#pragma once
// The platform's service-account tokens (platform_tokens, owned by identity):
// the check POST /v1/billing/events authenticates with. Tokens are issued and
// revoked by CreatePlatformToken / RevokePlatformTokens (api_keys.h).

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/pg_pool.h"
#include "identity/users.h"  // TokenLookup

namespace bpmc::identity {

// Active platform tokens by SHA-256, re-read from PostgreSQL when older than
// the refresh interval, and at once (at most every kMissReloadInterval) on a
// miss, so a token created a moment ago works and a revoked one stops within
// the interval. While PostgreSQL is unreachable the last snapshot stays in use.
// Thread-safe.
//
// Why this is not UserDirectory's cache (users.h): the platform has a handful
// of tokens and its billing posts must survive a database outage, so the whole
// table is held as a snapshot that outlives one; a user's token is looked up
// one by one and never accepted without asking the database for more than
// UserDirectory::kCacheTtl. Both hash tokens the same way and answer with the
// same TokenLookup.
class PlatformTokens {
 public:
  static constexpr std::chrono::milliseconds kMissReloadInterval{200};

  // `pool` must outlive this object. `count_failure` (may be empty) is called
  // with "billing_token_refresh" for every failed re-read (the name is the
  // billing route's failure reason on /metrics).
  PlatformTokens(PgPool& pool, std::chrono::milliseconds refresh,
                 std::function<void(const std::string&)> count_failure = {});

  // kFound for an active token; kUnknown for any other; kError only while no
  // snapshot could be read yet (the caller answers 503, not 401). Never throws.
  TokenLookup Find(std::string_view token);

 private:
  void Reload(std::chrono::steady_clock::time_point now);

  PgPool& pool_;
  const std::chrono::milliseconds refresh_;
  const std::function<void(const std::string&)> count_failure_;
  std::mutex mu_;                                        // guards everything below
  std::unordered_map<std::string, std::string> hashes_;  // sha256 -> name
  bool loaded_ = false;
  bool attempted_ = false;
  std::chrono::steady_clock::time_point loaded_at_{};
  std::chrono::steady_clock::time_point attempted_at_{};
  std::chrono::steady_clock::time_point last_miss_reload_{};
};

}  // namespace bpmc::identity
