// bpmc::http::Server against raw sockets: the middleware order (credentials
// before any body byte, 413 before reading, GET with a body), the per-client
// cap, the request deadline (also CivetWeb's bound on the header phase),
// X-Forwarded-For, slow clients and memory. No database.
#include "http/server.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "http/route.h"
#include "httplib.h"
#include "raw_client.h"
#include "slow_clients.h"

namespace bpmc::http {
namespace {

using namespace std::chrono_literals;
using bpmc::testing::HeaderValue;
using bpmc::testing::RawConnection;
using Clock = std::chrono::steady_clock;

constexpr const char* kToken = "Bearer good";

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

AuthResult CheckToken(const Request& r) {
  if (r.Header("authorization") == kToken) return AuthResult::Ok("tester");
  if (r.Header("authorization") == "Bearer db-down")
    return AuthResult::Unavailable("cannot check now", 7);
  return AuthResult::Unauthorized("token required");
}

using bpmc::testing::SlowClients;

class ServerTest : public ::testing::Test {
 protected:
  void Start(ServerOptions options = {}) {
    std::vector<Route> routes;
    routes.push_back(
        {"echo",
         "/echo",
         false,
         {"POST"},
         CheckToken,
         true,
         1024,
         [this](const Request& r) {
           handled_++;
           Response out;
           out.body = r.body;
           return out;
         },
         [this](const Request&, const Response& resp) { refusals_.push_back(resp.status); }});
    routes.push_back({"read",
                      "/read",
                      false,
                      {"GET"},
                      CheckToken,
                      false,
                      0,
                      [this](const Request& r) {
                        handled_++;
                        Response out;
                        out.body = r.remote_ip + "|" + r.principal;
                        return out;
                      },
                      nullptr});
    routes.push_back({"block",
                      "/block",
                      false,
                      {"GET"},
                      Public(),
                      false,
                      0,
                      [this](const Request&) {
                        std::unique_lock<std::mutex> lock(mu_);
                        ++blocked_;
                        cv_.notify_all();
                        cv_.wait(lock, [&] { return release_; });
                        return Response{};
                      },
                      nullptr});
    ServerHooks hooks;
    hooks.audit = [this](const AuditEvent& e) {
      std::lock_guard<std::mutex> lock(mu_);
      audits_.push_back(e);
      return audit_ok_;
    };
    std::string error;
    server_ = Server::Start(options, std::move(routes), std::move(hooks), registry_, &error);
    ASSERT_TRUE(server_) << error;
    port_ = server_->port();
  }
  void TearDown() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      release_ = true;
    }
    cv_.notify_all();
    if (server_) server_->Close();
  }
  std::string Metrics() { return prometheus::TextSerializer().Serialize(registry_.Collect()); }

  prometheus::Registry registry_;
  std::unique_ptr<Server> server_;
  int port_ = 0;
  std::atomic<int> handled_{0};
  std::vector<int> refusals_;
  std::mutex mu_;
  std::condition_variable cv_;
  int blocked_ = 0;
  bool release_ = false;
  std::vector<AuditEvent> audits_;
  bool audit_ok_ = true;  // what the audit hook answers
};

