#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace bpmc {
class PgPool;
}

namespace bpmc::webhook_receiver {

// A person of the platform, from bpmc-exporter's `users` table (docs/ACCESS.md):
// role is admin | manager | support | user; customer_id is set only for role user.
struct PlatformUser {
  std::string name, role, customer_id;
};

// Authenticates the analytics people (bearer tokens `bpmcu_` + 43 base64url
// characters, issued by `bpmc-exporter user add`) against the `users` table of
// the database the receiver shares with the exporter. Only SHA-256 of a token is
// looked up (common/ids.h). Disabled users are refused; a database without a
// `users` table (no exporter migrations) knows nobody. Successful and negative
// lookups are cached for kCacheTtl, so disabling a user takes effect within it.
// Thread-safe.
class PlatformUsers {
 public:
  static constexpr std::chrono::milliseconds kCacheTtl{1000};

  // Opens connections lazily (a small pool of its own); never throws.
  explicit PlatformUsers(std::string database_url);
  ~PlatformUsers();
  PlatformUsers(const PlatformUsers&) = delete;
  PlatformUsers& operator=(const PlatformUsers&) = delete;

  // The enabled user of `authorization_header` ("Bearer bpmcu_...", scheme
  // case-insensitive), or nullopt: no/malformed header, unknown or disabled
  // token, or the database could not be asked (counted in lookup_failures()).
  std::optional<PlatformUser> Authenticate(std::string_view authorization_header);

  // Authenticate telling "unknown" from "could not ask": kError when the
  // database failed (the caller answers 503 + Retry-After, not 401).
  enum class Lookup { kFound, kUnknown, kError };
  Lookup Find(std::string_view authorization_header, PlatformUser* out);

  // Database errors survived by Authenticate (for a metric).
  uint64_t lookup_failures() const;

  // The token of an "Authorization: Bearer <token>" header value, or "" (pure).
  static std::string_view BearerToken(std::string_view authorization_header);

 private:
  struct Entry {
    std::optional<PlatformUser> user;
    std::chrono::steady_clock::time_point expires;
  };
  std::unique_ptr<PgPool> pool_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> cache_;  // sha256(token) -> lookup result
  uint64_t failures_ = 0;
};

}  // namespace bpmc::webhook_receiver
