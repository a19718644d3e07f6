#include "recorders/http_recorder.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "text_codec.h"

namespace bpmc::recorders {

class HttpRecorder::Server {
 public:
  httplib::Server http;
};

namespace {

std::string ValidateSlack(const RecordedRequest& r) {
  const auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return "invalid_payload";
  if (!j.contains("text") || !j["text"].is_string() || j["text"].get<std::string>().empty()) {
    return "no_text";
  }
  for (const char* key : {"blocks", "attachments"}) {
    if (j.contains(key) && !j[key].is_array()) return "invalid_blocks";
  }
  if (j.contains("blocks") && j["blocks"].size() > 50) return "invalid_blocks";
  return "";
}

std::string ValidatePagerDuty(const RecordedRequest& r) {
  const auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return R"({"status":"invalid event","message":"bad JSON"})";
  auto bad = [](const std::string& why) {
    return nlohmann::json{
        {"status", "invalid event"}, {"message", "Event object is invalid"}, {"errors", {why}}}
        .dump();
  };
  if (!j.contains("routing_key") || !j["routing_key"].is_string() ||
      j["routing_key"].get<std::string>().size() != 32) {
    return bad("'routing_key' must be 32 characters");
  }
  const std::string action = j.value("event_action", "");
  if (action != "trigger" && action != "acknowledge" && action != "resolve")
    return bad("'event_action' is invalid");
  const std::string key = j.value("dedup_key", "");
  if (key.size() > 255) return bad("'dedup_key' is too long");
  if (action != "trigger") return key.empty() ? bad("'dedup_key' is required") : "";
  if (!j.contains("payload") || !j["payload"].is_object()) return bad("'payload' is missing");
  const auto& p = j["payload"];
  const std::string summary = p.value("summary", "");
  if (summary.empty() || summary.size() > 1024) return bad("'payload.summary' is invalid");
  if (p.value("source", "").empty()) return bad("'payload.source' is missing");
  const std::string sev = p.value("severity", "");
  if (sev != "critical" && sev != "error" && sev != "warning" && sev != "info") {
    return bad("'payload.severity' is invalid");
  }
  return "";
}

}  // namespace

std::string RecordedRequest::Header(const std::string& name) const {
  auto it = headers.find(Lower(name));
  return it == headers.end() ? std::string() : it->second;
}

HttpRecorder::HttpRecorder(Reply ok, Validator validate)
    : ok_(std::move(ok)), validate_(std::move(validate)), server_(std::make_unique<Server>()) {
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    RecordedRequest r;
    r.at = std::chrono::steady_clock::now();
    r.method = req.method;
    r.path = req.path;
    r.body = req.body;
    for (const auto& [k, v] : req.headers) r.headers.emplace(Lower(k), v);
    const Reply reply = Answer(r);
    if (reply.status == 0) {
      res.status = 503;  // httplib cannot drop a connection; recorded as unanswered
      res.set_header("Connection", "close");
      return;
    }
    res.status = reply.status;
    for (const auto& [k, v] : reply.headers) res.set_header(k, v);
    res.set_content(reply.body, reply.content_type.c_str());
  };
  // One request per connection: a kept-alive idle connection would hold stop() for the
  // keep-alive timeout (5 s), and peers' connection reuse is not what the tests measure.
  server_->http.set_keep_alive_max_count(1);
  server_->http.Post(".*", handler);
  server_->http.Put(".*", handler);
  port_ = server_->http.bind_to_any_port("127.0.0.1");
  thread_ = std::thread([this] { server_->http.listen_after_bind(); });
  // The socket listens from bind on; wait for the accept loop so that stop() cannot race it.
  while (!server_->http.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

HttpRecorder::~HttpRecorder() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    released_ = true;
    release_ = Reply{0, "", "text/plain", {}};
  }
  cv_.notify_all();
  server_->http.stop();
  if (thread_.joinable()) thread_.join();
}

