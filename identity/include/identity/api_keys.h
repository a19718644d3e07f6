#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <pqxx/connection>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace bpmc::identity {

// What the request path needs to know from the database, cached in memory:
// the active API keys (by SHA-256 of the key) and the connector ids.
//
// Refresh() reloads both; the server calls it every `key_refresh_ms`, so a
// revoked key is refused within that time. A lookup that misses refreshes at
// once (at most every 200 ms), so a key or connector created a moment ago
// works immediately. While PostgreSQL is unreachable the last snapshot stays
// in use. Thread-safe; lookups take a shared snapshot without blocking.
//
// With a `cache_path`, each loaded snapshot (key hashes, key ids, connector
// ids: no secrets) is also written there (atomically, fsync'd, whenever it
// changed), and read back at construction, so an exporter restarted while
// PostgreSQL is down still accepts known keys. `api-key revoke` removes the
// revoked key from the cache of its --data-dir at once (ForgetCachedApiKeys).
class Directory {
 public:
  explicit Directory(std::string database_url, std::string cache_path = "");

  // Reloads from PostgreSQL. Returns false (snapshot kept) on failure.
  bool Refresh();

  // The api_keys.id of an active key, or nullopt.
  std::optional<std::string> ApiKeyId(std::string_view key);
  bool ConnectorExists(std::string_view connector_id);

  bool loaded() const { return loaded_.load(); }

 private:
  struct Snapshot {
    std::unordered_map<std::string, std::string> key_ids;  // sha256 -> id
    std::set<std::string, std::less<>> connectors;
  };
  std::shared_ptr<const Snapshot> Current() const;
  void RefreshOnMiss();
  void SaveCache() const;
  void LoadCache();

  const std::string url_;
  const std::string cache_path_;
  mutable std::mutex mu_;  // guards snapshot_ and conn_
  std::shared_ptr<const Snapshot> snapshot_;
  std::unique_ptr<pqxx::connection> conn_;
  std::mutex refresh_mu_;
  mutable std::mutex save_mu_;  // one cache write at a time
  std::chrono::steady_clock::time_point last_miss_refresh_{};
  std::atomic<bool> loaded_{false};
};

// Administrative operations of the command line.
// A new key "bpmc_" + 43 base64url characters (256 random bits); only its
// SHA-256 is stored. Returns the key.
std::string CreateApiKey(pqxx::connection& conn, const std::string& owner);
// Marks the key revoked; returns false when no active key matches. For tests
// and programs holding the key; the command line revokes by id or prefix.
bool RevokeApiKey(pqxx::connection& conn, const std::string& key);

// The first 12 characters of a key ("bpmc_" + 7): stored as api_keys.key_prefix
// and printed by `api-key create`, enough to pick a key out of a list.
inline constexpr size_t kApiKeyPrefixChars = 12;

// Pure: whether a command-line argument looks like a whole API key ("bpmc_" +
// 43) or platform token ("bpmcp_" + 43): such secrets must not be passed on a
// command line (every user sees it in `ps`), so the CLI refuses them.
bool LooksLikeSecret(std::string_view arg);

struct Revocation {
  enum class Result { kRevoked, kNotFound, kAmbiguous, kBadArgument } result;
  std::vector<std::string> ids;  // the revoked rows' ids
  std::string message;           // for the operator when not kRevoked
};
// Revokes the active API key whose api_keys.id (a UUID) or key_prefix (exactly
// 12 characters) is `id_or_prefix`. A prefix matching several active keys
// revokes none (kAmbiguous: use the id).
Revocation RevokeApiKeyByIdOrPrefix(pqxx::connection& conn, const std::string& id_or_prefix);
// Revokes the active platform token with this id (UUID), or every active token
// of this name (`platform-token create NAME`).
// A new platform token "bpmcp_" + 43 base64url characters (256 random bits)
// named `name`; only its SHA-256 is stored. Returns the token.
std::string CreatePlatformToken(pqxx::connection& conn, const std::string& name);

Revocation RevokePlatformTokens(pqxx::connection& conn, const std::string& id_or_name);

// Removes the keys with these ids from a Directory cache file (directory.json),
// rewritten atomically and fsync'd. Returns false when the file exists but
// cannot be rewritten; true when it was rewritten or does not exist. So an
// exporter restarted with this data dir while PostgreSQL is down refuses them.
bool ForgetCachedApiKeys(const std::string& cache_path, const std::vector<std::string>& key_ids);
// Inserts or renames a connector; returns true when it was new.
bool AddConnector(pqxx::connection& conn, const std::string& id, const std::string& name);

}  // namespace bpmc::identity
