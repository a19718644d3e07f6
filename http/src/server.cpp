// The only code of the project that touches CivetWeb (see server.h).
#include "http/server.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <dirent.h>
#include <netinet/in.h>
#include <prometheus/counter.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "common/json_depth.h"
#include "common/logging.h"

namespace bpmc::http {
namespace {

using SteadyClock = std::chrono::steady_clock;

// How long a refused request's unread body is read and dropped before the
// connection is closed (at most a quarter of the request deadline).
constexpr int64_t kLingerMs = 1000;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool HasHeader(const Response& r, std::string_view lowercase_name) {
  for (const auto& [k, v] : r.headers)
    if (Lower(k) == lowercase_name) return true;
  return false;
}

// Writes the whole response with ONE mg_write: a response written in parts
// stalls ~40 ms per request on keep-alive connections (Nagle + delayed ACK).
// A large body (/metrics: tens of MB) is not copied: the headers go with its
// first kInlineBodyBytes, the rest straight from the body in a second write;
// both are many segments long, so neither waits on a delayed ACK.
constexpr size_t kInlineBodyBytes = 256 * 1024;
// A streamed body (Response::stream) goes out chunked, one mg_write per piece
// with its chunk framing. Each piece is held until the next one comes, so the
// headers leave with the first piece and the final zero-length chunk with the
// last: no small write of its own.
// False when the stream threw: the answer is cut (no final chunk), and the
// caller closes the connection so the client sees it cut.
bool WriteStream(mg_connection* conn, std::string head, const Response& r) {
  std::string pending = std::move(head);
  bool alive = true;
  bool holding = false;  // pending holds a piece
  auto flush = [&] {
    if (alive && mg_write(conn, pending.data(), pending.size()) <= 0) alive = false;
    pending.clear();
  };
  try {
    r.stream([&](std::string_view piece) {
      if (piece.empty()) return alive;
      if (holding) flush();
      char size[24];
      const int n = std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
      pending.append(size, static_cast<size_t>(n)).append(piece).append("\r\n");
      holding = true;
      return alive;
    });
  } catch (const std::exception&) {
    return false;
  }
  pending.append("0\r\n\r\n");
  flush();
  return true;
}

// False when a streamed body failed midway (see WriteStream).
bool Write(mg_connection* conn, const Response& r) {
  std::string out;
  const size_t inline_bytes = std::min(r.body.size(), kInlineBodyBytes);
  out.reserve(192 + inline_bytes);
  out.append("HTTP/1.1 ").append(std::to_string(r.status)).append(" ");
  out.append(mg_get_response_code_text(conn, r.status));
  out.append("\r\nContent-Type: ").append(r.content_type);
  if (r.stream) {
    const mg_request_info* ri = mg_get_request_info(conn);
    if (ri != nullptr && ri->http_version != nullptr &&
        std::string_view(ri->http_version) == "1.0") {
      // HTTP/1.0 has no chunked encoding: the body is built whole for it.
      Response whole = r;
      whole.stream = nullptr;
      try {
        r.stream([&](std::string_view piece) {
          whole.body.append(piece);
          return true;
        });
      } catch (const std::exception&) {
        whole = Text(500, "cannot render this answer\n");
      }
      return Write(conn, whole);
    }
    out.append("\r\nTransfer-Encoding: chunked\r\nCache-Control: no-store\r\n");
    for (const auto& [k, v] : r.headers) out.append(k).append(": ").append(v).append("\r\n");
    out.append("\r\n");
    return WriteStream(conn, std::move(out), r);
  }
  out.append("\r\nContent-Length: ").append(std::to_string(r.body.size()));
  out.append("\r\nCache-Control: no-store\r\n");
  for (const auto& [k, v] : r.headers) out.append(k).append(": ").append(v).append("\r\n");
  out.append("\r\n");
  out.append(r.body, 0, inline_bytes);
  if (mg_write(conn, out.data(), out.size()) <= 0 || inline_bytes == r.body.size()) return true;
  mg_write(conn, r.body.data() + inline_bytes, r.body.size() - inline_bytes);
  return true;
}

// Makes CivetWeb close the connection after this request instead of reading
// (and discarding) the unread rest of its body, which would keep the worker
// for as long as the client trickles bytes. CivetWeb 1.15 offers no call for
// this; mg_send_http_error sets the connection's must_close flag and, for a
// status without a body (304) after our mg_write (request_state 10), sends
// nothing (its header functions refuse once data was written). Checked
// against civetweb 1.15 src/civetweb.c (mg_send_http_error_impl,
// handle_request) and by tests/http/server_test.cpp (WaitClosed).
void ForceClose(mg_connection* conn) { mg_send_http_error(conn, 304, "%s", ""); }

// Finds the socket of the connection from `peer` to local port `port` among
// this process's descriptors (CivetWeb does not expose it). -1 when gone.
int FindSocket(const std::string& peer, int peer_port, int port) {
  int found = -1;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  while (dirent* e = readdir(dir)) {
    const int fd = std::atoi(e->d_name);
    if (fd <= 2) continue;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    sockaddr_in local{}, remote{};
    socklen_t ll = sizeof local, rl = sizeof remote;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0 ||
        local.sin_family != AF_INET || ntohs(local.sin_port) != port)
      continue;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&remote), &rl) != 0 ||
        ntohs(remote.sin_port) != peer_port)
      continue;
    char text[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, &remote.sin_addr, text, sizeof text) && peer == text) {
      found = fd;
      break;
    }
  }
  closedir(dir);
  return found;
}

}  // namespace

