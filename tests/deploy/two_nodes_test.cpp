// Two bpmc-exporter and two bpmc-receiver processes on one PostgreSQL, behind
// one address: the shipped nginx front (deploy/nginx/bpmc.conf) with two
// servers in each upstream (docs/SCALING.md "Several nodes behind one
// address"). Under load through nginx, one exporter and then one receiver are
// killed with SIGKILL; clients retry what failed, as the seed's client and
// Alertmanager do. Checks that nothing acknowledged is lost and nobody is paged
// twice: every event is stored once, every alert reaches the paging peer under
// one Idempotency-Key (a repeat delivery of the message in flight at the kill
// carries the same key, so a destination that honours it pages once).
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "common/testing/temp_dir.h"
#include "nginx_front.h"
#include "recorders/http_recorder.h"
#include "testing/exporter_harness.h"
#include "testing/pg_cluster.h"
#include "testing/process.h"

namespace bpmc::testing {
namespace {

using namespace std::chrono_literals;

bool Up(int port, const std::string& path) {
  httplib::Client c("127.0.0.1", port);
  auto r = c.Get(path);
  return r && r->status == 200;
}

// A load client in python3 (ssl + http.client, one keep-alive connection per
// thread): POSTs each body of BODIES (a JSON array of [path, body]) through
// nginx, retrying on anything but 200/201 (a 502 while a backend dies, a reset)
// with the same body, as a careful client does. Writes progress (bodies
// acknowledged) to PROGRESS and prints "done <acked> <retries>".
constexpr const char* kLoadClient = R"(
import http.client, json, os, ssl, sys, threading, time
ctx = ssl.create_default_context(cafile=os.environ["CA"])
bodies = json.load(open(os.environ["BODIES"]))
headers = json.loads(os.environ["HEADERS"])
lock = threading.Lock()
acked = 0
retries = 0
def conn():
    return http.client.HTTPSConnection("127.0.0.1", int(os.environ["PORT"]), context=ctx, timeout=20)
def worker(part):
    global acked, retries
    c = conn()
    for path, body in part:
        deadline = time.time() + 60
        while True:
            try:
                c.request("POST", path, body=body, headers=headers)
                r = c.getresponse()
                r.read()
                if r.status in (200, 201):
                    break
            except Exception:
                c.close()
                c = conn()
            with lock:
                retries += 1
            if time.time() > deadline:
                print("gave up on", body, file=sys.stderr)
                sys.exit(1)
            time.sleep(0.05)
        with lock:
            acked += 1
            if acked % 20 == 0:
                open(os.environ["PROGRESS"], "w").write(str(acked))
threads = [threading.Thread(target=worker, args=(bodies[i::8],)) for i in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print("done", acked, retries)
)";

class TwoNodesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kNginxBinary, X_OK) != 0) GTEST_SKIP() << kNginxBinary << " is not installed";
    temp_dir_ = std::make_unique<TempDir>("bpmc-two-nodes");
    dir_ = temp_dir_->path();
    chmod(dir_.c_str(), 0755);
    db_ = std::make_unique<TestDatabase>(SharedCluster());
    hook_ = recorders::HttpRecorder::Webhook();
    std::ofstream(dir_ + "/exporter.yaml") << "trusted_proxies: [127.0.0.1/32]\n";
    std::ofstream(dir_ + "/receiver.yaml") << R"(
auth: {insecure_no_auth: true}
trusted_proxies: [127.0.0.1/32]
delivery_threads: 2
channels:
  hook:
    type: webhook
    url: )" + hook_->Url("/hook") + R"(
    rate_limit: none
routes:
  - notify: [hook]
)";
    for (int i = 0; i < 2; ++i) {
      exporter_ports_.push_back(FreePort());
      exporters_.push_back(std::make_unique<Process>(std::vector<std::string>{
          BinPath("bpmc-exporter"), "serve", "--config", dir_ + "/exporter.yaml", "--listen",
          "127.0.0.1:" + std::to_string(exporter_ports_[i]), "--database-url", db_->url,
          "--data-dir", dir_ + "/exporter-" + std::to_string(i)}));
      receiver_ports_.push_back(FreePort());
      // One at a time: the first applies the receiver's migrations.
      receivers_.push_back(std::make_unique<Process>(std::vector<std::string>{
          BinPath("bpmc-receiver"), "serve", "--config", dir_ + "/receiver.yaml", "--listen",
          "127.0.0.1:" + std::to_string(receiver_ports_[i]), "--database-url", db_->url}));
      ASSERT_TRUE(WaitFor(
          [&] { return Up(exporter_ports_[i], "/healthz") && Up(receiver_ports_[i], "/readyz"); },
          30s))
          << exporters_[i]->Stderr() << receivers_[i]->Stderr();
    }
    std::string error;
    front_ = NginxFront::Start(dir_, exporter_ports_, receiver_ports_, &error);
    ASSERT_TRUE(front_) << error;
  }

  void TearDown() override {
    front_.reset();
    for (auto& p : exporters_) p->Signal(SIGTERM);
    for (auto& p : receivers_) p->Signal(SIGTERM);
    for (auto& p : exporters_) p->Wait(30s);
    for (auto& p : receivers_) p->Wait(30s);
  }

  // Runs kLoadClient in the background over `bodies`; SIGKILLs *victim once
  // `kill_after` bodies are acknowledged; returns the client's output.
  std::string LoadAndKill(const nlohmann::json& bodies, const nlohmann::json& headers, int port,
                          int kill_after, Process* victim) {
    std::ofstream(dir_ + "/load.py") << kLoadClient;
    std::ofstream(dir_ + "/bodies.json") << bodies.dump();
    const std::string progress = dir_ + "/progress";
    std::remove(progress.c_str());
    std::string out;
    std::thread client([&] {
      RunCommand("CA='" + front_->ca_file() + "' PORT=" + std::to_string(port) + " BODIES='" +
                     dir_ + "/bodies.json' PROGRESS='" + progress + "' HEADERS='" + headers.dump() +
                     "' python3 '" + dir_ + "/load.py' 2>&1",
                 &out);
    });
    const bool reached = WaitFor(
        [&] {
          const std::string p = ReadTextFile(progress);
          return !p.empty() && std::stoi(p) >= kill_after;
        },
        60s);
    victim->Signal(SIGKILL);
    victim->Wait(10s);
    client.join();
    EXPECT_TRUE(reached) << "the load never reached " << kill_after << ": " << out;
    return out;
  }

  std::unique_ptr<TempDir> temp_dir_;
  std::string dir_;
  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<recorders::HttpRecorder> hook_;
  std::vector<int> exporter_ports_, receiver_ports_;
  std::vector<std::unique_ptr<Process>> exporters_, receivers_;
  std::unique_ptr<NginxFront> front_;
};

