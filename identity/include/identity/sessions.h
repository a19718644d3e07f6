#pragma once
// Logins of the console (docs/CONSOLE.md "Logins"): passwords hashed with
// argon2id (libsodium's crypto_pwhash_str), sessions as random ids in a cookie,
// a CSRF token bound to each session, and a growing delay after failed logins.
//
// Contract:
// - A password is stored only as an argon2id string (opslimit 2, 64 MiB: the
//   "interactive" parameters); at most kMaxConcurrentHashes are computed at once
//   per process, so a flood of logins cannot take the memory or the cores; past
//   that a login answers kUnavailable (503 + Retry-After) rather than queueing.
// - A session id carries 256 random bits; only its SHA-256 is stored
//   (`user_sessions.id_hash`). It ends at logout, after `idle` without a request,
//   after `lifetime` whatever happens, or when its user is disabled. Every node
//   sharing the database honours all four (UserDirectory looks sessions up; its
//   cache keeps a found session at most UserDirectory::kCacheTtl).
// - The CSRF token is derived from the session id (HMAC), never stored: it is
//   required on every state-changing request authenticated by the cookie.
// - Failed logins: an account's failures are counted in `users` (so every node
//   sees them), a client address's in memory; attempts are refused (kThrottled,
//   429 + Retry-After) until LoginDelay(failures) has passed since the last
//   failure, without looking at the password. A success resets the account's count.
//   Unknown names cost the same argon2id verification as known ones.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <pqxx/connection>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/clock.h"
#include "common/pg_pool.h"
#include "identity/users.h"

namespace bpmc::identity {

// The cookie that carries the session id.
inline constexpr std::string_view kSessionCookie = "bpmc_session";
// Passwords are 8..1024 bytes (longer ones would only cost hashing time).
inline constexpr size_t kMinPasswordBytes = 8;
inline constexpr size_t kMaxPasswordBytes = 1024;

// The value of the bpmc_session cookie in a Cookie header ("a=1; bpmc_session=x"),
// or "" when absent or not shaped like a session id. Pure.
std::string_view SessionIdFromCookie(std::string_view cookie_header);

// The CSRF token of a session: base64url(HMAC-SHA256(session_id, "csrf")). Pure.
std::string CsrfToken(std::string_view session_id);

// How long a client must wait after its `failures`-th consecutive failed login
// before the next attempt is looked at: none for the first 3, then 1 s doubling
// per failure, at most kMaxLoginDelay. Pure; table-tested.
inline constexpr std::chrono::seconds kMaxLoginDelay{900};
std::chrono::seconds LoginDelay(int failures);

// The argon2id string of `password` (throws std::runtime_error when libsodium
// cannot allocate), and its check (false for a malformed hash).
std::string HashPassword(std::string_view password);
bool VerifyPassword(std::string_view hash, std::string_view password);

// Sets a user's password (bpmc-exporter user set-password). False when no
// enabled user has that name. Ends the user's open sessions. Throws pqxx errors.
bool SetPassword(pqxx::connection& conn, const std::string& name, std::string_view password);

struct SessionPolicy {
  std::chrono::seconds idle{1800};       // console_session_idle_s
  std::chrono::seconds lifetime{43200};  // console_session_lifetime_s
};

struct LoginResult {
  enum class Outcome { kOk, kBadCredentials, kThrottled, kUnavailable };
  Outcome outcome = Outcome::kBadCredentials;
  Principal principal;     // kOk
  std::string session_id;  // kOk: goes in the cookie, never logged
  std::string csrf_token;  // kOk
  int retry_after_s = 0;   // kThrottled, kUnavailable
};

// Logins and logouts on `pool` (which must outlive it). Thread-safe.
class SessionStore {
 public:
  static constexpr int kMaxConcurrentHashes = 2;

  SessionStore(PgPool& pool, SessionPolicy policy, const Clock* clock = &SystemClock::Get());

  // Checks the name and password and opens a session. Never throws: a database
  // error is kUnavailable.
  LoginResult Login(std::string_view name, std::string_view password, const std::string& ip);
  // Ends the session (idempotent). False when the database could not be asked.
  bool Logout(std::string_view session_id);

  const SessionPolicy& policy() const { return policy_; }

 private:
  struct AddressFailures {
    int failures = 0;
    int64_t last_us = 0;
  };
  // Seconds the address must still wait (0: none).
  int AddressWait(const std::string& ip, int64_t now_us);
  void NoteAddress(const std::string& ip, bool ok, int64_t now_us);

  PgPool& pool_;
  const SessionPolicy policy_;
  const Clock* const clock_;
  const std::string dummy_hash_;  // verified for unknown names (same cost)
  std::mutex mu_;                 // guards the two below
  int hashing_ = 0;
  std::unordered_map<std::string, AddressFailures> addresses_;
};

}  // namespace bpmc::identity
