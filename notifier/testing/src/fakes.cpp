#include "notifier_testing/fakes.h"

namespace bpmc::notifier::testing {

HttpResponse FakeHttpClient::Send(const HttpRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  requests_.push_back(request);
  if (script_.empty()) return fallback_;
  HttpResponse r = script_.front();
  script_.pop_front();
  return r;
}

void FakeHttpClient::Script(std::vector<HttpResponse> responses) {
  std::lock_guard<std::mutex> lock(mu_);
  script_.insert(script_.end(), responses.begin(), responses.end());
}

void FakeHttpClient::SetFallback(HttpResponse response) {
  std::lock_guard<std::mutex> lock(mu_);
  fallback_ = std::move(response);
}

std::vector<HttpRequest> FakeHttpClient::Requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

HttpResponse FakeHttpClient::Status(int status, std::string body,
                                    std::vector<std::pair<std::string, std::string>> headers) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

HttpResponse FakeHttpClient::NetworkError(int curl_code) {
  HttpResponse r;
  r.transport_error = curl_code;
  r.error = "fake network error";
  return r;
}

MailResult FakeMailer::Send(const SmtpSettings&, const MailMessage& message) {
  std::lock_guard<std::mutex> lock(mu_);
  messages_.push_back(message);
  if (script_.empty()) return {};
  MailResult r = script_.front();
  script_.pop_front();
  return r;
}

void FakeMailer::Script(std::vector<MailResult> results) {
  std::lock_guard<std::mutex> lock(mu_);
  script_.insert(script_.end(), results.begin(), results.end());
}

std::vector<MailMessage> FakeMailer::Messages() const {
  std::lock_guard<std::mutex> lock(mu_);
  return messages_;
}

}  // namespace bpmc::notifier::testing
