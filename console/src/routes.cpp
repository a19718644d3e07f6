#include "console/routes.h"

#include <nlohmann/json.hpp>

#include "console/assets.h"
#include "http/types.h"

namespace bpmc::console {
namespace {

using identity::LoginResult;
using identity::Principal;
using identity::RequestAuth;

constexpr std::string_view kAssetsPrefix = "/console/";
constexpr std::string_view kReceiverPrefix = "/receiver";

// Every answer of the console: not stored by shared caches, never framed, and
// scripts only from this origin.
void AddSecurityHeaders(http::Response* r) {
  r->headers.emplace_back("X-Content-Type-Options", "nosniff");
  r->headers.emplace_back("X-Frame-Options", "DENY");
  r->headers.emplace_back("Referrer-Policy", "no-referrer");
  r->headers.emplace_back(
      "Content-Security-Policy",
      "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
      "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
      "form-action 'self'");
}

nlohmann::json UserJson(const Principal& p) {
  return {{"name", p.name},
          {"role", identity::RoleName(p.role)},
          {"customer",
           p.customer_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.customer_id)}};
}

http::Response Json(int status, const nlohmann::json& body) {
  http::Response r;
  r.status = status;
  r.body = body.dump();
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

class Console {
 public:
  explicit Console(ConsoleOptions o) : o_(std::move(o)) {}

  http::Response Asset(const http::Request& req) const {
    std::string_view name = std::string_view(req.path).substr(kAssetsPrefix.size());
    if (name.empty()) name = "index.html";
    const console::Asset* a = FindAsset(name);
    if (!a) return http::Error(404, "no such console file", "path");
    http::Response r;
    r.content_type = std::string(a->content_type);
    r.headers.emplace_back("ETag", std::string(a->etag));
    r.headers.emplace_back("Cache-Control", "no-cache");  // revalidated by ETag
    r.headers.emplace_back("Vary", "Accept-Encoding");
    AddSecurityHeaders(&r);
    if (req.Header("if-none-match") == a->etag) {
      r.status = 304;
      return r;
    }
    if (!a->gzip.empty() && req.Header("accept-encoding").find("gzip") != std::string::npos) {
      r.headers.emplace_back("Content-Encoding", "gzip");
      r.body = std::string(a->gzip);
    } else {
      r.body = std::string(a->body);
    }
    return r;
  }

  http::Response Login(const http::Request& req) const {
    const auto body = nlohmann::json::parse(req.body, nullptr, false);
    if (!body.is_object()) return http::Error(400, "body must be a JSON object", "");
    for (const auto& item : body.items()) {
      if (item.key() != "name" && item.key() != "password")
        return http::Error(400, "unknown key; expected name and password", "");
    }
    for (const char* key : {"name", "password"}) {
      if (!body.contains(key) || !body[key].is_string())
        return http::Error(400, std::string(key) + " must be a string", key);
    }
    const std::string name = body["name"].get<std::string>();
    const std::string password = body["password"].get<std::string>();
    if (name.empty() || name.size() > 100)
      return http::Error(400, "name must be 1 to 100 bytes", "name");
    if (password.size() > identity::kMaxPasswordBytes)
      return http::Error(400, "password must be at most 1024 bytes", "password");

    const LoginResult result = o_.sessions->Login(name, password, req.remote_ip);
    identity::AuditEntry entry = Entry(req);
    entry.params = {{"name", name}};
    http::Response r;
    switch (result.outcome) {
      case LoginResult::Outcome::kOk: {
        entry.actor = identity::AuditActor{result.principal.user_id, result.principal.name,
                                           identity::RoleName(result.principal.role)};
        r = Json(200, {{"user", UserJson(result.principal)}, {"csrf_token", result.csrf_token}});
        r.headers.emplace_back(
            "Set-Cookie", SessionCookie(result.session_id, o_.sessions->policy().lifetime.count(),
                                        o_.secure_cookie));
        break;
      }
      case LoginResult::Outcome::kBadCredentials:
        r = http::Error(401, "wrong name or password", "password");
        break;
      case LoginResult::Outcome::kThrottled:
        r = http::Error(429, "too many failed logins; wait before the next attempt", "name",
                        {{"Retry-After", std::to_string(result.retry_after_s)}});
        break;
      case LoginResult::Outcome::kUnavailable:
        Count("console_login");
        r = http::Error(503, "cannot check the login now; retry later", "",
                        {{"Retry-After", std::to_string(result.retry_after_s)}});
        break;
    }
    entry.allowed = r.status == 200;
    entry.status = r.status;
    if (!entry.allowed) entry.denial = "login refused: HTTP " + std::to_string(r.status);
    // A login that cannot be recorded does not happen: its session is ended.
    if (!o_.audit->Record(entry) && r.status == 200) {
      o_.sessions->Logout(result.session_id);
      return http::Error(503, "cannot record the login now; retry later", "",
                         {{"Retry-After", "5"}});
    }
    AddSecurityHeaders(&r);
    return r;
  }

  http::Response Session(const http::Request& req) const {
    Principal p;
    const RequestAuth found = o_.users->FindRequest(req, &p);
    if (found == RequestAuth::kError)
      return http::Error(503, "cannot check the session now; retry later", "",
                         {{"Retry-After", "5"}});
    if (found != RequestAuth::kFound) return http::Error(401, "not logged in", "Cookie");
    const std::string cookie = req.Header("cookie");
    const std::string_view id = identity::SessionIdFromCookie(cookie);
    nlohmann::json out = {{"user", UserJson(p)}};
    out["csrf_token"] =
        id.empty() ? nlohmann::json(nullptr) : nlohmann::json(identity::CsrfToken(id));
    return Json(200, out);
  }

  http::Response Logout(const http::Request& req) const {
    const std::string cookie = req.Header("cookie");
    const std::string_view id = identity::SessionIdFromCookie(cookie);
    if (id.empty()) return http::Error(400, "no console session to end", "Cookie");
    if (!o_.sessions->Logout(id)) {
      Count("console_logout");
      return http::Error(503, "cannot end the session now; retry later", "",
                         {{"Retry-After", "5"}});
    }
    o_.users->ForgetSession(id);
    identity::AuditEntry entry = Entry(req);
    entry.actor = identity::AuditActor{req.principal_id, req.principal, req.principal_role};
    entry.allowed = true;
    entry.status = 204;
    o_.audit->Record(entry);  // the session has ended either way
    http::Response r;
    r.status = 204;
    r.content_type.clear();
    r.headers.emplace_back("Set-Cookie", SessionCookie("", 0, o_.secure_cookie));
    r.headers.emplace_back("Cache-Control", "no-store");
    return r;
  }

  http::Response Forward(const http::Request& req) const {
    if (!ForwardablePath(req.path))
      return http::Error(404, "only /receiver/api/v1/... is forwarded to bpmc-receiver", "path");
    if (o_.receiver_url.empty() || !o_.http)
      return http::Error(503, "this exporter has no receiver_url: the receiver is not reachable",
                         "receiver_url");
    HttpRequest out;
    out.method = req.method;
    out.url = o_.receiver_url + req.path.substr(kReceiverPrefix.size());
    if (!req.query.empty()) out.url += "?" + req.query;
    for (const char* h : {"authorization", "x-csrf-token", "content-type", "accept",
                          "x-access-reason", "cache-control"}) {
      const std::string v = req.Header(h);
      if (!v.empty()) out.headers.emplace_back(h, v);
    }
    // Only the session goes on, never the origin's other cookies.
    const std::string cookie = req.Header("cookie");
    const std::string_view id = identity::SessionIdFromCookie(cookie);
    if (!id.empty())
      out.headers.emplace_back("Cookie",
                               std::string(identity::kSessionCookie) + "=" + std::string(id));
    out.headers.emplace_back("X-Forwarded-For", req.remote_ip);
    out.body = req.body;
    out.timeout = std::chrono::milliseconds(15000);
    const HttpResponse in = o_.http->Send(out);
    if (in.status == 0) {
      Count("receiver_forward");
      return http::Error(502, "bpmc-receiver did not answer: " + in.error, "receiver_url",
                         {{"Retry-After", "5"}});
    }
    http::Response r;
    r.status = in.status;
    r.content_type = in.Header("content-type");
    r.body = in.body;
    for (const char* h : {"content-disposition", "retry-after", "www-authenticate", "etag",
                          "cache-control", "location"}) {
      const std::string v = in.Header(h);
      if (!v.empty()) r.headers.emplace_back(h, v);
    }
    return r;
  }

 private:
  identity::AuditEntry Entry(const http::Request& req) const {
    identity::AuditEntry e;
    e.method = req.method;
    e.endpoint = req.path;
    e.ip = req.remote_ip;
    return e;
  }
  void Count(const std::string& reason) const {
    if (o_.count_failure) o_.count_failure(reason);
  }

  const ConsoleOptions o_;
};

}  // namespace

std::string SessionCookie(std::string_view session_id, int64_t max_age_s, bool secure) {
  std::string c = std::string(identity::kSessionCookie) + "=" + std::string(session_id) +
                  "; Path=/; Max-Age=" + std::to_string(session_id.empty() ? 0 : max_age_s) +
                  "; HttpOnly; SameSite=Strict";
  if (secure) c += "; Secure";
  return c;
}

bool ForwardablePath(std::string_view path) {
  constexpr std::string_view kApi = "/receiver/api/v1/";
  if (path.substr(0, kApi.size()) != kApi) return false;
  if (path.find_first_of("%\\") != std::string_view::npos) return false;
  std::string_view rest = path.substr(1);
  while (!rest.empty()) {
    const size_t slash = std::min(rest.find('/'), rest.size());
    const std::string_view segment = rest.substr(0, slash);
    if (segment.empty() || segment == "." || segment == "..") return false;
    rest.remove_prefix(std::min(slash + 1, rest.size()));
  }
  return path.back() != '/';
}

std::vector<http::Route> ConsoleRoutes(const ConsoleOptions& options) {
  auto console = std::make_shared<Console>(options);
  identity::UserDirectory* users = options.users;
  // A person's route: a bearer token or the session cookie (+ CSRF token for a
  // change), checked before any body byte.
  auto person = [users](const http::Request& req) {
    Principal p;
    return identity::AuthResultOf(users->FindRequest(req, &p), p, "bpmc-console");
  };
  std::vector<http::Route> out;
  out.push_back({"console",
                 "/console/",
                 true,
                 {"GET", "HEAD"},
                 http::Public(),
                 false,
                 0,
                 [console](const http::Request& r) { return console->Asset(r); },
                 nullptr});
  out.push_back({"console",
                 "/console",
                 false,
                 {"GET", "HEAD"},
                 http::Public(),
                 false,
                 0,
                 [](const http::Request&) {
                   http::Response r;
                   r.status = 308;
                   r.content_type.clear();
                   r.headers.emplace_back("Location", "/console/");
                   return r;
                 },
                 nullptr});
  out.push_back({"console_login",
                 "/console/api/login",
                 false,
                 {"POST"},
                 http::Public(),
                 true,
                 kMaxLoginBody,
                 [console](const http::Request& r) { return console->Login(r); },
                 nullptr});
  out.push_back({"console_session",
                 "/console/api/session",
                 false,
                 {"GET"},
                 http::Public(),
                 false,
                 0,
                 [console](const http::Request& r) { return console->Session(r); },
                 nullptr});
  out.push_back({"console_logout",
                 "/console/api/logout",
                 false,
                 {"POST"},
                 person,
                 false,
                 0,
                 [console](const http::Request& r) { return console->Logout(r); },
                 nullptr});
  out.push_back({"receiver",
                 std::string(kReceiverPrefix) + "/",
                 true,
                 {"GET", "POST", "PUT", "DELETE"},
                 person,
                 true,
                 kMaxForwardedBody,
                 [console](const http::Request& r) { return console->Forward(r); },
                 nullptr});
  return out;
}

}  // namespace bpmc::console