TEST_F(ServerTest, UnauthenticatedHugeBodyIsRefusedBeforeAnyBodyByte) {
  Start();
  RawConnection c(port_);
  const auto t0 = Clock::now();
  // Announces 31 MB and sends none of it: the answer must not wait for the body.
  ASSERT_TRUE(
      c.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: 31000000\r\n\r\n"));
  std::string head, body;
  EXPECT_EQ(c.ReadResponse(2s, &head, &body), 401);
  EXPECT_LT(Ms(Clock::now() - t0), 1000);
  EXPECT_EQ(HeaderValue(head, "WWW-Authenticate"), "Bearer");
  EXPECT_EQ(HeaderValue(head, "Connection"), "close");
  EXPECT_EQ(body,
            R"({"error":"token required","message":"token required","field":"Authorization"})");
  EXPECT_TRUE(c.WaitClosed(2s));  // the unread body is never read: the connection ends
  EXPECT_EQ(handled_, 0);
  EXPECT_EQ(refusals_, std::vector<int>{401});
}

TEST_F(ServerTest, TooLargeContentLengthIs413BeforeReading) {
  Start();
  RawConnection c(port_);
  const auto t0 = Clock::now();
  ASSERT_TRUE(c.Send(std::string("POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: ") + kToken +
                     "\r\nContent-Type: application/json\r\nContent-Length: 1025\r\n\r\n"));
  std::string head;
  EXPECT_EQ(c.ReadResponse(2s, &head), 413);
  EXPECT_LT(Ms(Clock::now() - t0), 1000);
  EXPECT_EQ(HeaderValue(head, "Connection"), "close");
  EXPECT_TRUE(c.WaitClosed(2s));
  EXPECT_EQ(handled_, 0);
}

// A client that sends a too-large body at once still reads its 413 (the body is
// drained for a short linger, so closing does not reset the connection).
TEST_F(ServerTest, TooLargeBodySentAtOnceStillGetsItsAnswer) {
  Start();
  for (int i = 0; i < 5; ++i) {
    RawConnection c(port_);
    std::thread sender([&] {
      c.Send(std::string("POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: ") + kToken +
             "\r\nContent-Type: application/json\r\nContent-Length: 3000000\r\n\r\n" +
             std::string(3000000, ' '));
    });
    EXPECT_EQ(c.ReadResponse(5s), 413) << i;
    sender.join();
  }
}

TEST_F(ServerTest, ChunkedBodyOverTheLimitIs413WhileReading) {
  Start();
  RawConnection c(port_);
  std::string req = std::string("POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: ") + kToken +
                    "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) req += "200\r\n" + std::string(512, 'x') + "\r\n";
  req += "0\r\n\r\n";
  ASSERT_TRUE(c.Send(req));
  EXPECT_EQ(c.ReadResponse(2s), 413);
  EXPECT_EQ(handled_, 0);
}

// A JSON route never hands its handler JSON deeper than kMaxJsonDepth (the
// incidents, notices and on-call APIs parse with nlohmann, which recurses).
TEST_F(ServerTest, DeepJsonIsRefusedBeforeTheHandler) {
  Start();
  std::string deep = "{\"a\":";
  for (int i = 0; i < 200; ++i) deep += "[";
  for (int i = 0; i < 200; ++i) deep += "]";
  deep += "}";
  ASSERT_LT(deep.size(), 1024u);
  RawConnection c(port_);
  ASSERT_TRUE(c.Send(std::string("POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: ") + kToken +
                     "\r\nContent-Type: application/json\r\nContent-Length: " +
                     std::to_string(deep.size()) + "\r\n\r\n" + deep));
  std::string head;
  EXPECT_EQ(c.ReadResponse(2s, &head), 400);
  EXPECT_EQ(handled_, 0);
}

TEST_F(ServerTest, GetWithABodyIs413AndBodilessGetIsServed) {
  Start();
  {
    RawConnection c(port_);
    ASSERT_TRUE(c.Send(std::string("GET /read HTTP/1.1\r\nHost: x\r\nAuthorization: ") + kToken +
                       "\r\nContent-Length: 5\r\n\r\nhello"));
    EXPECT_EQ(c.ReadResponse(2s), 413);
  }
  RawConnection c(port_);
  ASSERT_TRUE(c.Send(std::string("GET /read HTTP/1.1\r\nHost: x\r\nAuthorization: ") + kToken +
                     "\r\n\r\n"));
  std::string body;
  EXPECT_EQ(c.ReadResponse(2s, nullptr, &body), 200);
  EXPECT_EQ(body, "127.0.0.1|tester");
}

TEST_F(ServerTest, MiddlewareOrderAndAnswers) {
  Start();
  struct Case {
    std::string request;
    int status;
    const char* header;  // a header the answer must carry
    const char* value;
  } cases[] = {
      {"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", 404, nullptr, nullptr},
      // 405 before credentials.
      {"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", 405, "Allow", "POST"},
      // 401 before the content type.
      {"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}",
       401, "WWW-Authenticate", "Bearer"},
      {"POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer db-down\r\nContent-Length: "
       "2\r\n\r\n{}",
       503, "Retry-After", "7"},
      // 415 before the body limit.
      {std::string("POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: ") + kToken +
           "\r\nContent-Type: text/plain\r\nContent-Length: 5000\r\n\r\n",
       415, nullptr, nullptr},
      {std::string("POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: ") + kToken +
           "\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
       200, nullptr, nullptr},
  };
  for (const Case& k : cases) {
    RawConnection c(port_);
    ASSERT_TRUE(c.Send(k.request));
    std::string head;
    EXPECT_EQ(c.ReadResponse(2s, &head), k.status) << k.request;
    if (k.header) EXPECT_EQ(HeaderValue(head, k.header), k.value) << k.request;
  }
  EXPECT_EQ(handled_, 1);
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_EQ(audits_.size(), 6u);
  EXPECT_EQ(audits_[0].route, "other");
  EXPECT_EQ(audits_[5].route, "echo");
  EXPECT_EQ(audits_[5].principal, "tester");
  EXPECT_EQ(audits_[5].client_address, "127.0.0.1");
  EXPECT_EQ(audits_[5].status, 200);
  EXPECT_EQ(audits_[5].path, "/echo");
  const std::string m = Metrics();
  EXPECT_NE(m.find(R"(bpmc_http_requests_total{code="415",route="echo"} 1)"), std::string::npos)
      << m;
}

// No data leaves unaudited: when the audit hook cannot record a request, an
// answer that would serve data becomes 503 + Retry-After; a refusal stays one.
TEST_F(ServerTest, AnUnrecordedAnswerBecomes503) {
  Start();
  {
    std::lock_guard<std::mutex> lock(mu_);
    audit_ok_ = false;
  }
  RawConnection ok(port_);
  ASSERT_TRUE(ok.Send(std::string("GET /read?x=1 HTTP/1.1\r\nHost: x\r\nAuthorization: ") + kToken +
                      "\r\nX-Access-Reason: ticket 7\r\n\r\n"));
  std::string head;
  EXPECT_EQ(ok.ReadResponse(2s, &head), 503);
  EXPECT_EQ(HeaderValue(head, "Retry-After"), "5");
  RawConnection refused(port_);
  ASSERT_TRUE(refused.Send("GET /read HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(refused.ReadResponse(2s, &head), 401);
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_EQ(audits_.size(), 2u);
  EXPECT_EQ(audits_[0].query, "x=1");
  EXPECT_EQ(audits_[0].reason, "ticket 7");
  EXPECT_EQ(audits_[0].status, 200);  // what it would have been
}

TEST_F(ServerTest, ForwardedForIsBelievedOnlyFromTrustedProxies) {
  ServerOptions o;
  o.trusted_proxies = {*ParseCidr("127.0.0.1/32")};
  Start(o);
  const std::string req = std::string("GET /read HTTP/1.1\r\nHost: x\r\nAuthorization: ") + kToken +
                          "\r\nX-Forwarded-For: 6.6.6.6, 198.51.100.7\r\n\r\n";
  std::string body;
  RawConnection trusted(port_, "127.0.0.1");
  ASSERT_TRUE(trusted.Send(req));
  EXPECT_EQ(trusted.ReadResponse(2s, nullptr, &body), 200);
  EXPECT_EQ(body, "198.51.100.7|tester");
  RawConnection untrusted(port_, "127.0.0.2");
  ASSERT_TRUE(untrusted.Send(req));
  EXPECT_EQ(untrusted.ReadResponse(2s, nullptr, &body), 200);
  EXPECT_EQ(body, "127.0.0.2|tester");
}

TEST_F(ServerTest, ConcurrentRequestsPerClientAreCapped) {
  ServerOptions o;
  o.max_requests_per_client = 3;
  Start(o);
  std::vector<std::unique_ptr<RawConnection>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<RawConnection>(port_, "127.0.0.2"));
    ASSERT_TRUE(held.back()->Send("GET /block HTTP/1.1\r\nHost: x\r\n\r\n"));
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    ASSERT_TRUE(cv_.wait_for(lock, 5s, [&] { return blocked_ == 3; }));
  }
  RawConnection fourth(port_, "127.0.0.2");
  ASSERT_TRUE(fourth.Send("GET /block HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string head;
  EXPECT_EQ(fourth.ReadResponse(2s, &head), 429);
  EXPECT_EQ(HeaderValue(head, "Retry-After"), "1");
  // Another address is not affected.
  RawConnection other(port_, "127.0.0.3");
  ASSERT_TRUE(other.Send(std::string("GET /read HTTP/1.1\r\nHost: x\r\nAuthorization: ") + kToken +
                         "\r\n\r\n"));
  EXPECT_EQ(other.ReadResponse(2s), 200);
  {
    std::lock_guard<std::mutex> lock(mu_);
    release_ = true;
  }
  cv_.notify_all();
  for (auto& c : held) EXPECT_EQ(c->ReadResponse(2s), 200);
  // The slots are free again.
  RawConnection again(port_, "127.0.0.2");
  ASSERT_TRUE(again.Send("GET /block HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(again.ReadResponse(2s), 200);
  EXPECT_NE(Metrics().find("bpmc_http_client_limit_refusals_total 1"), std::string::npos);
}

TEST_F(ServerTest, SlowBodyIsCutAtTheDeadline) {
  ServerOptions o;
  o.request_deadline_ms = 1000;
  Start(o);
  RawConnection c(port_);
  ASSERT_TRUE(c.Send(std::string("POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: ") + kToken +
                     "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"));
  const auto t0 = Clock::now();
  int status = 0;
  std::string head;
  for (int i = 0; i < 100 && status == 0; ++i) {  // a byte every 50 ms: 5 s for the body
    c.Send("x");
    status = c.ReadResponse(50ms, &head);
  }
  const double took = Ms(Clock::now() - t0);
  EXPECT_EQ(status, 408);
  EXPECT_EQ(HeaderValue(head, "Connection"), "close");
  EXPECT_LE(took, 1000 + 300) << "the body phase must end within the deadline";
  EXPECT_GE(took, 400);
  EXPECT_EQ(handled_, 0);
  EXPECT_NE(Metrics().find(R"(bpmc_http_requests_aborted_total{reason="deadline"} 1)"),
            std::string::npos);
}

// CivetWeb 1.15 bounds the header phase IN TOTAL by request_timeout_ms, counted
// from the request's start (read_message compares with conn->req_time): a
// client that keeps sending a header byte every 50 ms is still cut off.
TEST_F(ServerTest, SlowHeadersAreCutByCivetWebInTotal) {
  ServerOptions o;
  o.request_deadline_ms = 2000;  // header phase: 500 ms
  Start(o);
  RawConnection c(port_, "127.0.0.2");
  const std::string req = "GET /read HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(200, 'p');
  const auto t0 = Clock::now();
  bool closed = false;
  for (size_t i = 0; i < req.size() && !closed; ++i) {
    if (!c.Send(req.substr(i, 1))) break;
    closed = c.WaitClosed(50ms);
  }
  if (!closed) closed = c.WaitClosed(2s);
  const double took = Ms(Clock::now() - t0);
  EXPECT_TRUE(closed);
  EXPECT_LT(took, 500 + 700) << "header phase took " << took << " ms";
  EXPECT_GE(took, 400);
  EXPECT_EQ(handled_, 0);
}

// 200 clients from 127.0.0.2 send their headers a byte a second; requests
// from 127.0.0.1 keep their usual latency.
TEST_F(ServerTest, SlowClientsDoNotStarveOthers) {
  Start();  // defaults: 512 workers, 10 s deadline
  auto measure = [&](int n) {
    std::vector<double> ms;
    for (int i = 0; i < n; ++i) {
      RawConnection c(port_);
      const auto t0 = Clock::now();
      c.Send(std::string("POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: ") + kToken +
             "\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
      const int status = c.ReadResponse(5s);
      ms.push_back(status == 200 ? Ms(Clock::now() - t0) : 5000.0);
    }
    return ms;
  };
  const double before = bpmc::testing::Percentile(measure(200), 99);
  SlowClients slow(port_, 200, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n");
  std::this_thread::sleep_for(1500ms);  // every slow client holds a worker now
  const std::vector<double> during_ms = measure(200);
  const double during = bpmc::testing::Percentile(during_ms, 99);
  slow.Stop();
  std::printf(
      "[ slow clients ] p99 of a valid request: %.2f ms without, %.2f ms with 200 slow "
      "connections\n",
      before, during);
  EXPECT_LT(during, 1000) << "valid requests starved";
  EXPECT_EQ(*std::max_element(during_ms.begin(), during_ms.end()) < 5000.0, true);
}

}  // namespace
}  // namespace bpmc::http

namespace bpmc::http {
namespace {

// /metrics is streamed (issue 17 §5): pieces of ~64 KB sent chunked as they
// are written, never the whole body at once; a client reads it whole, and the
// keep-alive connection serves the next request.
TEST(MetricsStreamTest, TheBodyArrivesWholeInChunksAndTheConnectionStaysUsable) {
  prometheus::Registry registry;
  std::string expected;
  for (int i = 0; i < 400; ++i)
    expected += "line_" + std::to_string(i) + " " + std::string(1000, 'x') + "\n";
  int renders = 0;
  std::vector<Route> routes = OperationalRoutes(
      registry, [] { return true; },
      [&](ExpositionSink& out) {
        ++renders;
        for (size_t p = 0; p < expected.size(); p += 1001) {
          out.buf()->append(expected, p, 1001);
          out.Checkpoint();
        }
      });
  std::string error;
  auto server = Server::Start({}, std::move(routes), {}, registry, &error);
  ASSERT_TRUE(server) << error;
  httplib::Client client("127.0.0.1", server->port());
  for (int round = 0; round < 2; ++round) {
    auto r = client.Get("/metrics");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("Transfer-Encoding"), "chunked");
    EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_EQ(r->body, expected);
  }
  auto h = client.Get("/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->body, "ok\n");
  // HTTP/1.0 knows no chunks: the body comes whole, with its length.
  bpmc::testing::RawConnection raw(server->port());
  ASSERT_TRUE(raw.Send("GET /metrics HTTP/1.0\r\n\r\n"));
  std::string head, body;
  EXPECT_EQ(raw.ReadResponse(std::chrono::seconds(10), &head, &body), 200);
  EXPECT_EQ(bpmc::testing::HeaderValue(head, "Content-Length"), std::to_string(expected.size()));
  EXPECT_EQ(body, expected);
  EXPECT_EQ(renders, 3);
}

// A renderer that fails midway: the answer is cut (no final chunk, the
// connection closed), counted, and the server serves the next request.
TEST(MetricsStreamTest, ARenderThatThrowsCutsTheAnswerAndIsCounted) {
  prometheus::Registry registry;
  std::vector<Route> routes = OperationalRoutes(
      registry, [] { return true; },
      [](ExpositionSink& out) {
        for (int i = 0; i < 3; ++i) {
          out.buf()->append(ExpositionSink::kChunkBytes, 'x');
          out.Checkpoint();
        }
        throw std::runtime_error("render failed");
      });
  std::string error;
  auto server = Server::Start({}, std::move(routes), {}, registry, &error);
  ASSERT_TRUE(server) << error;
  {
    httplib::Client client("127.0.0.1", server->port());
    client.set_read_timeout(5, 0);
    auto r = client.Get("/metrics");
    // The client sees a read error, not a complete 200.
    EXPECT_FALSE(r) << "a cut answer must not look complete: " << (r ? r->body.size() : 0);
  }
  const std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_NE(text.find("bpmc_http_stream_failures_total 1"), std::string::npos) << text;
  httplib::Client again("127.0.0.1", server->port());
  auto h = again.Get("/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->body, "ok\n");
}

}  // namespace
}  // namespace bpmc::http