HttpRecorder::Reply HttpRecorder::Answer(RecordedRequest& request) {
  std::unique_lock<std::mutex> lock(mu_);
  Reply reply;
  if (!script_.empty()) {
    reply = script_.front();
    script_.pop_front();
  } else if (hold_next_ && !stopping_) {
    hold_next_ = false;
    holding_ = true;
    released_ = false;
    cv_.notify_all();
    cv_.wait(lock, [&] { return released_; });
    holding_ = false;
    reply = release_;
  } else if (has_default_) {
    reply = default_;
  } else if (RateLimited(request.at)) {
    reply = Reply{
        429, "rate_limited", "text/plain", {{"Retry-After", std::to_string(rate_retry_after_)}}};
  } else {
    lock.unlock();
    const std::string error = validate_ ? validate_(request) : "";
    lock.lock();
    reply = error.empty() ? ok_ : Reply{400, error, "text/plain", {}};
  }
  request.status = reply.status;
  requests_.push_back(request);
  cv_.notify_all();
  return reply;
}

bool HttpRecorder::RateLimited(std::chrono::steady_clock::time_point now) {
  if (rate_messages_ <= 0) return false;
  while (!rate_sends_.empty() && rate_sends_.front() <= now - rate_per_) rate_sends_.pop_front();
  if (static_cast<int>(rate_sends_.size()) >= rate_messages_) return true;
  rate_sends_.push_back(now);
  return false;
}

void HttpRecorder::LimitRate(int messages, std::chrono::milliseconds per, int retry_after_seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  rate_messages_ = messages;
  rate_per_ = per;
  rate_retry_after_ = retry_after_seconds;
}

std::unique_ptr<HttpRecorder> HttpRecorder::Slack() {
  return std::make_unique<HttpRecorder>(Reply{200, "ok", "text/plain", {}}, ValidateSlack);
}

std::unique_ptr<HttpRecorder> HttpRecorder::PagerDuty() {
  auto recorder = std::make_unique<HttpRecorder>(
      Reply{202, R"({"status":"success","message":"Event processed"})", "application/json", {}},
      ValidatePagerDuty);
  return recorder;
}

std::unique_ptr<HttpRecorder> HttpRecorder::Sms() {
  return std::make_unique<HttpRecorder>(
      Reply{200, R"({"status":"queued"})", "application/json", {}});
}

std::unique_ptr<HttpRecorder> HttpRecorder::Webhook() {
  return std::make_unique<HttpRecorder>(Reply{200, "ok", "text/plain", {}});
}

std::string HttpRecorder::Url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void HttpRecorder::Script(std::vector<Reply> replies) {
  std::lock_guard<std::mutex> lock(mu_);
  script_.insert(script_.end(), replies.begin(), replies.end());
}

void HttpRecorder::SetDefault(Reply reply) {
  std::lock_guard<std::mutex> lock(mu_);
  has_default_ = true;
  default_ = std::move(reply);
}

void HttpRecorder::HoldNext() {
  std::lock_guard<std::mutex> lock(mu_);
  hold_next_ = true;
}

bool HttpRecorder::WaitHeld(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return holding_; });
}

void HttpRecorder::Release(Reply reply) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    release_ = std::move(reply);
    released_ = true;
  }
  cv_.notify_all();
}

std::vector<RecordedRequest> HttpRecorder::Requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

std::vector<RecordedRequest> HttpRecorder::Accepted() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<RecordedRequest> out;
  for (const auto& r : requests_) {
    if (r.accepted()) out.push_back(r);
  }
  return out;
}

size_t HttpRecorder::AcceptedCount() const { return Accepted().size(); }

bool HttpRecorder::WaitAccepted(size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    return static_cast<size_t>(
               std::count_if(requests_.begin(), requests_.end(),
                             [](const RecordedRequest& r) { return r.accepted(); })) >= n;
  });
}

}  // namespace bpmc::recorders
