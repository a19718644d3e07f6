// Operating the real bpmc-exporter binary (docs/OPERATIONS.md): with
// `log_format: json` every line on stderr is a JSON object; SIGHUP and POST
// /-/reload re-read the config — a good one is applied (log format and
// level), a broken one or one changing a restart-only key keeps the running
// config and sets bpmc_exporter_config_last_reload_successful to 0; /-/reload
// wants an admin and no body, and survives hostile requests.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <sstream>

#include "common/testing/temp_dir.h"
#include "identity/users.h"
#include "testing/exporter_harness.h"
#include "testing/pg_cluster.h"
#include "testing/process.h"

namespace bpmc::testing {
namespace {

using namespace std::chrono_literals;

// The lines of `text` from byte `from` on, without empty ones.
std::vector<std::string> Lines(const std::string& text, size_t from = 0) {
  std::vector<std::string> out;
  std::istringstream in(text.substr(std::min(from, text.size())));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

// Whether `line` is one JSON log line as docs/OPERATIONS.md describes it.
bool IsJsonLogLine(const std::string& line) {
  const auto j = nlohmann::json::parse(line, nullptr, false);
  if (!j.is_object() || j.size() != 5) return false;
  for (const char* key : {"time", "level", "logger", "message"})
    if (!j.contains(key) || !j[key].is_string()) return false;
  if (!j.contains("fields") || !j["fields"].is_object()) return false;
  return j["logger"] == "bpmc-exporter" && ParseRfc3339Micros(j["time"].get<std::string>());
}

class ExporterReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<TestDatabase>(SharedCluster());
    pqxx::connection conn(db_->url);
    admin_ = *identity::CreateUser(conn, "ada", identity::Role::kAdmin, "");
    manager_ = *identity::CreateUser(conn, "meg", identity::Role::kManager, "");
    path_ = dir_.path() + "/exporter.yaml";
  }

  void Write(const std::string& yaml) { std::ofstream(path_) << yaml; }

  void Start() {
    const int port = FreePort();
    exporter_ = std::make_unique<Process>(
        std::vector<std::string>{BinPath("bpmc-exporter"), "serve", "--config", path_, "--listen",
                                 "127.0.0.1:" + std::to_string(port), "--database-url", db_->url,
                                 "--data-dir", dir_.path() + "/data"});
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port);
    client_->set_read_timeout(30, 0);
    ASSERT_TRUE(WaitFor(
        [&] {
          auto r = client_->Get("/readyz");
          return r && r->status == 200;
        },
        60s))
        << exporter_->Stderr();
  }

  double Metric(const std::string& series) {
    auto r = client_->Get("/metrics");
    return r && r->status == 200 ? MetricValue(r->body, series) : -2;
  }

  httplib::Result Reload(const std::string& token, const std::string& body = "") {
    httplib::Headers h;
    if (!token.empty()) h = Bearer(token);
    return client_->Post("/-/reload", h, body, "text/plain");
  }

  // Waits until stderr, from byte `from`, has a line containing `text`; returns that line.
  std::string AwaitLine(const std::string& text, size_t from) {
    std::string found;
    WaitFor(
        [&] {
          for (const std::string& line : Lines(exporter_->Stderr(), from))
            if (line.find(text) != std::string::npos) {
              found = line;
              return true;
            }
          return false;
        },
        20s);
    return found;
  }

