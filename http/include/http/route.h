#pragma once
// The route table of bpmc::http and its pure decisions (table-tested in
// tests/http/route_test.cpp).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/exposition.h"
#include "http/types.h"

namespace prometheus {
class Registry;
}

namespace bpmc::http {

// What a route's authenticate function decided from the headers, the query
// string and the client address alone (the body has not been read).
struct AuthResult {
  enum class Verdict { kOk, kUnauthorized, kForbidden, kUnavailable };
  Verdict verdict = Verdict::kUnauthorized;
  std::string principal;                    // kOk: who (a name for the audit hook; never a secret)
  std::string message;                      // not kOk: the error message
  std::string field;                        // kForbidden: the header or field to blame
  std::string www_authenticate = "Bearer";  // kUnauthorized: WWW-Authenticate value
  int retry_after_s = 5;                    // kUnavailable: Retry-After seconds

  std::string principal_id;    // kOk: a stable id of who, for the audit hook ("" when none)
  std::string principal_role;  // kOk: their role, for the audit hook ("" when none)

  static AuthResult Ok(std::string principal, std::string id = "", std::string role = "");
  static AuthResult Unauthorized(std::string message, std::string www_authenticate = "Bearer");
  // Known credentials that may not do this (403), e.g. a missing CSRF token.
  static AuthResult Forbidden(std::string message, std::string field);
  // Credentials cannot be checked now (e.g. the database is down): 503 + Retry-After.
  static AuthResult Unavailable(std::string message, int retry_after_s = 5);
};

// Sees a Request whose body is empty (never read yet). Thread-safe.
using Authenticator = std::function<AuthResult(const Request&)>;
using Handler = std::function<Response(const Request&)>;

// An authenticator for public routes (/healthz, /metrics, signed links that a
// handler checks itself): always Ok with principal "".
Authenticator Public();

struct Route {
  std::string name;     // fixed, short: the `route` label of metrics and the audit hook
  std::string path;     // exact path, or a prefix when `prefix`
  bool prefix = false;  // serve every path starting with `path`
  std::vector<std::string> methods;  // allowed methods; others get 405 with Allow
  Authenticator authenticate;        // required (use Public() for public routes)
  bool require_json = false;         // 415 unless Content-Type is application/json
  // Largest body accepted. 0: no body at all (a Content-Length > 0 or a chunked
  // body is 413). Checked against Content-Length before reading and while reading.
  uint64_t max_body_bytes = 0;
  Handler handler;  // required; never throws (the server answers 500 if it does)
  // Called when the middleware answered the request before the handler ran
  // (405, 429, 401, 503, 415, 413, 408, 400 for a cut body), with the request
  // as far as it was read (no body); may be empty. For routes that count or
  // audit their own refusals (the receiver's webhook results, the exporter's
  // audit log).
  std::function<void(const Request& request, const Response& response)> on_refusal;
};

// The operational routes every binary serves, public and GET-only:
//   /metrics  the registry in the Prometheus text format (0.0.4), streamed
//             (Transfer-Encoding: chunked, pieces of ~64 KB: never built whole);
//   /healthz  200 "ok" while the process answers at all (liveness);
//   /readyz   200 "ready" when `ready()` is true, else 503 "not ready" (readiness: a load
//             balancer stops sending work, nobody restarts the process).
// `registry` must outlive the routes; `ready` is called on request threads.
// `render` writes the /metrics body instead of the registry alone (the
// exporter's IngestMetrics writes its high-cardinality families itself and
// the registry's around them); empty: the registry (AppendExposition).
std::vector<Route> OperationalRoutes(const prometheus::Registry& registry,
                                     std::function<bool()> ready, MetricsRenderer render = {});

// The route serving `path`: an exact route first, else the longest prefix
// route; nullptr when none.
const Route* MatchRoute(const std::vector<Route>& routes, std::string_view path);

bool MethodAllowed(const Route& route, std::string_view method);
// "GET, POST": the Allow header of a 405.
std::string AllowHeader(const Route& route);

// True for "application/json", case-insensitively, optionally followed by
// parameters ("application/json; charset=utf-8"); false for anything else,
// including "application/jsonx" and "".
bool IsJsonContentType(std::string_view content_type);

// The body limit decided from what the headers announce, before reading.
// content_length is -1 when unknown (chunked). Returns true when the request
// may proceed to reading (which checks the limit again as bytes arrive).
bool BodyAllowed(int64_t content_length, bool chunked, uint64_t max_body_bytes);

// An IPv4 network (IPv6 is not supported by the packaged CivetWeb).
struct Cidr {
  uint32_t network = 0;  // host byte order, host bits zero
  uint32_t mask = 0;
};
// "10.0.0.0/8", "127.0.0.1" (= /32). nullopt when malformed.
std::optional<Cidr> ParseCidr(std::string_view text);

// The HTTP-layer keys both binaries' configs share: the first invalid one as
// {key, message} ("trusted_proxies[1]", ...), or nullopt. request_deadline_ms
// 200..600000, max_requests_per_client 0..100000, trusted_proxies IPv4
// addresses or CIDRs. Pure.
std::optional<std::pair<std::string, std::string>> CheckServerKeys(
    int request_deadline_ms, int max_requests_per_client,
    const std::vector<std::string>& trusted_proxies);
// A dotted IPv4 address in host byte order; nullopt when malformed.
std::optional<uint32_t> ParseIpv4(std::string_view text);
bool InAny(const std::vector<Cidr>& networks, std::string_view address);

// The client address of a request. X-Forwarded-For is believed only when the
// TCP peer is a trusted proxy: then the rightmost address of the header that
// is not itself a trusted proxy is the client (addresses left of it can be
// forged by the client). When every listed address is trusted, the leftmost
// one; when the header is missing or an entry is malformed, the peer.
std::string ClientAddress(std::string_view peer, std::string_view x_forwarded_for,
                          const std::vector<Cidr>& trusted_proxies);

}  // namespace bpmc::http