int64_t HeaderTimeoutMs(int64_t request_deadline_ms) {
  return std::max<int64_t>(50, request_deadline_ms / 4);
}

struct Server::Impl {
  ServerOptions options;
  std::vector<Route> routes;
  ServerHooks hooks;
  mg_context* ctx = nullptr;

  prometheus::Family<prometheus::Counter>* requests = nullptr;
  prometheus::Counter* aborted_deadline = nullptr;
  prometheus::Counter* aborted_incomplete = nullptr;
  prometheus::Counter* client_limited = nullptr;
  // Its one series is added at the first failure: no line on /metrics before.
  prometheus::Family<prometheus::Counter>* stream_failures = nullptr;
  // bpmc_http_requests_total series by route index (routes.size() = "other")
  // and status 100..599, created on first use; lock-free afterwards.
  std::mutex metrics_mu;
  std::vector<std::array<std::atomic<prometheus::Counter*>, 500>> request_counters;

  // Requests in flight per client address, in kClientSlots counters indexed by
  // a hash of the address (no allocation per request, bounded memory whatever
  // addresses X-Forwarded-For brings). Two addresses sharing a slot share its
  // cap: with 65536 slots that needs many concurrent clients to matter.
  static constexpr size_t kClientSlots = 65536;
  std::unique_ptr<std::atomic<int>[]> in_flight { new std::atomic<int>[ kClientSlots ]() };

  // The deadline watchdog: a body read that is still running at its deadline
  // gets its socket shut for reading, so mg_read returns. (One mg_read waits
  // until it has all the bytes it asked for, however slowly they come.)
  struct Reading {
    SteadyClock::time_point deadline;
    std::string peer;
    int peer_port;
  };
  std::mutex watch_mu;
  std::condition_variable watch_cv;
  std::map<uint64_t, Reading> reading;
  uint64_t next_reading = 0;
  SteadyClock::time_point watch_wake;  // when the watchdog wakes next
  bool watch_stop = false;
  std::thread watchdog;
  int local_port = 0;

