#include "webhook_receiver/auth.h"

#include "common/auth_header.h"
#include "common/ids.h"

namespace bpmc::webhook_receiver {
namespace {

bool BearerMatches(const AuthConfig& auth, std::string_view token) {
  bool ok = false;
  for (const std::string& t : auth.bearer_tokens) ok = ConstantTimeEquals(t, token) || ok;
  return ok;
}

bool BasicMatches(const AuthConfig& auth, std::string_view encoded) {
  std::string decoded;
  if (!Base64Decode(encoded, &decoded)) return false;
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos) return false;
  const std::string_view user = std::string_view(decoded).substr(0, colon);
  const std::string_view pass = std::string_view(decoded).substr(colon + 1);
  bool ok = false;
  for (const AuthConfig::BasicUser& u : auth.basic_users)
    ok = (ConstantTimeEquals(u.username, user) && ConstantTimeEquals(u.password, pass)) || ok;
  return ok;
}

}  // namespace

bool Base64Decode(std::string_view in, std::string* out) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return false;
  out->clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return true;
}

AuthResult Authenticate(const AuthConfig& auth, std::string_view authorization,
                        std::string_view query_token) {
  if (auth.insecure_no_auth) return AuthResult::kOk;
  if (auto token = AuthCredentials(authorization, "bearer")) {
    return BearerMatches(auth, *token) ? AuthResult::kOk : AuthResult::kInvalid;
  }
  if (auto encoded = AuthCredentials(authorization, "basic")) {
    return BasicMatches(auth, *encoded) ? AuthResult::kOk : AuthResult::kInvalid;
  }
  if (authorization.find_first_not_of(" \t\r\n") != std::string_view::npos) {
    return AuthResult::kInvalid;  // another scheme
  }
  if (auth.allow_query_token && !query_token.empty())
    return BearerMatches(auth, query_token) ? AuthResult::kOk : AuthResult::kInvalid;
  return AuthResult::kMissing;
}

}  // namespace bpmc::webhook_receiver
