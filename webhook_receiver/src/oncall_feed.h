#pragma once
// The on-call calendar feeds of bpmc-receiver (docs/ONCALL.md, "Calendar
// feeds"; oncall/ical.h renders them):
//   GET /api/v1/oncall/ical/schedule/<id>.ics?sig=...   one schedule's shifts
//   GET /api/v1/oncall/ical/person/<id>.ics?sig=...     one person's shifts, every schedule
//   GET /api/v1/oncall/ical-links                       the signed URLs (a platform user)
// Calendar clients send no credentials, so a feed URL carries its own: the
// HMAC of its path under incidents.ical_feed_secret. The signature is checked
// before anything else (403 whatever the id), so an unsigned request learns
// nothing of which ids exist.

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include "common/clock.h"
#include "http/types.h"
#include "incidents/engine.h"

namespace bpmc::webhook_receiver {

class OnCallFeed {
 public:
  // Registers bpmc_receiver_oncall_feed_requests_total{feed, result} (feed:
  // schedule, person, links; result: ok, bad_signature, not_found, disabled,
  // forbidden, unavailable). `registry` must outlive the feed. Thread-safe.
  explicit OnCallFeed(prometheus::Registry& registry);

  // A feed (public route). Reads the secret, the public URL, the on-call config
  // and the stored overrides through `engine`.
  http::Response Feed(const http::Request& req, incidents::Engine& engine, const Clock& clock);
  // The signed URLs of every schedule and person: admin, manager and support
  // (the HTTP layer authenticated the user); role user gets 403.
  http::Response Links(const http::Request& req, incidents::Engine& engine);

 private:
  void Count(const char* feed, const char* result);
  prometheus::Family<prometheus::Counter>& requests_;
};

}  // namespace bpmc::webhook_receiver
