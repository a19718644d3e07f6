// The Debian packages (cmake/Packaging.cmake, docs/INSTALL.md) built from this build tree by
// CPack: what they contain, lintian's verdict, systemd-analyze's on the units, and the binaries
// unpacked from them (dpkg-deb -x) started with the shipped /etc/bpmc configs against a private
// PostgreSQL. Needs cpack, dpkg-deb, dpkg-shlibdeps (dpkg-dev), lintian and systemd-analyze
// (scripts/deps.sh); no systemd as PID 1 and no installation on this host.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "common/testing/temp_dir.h"
#include "testing/exporter_harness.h"
#include "testing/pg_cluster.h"
#include "testing/process.h"

namespace bpmc::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Replaces every `from` in *text; fails the test when there is none.
void ReplaceAll(std::string* text, const std::string& from, const std::string& to) {
  size_t n = 0;
  for (size_t pos = 0; (pos = text->find(from, pos)) != std::string::npos; pos += to.size(), ++n)
    text->replace(pos, from.size(), to);
  EXPECT_GT(n, 0u) << "the shipped file no longer contains " << from;
}

std::string Quote(const std::string& s) { return "'" + s + "'"; }

bool Healthy(int port) {
  httplib::Client c("127.0.0.1", port);
  auto r = c.Get("/healthz");
  return r && r->status == 200;
}

const char* const kPackages[] = {"bpmc-exporter", "bpmc-receiver", "bpmc-monitoring"};

class PackagingTest : public ::testing::Test {
 protected:
  // Builds the packages once (cpack into a temporary directory; gzip instead of the release
  // build's xz only to save time) and unpacks all three into one root.
  static void SetUpTestSuite() {
    temp_dir_ = std::make_unique<TempDir>("bpmc-pkg");
    dir_ = temp_dir_->path();
    chmod(dir_.c_str(), 0755);  // PostgreSQL runs as postgres when the test runs as root
    const char* build = std::getenv("BPMC_BUILD_DIR");
    ASSERT_NE(build, nullptr) << "BPMC_BUILD_DIR is not set (tests/CMakeLists.txt)";
    std::string out;
    const auto start = std::chrono::steady_clock::now();
    const int rc = RunCommand("cpack -G DEB -D CPACK_DEBIAN_COMPRESSION_TYPE=gzip --config " +
                                  Quote(std::string(build) + "/CPackConfig.cmake") + " -B " +
                                  Quote(dir_ + "/out") + " 2>&1",
                              &out);
    cpack_output_ = out;
    ASSERT_EQ(rc, 0) << out;
    std::printf("cpack: %lld ms\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::steady_clock::now() - start)
                                           .count()));
    for (const char* pkg : kPackages) {
      for (const auto& entry : fs::directory_iterator(dir_ + "/out")) {
        const std::string name = entry.path().filename();
        if (name.rfind(std::string(pkg) + "_", 0) == 0 && entry.path().extension() == ".deb")
          debs_[pkg] = entry.path();
      }
      ASSERT_TRUE(debs_.count(pkg)) << "no " << pkg << "_*.deb in " << out;
      ASSERT_EQ(
          RunCommand("dpkg-deb -x " + Quote(debs_[pkg]) + " " + Quote(dir_ + "/root") + " 2>&1",
                     &out),
          0)
          << out;
    }
    root_ = dir_ + "/root";
  }
  static void TearDownTestSuite() { temp_dir_.reset(); }

  static std::string DebInfo(const std::string& pkg, const std::string& what) {
    std::string out;
    EXPECT_EQ(RunCommand("dpkg-deb " + what + " " + Quote(debs_[pkg]) + " 2>&1", &out), 0) << out;
    return out;
  }

  // A private directory standing in for /run/credentials/<unit>/: the secrets as systemd's
  // LoadCredential=secret:/etc/bpmc/credentials/<component> would name them.
  static std::string Credentials(const std::string& unit,
                                 const std::vector<std::pair<std::string, std::string>>& files) {
    const std::string d = dir_ + "/credentials/" + unit;
    fs::create_directories(d);
    for (const auto& [name, value] : files) std::ofstream(d + "/secret_" + name) << value << "\n";
    return d;
  }

  static inline std::unique_ptr<TempDir> temp_dir_;
  static inline std::string dir_, root_, cpack_output_;
  static inline std::map<std::string, std::string> debs_;
};