TEST_F(TwoNodesTest, KillingOneExporterUnderLoadLosesNoEvent) {
  // Both exporters serve (nginx balances round robin).
  constexpr int kEvents = 1200;
  nlohmann::json bodies = nlohmann::json::array();
  for (int i = 0; i < kEvents; ++i) {
    char id[40];
    std::snprintf(id, sizeof id, "00000000-0000-4000-8000-%012d", i);
    auto event = nlohmann::json::parse(SeedBody());
    event["event_id"] = id;
    bodies.push_back({"/v1/connector/usage", event.dump()});
  }
  const nlohmann::json headers = {{"Authorization", "Bearer " + db_->api_key},
                                  {"Content-Type", "application/json"}};
  const std::string out =
      LoadAndKill(bodies, headers, front_->exporter_port(), kEvents / 3, exporters_[0].get());
  ASSERT_EQ(out.rfind("done " + std::to_string(kEvents), 0), 0u) << out;
  // Every event once: the retries of requests the dead node took carry the
  // same event_id, so a retry of a stored event stores nothing.
  EXPECT_EQ(db_->Rows(), kEvents) << out;
  EXPECT_EQ(db_->Scalar("SELECT count(DISTINCT id) FROM connector_usage"), kEvents);
  // The survivor took the rest.
  EXPECT_TRUE(Up(exporter_ports_[1], "/healthz"));
  std::cout << "[ figures ] " << kEvents << " events through nginx, exporter 0 killed after "
            << kEvents / 3 << ": " << out;
}

TEST_F(TwoNodesTest, KillingOneReceiverUnderLoadPagesEveryAlertOnce) {
  constexpr int kAlerts = 300;
  nlohmann::json bodies = nlohmann::json::array();
  for (int i = 0; i < kAlerts; ++i) {
    bodies.push_back({"/v1/generic", nlohmann::json{{"summary", "two nodes " + std::to_string(i)},
                                                    {"severity", "critical"},
                                                    {"dedup_key", "node-" + std::to_string(i)}}
                                         .dump()});
  }
  const nlohmann::json headers = {{"Content-Type", "application/json"}};
  const std::string out =
      LoadAndKill(bodies, headers, front_->receiver_port(), kAlerts / 3, receivers_[0].get());
  ASSERT_EQ(out.rfind("done " + std::to_string(kAlerts), 0), 0u) << out;

  // Every alert reaches the peer, the survivor delivering what the dead node
  // had accepted but not sent. Count deliveries and distinct keys per alert.
  std::map<std::string, int> deliveries;
  std::map<std::string, std::set<std::string>> keys;
  auto count = [&] {
    deliveries.clear();
    keys.clear();
    for (const auto& r : hook_->Accepted()) {
      const auto body = nlohmann::json::parse(r.body, nullptr, false);
      if (body.is_discarded()) continue;
      auto key = r.headers.find("idempotency-key");
      for (const auto& a : body["alerts"]) {
        const std::string dedup = a.value("dedup_key", "");
        ++deliveries[dedup];
        keys[dedup].insert(key == r.headers.end() ? "" : key->second);
      }
    }
    return deliveries.size() == static_cast<size_t>(kAlerts);
  };
  ASSERT_TRUE(WaitFor(count, 90s)) << "delivered " << deliveries.size() << " of " << kAlerts;
  int repeats = 0;
  for (const auto& [dedup, n] : deliveries) {
    repeats += n - 1;
    EXPECT_EQ(keys[dedup].size(), 1u) << dedup << " was paged under several Idempotency-Keys";
    EXPECT_FALSE(keys[dedup].count("")) << dedup << " was sent without an Idempotency-Key";
  }
  // A raw repeat is possible only for a message in flight at the kill (one per
  // delivery thread of the dead node).
  EXPECT_LE(repeats, 2);
  // Each state change was stored once, whichever node took the retry.
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM receiver_alert_events"), kAlerts);
  std::cout << "[ figures ] " << kAlerts << " alerts through nginx, receiver 0 killed after "
            << kAlerts / 3 << ": " << out << "  raw repeats at the peer: " << repeats << "\n";
}

}  // namespace
}  // namespace bpmc::testing
