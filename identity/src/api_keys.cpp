#include "identity/api_keys.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "common/ids.h"

namespace bpmc::identity {
Directory::Directory(std::string database_url, std::string cache_path)
    : url_(std::move(database_url)),
      cache_path_(std::move(cache_path)),
      snapshot_(std::make_shared<Snapshot>()) {
  LoadCache();
}

namespace {

// Writes `text` to `path` through a temporary file, fsync'd, renamed over it,
// and the directory fsync'd: after a crash the file is the old or the new one.
bool WriteFileDurably(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  const bool ok = done == text.size() && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return false;
  }
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return true;
}

bool IsBase64Url(std::string_view s) {
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

}  // namespace

void Directory::SaveCache() const {
  if (cache_path_.empty()) return;
  // Writes the newest snapshot, whoever asked: concurrent saves cannot leave an
  // older one last. Not under refresh_mu_: a slow fsync must not delay refreshes
  // (a revocation takes effect when the snapshot is swapped, before this).
  std::lock_guard<std::mutex> save_lock(save_mu_);
  const std::shared_ptr<const Snapshot> current = Current();
  const Snapshot& snapshot = *current;
  nlohmann::json j;
  j["keys"] = nlohmann::json::object();
  for (const auto& [hash, id] : snapshot.key_ids) j["keys"][HexEncode(hash)] = id;
  j["connectors"] = snapshot.connectors;
  WriteFileDurably(cache_path_, j.dump());
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
  std::unique_lock<std::mutex> refresh_lock(refresh_mu_);
  auto next = std::make_shared<Snapshot>();
  try {
    if (!conn_ || !conn_->is_open()) conn_ = std::make_unique<pqxx::connection>(url_);
    pqxx::read_transaction txn(*conn_);
    for (const auto& row :
         txn.exec("SELECT key_hash, id::text FROM api_keys WHERE revoked_at IS NULL")) {
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
  refresh_lock.unlock();
  if (changed) SaveCache();
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

bool LooksLikeSecret(std::string_view arg) {
  for (std::string_view scheme :
       {std::string_view("bpmc_"), std::string_view("bpmcp_"), std::string_view("bpmcu_")}) {
    if (arg.size() == scheme.size() + 43 && arg.substr(0, scheme.size()) == scheme &&
        IsBase64Url(arg.substr(scheme.size())))
      return true;
  }
  return false;
}

Revocation RevokeApiKeyByIdOrPrefix(pqxx::connection& conn, const std::string& id_or_prefix) {
  Revocation out{Revocation::Result::kBadArgument, {}, ""};
  if (LooksLikeSecret(id_or_prefix)) {
    out.message =
        "give the key's id or its 12-character prefix, not the key itself (a command "
        "line is visible to every user in ps); revoke this key now and use the prefix " +
        id_or_prefix.substr(0, kApiKeyPrefixChars);
    return out;
  }
  const std::optional<std::string> id = CanonicalUuid(id_or_prefix);
  if (!id && (id_or_prefix.size() != kApiKeyPrefixChars || id_or_prefix.rfind("bpmc_", 0) != 0)) {
    out.message =
        "expects an API key id (UUID) or a key prefix (bpmc_ + 7 characters, as "
        "`api-key create` prints it)";
    return out;
  }
  pqxx::work txn(conn);
  // The active keys it names, locked: a prefix naming several revokes none.
  const pqxx::result rows =
      id ? txn.exec_params(
               "SELECT id::text FROM api_keys WHERE id = $1::uuid AND revoked_at IS "
               "NULL FOR UPDATE",
               *id)
         : txn.exec_params(
               "SELECT id::text FROM api_keys WHERE key_prefix = $1 AND revoked_at IS "
               "NULL FOR UPDATE",
               id_or_prefix);
  if (rows.empty()) {
    out.result = Revocation::Result::kNotFound;
    out.message = "no active API key has this id or prefix";
    return out;
  }
  if (rows.size() > 1) {
    out.result = Revocation::Result::kAmbiguous;
    out.message = std::to_string(rows.size()) +
                  " active keys share this prefix; revoke by id (SELECT id, owner, created_at "
                  "FROM api_keys WHERE key_prefix = '...')";
    return out;
  }
  const std::string key_id = rows[0][0].as<std::string>();
  txn.exec_params("UPDATE api_keys SET revoked_at = now() WHERE id = $1::uuid", key_id);
  txn.commit();
  out.result = Revocation::Result::kRevoked;
  out.ids.push_back(key_id);
  return out;
}

Revocation RevokePlatformTokens(pqxx::connection& conn, const std::string& id_or_name) {
  Revocation out{Revocation::Result::kBadArgument, {}, ""};
  if (LooksLikeSecret(id_or_name)) {
    out.message =
        "give the token's id or name, not the token itself (a command line is visible "
        "to every user in ps); revoke this token now by its name";
    return out;
  }
  if (id_or_name.empty() || id_or_name.size() > 100) {
    out.message = "expects a platform token id (UUID) or name (1..100 characters)";
    return out;
  }
  const std::optional<std::string> id = CanonicalUuid(id_or_name);
  pqxx::work txn(conn);
  const pqxx::result rows =
      id ? txn.exec_params(
               "UPDATE platform_tokens SET revoked_at = now() WHERE id = $1::uuid AND "
               "revoked_at IS NULL RETURNING id::text",
               *id)
         : txn.exec_params(
               "UPDATE platform_tokens SET revoked_at = now() WHERE name = $1 AND "
               "revoked_at IS NULL RETURNING id::text",
               id_or_name);
  txn.commit();
  if (rows.empty()) {
    out.result = Revocation::Result::kNotFound;
    out.message = "no active platform token has this id or name";
    return out;
  }
  out.result = Revocation::Result::kRevoked;
  for (const auto& r : rows) out.ids.push_back(r[0].as<std::string>());
  return out;
}

bool ForgetCachedApiKeys(const std::string& cache_path, const std::vector<std::string>& key_ids) {
  if (::access(cache_path.c_str(), F_OK) != 0 && errno == ENOENT) return true;
  std::ifstream in(cache_path);
  if (!in) return false;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
    nlohmann::json& keys = j.at("keys");
    for (auto it = keys.begin(); it != keys.end();) {
      const bool revoked =
          std::find(key_ids.begin(), key_ids.end(), it.value().get<std::string>()) != key_ids.end();
      it = revoked ? keys.erase(it) : std::next(it);
    }
  } catch (const std::exception&) {
    return false;  // a damaged cache: the exporter ignores it anyway, but say so
  }
  return WriteFileDurably(cache_path, j.dump());
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

std::string CreatePlatformToken(pqxx::connection& conn, const std::string& name) {
  const std::string token = "bpmcp_" + Base64UrlEncode(RandomBytes(32));
  pqxx::work txn(conn);
  txn.exec_params("INSERT INTO platform_tokens (name, token_hash) VALUES ($1, $2)", name,
                  pqxx::binarystring(Sha256(token)));
  txn.commit();
  return token;
}

}  // namespace bpmc::identity