  TempDir dir_{"bpmc-exporter-reload"};
  std::unique_ptr<TestDatabase> db_;
  std::string admin_, manager_, path_;
  std::unique_ptr<Process> exporter_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(ExporterReloadTest, JsonLogsAndReloads) {
  Write("log_format: json\nlog_level: info\n");
  ASSERT_NO_FATAL_FAILURE(Start());

  // Every line so far is a JSON log line; the start-up message is among them.
  const std::vector<std::string> boot = Lines(exporter_->Stderr());
  ASSERT_FALSE(boot.empty());
  for (const std::string& line : boot) EXPECT_TRUE(IsJsonLogLine(line)) << line;
  EXPECT_NE(exporter_->Stderr().find("bpmc-exporter listening on 127.0.0.1:"), std::string::npos);
  EXPECT_EQ(Metric("bpmc_exporter_config_last_reload_successful"), 1);
  const double started = Metric("bpmc_exporter_config_last_reload_success_timestamp_seconds");
  EXPECT_GT(started, 1.7e9);

  // Hostile and unauthorised reloads change nothing.
  auto r = Reload("");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = Reload("not-a-token");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = Reload(manager_);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  EXPECT_NE(r->body.find("\"field\":\"Authorization\""), std::string::npos) << r->body;
  r = Reload("", std::string(10 << 20, 'x'));
  if (r) EXPECT_EQ(r->status, 401);  // credentials first; or the connection is cut
  r = Reload(admin_, std::string(10 << 20, 'x'));
  if (r) EXPECT_EQ(r->status, 413);
  r = client_->Get("/-/reload", Bearer(admin_));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(Metric("bpmc_exporter_config_reloads_total{result=\"ok\"}"), 0);
  EXPECT_TRUE(exporter_->Running());

  // POST /-/reload with a good config: text logs from now on.
  Write("log_format: text\nlog_level: info\n");
  size_t mark = exporter_->Stderr().size();
  r = Reload(admin_);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->body, R"({"status":"reloaded"})");
  EXPECT_EQ(Metric("bpmc_exporter_config_reloads_total{result=\"ok\"}"), 1);
  EXPECT_EQ(Metric("bpmc_exporter_config_last_reload_successful"), 1);
  std::string line = AwaitLine("config reloaded", mark);
  ASSERT_FALSE(line.empty()) << exporter_->Stderr();
  EXPECT_NE(line[0], '{') << line;
  EXPECT_NE(line.find(" info config reloaded"), std::string::npos) << line;
  const double reloaded = Metric("bpmc_exporter_config_last_reload_success_timestamp_seconds");
  EXPECT_GE(reloaded, started);

  // SIGHUP with a broken file: refused, the metric says so, the old config stays.
  Write("log_format: json\nlog_level: loud\n");
  mark = exporter_->Stderr().size();
  exporter_->Signal(SIGHUP);
  ASSERT_TRUE(
      WaitFor([&] { return Metric("bpmc_exporter_config_last_reload_successful") == 0; }, 20s))
      << exporter_->Stderr();
  EXPECT_EQ(Metric("bpmc_exporter_config_reloads_total{result=\"invalid\"}"), 1);
  line = AwaitLine("config reload failed, keeping the running config", mark);
  ASSERT_FALSE(line.empty()) << exporter_->Stderr();
  EXPECT_NE(line.find("log_level: must be trace, debug, info, warn, error or off, got 'loud'"),
            std::string::npos)
      << line;
  EXPECT_NE(line[0], '{') << line;  // still text

  // A live key together with a restart-only one: refused as a whole, naming the key.
  Write("log_format: json\nlog_level: off\nhttp_threads: 64\n");
  mark = exporter_->Stderr().size();
  r = Reload(admin_);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("http_threads: changing it needs a restart"), std::string::npos)
      << r->body;
  EXPECT_EQ(Metric("bpmc_exporter_config_reloads_total{result=\"needs_restart\"}"), 1);
  EXPECT_EQ(Metric("bpmc_exporter_config_last_reload_successful"), 0);
  EXPECT_EQ(Metric("bpmc_exporter_config_last_reload_success_timestamp_seconds"), reloaded);
  line = AwaitLine("http_threads: changing it needs a restart", mark);
  ASSERT_FALSE(line.empty()) << exporter_->Stderr();
  EXPECT_NE(line[0], '{') << line;  // log_level off was not applied either: this line exists

  // SIGHUP with a good config: JSON again, the metric back to 1.
  Write("log_format: json\nlog_level: debug\n");
  mark = exporter_->Stderr().size();
  exporter_->Signal(SIGHUP);
  ASSERT_TRUE(
      WaitFor([&] { return Metric("bpmc_exporter_config_last_reload_successful") == 1; }, 20s))
      << exporter_->Stderr();
  EXPECT_EQ(Metric("bpmc_exporter_config_reloads_total{result=\"ok\"}"), 2);
  line = AwaitLine("config reloaded", mark);
  ASSERT_FALSE(line.empty()) << exporter_->Stderr();
  EXPECT_TRUE(IsJsonLogLine(line)) << line;

  EXPECT_TRUE(exporter_->Running());
  exporter_->Signal(SIGTERM);
  EXPECT_EQ(exporter_->Wait(30s), 0) << exporter_->Stderr();
  // After the last reload, every line is JSON again (including the shutdown).
  for (const std::string& l : Lines(exporter_->Stderr(), mark))
    if (l.find("SIGHUP") == std::string::npos) EXPECT_TRUE(IsJsonLogLine(l)) << l;
  // Reload attempts are audited (401s are rate-limited per address, so at least the admin's).
  EXPECT_GE(db_->Scalar("SELECT count(*) FROM audit_log WHERE endpoint = '/-/reload'"), 4);
}

}  // namespace
}  // namespace bpmc::testing
