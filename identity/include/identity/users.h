#pragma once
// The people of the platform (docs/ACCESS.md): the `users` table that identity
// owns, its roles, the bearer tokens they sign in with, and the pseudonyms under
// which some roles see customers. One directory for both binaries: the
// exporter's analytics and the receiver's incident, on-call and notice APIs
// authenticate through UserDirectory.

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <pqxx/connection>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/pg_pool.h"
#include "http/route.h"
#include "http/types.h"

namespace bpmc::identity {

enum class Role { kAdmin, kManager, kSupport, kUser };

// "admin", "manager", "support", "user".
const char* RoleName(Role role);
// The inverse of RoleName (exact, lowercase), or nullopt.
std::optional<Role> ParseRole(std::string_view name);

// An authenticated person. `customer_id` is set only for Role::kUser.
struct Principal {
  std::string user_id;  // users.id (UUID)
  std::string name;
  Role role = Role::kUser;
  std::string customer_id;
};

// The token of an "Authorization: Bearer <token>" header value (scheme
// case-insensitive, surrounding spaces dropped), or "" for anything else. Pure.
std::string_view BearerToken(std::string_view authorization_header);

// The answer of identity's two token caches, UserDirectory (below) and
// PlatformTokens (platform_tokens.h): kError when the database could not be
// asked (the caller answers 503 + Retry-After, not 401).
enum class TokenLookup { kFound, kUnknown, kError };

// Who sent a request, by either credential a person has: a bearer token
// (API clients), else the console's session cookie (sessions.h), whose
// state-changing requests (not GET/HEAD) must carry the session's CSRF token in
// X-CSRF-Token. kMissing: neither credential was sent.
enum class RequestAuth { kFound, kMissing, kUnknown, kError, kCsrfRefused };

// Looks bearer tokens ("bpmcu_" + 43 base64url characters, issued by
// CreateUser) up in `users`; only their SHA-256 is stored and compared.
// Disabled users are unknown. Found users are cached for kCacheTtl, so
// disabling one takes effect within it (the contract of docs/ACCESS.md is 2 s);
// unknown tokens are not cached, so a new user works at once. Thread-safe.
// Unlike PlatformTokens it holds no snapshot of the table: users are many, and
// a user is never let in on a stale answer while the database is down.
class UserDirectory {
 public:
  static constexpr std::chrono::milliseconds kCacheTtl{1000};
  using Lookup = TokenLookup;

  // `pool` must outlive this object. `count_failure` (may be empty) is called
  // with "auth_lookup" for every database error survived.
  explicit UserDirectory(PgPool& pool, std::function<void(const std::string&)> count_failure = {});

  // kError when the database could not be asked (the caller answers 503 +
  // Retry-After, not 401); never throws.
  Lookup Find(std::string_view token, Principal* out);
  // Find for an Authorization header value.
  Lookup FindByHeader(std::string_view authorization_header, Principal* out) {
    return Find(BearerToken(authorization_header), out);
  }
  // A request's principal by its Authorization header (when not blank) or else
  // its bpmc_session cookie. Sessions found are cached like tokens (kCacheTtl);
  // ended, idle or expired sessions and disabled users are kUnknown.
  RequestAuth FindRequest(const http::Request& request, Principal* out);
  // Drops a session from the cache (after logout on this node).
  void ForgetSession(std::string_view session_id);
  // Database errors survived by Find.
  uint64_t lookup_failures() const;

 private:
  struct CacheEntry {
    Principal principal;
    std::chrono::steady_clock::time_point expires;
  };
  PgPool& pool_;
  const std::function<void(const std::string&)> count_failure_;
  mutable std::mutex mu_;  // guards the two below
  // sha256(token) -> user, and "s" + sha256(session id) -> user.
  std::unordered_map<std::string, CacheEntry> cache_;
  Lookup FindSession(std::string_view session_id, Principal* out);
  bool Cached(const std::string& key, Principal* out);
  void Cache(const std::string& key, const Principal& p);
  void CountFailure();
  uint64_t failures_ = 0;
};

// The HTTP layer's verdict for a FindRequest result: 401 (naming `realm` in
// WWW-Authenticate), 403 naming X-CSRF-Token, 503 + Retry-After, or Ok with the
// principal's name, id and role.
http::AuthResult AuthResultOf(RequestAuth found, const Principal& who, std::string_view realm);

// Administrative operations of the command line (bpmc-exporter user ...).
// Creates a user and returns its token (256 random bits; only its SHA-256 is
// stored), or nullopt when the name is taken. `customer_id` must be non-empty
// exactly for Role::kUser (the schema checks it too). Throws pqxx exceptions.
std::optional<std::string> CreateUser(pqxx::connection& conn, const std::string& name, Role role,
                                      const std::string& customer_id);
// Sets disabled_at; false when no enabled user has that name.
bool DisableUser(pqxx::connection& conn, const std::string& name);

// Stable pseudonyms of customer and Make account ids, keyed by the
// deployment's pseudonym key. Thread-safe (immutable).
class Pseudonyms {
 public:
  explicit Pseudonyms(std::string key) : key_(std::move(key)) {}
  // "c_" + the first 16 hex digits of HMAC-SHA256(key, id). Same key and id,
  // same pseudonym; another key, another one. Without a key: "c_unavailable"
  // (never the id itself).
  std::string Customer(std::string_view customer_id) const;
  // In its own domain ("m_" + 16 hex of HMAC-SHA256(key, "make_account:" +
  // id)), so equal customer and account ids do not get linkable pseudonyms.
  std::string Account(std::string_view make_account_id) const;
  bool has_key() const { return !key_.empty(); }
  size_t key_size() const { return key_.size(); }

 private:
  const std::string key_;
};

}  // namespace bpmc::identity
