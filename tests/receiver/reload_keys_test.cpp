// Which config changes a reload refuses (KeysNeedingRestart): a table test.
#include <gtest/gtest.h>

#include <functional>

#include "webhook_receiver/service.h"

namespace bpmc::webhook_receiver {
namespace {

TEST(KeysNeedingRestartTest, Table) {
  const struct {
    const char* name;
    std::function<void(ReceiverConfig*)> change;
    std::vector<std::string> keys;
  } cases[] = {
      {"nothing", [](ReceiverConfig*) {}, {}},
      {"routes", [](ReceiverConfig* c) { c->routes.emplace_back(); }, {}},
      {"auth", [](ReceiverConfig* c) { c->auth.bearer_tokens.push_back("t"); }, {}},
      {"on-call", [](ReceiverConfig* c) { c->oncall.people["ann"].name = "Ann"; }, {}},
      {"heartbeats", [](ReceiverConfig* c) { c->heartbeats.emplace_back(); }, {}},
      {"delivery threads", [](ReceiverConfig* c) { c->delivery_threads = 8; }, {}},
      {"log format", [](ReceiverConfig* c) { c->log_format = "json"; }, {}},
      {"log level", [](ReceiverConfig* c) { c->log_level = "debug"; }, {}},
      {"incidents",
       [](ReceiverConfig* c) { c->incidents.ical_feed_secret = "0123456789abcdef"; },
       {}},
      {"listen", [](ReceiverConfig* c) { c->listen = "127.0.0.1:1"; }, {"listen"}},
      {"database",
       [](ReceiverConfig* c) { c->database_url = "postgresql:///x"; },
       {"database_url"}},
      {"body limit", [](ReceiverConfig* c) { c->max_body_bytes = 1; }, {"max_body_bytes"}},
      {"threads", [](ReceiverConfig* c) { c->http_threads = 1; }, {"http_threads"}},
      {"deadline", [](ReceiverConfig* c) { c->request_deadline_ms = 1; }, {"request_deadline_ms"}},
      {"per client",
       [](ReceiverConfig* c) { c->max_requests_per_client = 0; },
       {"max_requests_per_client"}},
      {"proxies",
       [](ReceiverConfig* c) { c->trusted_proxies = {"10.0.0.0/8"}; },
       {"trusted_proxies"}},
      {"connections",
       [](ReceiverConfig* c) { c->database_connections = 9; },
       {"database_connections"}},
      {"notices on", [](ReceiverConfig* c) { c->notices.enabled = true; }, {"notices"}},
      {"notices limit", [](ReceiverConfig* c) { c->notices.email_limit = 1; }, {"notices"}},
      {"notices telegram",
       [](ReceiverConfig* c) { c->notices.telegram_channel = "tg"; },
       {"notices"}},
      {"notices template",
       [](ReceiverConfig* c) {
         c->notices.templates[{"connector_problem", "ru"}].title = "{{connector}}";
       },
       {"notices"}},
      {"two",
       [](ReceiverConfig* c) {
         c->listen = "127.0.0.1:1";
         c->notices.api_limit = 1;
       },
       {"listen", "notices"}},
  };
  for (const auto& c : cases) {
    const ReceiverConfig running;
    ReceiverConfig next = running;
    c.change(&next);
    EXPECT_EQ(KeysNeedingRestart(running, next), c.keys) << c.name;
  }
}

}  // namespace
}  // namespace bpmc::webhook_receiver
