// The shipped reverse-proxy front (deploy/nginx/bpmc.conf) started for real:
// Debian's nginx terminates TLS with a self-signed certificate in front of the
// bpmc-exporter and bpmc-receiver binaries. Checks what the file promises: TLS,
// whole requests only reach a backend (request buffering), slow and oversized
// bodies are cut by nginx, /metrics stays private.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "analytics/access.h"
#include "common/testing/temp_dir.h"
#include "nginx_front.h"
#include "testing/exporter_harness.h"
#include "testing/pg_cluster.h"
#include "testing/process.h"

namespace bpmc::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

bool Up(int port) {
  httplib::Client c("127.0.0.1", port);
  auto r = c.Get("/healthz");
  return r && r->status == 200;
}

class NginxFrontTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (access(kNginxBinary, X_OK) != 0) return;
    temp_dir_ = std::make_unique<TempDir>("bpmc-nginx");
    dir_ = temp_dir_->path();
    chmod(dir_.c_str(), 0755);
    db_ = std::make_unique<TestDatabase>(SharedCluster());

    exporter_port_ = FreePort();
    {
      pqxx::connection conn(db_->url);
      admin_ = *identity::CreateUser(conn, "nginx-admin", identity::Role::kAdmin, "");
    }
    // The exporter believes X-Forwarded-For from nginx (127.0.0.1) only.
    std::ofstream(dir_ + "/exporter.yaml") << "trusted_proxies: [127.0.0.1/32]\n";
    exporter_ = std::make_unique<Process>(std::vector<std::string>{
        BinPath("bpmc-exporter"), "serve", "--config", dir_ + "/exporter.yaml", "--listen",
        "127.0.0.1:" + std::to_string(exporter_port_), "--database-url", db_->url, "--data-dir",
        dir_ + "/exporter"});
    receiver_port_ = FreePort();
    std::ofstream(dir_ + "/receiver.yaml") << R"(
auth:
  bearer_tokens:
    - token_env: BPMC_NGINX_TOKEN
channels:
  ops-slack: {type: slack, url: "http://127.0.0.1:9/slack", rate_limit: none}
routes:
  - notify: [ops-slack]
)";
    receiver_ = std::make_unique<Process>(
        std::vector<std::string>{
            BinPath("bpmc-receiver"), "serve", "--config", dir_ + "/receiver.yaml", "--listen",
            "127.0.0.1:" + std::to_string(receiver_port_), "--database-url", db_->url},
        std::vector<std::string>{"BPMC_NGINX_TOKEN=nginx-token"});
    ASSERT_TRUE(WaitFor([] { return Up(exporter_port_) && Up(receiver_port_); }, 30s))
        << exporter_->Stderr() << receiver_->Stderr();

    std::string error;
    front_ = NginxFront::Start(dir_, {exporter_port_}, {receiver_port_}, &error);
    ASSERT_TRUE(front_) << error;
    tls_exporter_ = front_->exporter_port();
    tls_receiver_ = front_->receiver_port();
  }

  static void TearDownTestSuite() {
    front_.reset();
    for (auto* p : {&exporter_, &receiver_}) {
      if (*p) (*p)->Signal(SIGTERM);
      if (*p) (*p)->Wait(30s);
    }
    exporter_.reset();
    receiver_.reset();
    db_.reset();
    temp_dir_.reset();
  }

  void SetUp() override {
    if (access(kNginxBinary, X_OK) != 0) GTEST_SKIP() << kNginxBinary << " is not installed";
  }

  // "<status> <body>" of a request through curl over TLS, verifying the test CA.
  static std::string Curl(const std::string& url, const std::string& args = "") {
    return front_->Curl(url, args);
  }

  // Runs a python3 script with DIR, PORT set; returns its stdout.
  static std::string Python(const std::string& script, int port) {
    std::ofstream(dir_ + "/client.py") << script;
    std::string out;
    RunCommand("DIR='" + dir_ + "' PORT=" + std::to_string(port) + " python3 '" + dir_ +
                   "/client.py' 2>&1",
               &out);
    return out;
  }

  static double BackendRequests(int port) {
    httplib::Client c("127.0.0.1", port);
    auto r = c.Get("/metrics");
    double sum = 0;
    std::istringstream in(r ? r->body : "");
    for (std::string line; std::getline(in, line);)
      if (line.rfind("bpmc_http_requests_total", 0) == 0)  // the HTTP layer's: every route
        sum += std::stod(line.substr(line.rfind(' ') + 1));
    return sum;
  }

  static inline std::unique_ptr<TempDir> temp_dir_;  // the suite's files; dir_ is its path
  static inline std::string dir_, admin_;
  static inline std::unique_ptr<TestDatabase> db_;
  static inline std::unique_ptr<Process> exporter_, receiver_;
  static inline std::unique_ptr<NginxFront> front_;
  static inline int exporter_port_ = 0, receiver_port_ = 0, tls_exporter_ = 0, tls_receiver_ = 0;
};