// Each package holds its binary, unit, conffile, maintainer scripts, copyright, changelog and
// lintian overrides, and nothing of the tests, fuzzers or benches.
TEST_F(PackagingTest, PackagesHoldWhatTheyPromise) {
  for (const std::string component : {"exporter", "receiver"}) {
    const std::string pkg = "bpmc-" + component;
    const std::string files = DebInfo(pkg, "-c");
    for (const std::string& path : std::vector<std::string>{
             "./usr/bin/" + pkg, "./lib/systemd/system/" + pkg + ".service",
             "./etc/bpmc/" + component + ".yaml", "./usr/share/doc/" + pkg + "/copyright",
             "./usr/share/doc/" + pkg + "/changelog.Debian.gz",
             "./usr/share/doc/" + pkg + "/debian-12.md", "./usr/share/lintian/overrides/" + pkg})
      EXPECT_NE(files.find(path + "\n"), std::string::npos) << pkg << " lacks " << path << files;
    // The only executable is the package's own binary.
    int executables = 0;
    const std::regex exe(R"(^-rwx\S+\s+\S+\s+\d+\s+\S+\s+\S+\s+(\S+)$)", std::regex::multiline);
    for (auto it = std::sregex_iterator(files.begin(), files.end(), exe);
         it != std::sregex_iterator(); ++it) {
      EXPECT_EQ((*it)[1].str(), "./usr/bin/" + pkg);
      ++executables;
    }
    EXPECT_EQ(executables, 1) << files;

    std::string conffiles;
    EXPECT_EQ(
        RunCommand("dpkg-deb --ctrl-tarfile " + Quote(debs_[pkg]) + " | tar -xO ./conffiles 2>&1",
                   &conffiles),
        0)
        << conffiles;
    EXPECT_EQ(conffiles, "/etc/bpmc/" + component + ".yaml\n");
    const std::string control = DebInfo(pkg, "--field");
    EXPECT_NE(control.find("Version: 0.1.0-1"), std::string::npos) << control;
    EXPECT_NE(control.find("adduser"), std::string::npos) << control;
    EXPECT_NE(control.find("libpqxx"), std::string::npos) << "dpkg-shlibdeps' Depends:" << control;
    for (const std::string script : {"postinst", "prerm", "postrm"}) {
      std::string text;
      EXPECT_EQ(RunCommand("dpkg-deb --ctrl-tarfile " + Quote(debs_[pkg]) + " | tar -xO ./" +
                               script + " 2>&1",
                           &text),
                0)
          << text;
      const std::string path = dir_ + "/" + pkg + "." + script;
      std::ofstream(path) << text;
      std::string out;
      EXPECT_EQ(RunCommand("sh -n " + Quote(path) + " 2>&1", &out), 0) << script << ": " << out;
    }
  }
  const std::string files = DebInfo("bpmc-monitoring", "-c");
  for (const std::string path : {"./usr/share/bpmc/prometheus/rules/alerts.yml",
                                 "./usr/share/bpmc/prometheus/rules/recording.yml",
                                 "./usr/share/bpmc/alertmanager/alertmanager.yml",
                                 "./usr/share/bpmc/grafana/dashboards/overview.json",
                                 "./etc/grafana/provisioning/dashboards/bpmc.yaml"})
    EXPECT_NE(files.find(path + "\n"), std::string::npos) << path << files;
  // Grafana's provider names the packaged dashboards.
  EXPECT_NE(ReadFile(root_ + "/etc/grafana/provisioning/dashboards/bpmc.yaml")
                .find("path: /usr/share/bpmc/grafana/dashboards\n"),
            std::string::npos);
}

