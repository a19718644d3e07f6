#include "identity/sessions.h"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <pqxx/pqxx>
#include <stdexcept>

#include "common/ids.h"
#include "common/pii.h"

namespace bpmc::identity {
namespace {

constexpr size_t kSessionIdChars = 43;  // base64url of 32 bytes
constexpr size_t kMaxTrackedAddresses = 10000;
constexpr size_t kMaxNameBytes = 100;

void InitSodium() {
  static const int ok = sodium_init();
  if (ok < 0) throw std::runtime_error("libsodium cannot be initialised");
}

bool IsBase64UrlChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

// Releases a hashing slot when it leaves scope.
class HashSlot {
 public:
  HashSlot(std::mutex& mu, int& in_use, int max) : mu_(mu), in_use_(in_use) {
    std::lock_guard<std::mutex> lock(mu_);
    if (in_use_ < max) {
      ++in_use_;
      held_ = true;
    }
  }
  ~HashSlot() {
    if (!held_) return;
    std::lock_guard<std::mutex> lock(mu_);
    --in_use_;
  }
  HashSlot(const HashSlot&) = delete;
  HashSlot& operator=(const HashSlot&) = delete;
  bool held() const { return held_; }

 private:
  std::mutex& mu_;
  int& in_use_;
  bool held_ = false;
};

}  // namespace

std::string_view SessionIdFromCookie(std::string_view header) {
  while (!header.empty()) {
    const size_t end = std::min(header.find(';'), header.size());
    std::string_view pair = header.substr(0, end);
    header.remove_prefix(std::min(end + 1, header.size()));
    while (!pair.empty() && (pair.front() == ' ' || pair.front() == '\t')) pair.remove_prefix(1);
    while (!pair.empty() && (pair.back() == ' ' || pair.back() == '\t')) pair.remove_suffix(1);
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos || pair.substr(0, eq) != kSessionCookie) continue;
    std::string_view value = pair.substr(eq + 1);
    if (value.size() != kSessionIdChars) return {};
    if (!std::all_of(value.begin(), value.end(), IsBase64UrlChar)) return {};
    return value;
  }
  return {};
}

std::string CsrfToken(std::string_view session_id) {
  return Base64UrlEncode(HmacSha256(session_id, "csrf"));
}

std::chrono::seconds LoginDelay(int failures) {
  if (failures < 3) return std::chrono::seconds(0);
  const int doublings = failures - 3;
  if (doublings >= 10) return kMaxLoginDelay;  // 2^10 s > 900 s
  return std::min(std::chrono::seconds(int64_t{1} << doublings), kMaxLoginDelay);
}

std::string HashPassword(std::string_view password) {
  InitSodium();
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(),
                            crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    throw std::runtime_error("cannot hash the password (out of memory)");
  }
  return out;
}

bool VerifyPassword(std::string_view hash, std::string_view password) {
  InitSodium();
  if (hash.empty() || hash.size() >= crypto_pwhash_STRBYTES) return false;
  const std::string h(hash);  // NUL-terminated
  return crypto_pwhash_str_verify(h.c_str(), password.data(), password.size()) == 0;
}

bool SetPassword(pqxx::connection& conn, const std::string& name, std::string_view password) {
  const std::string hash = HashPassword(password);
  pqxx::work txn(conn);
  const pqxx::result r = txn.exec_params(
      "UPDATE users SET password_hash = $2, failed_logins = 0, last_failed_login_at = NULL "
      "WHERE name = $1 AND disabled_at IS NULL RETURNING id",
      name, hash);
  if (r.empty()) return false;
  txn.exec_params(
      "UPDATE user_sessions SET ended_at = now() WHERE user_id = $1::uuid AND ended_at IS NULL",
      r[0][0].c_str());
  txn.commit();
  return true;
}

SessionStore::SessionStore(PgPool& pool, SessionPolicy policy, const Clock* clock)
    : pool_(pool),
      policy_(policy),
      clock_(clock),
      dummy_hash_(HashPassword(Base64UrlEncode(RandomBytes(16)))) {}

int SessionStore::AddressWait(const std::string& ip, int64_t now_us) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = addresses_.find(ip);
  if (it == addresses_.end()) return 0;
  const int64_t until = it->second.last_us + LoginDelay(it->second.failures).count() * 1000000;
  if (until <= now_us) return 0;
  return static_cast<int>((until - now_us + 999999) / 1000000);
}

void SessionStore::NoteAddress(const std::string& ip, bool ok, int64_t now_us) {
  std::lock_guard<std::mutex> lock(mu_);
  if (ok) {
    addresses_.erase(ip);
    return;
  }
  if (addresses_.size() >= kMaxTrackedAddresses && !addresses_.count(ip)) addresses_.clear();
  AddressFailures& f = addresses_[ip];
  ++f.failures;
  f.last_us = now_us;
}

