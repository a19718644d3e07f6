// bpmc-exporter: parses the command line, wires the service, waits for a signal.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>
#include <pqxx/pqxx>

#include "aggregation/rollup.h"
#include "billing/billing.h"
#include "common/logging.h"
#include "common/migrate.h"
#include "common/process.h"
#include "demo/demo_data.h"
#include "exporter/config.h"
#include "exporter/service.h"
#include "identity/api_keys.h"
#include "identity/sessions.h"
#include "identity/users.h"

namespace bpmc::exporter {
const std::vector<bpmc::Migration>& Migrations();
}

namespace {

using bpmc::exporter::CommandLine;
using bpmc::exporter::ConfigError;

int Serve(const CommandLine& cl, const std::vector<std::string>& args) {
  bpmc::StopSignals signals(/*and_hangup=*/true);  // before any thread starts

  // A reload reads the file again with the same flags and environment.
  auto load_config = [args](std::string* err) -> std::optional<bpmc::exporter::Config> {
    auto parsed = bpmc::exporter::ParseCommandLine(args);
    if (auto* e = std::get_if<ConfigError>(&parsed)) {
      *err = e->ToString();
      return std::nullopt;
    }
    return std::get<CommandLine>(parsed).config;
  };
  std::string error;
  auto service =
      bpmc::exporter::Service::Start(cl.config, bpmc::SystemClock::Get(), &error, load_config);
  if (!service) {
    spdlog::error("{}", error);
    return 2;
  }
  const std::string host = cl.config.listen.substr(0, cl.config.listen.rfind(':'));
  spdlog::info("bpmc-exporter listening on {}:{}", host, service->port());
  int sig = 0;
  while ((sig = signals.Wait()) == SIGHUP) {
    spdlog::info("SIGHUP: reloading the config");
    std::string reload_error;
    service->Reload(&reload_error);  // logs and counts a failure itself
  }
  spdlog::info("signal {}: finishing in-flight work", sig);
  service->Shutdown();
  spdlog::info("stopped");
  return 0;
}

// Prints the outcome of a revocation; the exit code (0, 1 not found or ambiguous, 2 usage).
int ReportRevocation(const bpmc::identity::Revocation& r, const char* what) {
  using Result = bpmc::identity::Revocation::Result;
  if (r.result == Result::kRevoked) {
    for (const std::string& id : r.ids) std::printf("revoked %s %s\n", what, id.c_str());
    return 0;
  }
  std::fprintf(stderr, "bpmc-exporter: %s\n", r.message.c_str());
  return r.result == Result::kBadArgument ? 2 : 1;
}

// `user set-password NAME`: the password is the first line of stdin (never a
// flag, which other users could read in the process list).
int SetPassword(pqxx::connection& conn, const std::string& name) {
  std::string password;
  for (int c; (c = std::getchar()) != EOF && c != '\n';) {
    if (password.size() > bpmc::identity::kMaxPasswordBytes) break;
    password.push_back(static_cast<char>(c));
  }
  if (!password.empty() && password.back() == '\r') password.pop_back();
  if (password.size() < bpmc::identity::kMinPasswordBytes ||
      password.size() > bpmc::identity::kMaxPasswordBytes) {
    std::fprintf(stderr, "bpmc-exporter: the password (stdin) must be 8 to 1024 bytes\n");
    return 2;
  }
  if (!bpmc::identity::SetPassword(conn, name, password)) {
    std::fprintf(stderr, "no enabled user named %s\n", name.c_str());
    return 1;
  }
  std::printf("password of %s set; their console sessions have ended\n", name.c_str());
  return 0;
}

// `demo-data`: generates from the seed and loads (demo/demo_data.h); 1 when refused or failed.
int DemoData(const CommandLine& cl) {
  const auto started = std::chrono::steady_clock::now();
  bpmc::demo::DemoOptions options;
  options.days = cl.days;
  options.seed = cl.seed;
  options.now_us = bpmc::SystemClock::Get().NowMicros();
  const bpmc::demo::DemoData data = bpmc::demo::GenerateDemoData(options);
  const auto r =
      bpmc::demo::LoadDemoData(data, {cl.config.database_url, cl.config.reporting_time_zone});
  using Result = bpmc::demo::LoadReport::Result;
  if (r.result != Result::kLoaded) {
    std::fprintf(stderr, "bpmc-exporter: demo-data %s: %s\n",
                 r.result == Result::kRefused ? "refused" : "failed", r.message.c_str());
    return 1;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf(
      "demo data loaded (seed %llu, %d days up to now) in %.1f s:\n"
      "  %zu connectors, %zu customers (one API key each)\n"
      "  %zu subscriptions, %zu payments (%zu failed)\n"
      "  %zu usage events (%zu errors), %zu aggregated\n",
      static_cast<unsigned long long>(cl.seed), cl.days, seconds, r.connectors, r.customers,
      r.subscriptions, r.payments, r.failed_payments, r.events, r.error_events, r.aggregated);
  if (r.incidents_skipped)
    std::printf(
        "  incidents skipped: the receiver's tables are not in this database (run "
        "`bpmc-receiver migrate` on it before demo-data to get them)\n");
  else
    std::printf("  %zu incidents (one resolved, one open)\n", r.incidents);
  return 0;
}

int Admin(const CommandLine& cl) {
  const auto& cmd = cl.command;
  try {
    pqxx::connection conn(cl.config.database_url);
    if (cmd[0] == "migrate") {
      const int n = bpmc::ApplySchema(conn, bpmc::exporter::DatabaseSchema());
      std::printf("applied %d migration(s)\n", n);
      return 0;
    }
    bpmc::ApplySchema(conn, bpmc::exporter::DatabaseSchema());
    if (cmd[0] == "demo-data") {
      if (!bpmc::aggregation::IsKnownTimeZone(conn, cl.config.reporting_time_zone)) {
        std::fprintf(stderr, "bpmc-exporter: reporting_time_zone: unknown time zone '%s'\n",
                     cl.config.reporting_time_zone.c_str());
        return 2;
      }
      return DemoData(cl);
    }
    if (cmd[0] == "connector") {
      const bool added = bpmc::identity::AddConnector(conn, cl.args[0], cl.args[1]);
      std::printf("connector %s %s\n", cl.args[0].c_str(), added ? "added" : "updated");
      return 0;
    }
    if (cmd[0] == "reaggregate") {
      const std::string& zone = cl.config.reporting_time_zone;
      if (!bpmc::aggregation::IsKnownTimeZone(conn, zone)) {
        std::fprintf(stderr, "bpmc-exporter: reporting_time_zone: unknown time zone '%s'\n",
                     zone.c_str());
        return 2;
      }
      const auto r =
          bpmc::aggregation::Reaggregate(conn, *bpmc::aggregation::ParseTimeBound(cl.from),
                                         *bpmc::aggregation::ParseTimeBound(cl.to), zone);
      if (!r.ok) {
        std::fprintf(stderr, "reaggregate failed: %s\n", r.error.c_str());
        return r.error.rfind("--to", 0) == 0 ? 2 : 1;
      }
      std::printf("rebuilt days %s .. %s (%s, inclusive) from %llu events in %d transaction(s)\n",
                  r.first_day.c_str(), r.last_day.c_str(), zone.c_str(),
                  static_cast<unsigned long long>(r.events), r.transactions);
      return 0;
    }
    if (cmd[0] == "platform-token" && cmd[1] == "revoke") {
      const auto r = bpmc::identity::RevokePlatformTokens(conn, cl.args[0]);
      return ReportRevocation(r, "platform token");
    }
    if (cmd[0] == "platform-token") {
      const std::string token = bpmc::identity::CreatePlatformToken(conn, cl.args[0]);
      std::printf("platform token %s (shown once, only a hash is stored):\n%s\n",
                  cl.args[0].c_str(), token.c_str());
      return 0;
    }
    if (cmd[0] == "user" && cmd[1] == "add") {
      const auto token = bpmc::identity::CreateUser(
          conn, cl.args[0], *bpmc::identity::ParseRole(cl.role), cl.customer);
      if (!token) {
        std::fprintf(stderr, "user %s already exists\n", cl.args[0].c_str());
        return 1;
      }
      std::printf("token for %s, role %s (shown once, only a hash is stored):\n%s\n",
                  cl.args[0].c_str(), cl.role.c_str(), token->c_str());
      return 0;
    }
    if (cmd[0] == "user" && cmd[1] == "set-password") return SetPassword(conn, cl.args[0]);
    if (cmd[0] == "user") {
      if (bpmc::identity::DisableUser(conn, cl.args[0])) {
        std::printf("user %s disabled\n", cl.args[0].c_str());
        return 0;
      }
      std::fprintf(stderr, "no enabled user named %s\n", cl.args[0].c_str());
      return 1;
    }
    if (cmd[1] == "create") {
      const std::string key = bpmc::identity::CreateApiKey(conn, cl.args[0]);
      std::printf(
          "API key for %s, prefix %s (revoke with `api-key revoke %s`; the key is shown "
          "once, only a hash is stored):\n%s\n",
          cl.args[0].c_str(), key.substr(0, bpmc::identity::kApiKeyPrefixChars).c_str(),
          key.substr(0, bpmc::identity::kApiKeyPrefixChars).c_str(), key.c_str());
      return 0;
    }
    const auto r = bpmc::identity::RevokeApiKeyByIdOrPrefix(conn, cl.args[0]);
    const int code = ReportRevocation(r, "API key");
    if (code == 0) {
      // An exporter restarted on this data dir while PostgreSQL is down reads its
      // keys from this cache: the revoked key must not be in it.
      const std::string cache = cl.config.data_dir + "/directory.json";
      if (!bpmc::identity::ForgetCachedApiKeys(cache, r.ids)) {
        std::fprintf(stderr, "warning: cannot remove the key from %s; delete that file\n",
                     cache.c_str());
        return 1;
      }
    }
    return code;
  } catch (const std::exception& e) {
    // pqxx messages never contain the password of the connection string.
    std::fprintf(stderr, "database error: %s\n", e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("bpmc-exporter"));
  spdlog::set_pattern(bpmc::kTextLogPattern);
  std::vector<std::string> args(argv + 1, argv + argc);
  auto parsed = bpmc::exporter::ParseCommandLine(args);
  if (auto* err = std::get_if<ConfigError>(&parsed)) {
    std::fprintf(stderr, "bpmc-exporter: %s\n\n%s", err->ToString().c_str(),
                 bpmc::exporter::UsageText());
    return 2;
  }
  const CommandLine& cl = std::get<CommandLine>(parsed);
  if (cl.command[0] == "help") {
    std::fputs(bpmc::exporter::UsageText(), stdout);
    return 0;
  }
  bpmc::ConfigureLogging(cl.config.log_format, cl.config.log_level);
  if (cl.command[0] == "serve") return Serve(cl, args);
  return Admin(cl);
}
