// bpmc-receiver: parses the command line, wires the service, waits for a signal.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <optional>
#include <pqxx/pqxx>

#include "common/logging.h"
#include "common/migrate.h"
#include "common/process.h"
#include "webhook_receiver/config.h"
#include "webhook_receiver/service.h"
#include "webhook_receiver/store.h"

namespace {

using bpmc::webhook_receiver::CommandLine;
using bpmc::webhook_receiver::ConfigError;

size_t CountRoutes(const std::vector<bpmc::webhook_receiver::RouteNode>& routes) {
  size_t n = routes.size();
  for (const auto& r : routes) n += CountRoutes(r.routes);
  return n;
}

int Serve(const CommandLine& cl, const std::vector<std::string>& args) {
  bpmc::StopSignals signals(/*and_hangup=*/true);  // before any thread starts

  std::string error;
  bpmc::webhook_receiver::ServiceDeps deps;
  // A reload reads the file again with the same flags and environment.
  deps.load_config =
      [args](std::string* err) -> std::optional<bpmc::webhook_receiver::ReceiverConfig> {
    auto parsed = bpmc::webhook_receiver::ParseCommandLine(args);
    if (auto* e = std::get_if<ConfigError>(&parsed)) {
      *err = e->ToString();
      return std::nullopt;
    }
    return std::get<CommandLine>(parsed).config;
  };
  auto service = bpmc::webhook_receiver::Service::Start(cl.config, deps, &error);
  if (!service) {
    spdlog::error("{}", error);
    return 2;
  }
  const std::string host = cl.config.listen.substr(0, cl.config.listen.rfind(':'));
  spdlog::info("bpmc-receiver listening on {}:{}", host, service->port());
  int sig = 0;
  while ((sig = signals.Wait()) == SIGHUP) {
    spdlog::info("SIGHUP: reloading {}", cl.config_path);
    std::string reload_error;
    service->ReloadFromSource(&reload_error);  // logs and counts a failure itself
  }
  spdlog::info("signal {}: finishing in-flight work", sig);
  service->Shutdown();
  spdlog::info("stopped");
  return 0;
}

int Migrate(const CommandLine& cl) {
  try {
    pqxx::connection conn(cl.config.database_url);
    const int n = bpmc::ApplySchema(conn, bpmc::webhook_receiver::DatabaseSchema());
    std::printf("applied %d migration(s)\n", n);
    return 0;
  } catch (const std::exception& e) {
    // pqxx messages never contain the password of the connection string.
    std::fprintf(stderr, "database error: %s\n", e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("bpmc-receiver"));
  spdlog::set_pattern(bpmc::kTextLogPattern);
  std::vector<std::string> args(argv + 1, argv + argc);
  auto parsed = bpmc::webhook_receiver::ParseCommandLine(args);
  if (auto* err = std::get_if<ConfigError>(&parsed)) {
    std::fprintf(stderr, "bpmc-receiver: %s\n", err->ToString().c_str());
    if (err->key.rfind("--", 0) == 0 || err->key.find(' ') != std::string::npos)
      std::fprintf(stderr, "\n%s", bpmc::webhook_receiver::UsageText());
    return 2;
  }
  const CommandLine& cl = std::get<CommandLine>(parsed);
  if (cl.command == "help") {
    std::fputs(bpmc::webhook_receiver::UsageText(), stdout);
    return 0;
  }
  if (cl.command == "check-config") {
    std::printf("%s: OK (%zu routes, %zu channels)\n", cl.config_path.c_str(),
                CountRoutes(cl.config.routes), cl.config.notifier.channels.size());
    return 0;
  }
  bpmc::ConfigureLogging(cl.config.log_format, cl.config.log_level);
  if (cl.command == "migrate") return Migrate(cl);
  return Serve(cl, args);
}
