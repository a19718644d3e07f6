#pragma once
// The HTTP server of both binaries: CivetWeb behind one middleware chain.
//
// For every request, in this fixed order (docs/SECURITY.md, "HTTP layer:
// limits and slow clients"):
//   1. route match (404), method (405 + Allow)
//   2. concurrent requests of the client address <= max_requests_per_client
//      (429 + Retry-After, counted)
//   3. the route's authenticate function, from headers/query/address only,
//      before any body byte is read (401 + WWW-Authenticate, 503 + Retry-After)
//   4. Content-Type when the route requires JSON (415)
//   5. body limit from Content-Length (413 + Connection: close, nothing read),
//      then while reading; the request deadline checked between reads
//      (over it: 408 + Connection: close, counted as aborted{reason="deadline"});
//      a JSON route's body nested deeper than kMaxJsonDepth is 400 naming where
//   6. the handler
//   7. the audit hook (route, principal, client address, path, status); when it
//      cannot record an answer that would serve data, that answer becomes 503
//   8. metrics bpmc_http_requests_total{route,code} and the on_response hook
// A refused request's unread body is never read: CivetWeb then closes the
// connection instead of keeping it alive.

#include <prometheus/registry.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "http/route.h"

namespace bpmc::http {

struct ServerOptions {
  std::string listen = "127.0.0.1:0";  // HOST:PORT (IPv4)
  // CivetWeb worker threads: one per connection being served, including
  // connections still sending their headers. Sized so that hundreds of slow
  // clients cannot take them all (docs/SECURITY.md).
  int threads = 512;
  // The whole request (headers + body) must arrive within this. CivetWeb's
  // request_timeout_ms and keep_alive_timeout_ms are set to a quarter of it
  // (the header phase, counted from its start), the body gets half of it from
  // the end of the headers, and a read that started in time ends within the
  // last quarter (ReadBudget in server.cpp).
  int64_t request_deadline_ms = 10'000;
  // Requests of one client address being served at once (after the headers);
  // more get 429. 0: no cap.
  int max_requests_per_client = 32;
  // Peers whose X-Forwarded-For is believed (ClientAddress).
  std::vector<Cidr> trusted_proxies;
};

// What the audit hook is told about every answered request.
struct AuditEvent {
  std::string route;  // Route::name, or "other" for 404
  std::string method;
  std::string principal;       // "" when not authenticated
  std::string principal_id;    // AuthResult::principal_id
  std::string principal_role;  // AuthResult::principal_role
  std::string client_address;  // Request::remote_ip
  int status = 0;
  std::string path;    // without the query string
  std::string query;   // raw, without '?'
  std::string reason;  // X-Access-Reason, "" when absent
};

struct ServerHooks {
  // Called after every answered request (any status), on the worker thread.
  std::function<void(const std::string& route, int status)> on_response;
  // The audit hook (may be empty), called before the answer is sent (and
  // before metrics). It returns false when it could not record the request:
  // an answer below 400 then becomes 503 + Retry-After, so no data leaves
  // unaudited. Must not block for long.
  std::function<bool(const AuditEvent&)> audit;
};

class Server {
 public:
  // Starts listening. nullptr with *error ("listen: ...") when it cannot.
  // Registers bpmc_http_* metrics in `registry` (which must outlive the server).
  static std::unique_ptr<Server> Start(const ServerOptions& options, std::vector<Route> routes,
                                       ServerHooks hooks, prometheus::Registry& registry,
                                       std::string* error);
  ~Server();  // Close()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const;  // the bound port (listen port 0 picks one)
  // Stops accepting and waits for in-flight requests. Idempotent.
  void Close();

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// CivetWeb's request_timeout_ms for a request deadline (a quarter, at least 50 ms).
int64_t HeaderTimeoutMs(int64_t request_deadline_ms);

}  // namespace bpmc::http
