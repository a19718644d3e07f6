// notifier-test-worker: a Deliverer in its own process, for the kill -9 tests.
//   notifier-test-worker --config FILE --database-url URL [--threads N]
// FILE holds `channels:` and `delivery:`. Exits 2 (message on stderr) on a bad
// config, prints "ready" once delivering, stops cleanly on SIGTERM.
#include <prometheus/registry.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "common/clock.h"
#include "common/http_client.h"
#include "notifier/config.h"
#include "notifier/deliverer.h"
#include "notifier/mailer.h"

int main(int argc, char** argv) {
  std::string config_path, database_url;
  int threads = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--config")) config_path = argv[i + 1];
    if (!std::strcmp(argv[i], "--database-url")) database_url = argv[i + 1];
    if (!std::strcmp(argv[i], "--threads")) threads = std::stoi(argv[i + 1]);
  }
  bpmc::notifier::NotifierConfig config;
  std::string error;
  try {
    const YAML::Node root = YAML::LoadFile(config_path);
    if (!bpmc::notifier::ParseNotifierConfig(root["channels"], root["delivery"], &config, &error)) {
      std::cerr << "notifier-test-worker: " << config_path << ": " << error << "\n";
      return 2;
    }
  } catch (const YAML::Exception& e) {
    std::cerr << "notifier-test-worker: " << config_path << ": " << e.what() << "\n";
    return 2;
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before any thread starts

  auto http = bpmc::NewCurlHttpClient();
  auto mailer = bpmc::notifier::NewCurlMailer();
  prometheus::Registry registry;
  bpmc::notifier::Deliverer::Options options;
  options.database_url = database_url;
  options.threads = threads;
  options.poll_interval = std::chrono::milliseconds(100);
  bpmc::notifier::Deliverer deliverer(options, config, *http, *mailer, bpmc::SystemClock::Get(),
                                      registry);
  deliverer.Start();
  std::cout << "ready" << std::endl;
  int sig = 0;
  sigwait(&signals, &sig);
  deliverer.Stop();
  return 0;
}
