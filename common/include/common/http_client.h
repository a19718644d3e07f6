#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bpmc {

// One outgoing HTTP request.
struct HttpRequest {
  std::string method = "POST";
  std::string url;
  // Sent in this order. Names as written; "Content-Type" belongs here.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Whole exchange (connect + send + receive).
  std::chrono::milliseconds timeout{10000};
};

// What came back. `status` is 0 when no HTTP response arrived; then
// `transport_error` is the libcurl CURLcode (non-zero) and `error` its text.
struct HttpResponse {
  int status = 0;
  int transport_error = 0;
  std::string error;
  std::string body;
  // Header names lower-cased, values trimmed, in arrival order.
  std::vector<std::pair<std::string, std::string>> headers;

  // The first value of header `name` (any case), or "".
  std::string Header(std::string_view name) const;
};

// Outgoing HTTP. Implementations never throw for network or HTTP errors: those
// come back in HttpResponse. Thread-safe: one instance serves every thread.
class HttpClient {
 public:
  virtual ~HttpClient() = default;
  virtual HttpResponse Send(const HttpRequest& request) = 0;
};

// The libcurl implementation: HTTP/1.1 and HTTPS with the system CA store,
// keep-alive connections reused per calling thread, redirects not followed.
std::unique_ptr<HttpClient> NewCurlHttpClient();

}  // namespace bpmc
