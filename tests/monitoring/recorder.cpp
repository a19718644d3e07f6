#include "recorder.h"

#include <stdexcept>

namespace bpmc::monitoring {

Recorder::Recorder(std::string bearer_token) : token_(std::move(bearer_token)) {
  server_.Post("/v1/alertmanager", [this](const httplib::Request& req, httplib::Response& res) {
    HandleWebhook(req, res);
  });
  // The Watchdog's check-in (alertmanager.yml, receiver bpmc-heartbeat): recorded alike.
  server_.Post(
      "/v1/heartbeat/alertmanager-watchdog",
      [this](const httplib::Request& req, httplib::Response& res) { HandleWebhook(req, res); });
  server_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu_);
    res.set_content(
        "# TYPE bpmc_receiver_notifications_total counter\n"
        "bpmc_receiver_notifications_total{channel=\"webhook\",result=\"sent\"} " +
            std::to_string(calls_) +
            "\n"
            "bpmc_receiver_notifications_total{channel=\"webhook\",result=\"failed\"} 0\n"
            "# TYPE bpmc_receiver_queue_depth gauge\n"
            "bpmc_receiver_queue_depth 0\n",
        "text/plain; version=0.0.4");
  });
  server_.Get("/probe", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(
        "# TYPE probe_success gauge\nprobe_success 1\n"
        "# TYPE probe_duration_seconds gauge\nprobe_duration_seconds 0.012\n",
        "text/plain; version=0.0.4");
  });
  port_ = server_.bind_to_any_port("127.0.0.1");
  if (port_ <= 0) throw std::runtime_error("Recorder: cannot bind 127.0.0.1");
  thread_ = std::thread([this] { server_.listen_after_bind(); });
  while (!server_.is_running()) std::this_thread::yield();
}

Recorder::~Recorder() {
  server_.stop();
  if (thread_.joinable()) thread_.join();
}

void Recorder::HandleWebhook(const httplib::Request& req, httplib::Response& res) {
  if (req.get_header_value("Authorization") != "Bearer " + token_) {
    std::lock_guard<std::mutex> lock(mu_);
    ++unauthorized_;
    res.status = 401;
    return;
  }
  const nlohmann::json payload = nlohmann::json::parse(req.body, nullptr, false);
  if (payload.is_discarded() || !payload.contains("alerts")) {
    res.status = 400;
    return;
  }
  // Alertmanager regex-escapes the receiver name ("bpmc\-critical" for bpmc-critical).
  std::string receiver;
  for (char c : payload.value("receiver", "")) {
    if (c != '\\') receiver += c;
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++calls_;
  for (const auto& alert : payload["alerts"]) {
    alerts_.push_back(
        {receiver, alert.value("status", ""), alert.value("labels", nlohmann::json{})});
  }
  res.status = 200;
}

std::vector<Recorder::Alert> Recorder::Alerts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return alerts_;
}

std::vector<Recorder::Alert> Recorder::Matching(const nlohmann::json& labels) const {
  std::vector<Alert> out;
  for (const Alert& alert : Alerts()) {
    bool match = true;
    for (const auto& [key, value] : labels.items()) {
      match = match && alert.labels.value(key, "") == value.get<std::string>();
    }
    if (match) out.push_back(alert);
  }
  return out;
}

int Recorder::webhook_calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_;
}

int Recorder::unauthorized_calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unauthorized_;
}

}  // namespace bpmc::monitoring