  uint64_t Watch(SteadyClock::time_point deadline, const std::string& peer, int peer_port) {
    std::lock_guard<std::mutex> lock(watch_mu);
    reading[++next_reading] = Reading{deadline, peer, peer_port};
    // Wake the watchdog only when it would sleep past this deadline (rare:
    // deadlines are at least 100 ms away and it wakes every 100 ms at most).
    if (deadline < watch_wake) watch_cv.notify_all();
    return next_reading;
  }
  void Unwatch(uint64_t id) {
    std::lock_guard<std::mutex> lock(watch_mu);  // waits while the watchdog shuts it
    reading.erase(id);
  }
  void WatchdogLoop() {
    std::unique_lock<std::mutex> lock(watch_mu);
    while (!watch_stop) {
      const auto now = SteadyClock::now();
      auto next = now + std::chrono::milliseconds(100);
      for (auto it = reading.begin(); it != reading.end();) {
        if (it->second.deadline <= now) {
          const int fd = FindSocket(it->second.peer, it->second.peer_port, local_port);
          if (fd >= 0) shutdown(fd, SHUT_RD);
          it = reading.erase(it);
        } else {
          next = std::min(next, it->second.deadline);
          ++it;
        }
      }
      watch_wake = next;
      watch_cv.wait_until(lock, next);
    }
  }

  void Register(prometheus::Registry& registry) {
    requests = &prometheus::BuildCounter()
                    .Name("bpmc_http_requests_total")
                    .Help("Answered HTTP requests by route and status code.")
                    .Register(registry);
    auto& aborted = prometheus::BuildCounter()
                        .Name("bpmc_http_requests_aborted_total")
                        .Help(
                            "Requests whose body did not arrive: past request_deadline_ms "
                            "(deadline) or cut short by the client (incomplete).")
                        .Register(registry);
    aborted_deadline = &aborted.Add({{"reason", "deadline"}});
    aborted_incomplete = &aborted.Add({{"reason", "incomplete"}});
    client_limited = &prometheus::BuildCounter()
                          .Name("bpmc_http_client_limit_refusals_total")
                          .Help(
                              "Requests answered 429 because their client address had "
                              "max_requests_per_client requests in flight.")
                          .Register(registry)
                          .Add({});
    stream_failures = &prometheus::BuildCounter()
                           .Name("bpmc_http_stream_failures_total")
                           .Help(
                               "Streamed answers (/metrics) cut because rendering failed midway; "
                               "their connection was closed.")
                           .Register(registry);
  }

  void CountRequest(size_t route_index, const std::string& route, int status) {
    if (status < 100 || status > 599) status = 500;
    std::atomic<prometheus::Counter*>& slot = request_counters[route_index][status - 100];
    prometheus::Counter* c = slot.load(std::memory_order_acquire);
    if (c == nullptr) {
      std::lock_guard<std::mutex> lock(metrics_mu);  // Family::Add returns an existing series
      c = &requests->Add({{"route", route}, {"code", std::to_string(status)}});
      slot.store(c, std::memory_order_release);
    }
    c->Increment();
  }

  std::atomic<int>& ClientSlot(const std::string& client) {
    return in_flight[std::hash<std::string>()(client) % kClientSlots];
  }
  bool Acquire(const std::string& client) {
    if (options.max_requests_per_client <= 0) return true;
    std::atomic<int>& n = ClientSlot(client);
    if (n.fetch_add(1, std::memory_order_acq_rel) >= options.max_requests_per_client) {
      n.fetch_sub(1, std::memory_order_acq_rel);
      return false;
    }
    return true;
  }
  void Release(const std::string& client) {
    if (options.max_requests_per_client <= 0) return;
    ClientSlot(client).fetch_sub(1, std::memory_order_acq_rel);
  }

  static int OnRequest(mg_connection* c, void* self) {
    static_cast<Impl*>(self)->Serve(c);
    return 1;
  }

  // What CivetWeb parsed of the request line and headers; no body byte is read.
  struct Head {
    Request request;
    bool chunked = false;
    int64_t content_length = 0;  // -1 when chunked
  };

