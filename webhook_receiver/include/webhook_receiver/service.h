#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/http_client.h"
#include "notifier/mailer.h"
#include "webhook_receiver/config.h"

namespace bpmc::webhook_receiver {

// Outside dependencies of the running receiver. Null members are replaced by
// the real ones (libcurl HTTP client and mailer, the system clock).
struct ServiceDeps {
  HttpClient* http = nullptr;
  notifier::Mailer* mailer = nullptr;
  const Clock* clock = nullptr;
  // false: intake only; outbox rows stay queued (tests of intake and routing).
  bool start_delivery = true;
  // Reads the config again for a reload (SIGHUP, POST /-/reload): the parsed and
  // validated config, or nullopt with *error ("routes[0].notify: ..."). main()
  // re-reads the file with the same flags; empty: POST /-/reload answers 404.
  std::function<std::optional<ReceiverConfig>(std::string* error)> load_config;
};

// The settings of `next` that differ from `running` and that a reload cannot
// change ("listen", "database_url", "max_body_bytes", "http_threads",
// "request_deadline_ms", "max_requests_per_client", "trusted_proxies",
// "database_connections", "notices"), in that order; empty when `next` can be
// reloaded. Pure.
std::vector<std::string> KeysNeedingRestart(const ReceiverConfig& running,
                                            const ReceiverConfig& next);

// The running bpmc-receiver: HTTP intake (/v1/alertmanager, /v1/generic,
// /v1/sentry, /v1/datadog, /v1/newrelic), heartbeat check-ins
// (/v1/heartbeat/{name} and the checker thread, heartbeats.h), /metrics,
// /healthz, /readyz, the notifier's Deliverer, and a maintenance thread
// (database probe, retried migrations, webhook retention). main() and the tests use it. Start and
// Shutdown are called from one thread.
class Service {
 public:
  // Migrates the database when it is reachable (else keeps retrying in the
  // background and answers 503 meanwhile) and starts serving. Returns nullptr
  // and sets *error (starting with the config key, e.g. "listen: ...") when it
  // cannot start.
  static std::unique_ptr<Service> Start(const ReceiverConfig& config, ServiceDeps deps,
                                        std::string* error);
  ~Service();

  int port() const;  // the bound TCP port (useful with listen port 0)

  // Reload without restart (docs/RECEIVER.md, "Reloading the config"): routes,
  // channels, auth, on-call, incidents, heartbeats and the other settings not
  // in KeysNeedingRestart take effect for the requests and escalation steps
  // after it. The new Deliverer, incident engine and heartbeat checker start
  // before the old ones stop; escalations in flight continue (their state is in
  // PostgreSQL). Refused, keeping the running config, when `config` changes a
  // key of KeysNeedingRestart (*error names it). Sets the metrics
  // bpmc_receiver_config_last_reload_successful (0/1) and
  // ..._success_timestamp_seconds. Thread-safe; one reload at a time.
  bool Reload(const ReceiverConfig& config, std::string* error);
  // The same with the config of ServiceDeps::load_config (a bad file is
  // refused and counted the same way).
  bool ReloadFromSource(std::string* error);

  // Graceful stop: new webhooks get 503, in-flight ones finish, the
  // Deliverer finishes its sends, threads are joined. Idempotent.
  void Shutdown();

  struct Impl;

 private:
  explicit Service(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace bpmc::webhook_receiver