TEST_F(NginxFrontTest, UsageEventsAndWebhooksThroughTls) {
  const std::string usage =
      Curl("https://127.0.0.1:" + std::to_string(tls_exporter_) + "/v1/connector/usage",
           "-X POST -H 'Authorization: Bearer " + db_->api_key +
               "' -H 'Content-Type: application/json' --data '" + SeedBody() + "'");
  EXPECT_EQ(usage.substr(0, 4), "201 ") << usage;
  EXPECT_EQ(db_->Rows(), 1);

  const std::string webhook =
      Curl("https://127.0.0.1:" + std::to_string(tls_receiver_) + "/v1/generic",
           "-X POST -H 'Authorization: Bearer nginx-token' -H 'Content-Type: application/json'"
           " --data '{\"summary\":\"через nginx\"}'");
  EXPECT_EQ(webhook.substr(0, 4), "200 ") << webhook;

  // Plain HTTP on the TLS port is refused; /metrics is not exposed.
  std::string out;
  RunCommand("curl -sS --max-time 5 -o /dev/null -w '%{http_code}' http://127.0.0.1:" +
                 std::to_string(tls_exporter_) + "/healthz 2>&1",
             &out);
  EXPECT_EQ(out, "400") << out;
  EXPECT_EQ(Curl("https://127.0.0.1:" + std::to_string(tls_exporter_) + "/metrics").substr(0, 4),
            "404 ");
}

TEST_F(NginxFrontTest, SlowAndOversizedBodiesNeverReachABackend) {
  const double before = BackendRequests(exporter_port_);
  // A body that stops after one byte: nginx drops it after client_body_timeout
  // (10 s); the exporter never sees the request.
  const std::string slow = Python(R"(
import os, socket, ssl, time
ctx = ssl.create_default_context(cafile=os.environ["DIR"] + "/bpmc.crt")
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(os.environ["PORT"]))),
                    server_hostname="127.0.0.1")
s.sendall(b"POST /v1/billing/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
          b"Content-Length: 1000\r\n\r\n{")
start = time.time()
s.settimeout(30)
data = b""
try:
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
except Exception as e:
    pass
print(round(time.time() - start), data.split(b"\r\n")[0].decode())
)",
                                  tls_exporter_);
  // nginx closes without an answer (it logs 408) once client_body_timeout passes.
  int seconds = -1;
  std::istringstream(slow) >> seconds;
  EXPECT_TRUE(seconds >= 9 && seconds <= 15) << "closed after: " << slow;
  EXPECT_NE(ReadTextFile(dir_ + "/access.log").find("\"POST /v1/billing/events HTTP/1.1\" 408 "),
            std::string::npos)
      << ReadTextFile(dir_ + "/access.log");
  // A body over client_max_body_size is refused from its Content-Length.
  const std::string big = Python(R"(
import os, socket, ssl
ctx = ssl.create_default_context(cafile=os.environ["DIR"] + "/bpmc.crt")
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(os.environ["PORT"]))),
                    server_hostname="127.0.0.1")
s.sendall(b"POST /v1/connector/usage/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 40000000\r\n\r\n")
s.settimeout(10)
print(s.recv(4096).split(b"\r\n")[0].decode())
)",
                                 tls_exporter_);
  EXPECT_NE(big.find("413"), std::string::npos) << big;
  // Only the /metrics reads of this test reached the exporter.
  EXPECT_EQ(BackendRequests(exporter_port_) - before, 1) << "a cut request reached the backend";
}

// The client's address reaches the audit log through nginx: nginx appends the
// peer (127.0.0.2 here) to X-Forwarded-For, and the exporter, which trusts only
// 127.0.0.1, records the rightmost address that is not a trusted proxy — not
// the address the client claims, not nginx's.
TEST_F(NginxFrontTest, TheAuditLogRecordsTheClientBehindTheProxy) {
  const std::string r =
      Curl("https://127.0.0.1:" + std::to_string(tls_exporter_) + "/api/v1/audit?limit=1",
           "--interface 127.0.0.2 -H 'Authorization: Bearer " + admin_ +
               "' -H 'X-Forwarded-For: 203.0.113.9'");
  EXPECT_EQ(r.substr(0, 4), "200 ") << r;
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM audit_log WHERE ip = '127.0.0.2'"), 1);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM audit_log WHERE ip <> '127.0.0.2'"), 0);
  // Straight to the exporter, a claimed X-Forwarded-For is not believed.
  std::string out;
  RunCommand("curl -sS -o /dev/null --interface 127.0.0.2 -H 'Authorization: Bearer " + admin_ +
                 "' -H 'X-Forwarded-For: 203.0.113.9' 'http://127.0.0.1:" +
                 std::to_string(exporter_port_) + "/api/v1/audit?limit=1'",
             &out);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM audit_log WHERE ip = '203.0.113.9'"), 0) << out;
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM audit_log WHERE ip = '127.0.0.2'"), 2) << out;
}

}  // namespace
}  // namespace bpmc::testing