  Head ReadHead(const mg_request_info* ri) const {
    Head h;
    Request& req = h.request;
    req.method = ri->request_method ? ri->request_method : "";
    req.path = ri->local_uri ? ri->local_uri : "";
    req.query = ri->query_string ? ri->query_string : "";
    req.peer_ip = ri->remote_addr;
    for (int i = 0; i < ri->num_headers; ++i)
      req.headers[Lower(ri->http_headers[i].name)] = ri->http_headers[i].value;
    req.remote_ip =
        ClientAddress(req.peer_ip, req.Header("x-forwarded-for"), options.trusted_proxies);
    h.chunked = Lower(req.Header("transfer-encoding")).find("chunked") != std::string::npos;
    h.content_length = h.chunked ? -1 : ri->content_length;
    return h;
  }

  void Serve(mg_connection* c) {
    const auto entry = SteadyClock::now();
    const mg_request_info* ri = mg_get_request_info(c);
    Head head = ReadHead(ri);
    Request& req = head.request;
    const Route* route = MatchRoute(routes, req.path);
    const std::string route_name = route ? route->name : "other";
    Response resp;
    bool body_consumed = !head.chunked && head.content_length <= 0;
    bool refused = true;  // answered by the middleware, not the handler
    if (!route) {
      resp = Error(404, "no such endpoint");
    } else if (!MethodAllowed(*route, req.method)) {
      resp = Error(405, "method not allowed", "", {{"Allow", AllowHeader(*route)}});
    } else if (!Acquire(req.remote_ip)) {
      client_limited->Increment();
      resp = Error(429, "too many concurrent requests from this address; retry later", "",
                   {{"Retry-After", "1"}});
    } else {
      resp = RunMiddleware(c, *route, head, entry, &body_consumed, &refused);
      Release(req.remote_ip);
    }
    if (!body_consumed && !HasHeader(resp, "connection"))
      resp.headers.emplace_back("Connection", "close");
    if (refused && route && route->on_refusal) route->on_refusal(req, resp);
    Audit(route_name, req, &resp);
    CountRequest(route ? static_cast<size_t>(route - routes.data()) : routes.size(), route_name,
                 resp.status);
    if (hooks.on_response) hooks.on_response(route_name, resp.status);
    if (!Write(c, resp)) {
      stream_failures->Add({}).Increment();
      ForceClose(c);
      return;
    }
    if (!body_consumed) DrainAndClose(c, ri);
  }

  // The middleware in its fixed order, then the handler: credentials (from headers, before
  // any body byte), content type, the body limit (none for GET/HEAD), reading the body,
  // JSON depth. Sets *refused = false only when the handler ran.
  Response RunMiddleware(mg_connection* c, const Route& route, Head& head,
                         SteadyClock::time_point entry, bool* body_consumed, bool* refused) {
    Request& req = head.request;
    // GET and HEAD carry no body whatever the route's limit.
    const bool bodiless = req.method == "GET" || req.method == "HEAD";
    const uint64_t limit = bodiless ? 0 : route.max_body_bytes;
    const bool has_body = head.chunked || head.content_length > 0;  // 415 only for a body
    const AuthResult auth = route.authenticate(req);
    if (auth.verdict == AuthResult::Verdict::kUnauthorized) {
      return Error(401, auth.message, "Authorization",
                   {{"WWW-Authenticate", auth.www_authenticate}});
    }
    if (auth.verdict == AuthResult::Verdict::kForbidden)
      return Error(403, auth.message, auth.field);
    if (auth.verdict == AuthResult::Verdict::kUnavailable) {
      return Error(503, auth.message, "", {{"Retry-After", std::to_string(auth.retry_after_s)}});
    }
    req.principal = auth.principal;
    req.principal_id = auth.principal_id;
    req.principal_role = auth.principal_role;
    if (route.require_json && has_body && !IsJsonContentType(req.Header("content-type"))) {
      return Error(415, "Content-Type must be application/json", "Content-Type");
    }
    if (!BodyAllowed(head.content_length, head.chunked, limit)) return TooLarge(limit);
    Response resp;
    if (limit > 0 && !*body_consumed &&
        !ReadBody(c, limit, entry, head.content_length, &req.body, &resp)) {
      return resp;  // the 413/408/400 ReadBody chose
    }
    *body_consumed = true;
    if (auto deep = route.require_json ? FindTooDeep(req.body) : std::nullopt) {
      // No handler sees JSON deeper than kMaxJsonDepth: nlohmann's dump, copy
      // and compare recurse per level on a ~100 KB stack.
      return Error(400,
                   "body nests JSON deeper than " + std::to_string(kMaxJsonDepth) + " levels at " +
                       (deep->empty() ? std::string("the top") : *deep),
                   *deep);
    }
    *refused = false;
    const ScopedLogFields log_fields({{"route", route.name}});  // what the handler logs
    try {
      return route.handler(req);
    } catch (const std::exception&) {
      return Error(500, "internal error");
    }
  }

