#pragma once

#include <prometheus/registry.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "common/clock.h"
#include "http/types.h"
#include "notices/config.h"
#include "notices/rules.h"

namespace bpmc::notices {

// What the notices service needs from the receiver that runs it.
struct NoticeDeps {
  const Clock* clock = nullptr;              // required
  prometheus::Registry* registry = nullptr;  // required; metrics bpmc_receiver_notice*
  // The caller of an API request (a platform user's bearer token or console
  // session: identity::UserDirectory::FindRequest), or nullopt. Required; thread-safe.
  std::function<std::optional<Caller>(const http::Request& request)> authenticate;
  std::function<void()> wake_delivery;                    // new outbox rows; may be null
  std::function<void(const std::string&)> count_failure;  // reasons notices_pass, notices_api
};

// Notices to platform users (docs/NOTICES.md): the notice engine thread
// (RunNoticeStep every poll_interval and on Wake) and the HTTP endpoints
//   POST/GET /api/v1/maintenance            (admin; GET also manager, support)
//   PATCH|PUT/DELETE /api/v1/maintenance/{id}  (admin: edit, cancel)
//   PUT/GET  /api/v1/notices/preferences/{customer}     (admin: locale, time zone)
//   GET      /api/v1/notices[?customer=&before=&limit=]  (a user: its own feed; admin: any)
//   PUT/GET  /api/v1/notices/contacts/{customer}        (admin)
//   POST     /api/v1/notices/telegram-link-code  (a user: its own customer; admin: any)
// Every request is authenticated and limited per user (api_rate_limit).
// Thread-safe; Start and Stop from one thread.
class NoticeService {
 public:
  NoticeService(std::string database_url, NoticesConfig config, NoticeDeps deps);
  ~NoticeService();  // Stop()
  NoticeService(const NoticeService&) = delete;
  NoticeService& operator=(const NoticeService&) = delete;

  void Start();  // starts the engine thread
  void Stop();   // joins it; idempotent. Handle() keeps answering.
  void Wake();   // run an engine pass now

  // The shared HTTP layer's request and response (http/include/http/types.h).
  using Request = http::Request;
  using Response = http::Response;
  // Largest request body of these endpoints (the HTTP layer's limit).
  static constexpr size_t kMaxBody = 64 * 1024;
  // True when `uri` is one of the endpoints above.
  static bool Serves(std::string_view uri);
  // The answer to one request of a served path (authenticates the caller again,
  // applies the per-user limit and the role) — tests call it directly.
  Response Answer(const Request& request);
  // Answer, counted in bpmc_receiver_notice_api_requests_total.
  Response Serve(const Request& request);
  // Counts a request the HTTP layer refused before Serve (401, 413, ...).
  void CountRequest(std::string_view uri, int status);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace bpmc::notices