LoginResult SessionStore::Login(std::string_view name, std::string_view password,
                                const std::string& ip) {
  LoginResult out;
  const int64_t now_us = clock_->NowMicros();
  if (const int wait = AddressWait(ip, now_us); wait > 0) {
    out.outcome = LoginResult::Outcome::kThrottled;
    out.retry_after_s = wait;
    return out;
  }
  if (name.empty() || name.size() > kMaxNameBytes || password.size() > kMaxPasswordBytes) {
    NoteAddress(ip, false, now_us);
    return out;  // kBadCredentials
  }
  try {
    // Who, and whether the account must still wait: one short transaction.
    std::string user_id, hash;
    Principal p;
    {
      auto lease = pool_.Acquire();
      try {
        pqxx::work txn(*lease);
        const pqxx::result r = txn.exec_params(
            "SELECT id::text, name, role, COALESCE(customer_id, ''), COALESCE(password_hash, ''), "
            "failed_logins, COALESCE(EXTRACT(EPOCH FROM now() - last_failed_login_at), 0)::float8 "
            "FROM users WHERE name = $1 AND disabled_at IS NULL",
            std::string(name));
        txn.commit();
        if (!r.empty()) {
          const auto role = ParseRole(r[0][2].c_str());
          const int failures = r[0][5].as<int>();
          const double since = r[0][6].as<double>();
          const double wait = static_cast<double>(LoginDelay(failures).count()) - since;
          if (wait > 0) {
            out.outcome = LoginResult::Outcome::kThrottled;
            out.retry_after_s = static_cast<int>(wait) + 1;
            return out;
          }
          if (role) {
            user_id = r[0][0].c_str();
            p = Principal{user_id, r[0][1].c_str(), *role, r[0][3].c_str()};
            hash = r[0][4].c_str();
          }
        }
      } catch (...) {
        lease.MarkBroken();
        throw;
      }
    }
    // The slow part, outside any transaction, at most kMaxConcurrentHashes at once.
    HashSlot slot(mu_, hashing_, kMaxConcurrentHashes);
    if (!slot.held()) {
      out.outcome = LoginResult::Outcome::kUnavailable;
      out.retry_after_s = 1;
      return out;
    }
    // Unknown names and users without a password cost the same verification.
    const bool ok = VerifyPassword(hash.empty() ? dummy_hash_ : hash, password) && !hash.empty() &&
                    !user_id.empty();
    auto lease = pool_.Acquire();
    try {
      pqxx::work txn(*lease);
      if (!ok) {
        if (!user_id.empty()) {
          txn.exec_params(
              "UPDATE users SET failed_logins = failed_logins + 1, last_failed_login_at = now() "
              "WHERE id = $1::uuid",
              user_id);
        }
        txn.commit();
        NoteAddress(ip, false, now_us);
        return out;  // kBadCredentials
      }
      const std::string session_id = Base64UrlEncode(RandomBytes(32));
      txn.exec_params(
          "UPDATE users SET failed_logins = 0, last_failed_login_at = NULL WHERE id = $1::uuid",
          user_id);
      // Sessions that ended or expired are of no use to anyone: dropped here.
      txn.exec_params(
          "DELETE FROM user_sessions WHERE user_id = $1::uuid AND (ended_at IS NOT NULL OR "
          "expires_at < now() OR last_seen_at + idle_timeout < now())",
          user_id);
      txn.exec_params(
          "INSERT INTO user_sessions (id_hash, user_id, expires_at, idle_timeout, ip) "
          "VALUES ($1, $2::uuid, now() + make_interval(secs => $3), make_interval(secs => $4), "
          "$5)",
          pqxx::binarystring(Sha256(session_id)), user_id,
          static_cast<double>(policy_.lifetime.count()), static_cast<double>(policy_.idle.count()),
          ip.substr(0, 64));
      txn.commit();
      NoteAddress(ip, true, now_us);
      out.outcome = LoginResult::Outcome::kOk;
      out.principal = std::move(p);
      out.csrf_token = CsrfToken(session_id);
      out.session_id = session_id;
      return out;
    } catch (...) {
      lease.MarkBroken();
      throw;
    }
  } catch (const std::exception& e) {
    spdlog::warn("cannot check a console login: {}", ScrubPii(e.what()));
    out.outcome = LoginResult::Outcome::kUnavailable;
    out.retry_after_s = 5;
    return out;
  }
}

bool SessionStore::Logout(std::string_view session_id) {
  try {
    InPooledTransaction(pool_, [&](pqxx::work& txn) {
      return txn.exec_params(
          "UPDATE user_sessions SET ended_at = now() WHERE id_hash = $1 AND ended_at IS NULL",
          pqxx::binarystring(Sha256(session_id)));
    });
    return true;
  } catch (const std::exception& e) {
    spdlog::warn("cannot end a console session: {}", ScrubPii(e.what()));
    return false;
  }
}

}  // namespace bpmc::identity
