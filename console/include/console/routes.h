#pragma once
// The console's server side (docs/CONSOLE.md), served by bpmc-exporter at one
// origin so a browser needs no CORS and one cookie:
//
//   GET  /console/...             the page and its assets (assets.h), public
//   POST /console/api/login       {"name","password"} -> a session cookie and its CSRF token
//   GET  /console/api/session     who is logged in, and the CSRF token
//   POST /console/api/logout      ends the session (X-CSRF-Token required)
//   *    /receiver/api/v1/...     bpmc-receiver's APIs, forwarded to `receiver_url`
//
// Logins, failures and logouts are written to audit_log like every data access.
// The analytics and audit APIs accept the session cookie themselves
// (identity::UserDirectory::FindRequest); the receiver checks the forwarded
// cookie and CSRF token against the same database, and audits its answers.

#include <functional>
#include <string>
#include <vector>

#include "common/http_client.h"
#include "http/route.h"
#include "identity/audit.h"
#include "identity/sessions.h"
#include "identity/users.h"

namespace bpmc::console {

struct ConsoleOptions {
  identity::UserDirectory* users = nullptr;               // required
  identity::SessionStore* sessions = nullptr;             // required
  identity::AuditLog* audit = nullptr;                    // required
  HttpClient* http = nullptr;                             // required when receiver_url is set
  std::string receiver_url;                               // "" = /receiver/ answers 503
  bool secure_cookie = false;                             // add `Secure` to the cookie (behind TLS)
  std::function<void(const std::string&)> count_failure;  // may be empty
};

// Largest body of a login and of a forwarded receiver request.
inline constexpr uint64_t kMaxLoginBody = 4096;
inline constexpr uint64_t kMaxForwardedBody = 64 * 1024;

// The routes above. The pointers in `options` must outlive them.
std::vector<http::Route> ConsoleRoutes(const ConsoleOptions& options);

// The Set-Cookie value of a new session (`max_age_s` > 0) or of a logout
// (`session_id` empty: expires the cookie). Pure.
std::string SessionCookie(std::string_view session_id, int64_t max_age_s, bool secure);

// Whether a path under /receiver/ may be forwarded: "/receiver/api/v1/..."
// without empty, "." or ".." segments and without '%' or '\'. Pure.
bool ForwardablePath(std::string_view path);

}  // namespace bpmc::console