  // The audit hook sees every answer; no data leaves unaudited: an answer that would
  // serve data becomes 503 when its audit record cannot be written.
  void Audit(const std::string& route_name, const Request& req, Response* resp) {
    if (!hooks.audit) return;
    AuditEvent e;
    e.route = route_name;
    e.method = req.method;
    e.principal = req.principal;
    e.principal_id = req.principal_id;
    e.principal_role = req.principal_role;
    e.client_address = req.remote_ip;
    e.status = resp->status;
    e.path = req.path;
    e.query = req.query;
    e.reason = req.Header("x-access-reason");
    if (!hooks.audit(e) && resp->status < 400) {
      *resp = Error(503, "cannot record this access in the audit log; retry later");
      resp->headers.emplace_back("Retry-After", "5");
    }
  }

  // A client that sends its body at once must still see the answer: closing with unread
  // bytes makes the kernel send RST, which can discard the answer before the client reads
  // it. So read and drop what comes within a short linger (no memory: a stack buffer),
  // then close.
  void DrainAndClose(mg_connection* c, const mg_request_info* ri) {
    const auto linger = std::chrono::milliseconds(
        std::min<int64_t>(kLingerMs, HeaderTimeoutMs(options.request_deadline_ms)));
    const uint64_t watch = Watch(SteadyClock::now() + linger, ri->remote_addr, ri->remote_port);
    char buf[16384];
    while (mg_read(c, buf, sizeof buf) > 0) {
    }
    Unwatch(watch);
    ForceClose(c);
  }

  static Response TooLarge(uint64_t limit) {
    return Error(413, "body is larger than " + std::to_string(limit) + " bytes", "",
                 {{"Connection", "close"}});
  }

  // Reads the body within the route's limit and the request deadline: the
  // body may take until the end of headers + deadline/2; each mg_read is
  // itself bounded by CivetWeb's request_timeout_ms (deadline/4), so a read
  // that starts in time ends in time. False with *error set when refused.
  bool ReadBody(mg_connection* c, uint64_t limit, SteadyClock::time_point entry,
                int64_t content_length, std::string* body, Response* error) {
    const auto budget_end = entry + std::chrono::milliseconds(options.request_deadline_ms / 2);
    const mg_request_info* ri = mg_get_request_info(c);
    const uint64_t watch = Watch(budget_end, ri->remote_addr, ri->remote_port);
    const bool ok = ReadBodyWatched(c, limit, budget_end, content_length, body, error);
    Unwatch(watch);
    return ok;
  }

