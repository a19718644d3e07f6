#include "exporter/api_keys.h"

#include <nlohmann/json.hpp>

#include <pqxx/pqxx>

#include <cstdio>
#include <fstream>

#include "common/ids.h"

namespace bpmc::exporter {
Directory::Directory(std::string database_url, std::string cache_path)
    : url_(std::move(database_url)),
      cache_path_(std::move(cache_path)),
      snapshot_(std::make_shared<Snapshot>()) {
  LoadCache();
}

void Directory::SaveCache(const Snapshot& snapshot) const {
  if (cache_path_.empty()) return;
  nlohmann::json j;
  j["keys"] = nlohmann::json::object();
  for (const auto& [hash, id] : snapshot.key_ids) j["keys"][HexEncode(hash)] = id;
  j["connectors"] = snapshot.connectors;
  const std::string tmp = cache_path_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump();
    if (!out) return;
  }
  std::rename(tmp.c_str(), cache_path_.c_str());
}

void Directory::LoadCache() {
  if (cache_path_.empty()) return;
  std::ifstream in(cache_path_);
  if (!in) return;
  auto snap = std::make_shared<Snapshot>();
  try {
    const nlohmann::json j = nlohmann::json::parse(in);
    for (const auto& [hex, id] : j.at("keys").items()) {
      std::string hash;
      for (size_t i = 0; i + 1 < hex.size(); i += 2)
        hash.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
      snap->key_ids.emplace(hash, id.get<std::string>());
    }
    for (const auto& c : j.at("connectors")) snap->connectors.insert(c.get<std::string>());
  } catch (const std::exception&) {
    return;  // a damaged cache is ignored; the database is the truth
  }
  std::lock_guard<std::mutex> lock(mu_);
  snapshot_ = std::move(snap);
  loaded_ = true;
}

std::shared_ptr<const Directory::Snapshot> Directory::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_;
}

bool Directory::Refresh() {
  std::lock_guard<std::mutex> refresh_lock(refresh_mu_);
  auto next = std::make_shared<Snapshot>();
  try {
    if (!conn_ || !conn_->is_open()) conn_ = std::make_unique<pqxx::connection>(url_);
    pqxx::read_transaction txn(*conn_);
    for (const auto& row : txn.exec("SELECT key_hash, id::text FROM api_keys WHERE revoked_at IS NULL")) {
      pqxx::binarystring hash(row[0]);
      next->key_ids.emplace(hash.str(), row[1].as<std::string>());
    }
    for (const auto& row : txn.exec("SELECT id FROM connectors"))
      next->connectors.insert(row[0].as<std::string>());
    txn.commit();
  } catch (const std::exception&) {
    conn_.reset();
    return false;
  }
  bool changed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    changed = snapshot_->key_ids != next->key_ids || snapshot_->connectors != next->connectors;
    snapshot_ = next;
  }
  loaded_ = true;
  if (changed) SaveCache(*next);
  return true;
}

void Directory::RefreshOnMiss() {
  {
    std::lock_guard<std::mutex> lock(refresh_mu_);
    const auto now = std::chrono::steady_clock::now();
    if (now - last_miss_refresh_ < std::chrono::milliseconds(200)) return;
    last_miss_refresh_ = now;
  }
  Refresh();
}

std::optional<std::string> Directory::ApiKeyId(std::string_view key) {
  const std::string hash = Sha256(key);
  for (int pass = 0; pass < 2; ++pass) {
    auto snap = Current();
    auto it = snap->key_ids.find(hash);
    if (it != snap->key_ids.end()) return it->second;
    if (pass == 0) RefreshOnMiss();
  }
  return std::nullopt;
}

bool Directory::ConnectorExists(std::string_view connector_id) {
  for (int pass = 0; pass < 2; ++pass) {
    if (Current()->connectors.count(connector_id)) return true;
    if (pass == 0) RefreshOnMiss();
  }
  return false;
}

std::string CreateApiKey(pqxx::connection& conn, const std::string& owner) {
  const std::string key = "bpmc_" + Base64UrlEncode(RandomBytes(32));
  pqxx::work txn(conn);
  txn.exec_params("INSERT INTO api_keys (owner, key_hash, key_prefix) VALUES ($1, $2, $3)", owner,
                  pqxx::binarystring(Sha256(key)), key.substr(0, 12));
  txn.commit();
  return key;
}

bool RevokeApiKey(pqxx::connection& conn, const std::string& key) {
  pqxx::work txn(conn);
  pqxx::result r = txn.exec_params(
      "UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1 AND revoked_at IS NULL",
      pqxx::binarystring(Sha256(key)));
  txn.commit();
  return r.affected_rows() > 0;
}

bool AddConnector(pqxx::connection& conn, const std::string& id, const std::string& name) {
  pqxx::work txn(conn);
  pqxx::result r = txn.exec_params(
      "INSERT INTO connectors (id, name) VALUES ($1, $2) "
      "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name RETURNING (xmax = 0)",
      id, name);
  txn.commit();
  return r[0][0].as<bool>();
}

}  // namespace bpmc::exporter
