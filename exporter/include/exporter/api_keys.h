#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include <pqxx/connection>

namespace bpmc::exporter {

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
// ids: no secrets) is also written there, and read back at construction, so
// an exporter restarted while PostgreSQL is down still accepts known keys.
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
  void SaveCache(const Snapshot& snapshot) const;
  void LoadCache();

  const std::string url_;
  const std::string cache_path_;
  mutable std::mutex mu_;  // guards snapshot_ and conn_
  std::shared_ptr<const Snapshot> snapshot_;
  std::unique_ptr<pqxx::connection> conn_;
  std::mutex refresh_mu_;
  std::chrono::steady_clock::time_point last_miss_refresh_{};
  std::atomic<bool> loaded_{false};
};

// Administrative operations of the command line.
// A new key "bpmc_" + 43 base64url characters (256 random bits); only its
// SHA-256 is stored. Returns the key.
std::string CreateApiKey(pqxx::connection& conn, const std::string& owner);
// Marks the key revoked; returns false when no active key matches.
bool RevokeApiKey(pqxx::connection& conn, const std::string& key);
// Inserts or renames a connector; returns true when it was new.
bool AddConnector(pqxx::connection& conn, const std::string& id, const std::string& name);

}  // namespace bpmc::exporter
