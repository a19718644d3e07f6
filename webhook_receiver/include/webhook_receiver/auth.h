#pragma once

#include <string>
#include <string_view>

#include "webhook_receiver/config.h"

namespace bpmc::webhook_receiver {

enum class AuthResult {
  kOk,       // a configured credential matched (or auth is disabled)
  kMissing,  // no credential at all -> 401 with WWW-Authenticate
  kInvalid,  // a credential that matches none -> 401
};

// Checks a request's credentials: `authorization` is the Authorization header
// ("Bearer <token>" or "Basic <base64 user:password>", scheme case-insensitive),
// `query_token` the ?token= value (used only with allow_query_token).
// Comparisons take the same time whatever the mismatch. Pure and thread-safe.
AuthResult Authenticate(const AuthConfig& auth, std::string_view authorization,
                        std::string_view query_token);

// Standard base64 (RFC 4648 section 4, padding optional) -> bytes, or false on bad input.
bool Base64Decode(std::string_view in, std::string* out);

}  // namespace bpmc::webhook_receiver
