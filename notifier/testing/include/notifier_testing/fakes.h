#pragma once
// Test doubles for the notifier's outside dependencies. Thread-safe.

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "common/clock.h"
#include "common/http_client.h"
#include "common/testing/fake_clock.h"
#include "notifier/mailer.h"

namespace bpmc::notifier::testing {

// The clock tests advance by hand (common/testing/fake_clock.h).
using FakeClock = bpmc::testing::FakeClock;

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
