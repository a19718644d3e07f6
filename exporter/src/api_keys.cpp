#include "exporter/api_keys.h"

#include <pqxx/pqxx>

#include "common/ids.h"

namespace bpmc::exporter {
namespace {

std::string Base64Url(std::string_view bytes) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 0x3f]);
  return out;
}

}  // namespace

Directory::Directory(std::string database_url)
    : url_(std::move(database_url)), snapshot_(std::make_shared<Snapshot>()) {}

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
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_ = std::move(next);
  }
  loaded_ = true;
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
  const std::string key = "bpmc_" + Base64Url(RandomBytes(32));
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