  bool ReadBodyWatched(mg_connection* c, uint64_t limit, SteadyClock::time_point budget_end,
                       int64_t content_length, std::string* body, Response* error) {
    if (content_length > 0)
      body->reserve(
          static_cast<size_t>(std::min<uint64_t>(static_cast<uint64_t>(content_length), limit)));
    char buf[16384];
    for (;;) {
      if (SteadyClock::now() > budget_end) {
        aborted_deadline->Increment();
        *error = Error(408, "the request did not arrive within request_deadline_ms", "",
                       {{"Connection", "close"}});
        return false;
      }
      size_t want = sizeof buf;
      if (content_length >= 0)
        want = std::min<uint64_t>(want, static_cast<uint64_t>(content_length) - body->size());
      if (want == 0) return true;
      const int n = mg_read(c, buf, want);
      if (n <= 0) break;
      body->append(buf, static_cast<size_t>(n));
      if (body->size() > limit) {
        *error = TooLarge(limit);
        return false;
      }
    }
    if (content_length >= 0 && body->size() < static_cast<uint64_t>(content_length)) {
      if (SteadyClock::now() > budget_end) {
        aborted_deadline->Increment();
        *error = Error(408, "the request did not arrive within request_deadline_ms", "",
                       {{"Connection", "close"}});
      } else {
        aborted_incomplete->Increment();
        *error =
            Error(400, "the body ended before Content-Length bytes", "", {{"Connection", "close"}});
      }
      return false;
    }
    return true;
  }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() { Close(); }

std::unique_ptr<Server> Server::Start(const ServerOptions& options, std::vector<Route> routes,
                                      ServerHooks hooks, prometheus::Registry& registry,
                                      std::string* error) {
  for (const Route& r : routes) {
    if (!r.authenticate || !r.handler) {
      *error = "route " + r.name + ": authenticate and handler are required";
      return nullptr;
    }
  }
  static std::once_flag init_once;
  std::call_once(init_once, [] { mg_init_library(0); });
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->routes = std::move(routes);
  impl->request_counters =
      std::vector<std::array<std::atomic<prometheus::Counter*>, 500>>(impl->routes.size() + 1);
  impl->hooks = std::move(hooks);
  impl->Register(registry);
  const std::string header_timeout = std::to_string(HeaderTimeoutMs(options.request_deadline_ms));
  const std::string threads = std::to_string(options.threads);
  const char* argv[] = {"listening_ports",
                        options.listen.c_str(),
                        "num_threads",
                        threads.c_str(),
                        "tcp_nodelay",
                        "1",
                        "enable_keep_alive",
                        "yes",
                        "keep_alive_timeout_ms",
                        header_timeout.c_str(),
                        "request_timeout_ms",
                        header_timeout.c_str(),
                        "enable_auth_domain_check",
                        "no",
                        nullptr};
  mg_callbacks callbacks{};
  callbacks.log_message = [](const mg_connection*, const char*) { return 1; };  // quiet
  char errtxt[256] = "";
  mg_init_data init{};
  init.callbacks = &callbacks;
  init.user_data = impl.get();
  init.configuration_options = argv;
  mg_error_data err{};
  err.text = errtxt;
  err.text_buffer_size = sizeof errtxt;
  impl->ctx = mg_start2(&init, &err);
  if (!impl->ctx) {
    *error = "listen: cannot listen on " + options.listen + ": " + errtxt;
    return nullptr;
  }
  mg_server_port ports[1];
  if (mg_get_server_ports(impl->ctx, 1, ports) > 0) impl->local_port = ports[0].port;
  Impl* raw = impl.get();
  impl->watchdog = std::thread([raw] { raw->WatchdogLoop(); });
  // Credentials are each route's (Route::authenticate). Without an auth
  // handler CivetWeb looks for a password file on every request: a failing
  // stat("/.htpasswd") per request, seen with strace under load.
  mg_set_auth_handler(
      impl->ctx, "/", [](mg_connection*, void*) { return 1; }, nullptr);
  mg_set_request_handler(impl->ctx, "/", &Impl::OnRequest, impl.get());
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

int Server::port() const {
  if (!impl_->ctx) return 0;
  mg_server_port ports[4];
  const int n = mg_get_server_ports(impl_->ctx, 4, ports);
  return n > 0 ? ports[0].port : 0;
}

void Server::Close() {
  if (impl_ && impl_->ctx) {
    mg_stop(impl_->ctx);
    impl_->ctx = nullptr;
    {
      std::lock_guard<std::mutex> lock(impl_->watch_mu);
      impl_->watch_stop = true;
    }
    impl_->watch_cv.notify_all();
    if (impl_->watchdog.joinable()) impl_->watchdog.join();
  }
}

}  // namespace bpmc::http
