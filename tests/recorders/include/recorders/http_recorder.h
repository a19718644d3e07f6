#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace bpmc::recorders {

// One request as the recorder saw it, and what it answered.
struct RecordedRequest {
  std::string method, path, body;
  std::multimap<std::string, std::string> headers;  // names lower-cased
  int status = 0;  // what the recorder answered (0: the request was held and dropped)
  std::chrono::steady_clock::time_point at;  // when it arrived
  std::string Header(const std::string& name) const;
  bool accepted() const { return status >= 200 && status < 300; }
};

// An HTTP peer on 127.0.0.1 (port chosen by the kernel) that records every
// request. Each answer comes from, in order: the script (Script()), a hold
// (HoldNext()), or the peer's normal behaviour (`validate`, then `ok`).
// Thread-safe.
class HttpRecorder {
 public:
  struct Reply {
    int status = 200;
    std::string body = "ok";
    std::string content_type = "text/plain";
    std::vector<std::pair<std::string, std::string>> headers;
  };
  // Checks a request as the real peer would: "" to accept, else the error body
  // of a 400 answer.
  using Validator = std::function<std::string(const RecordedRequest&)>;

  HttpRecorder(Reply ok, Validator validate = nullptr);
  ~HttpRecorder();
  HttpRecorder(const HttpRecorder&) = delete;
  HttpRecorder& operator=(const HttpRecorder&) = delete;

  // Slack incoming webhook: 200 "ok"; 400 "invalid_payload" unless the body is
  // JSON with a string `text` (and well-formed `blocks`/`attachments` arrays).
  static std::unique_ptr<HttpRecorder> Slack();
  // PagerDuty Events API v2 (/v2/enqueue): 202 {"status":"success",...}; 400 for
  // an event PagerDuty would refuse (routing_key, event_action, dedup_key, payload).
  static std::unique_ptr<HttpRecorder> PagerDuty();
  // An SMS provider: 200 {"status":"queued"}.
  static std::unique_ptr<HttpRecorder> Sms();
  // A generic webhook receiver: 200 "ok".
  static std::unique_ptr<HttpRecorder> Webhook();

  int port() const { return port_; }
  // "http://127.0.0.1:<port><path>".
  std::string Url(const std::string& path = "/") const;

  // The next requests get these answers, in order.
  void Script(std::vector<Reply> replies);
  // Answers every request after the script with `reply` (until called again).
  void SetDefault(Reply reply);
  // Answers like the real peer's rate limit: beyond `messages` accepted per `per`,
  // 429 with "Retry-After: <retry_after_seconds>" (checked after the script and holds).
  void LimitRate(int messages, std::chrono::milliseconds per, int retry_after_seconds = 1);
  // The next request (after the script) is held, unanswered, until Release().
  void HoldNext();
  // Waits until a held request is in progress.
  bool WaitHeld(std::chrono::milliseconds timeout);
  // Answers the held request (status 0: close without an answer; recorded as such).
  void Release(Reply reply);

  std::vector<RecordedRequest> Requests() const;
  std::vector<RecordedRequest> Accepted() const;
  size_t AcceptedCount() const;
  // Polls until at least `n` requests were accepted.
  bool WaitAccepted(size_t n, std::chrono::milliseconds timeout) const;

  class Server;

 private:
  Reply Answer(RecordedRequest& request);
  bool RateLimited(std::chrono::steady_clock::time_point now);  // mu_ held

  Reply ok_;
  Validator validate_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::deque<Reply> script_;
  bool has_default_ = false;
  Reply default_;
  int rate_messages_ = 0;
  std::chrono::milliseconds rate_per_{0};
  int rate_retry_after_ = 1;
  std::deque<std::chrono::steady_clock::time_point> rate_sends_;
  bool hold_next_ = false;
  bool holding_ = false;
  bool released_ = false;
  bool stopping_ = false;
  Reply release_;
  std::vector<RecordedRequest> requests_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace bpmc::recorders
