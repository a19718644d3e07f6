#include "http/route.h"

#include <cctype>

#include "http/endpoint.h"
#include "http/exposition.h"
#include "prometheus/registry.h"

namespace bpmc::http {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

}  // namespace

std::vector<Route> OperationalRoutes(const prometheus::Registry& registry,
                                     std::function<bool()> ready, MetricsRenderer render) {
  auto route = [](std::string name, std::string path, Handler handler) {
    Route r;
    r.name = std::move(name);
    r.path = std::move(path);
    r.methods = {"GET"};
    r.authenticate = Public();
    r.handler = std::move(handler);
    return r;
  };
  std::vector<Route> out;
  if (!render) {
    render = [&registry](ExpositionSink& sink) { AppendExposition(registry.Collect(), sink); };
  }
  // Streamed: the body is written in pieces of ~64 KB into one small buffer
  // and each piece sent as it is full, never built whole.
  out.push_back(route("metrics", "/metrics", [render](const Request&) {
    Response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.stream = [render](const std::function<bool(std::string_view)>& write) {
      std::string buf;
      buf.reserve(ExpositionSink::kChunkBytes + 16 * 1024);
      ExpositionSink sink(&buf, write);
      render(sink);
      sink.Finish();
    };
    return r;
  }));
  out.push_back(route("healthz", "/healthz", [](const Request&) { return Text(200, "ok\n"); }));
  out.push_back(route("readyz", "/readyz", [ready = std::move(ready)](const Request&) {
    const bool ok = ready();
    return Text(ok ? 200 : 503, ok ? "ready\n" : "not ready\n");
  }));
  return out;
}

AuthResult AuthResult::Ok(std::string principal, std::string id, std::string role) {
  AuthResult r;
  r.verdict = Verdict::kOk;
  r.principal = std::move(principal);
  r.principal_id = std::move(id);
  r.principal_role = std::move(role);
  return r;
}

AuthResult AuthResult::Unauthorized(std::string message, std::string www_authenticate) {
  AuthResult r;
  r.verdict = Verdict::kUnauthorized;
  r.message = std::move(message);
  r.www_authenticate = std::move(www_authenticate);
  return r;
}

AuthResult AuthResult::Forbidden(std::string message, std::string field) {
  AuthResult r;
  r.verdict = Verdict::kForbidden;
  r.message = std::move(message);
  r.field = std::move(field);
  return r;
}

AuthResult AuthResult::Unavailable(std::string message, int retry_after_s) {
  AuthResult r;
  r.verdict = Verdict::kUnavailable;
  r.message = std::move(message);
  r.retry_after_s = retry_after_s;
  return r;
}

Authenticator Public() {
  return [](const Request&) { return AuthResult::Ok(""); };
}

const Route* MatchRoute(const std::vector<Route>& routes, std::string_view path) {
  const Route* best = nullptr;
  for (const Route& r : routes) {
    if (!r.prefix) {
      if (path == r.path) return &r;
    } else if (path.substr(0, r.path.size()) == r.path &&
               (best == nullptr || r.path.size() > best->path.size())) {
      best = &r;
    }
  }
  return best;
}

bool MethodAllowed(const Route& route, std::string_view method) {
  for (const std::string& m : route.methods)
    if (m == method) return true;
  return false;
}

std::string AllowHeader(const Route& route) {
  std::string out;
  for (const std::string& m : route.methods) out += (out.empty() ? "" : ", ") + m;
  return out;
}

bool IsJsonContentType(std::string_view ct) {
  ct = Trim(ct);
  const size_t semi = ct.find(';');
  return IEquals(Trim(ct.substr(0, semi)), "application/json");
}

bool BodyAllowed(int64_t content_length, bool chunked, uint64_t max_body_bytes) {
  if (max_body_bytes == 0) return !chunked && content_length <= 0;
  return chunked || content_length < 0 || static_cast<uint64_t>(content_length) <= max_body_bytes;
}

std::optional<uint32_t> ParseIpv4(std::string_view text) {
  uint32_t out = 0;
  int parts = 0;
  while (parts < 4) {
    size_t i = 0;
    uint32_t octet = 0;
    while (i < text.size() && i < 4 && text[i] >= '0' && text[i] <= '9')
      octet = octet * 10 + static_cast<uint32_t>(text[i++] - '0');
    if (i == 0 || i > 3 || octet > 255 || (i > 1 && text[0] == '0')) return std::nullopt;
    out = (out << 8) | octet;
    text.remove_prefix(i);
    ++parts;
    if (parts < 4) {
      if (text.empty() || text.front() != '.') return std::nullopt;
      text.remove_prefix(1);
    }
  }
  if (!text.empty()) return std::nullopt;
  return out;
}

std::optional<Cidr> ParseCidr(std::string_view text) {
  text = Trim(text);
  const size_t slash = text.find('/');
  const auto address = ParseIpv4(text.substr(0, slash));
  if (!address) return std::nullopt;
  int bits = 32;
  if (slash != std::string_view::npos) {
    const std::string_view b = text.substr(slash + 1);
    if (b.empty() || b.size() > 2) return std::nullopt;
    bits = 0;
    for (char c : b) {
      if (c < '0' || c > '9') return std::nullopt;
      bits = bits * 10 + (c - '0');
    }
    if (bits > 32) return std::nullopt;
  }
  Cidr c;
  c.mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  c.network = *address & c.mask;
  return c;
}

bool InAny(const std::vector<Cidr>& networks, std::string_view address) {
  const auto a = ParseIpv4(Trim(address));
  if (!a) return false;
  for (const Cidr& n : networks)
    if ((*a & n.mask) == n.network) return true;
  return false;
}

std::string ClientAddress(std::string_view peer, std::string_view xff,
                          const std::vector<Cidr>& trusted) {
  if (trusted.empty() || Trim(xff).empty() || !InAny(trusted, peer)) return std::string(peer);
  // Walk right to left; the first address that is not a trusted proxy is the client.
  std::string_view leftmost;
  while (true) {
    const size_t comma = xff.rfind(',');
    const std::string_view entry =
        Trim(comma == std::string_view::npos ? xff : xff.substr(comma + 1));
    if (!ParseIpv4(entry)) return std::string(peer);  // malformed: believe nothing
    if (!InAny(trusted, entry)) return std::string(entry);
    leftmost = entry;
    if (comma == std::string_view::npos) break;
    xff = xff.substr(0, comma);
  }
  return std::string(leftmost);
}

std::optional<std::pair<std::string, std::string>> CheckServerKeys(
    int request_deadline_ms, int max_requests_per_client,
    const std::vector<std::string>& trusted_proxies) {
  if (request_deadline_ms < 200 || request_deadline_ms > 600000)
    return std::make_pair(std::string("request_deadline_ms"),
                          std::string("must be between 200 and 600000"));
  if (max_requests_per_client < 0 || max_requests_per_client > 100000)
    return std::make_pair(std::string("max_requests_per_client"),
                          std::string("must be between 0 (no cap) and 100000"));
  for (size_t i = 0; i < trusted_proxies.size(); ++i)
    if (!ParseCidr(trusted_proxies[i]))
      return std::make_pair("trusted_proxies[" + std::to_string(i) + "]",
                            "must be an IPv4 address or CIDR, got '" + trusted_proxies[i] + "'");
  return std::nullopt;
}

}  // namespace bpmc::http

namespace bpmc::http {

AuthResult Endpoint::Authenticate(const Request&) {
  return AuthResult::Unauthorized("this route accepts no credentials");
}

void Endpoint::OnRefusal(const Request&, const Response&) {}

}  // namespace bpmc::http
