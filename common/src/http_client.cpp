#include "common/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>

namespace bpmc {
namespace {

// Responses are read up to this size; the rest is dropped (peers answer short bodies).
constexpr size_t kMaxBody = 1 << 20;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string Trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  const auto e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  const size_t len = size * n;
  if (body->size() < kMaxBody) body->append(data, std::min(len, kMaxBody - body->size()));
  return len;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* response = static_cast<HttpResponse*>(user);
  const size_t len = size * n;
  const std::string line(data, len);
  if (line.rfind("HTTP/", 0) == 0) {
    response->headers.clear();  // a new response (after 100 Continue)
  } else if (auto colon = line.find(':'); colon != std::string::npos) {
    response->headers.emplace_back(Lower(Trim(line.substr(0, colon))),
                                   Trim(line.substr(colon + 1)));
  }
  return len;
}

// One easy handle per thread: curl keeps its connections alive between requests.
class ThreadHandle {
 public:
  ThreadHandle() : handle_(curl_easy_init()) {}
  ~ThreadHandle() {
    if (handle_) curl_easy_cleanup(handle_);
  }
  CURL* get() { return handle_; }

 private:
  CURL* handle_;
};

class CurlHttpClient final : public HttpClient {
 public:
  HttpResponse Send(const HttpRequest& request) override {
    thread_local ThreadHandle thread_handle;
    HttpResponse response;
    CURL* h = thread_handle.get();
    if (h == nullptr) {
      response.transport_error = CURLE_FAILED_INIT;
      response.error = "curl_easy_init failed";
      return response;
    }
    curl_easy_reset(h);
    curl_slist* headers = nullptr;
    for (const auto& [name, value] : request.headers) {
      headers = curl_slist_append(headers, (name + ": " + value).c_str());
    }
    headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
    curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    if (request.method != "GET" && request.method != "HEAD") {
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.timeout.count()));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "bpmc-receiver");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &response.body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &response);
    const CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
      response.transport_error = rc;
      response.error = curl_easy_strerror(rc);
      response.status = 0;
      return response;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    response.status = static_cast<int>(status);
    return response;
  }
};

}  // namespace

std::string HttpResponse::Header(std::string_view name) const {
  const std::string key = Lower(std::string(name));
  for (const auto& [k, v] : headers) {
    if (k == key) return v;
  }
  return "";
}

std::unique_ptr<HttpClient> NewCurlHttpClient() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  return std::make_unique<CurlHttpClient>();
}

}  // namespace bpmc