// lintian: no error (warnings are fine; overrides are shipped with their reasons).
TEST_F(PackagingTest, LintianReportsNoError) {
  std::string cmd = "lintian --fail-on error --tag-display-limit 0";
  for (const char* pkg : kPackages) cmd += " " + Quote(debs_[pkg]);
  std::string out;
  const int rc = RunCommand(cmd + " 2>&1", &out);
  std::printf("%s", out.c_str());
  EXPECT_EQ(rc, 0) << out;
  EXPECT_FALSE(std::regex_search(out, std::regex("^E: ", std::regex::multiline))) << out;
}

// systemd-analyze verify accepts both units as shipped, with the ExecStart binary taken from
// the unpacked root (the only change), prints nothing, and the exposure stays low.
TEST_F(PackagingTest, SystemdAcceptsTheUnits) {
  const std::string units = dir_ + "/units";
  fs::create_directories(units);
  for (const std::string pkg : {"bpmc-exporter", "bpmc-receiver"}) {
    std::string unit = ReadFile(root_ + "/lib/systemd/system/" + pkg + ".service");
    for (const std::string& key : std::vector<std::string>{
             "User=bpmc\n", "NoNewPrivileges=yes\n", "ProtectSystem=strict\n", "ProtectHome=yes\n",
             "PrivateTmp=yes\n", "ExecReload=/bin/kill -HUP $MAINPID\n",
             "LoadCredential=secret:/etc/bpmc/credentials/" + pkg.substr(5) + "\n",
             "CapabilityBoundingSet=\n"})
      EXPECT_NE(unit.find("\n" + key), std::string::npos) << pkg << " lacks " << key;
    if (pkg == "bpmc-exporter") {
      EXPECT_NE(unit.find("\nReadWritePaths=/var/lib/bpmc/exporter\n"), std::string::npos);
      EXPECT_NE(unit.find("\nStateDirectory=bpmc/exporter\n"), std::string::npos);
    }
    ReplaceAll(&unit, "ExecStart=/usr/bin/", "ExecStart=" + root_ + "/usr/bin/");
    std::ofstream(units + "/" + pkg + ".service") << unit;
  }
  std::string out;
  const int rc = RunCommand("cd " + Quote(units) +
                                " && systemd-analyze verify bpmc-exporter.service"
                                " bpmc-receiver.service 2>&1",
                            &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "") << "systemd-analyze verify complained";
  // The test can fail: an unknown key is reported.
  std::ofstream(units + "/bpmc-bad.service")
      << ReadFile(units + "/bpmc-exporter.service") + "\n[Service]\nProtectSystm=strict\n";
  RunCommand("cd " + Quote(units) + " && systemd-analyze verify bpmc-bad.service 2>&1", &out);
  EXPECT_NE(out.find("Unknown key"), std::string::npos) << out;

  for (const std::string pkg : {"bpmc-exporter", "bpmc-receiver"}) {
    EXPECT_EQ(RunCommand("cd " + Quote(units) +
                             " && systemd-analyze security --offline=yes --threshold=20 " + pkg +
                             ".service 2>&1",
                         &out),
              0)
        << out;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(out, m, std::regex("Overall exposure level for \\S+: ([0-9.]+)")))
        << out;
    std::printf("%s exposure %s\n", pkg.c_str(), m[1].str().c_str());
  }
}

