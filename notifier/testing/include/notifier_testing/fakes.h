#pragma once
// Test doubles for the notifier's outside dependencies. Thread-safe.

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "common/clock.h"
#include "common/http_client.h"
#include "notifier/mailer.h"

namespace bpmc::notifier::testing {

// A clock the test sets and advances by hand.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t now_micros = 1'800'000'000'000'000) : now_(now_micros) {}
  int64_t NowMicros() const override { return now_.load(); }
  void Set(int64_t micros) { now_.store(micros); }
  void Advance(std::chrono::microseconds d) { now_.fetch_add(d.count()); }

 private:
  std::atomic<int64_t> now_;
};

// Records every request and answers from a script (then with `fallback`).
class FakeHttpClient final : public HttpClient {
 public:
  HttpResponse Send(const HttpRequest& request) override;
  // Answers the next request(s) with these, in order.
  void Script(std::vector<HttpResponse> responses);
  void SetFallback(HttpResponse response);
  std::vector<HttpRequest> Requests() const;

  static HttpResponse Status(int status, std::string body = "",
                             std::vector<std::pair<std::string, std::string>> headers = {});
  static HttpResponse NetworkError(int curl_code = 7 /* CURLE_COULDNT_CONNECT */);

 private:
  mutable std::mutex mu_;
  std::deque<HttpResponse> script_;
  HttpResponse fallback_ = Status(200, "ok");
  std::vector<HttpRequest> requests_;
};

// Records every message and answers from a script (then success).
class FakeMailer final : public Mailer {
 public:
  MailResult Send(const SmtpSettings& relay, const MailMessage& message) override;
  void Script(std::vector<MailResult> results);
  std::vector<MailMessage> Messages() const;

 private:
  mutable std::mutex mu_;
  std::deque<MailResult> script_;
  std::vector<MailMessage> messages_;
};

}  // namespace bpmc::notifier::testing
