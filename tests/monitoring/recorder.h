#pragma once
// A loopback HTTP server that stands in, in the real-server test, for the services that
// Prometheus and Alertmanager talk to but that the test must not depend on:
//   POST /v1/alertmanager  bpmc-receiver's webhook: records every Alertmanager payload sent
//                          with the expected bearer token, answers 401 (and counts) otherwise
//   POST /v1/heartbeat/alertmanager-watchdog  the Watchdog's check-in: recorded alike
//   GET  /metrics          bpmc-receiver's metrics: bpmc_receiver_notifications_total
//                          {channel="webhook",result="sent"|"failed"} and _queue_depth
//   GET  /probe            a blackbox exporter whose every probe succeeds
// It never reaches outside the machine. Thread-safe.

#include <httplib.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace bpmc::monitoring {

class Recorder {
 public:
  // One alert of one webhook call.
  struct Alert {
    std::string receiver;  // the payload's receiver (route) name, unescaped
    std::string status;    // "firing" | "resolved" (the alert's own status)
    nlohmann::json labels;
  };

  // Listens on 127.0.0.1 at a port chosen by the kernel; returns once it accepts.
  explicit Recorder(std::string bearer_token);
  // Stops the server and joins its thread.
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  int port() const { return port_; }

  // Every alert received so far, in arrival order.
  std::vector<Alert> Alerts() const;
  // The alerts received so far whose labels include all of `labels` (string values).
  std::vector<Alert> Matching(const nlohmann::json& labels) const;
  int webhook_calls() const;
  int unauthorized_calls() const;

 private:
  void HandleWebhook(const httplib::Request& req, httplib::Response& res);

  const std::string token_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = -1;

  mutable std::mutex mu_;
  std::vector<Alert> alerts_;  // guarded by mu_
  int calls_ = 0;              // guarded by mu_
  int unauthorized_ = 0;       // guarded by mu_
};

}  // namespace bpmc::monitoring