// The unpacked bpmc-exporter with the shipped /etc/bpmc/exporter.yaml (credentials and data
// dir moved into the test's directory): migrate, a connector and a key, serve, one usage event
// seen on /metrics.
TEST_F(PackagingTest, UnpackedExporterServes) {
  const std::string exporter = root_ + "/usr/bin/bpmc-exporter";
  const std::string db = SharedCluster().CreateDatabase();
  const std::string url = SharedCluster().ConnectionString(db);
  const std::string creds =
      Credentials("bpmc-exporter.service", {{"database_url", url}, {"pseudonym_key", "k3y"}});
  std::string config = ReadFile(root_ + "/etc/bpmc/exporter.yaml");
  const int port = FreePort();
  ReplaceAll(&config, "/run/credentials/bpmc-exporter.service", creds);
  ReplaceAll(&config, "/var/lib/bpmc/exporter", dir_ + "/exporter-data");
  ReplaceAll(&config, "listen: 127.0.0.1:9470", "listen: 127.0.0.1:" + std::to_string(port));
  const std::string config_path = dir_ + "/exporter.yaml";
  std::ofstream(config_path) << config;
  fs::create_directories(dir_ + "/exporter-data");

  std::string out;
  const std::string cfg = " --config " + Quote(config_path);
  ASSERT_EQ(RunCommand(Quote(exporter) + " migrate" + cfg + " 2>&1", &out), 0) << out;
  EXPECT_NE(out.find("applied"), std::string::npos) << out;
  ASSERT_EQ(
      RunCommand(Quote(exporter) + " connector add" + cfg + " crm-connector 'CRM' 2>&1", &out), 0)
      << out;
  ASSERT_EQ(RunCommand(Quote(exporter) + " api-key create" + cfg + " acme 2>/dev/null", &out), 0);
  std::string key = out.substr(0, out.find_last_not_of('\n') + 1);
  key = key.substr(key.find_last_of('\n') + 1);
  ASSERT_FALSE(key.empty());

  Process serve({exporter, "serve", "--config", config_path});
  ASSERT_TRUE(WaitFor([&] { return Healthy(port); }, 60s)) << serve.Stderr();
  httplib::Client c("127.0.0.1", port);
  auto r = c.Post("/v1/connector/usage", Bearer(key), SeedBody("getContact"), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(MetricValue(m->body, R"(connector_operations_total{connector="crm-connector",)"
                                 R"(operation="getContact",status="success"})"),
            1)
      << m->body.substr(0, 2000);
  serve.Signal(SIGTERM);
  EXPECT_EQ(serve.Wait(30s), 0) << serve.Stderr();
}

// The unpacked bpmc-receiver with the shipped /etc/bpmc/receiver.yaml: check-config, serve
// (it migrates), a generic alert with the webhook token stored and counted.
TEST_F(PackagingTest, UnpackedReceiverServes) {
  const std::string receiver = root_ + "/usr/bin/bpmc-receiver";
  const std::string db = SharedCluster().CreateDatabase();
  const std::string creds =
      Credentials("bpmc-receiver.service", {{"database_url", SharedCluster().ConnectionString(db)},
                                            {"webhook_token", "hook-token"},
                                            {"watchdog_token", "watchdog-token"},
                                            {"ack_link_secret", "0123456789abcdef0123"}});
  std::string config = ReadFile(root_ + "/etc/bpmc/receiver.yaml");
  const int port = FreePort();
  ReplaceAll(&config, "/run/credentials/bpmc-receiver.service", creds);
  ReplaceAll(&config, "listen: 127.0.0.1:9471", "listen: 127.0.0.1:" + std::to_string(port));
  const std::string config_path = dir_ + "/receiver.yaml";
  std::ofstream(config_path) << config;

  std::string out;
  ASSERT_EQ(
      RunCommand(Quote(receiver) + " check-config --config " + Quote(config_path) + " 2>&1", &out),
      0)
      << out;
  Process serve({receiver, "serve", "--config", config_path});
  ASSERT_TRUE(WaitFor([&] { return Healthy(port); }, 60s)) << serve.Stderr();
  httplib::Client c("127.0.0.1", port);
  auto r = c.Post("/v1/generic", {{"Authorization", "Bearer hook-token"}},
                  R"({"summary":"packaged","severity":"critical","dedup_key":"pkg"})",
                  "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  auto refused =
      c.Post("/v1/generic", {{"Authorization", "Bearer wrong"}}, "{}", "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("bpmc_receiver_alerts_total"), std::string::npos);
  // SIGHUP (the unit's ExecReload) re-reads the file and keeps serving.
  serve.Signal(SIGHUP);
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(Healthy(port)) << serve.Stderr();
  serve.Signal(SIGTERM);
  EXPECT_EQ(serve.Wait(30s), 0) << serve.Stderr();
}

}  // namespace
}  // namespace bpmc::testing
