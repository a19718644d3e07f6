#pragma once

#include <memory>
#include <string>

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
};

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

  // Graceful stop: new webhooks get 503, in-flight ones finish, the
  // Deliverer finishes its sends, threads are joined. Idempotent.
  void Shutdown();

  struct Impl;

 private:
  explicit Service(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace bpmc::webhook_receiver
