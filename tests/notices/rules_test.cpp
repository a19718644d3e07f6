// Pure decisions of the notices library: maintenance and contacts request
// validation (errors name the field), feed access by role, notice texts, the
// per-user request limit, and the `notices:` config section.
#include "notices/rules.h"

#include <gtest/gtest.h>

#include "common/time_format.h"
#include "notices/config.h"

namespace bpmc::notices {
namespace {

const int64_t kNow = *ParseRfc3339Micros("2026-11-26T10:00:00Z");

TEST(ParseMaintenanceRequest, ErrorsNameTheField) {
  const struct {
    const char* body;
    const char* field;  // "" = valid
  } cases[] = {
      {R"({"connectors":["c1"],"starts_at":"2026-11-27T00:00:00Z","ends_at":"2026-11-27T02:00:00Z","message":"m"})",
       ""},
      {R"({"connectors":["c1","c1","c0"],"starts_at":"2026-11-26T09:00:00Z","ends_at":"2026-11-26T11:00:00+01:00","message":"m"})",
       "ends_at"},
      {R"({"connectors":["c1"],"starts_at":"2026-11-26T09:00:00Z","ends_at":"2026-11-26T10:00:01Z","message":"m"})",
       ""},
      {"not json", ""},
      {"[1]", ""},
      {R"({"starts_at":"2026-11-27T00:00:00Z","ends_at":"2026-11-27T02:00:00Z","message":"m"})",
       "connectors"},
      {R"({"connectors":[],"starts_at":"2026-11-27T00:00:00Z","ends_at":"2026-11-27T02:00:00Z","message":"m"})",
       "connectors"},
      {R"({"connectors":"c1","starts_at":"2026-11-27T00:00:00Z","ends_at":"2026-11-27T02:00:00Z","message":"m"})",
       "connectors"},
      {R"({"connectors":["c1","bad id"],"starts_at":"2026-11-27T00:00:00Z","ends_at":"2026-11-27T02:00:00Z","message":"m"})",
       "connectors[1]"},
      {R"({"connectors":["c1",7],"starts_at":"2026-11-27T00:00:00Z","ends_at":"2026-11-27T02:00:00Z","message":"m"})",
       "connectors[1]"},
      {R"({"connectors":["c1"],"ends_at":"2026-11-27T02:00:00Z","message":"m"})", "starts_at"},
      {R"({"connectors":["c1"],"starts_at":"tomorrow","ends_at":"2026-11-27T02:00:00Z","message":"m"})",
       "starts_at"},
      {R"({"connectors":["c1"],"starts_at":"2026-11-27T00:00:00Z","ends_at":5,"message":"m"})",
       "ends_at"},
      {R"({"connectors":["c1"],"starts_at":"2026-11-27T02:00:00Z","ends_at":"2026-11-27T02:00:00Z","message":"m"})",
       "ends_at"},
      {R"({"connectors":["c1"],"starts_at":"2026-11-25T00:00:00Z","ends_at":"2026-11-26T09:59:59Z","message":"m"})",
       "ends_at"},
      {R"({"connectors":["c1"],"starts_at":"2026-11-27T00:00:00Z","ends_at":"2027-11-27T00:00:00Z","message":"m"})",
       "ends_at"},
      {R"({"connectors":["c1"],"starts_at":"2026-11-27T00:00:00Z","ends_at":"2026-11-27T02:00:00Z"})",
       "message"},
      {R"({"connectors":["c1"],"starts_at":"2026-11-27T00:00:00Z","ends_at":"2026-11-27T02:00:00Z","message":""})",
       "message"},
      {R"({"connectors":["c1"],"starts_at":"2026-11-27T00:00:00Z","ends_at":"2026-11-27T02:00:00Z","message":"m","extra":1})",
       "extra"},
  };
  for (const auto& c : cases) {
    auto r = ParseMaintenanceRequest(c.body, kNow);
    const bool valid = std::holds_alternative<MaintenanceRequest>(r);
    const bool invalid_json = std::string(c.body) == "not json" || std::string(c.body) == "[1]";
    if (std::string(c.field).empty() && !invalid_json) {
      EXPECT_TRUE(valid) << c.body << ": " << std::get<FieldError>(r).message;
    } else {
      ASSERT_FALSE(valid) << c.body;
      EXPECT_EQ(std::get<FieldError>(r).field, c.field) << c.body;
    }
  }
}

TEST(ParseMaintenanceRequest, SortsAndDedupsConnectors) {
  auto r = ParseMaintenanceRequest(
      R"({"connectors":["c2","c1","c2"],"starts_at":"2026-11-27T00:00:00Z","ends_at":"2026-11-27T05:00:00+03:00","message":"upgrade"})",
      kNow);
  ASSERT_TRUE(std::holds_alternative<MaintenanceRequest>(r));
  const auto& m = std::get<MaintenanceRequest>(r);
  EXPECT_EQ(m.connectors, (std::vector<std::string>{"c1", "c2"}));
  EXPECT_EQ(m.ends_us - m.starts_us, 2 * 3600LL * 1000000);
  EXPECT_EQ(m.message, "upgrade");
}

TEST(ParseContactsRequest, ValidatesAddresses) {
  auto ok = ParseContactsRequest(R"({"emails":["b@x.io","a@x.io","a@x.io"]})");
  ASSERT_TRUE(std::holds_alternative<std::vector<std::string>>(ok));
  EXPECT_EQ(std::get<std::vector<std::string>>(ok), (std::vector<std::string>{"a@x.io", "b@x.io"}));
  EXPECT_TRUE(
      std::holds_alternative<std::vector<std::string>>(ParseContactsRequest(R"({"emails":[]})")));
  for (const char* bad : {R"({"emails":["a@x.io","nope"]})", R"({"emails":["a@x.io","a b@x.io"]})",
                          R"({"emails":["a@x.io","<a@x.io>"]})", R"({"emails":["a@x.io","a@"]})"}) {
    auto r = ParseContactsRequest(bad);
    ASSERT_TRUE(std::holds_alternative<FieldError>(r)) << bad;
    EXPECT_EQ(std::get<FieldError>(r).field, "emails[1]") << bad;
  }
  EXPECT_EQ(std::get<FieldError>(ParseContactsRequest("{}")).field, "emails");
}

TEST(DecideFeedAccess, UsersSeeOnlyTheirOwnCustomer) {
  const Caller alice{"alice", "user", "cust-a"};
  const Caller admin{"root", "admin", ""};
  const struct {
    Caller caller;
    std::string param;
    int status;
    std::string customer;
    bool show_customer;
  } cases[] = {
      {alice, "", 200, "cust-a", false},
      {alice, "cust-a", 200, "cust-a", false},
      {alice, "cust-b", 403, "", false},
      {Caller{"ghost", "user", ""}, "", 403, "", false},
      {admin, "", 200, "", true},
      {admin, "cust-b", 200, "cust-b", true},
      {Caller{"m", "manager", ""}, "", 403, "", false},
      {Caller{"s", "support", ""}, "cust-a", 403, "", false},
  };
  for (const auto& c : cases) {
    const FeedAccess a = DecideFeedAccess(c.caller, c.param);
    EXPECT_EQ(a.status, c.status) << c.caller.name << " " << c.param;
    EXPECT_EQ(a.customer_id, c.customer) << c.caller.name << " " << c.param;
    EXPECT_EQ(a.show_customer, c.show_customer) << c.caller.name << " " << c.param;
  }
}

TEST(ConnectorStatus, MaintenanceThenProblemThenOperational) {
  EXPECT_STREQ(ConnectorStatus(true, true), "maintenance");
  EXPECT_STREQ(ConnectorStatus(true, false), "maintenance");
  EXPECT_STREQ(ConnectorStatus(false, true), "problem");
  EXPECT_STREQ(ConnectorStatus(false, false), "operational");
}

TEST(RequestLimiter, SlidingWindowPerKey) {
  RequestLimiter limiter(2, 1000000);
  int64_t retry = 0;
  EXPECT_TRUE(limiter.Allow("a", 0, &retry));
  EXPECT_TRUE(limiter.Allow("a", 100, &retry));
  EXPECT_FALSE(limiter.Allow("a", 200, &retry));
  EXPECT_EQ(retry, 1000000 - 200);
  EXPECT_TRUE(limiter.Allow("b", 200, &retry));  // another user is not affected
  EXPECT_FALSE(limiter.Allow("a", 999999, &retry));
  EXPECT_TRUE(limiter.Allow("a", 1000000, &retry));  // the first request left the window
  EXPECT_FALSE(limiter.Allow("a", 1000050, &retry));
  EXPECT_TRUE(limiter.Allow("a", 1000100, &retry));
}

notifier::NotifierConfig Channels() {
  notifier::NotifierConfig c;
  c.channels["mail"].type = notifier::ChannelType::kEmail;
  c.channels["slack"].type = notifier::ChannelType::kSlack;
  c.channels["tg"].type = notifier::ChannelType::kTelegram;
  return c;
}

TEST(ParseNoticesConfig, AbsentIsOffAndKeysParse) {
  NoticesConfig off;
  std::string error;
  ASSERT_TRUE(ParseNoticesConfig(YAML::Node(), Channels(), &off, &error));
  EXPECT_FALSE(off.enabled);

  NoticesConfig c;
  ASSERT_TRUE(ParseNoticesConfig(YAML::Load(R"(
email_channel: mail
telegram_channel: tg
maintenance_notice_before: 2h
connector_problem_after: 10m
payment_lookback: 3d
poll_interval: 500ms
rate_limit: {notices: 4, per: 1h}
api_rate_limit: {requests: 30, per: 1m}
database_connections: 3
)"),
                                 Channels(), &c, &error))
      << error;
  EXPECT_TRUE(c.enabled);
  EXPECT_EQ(c.email_channel, "mail");
  EXPECT_EQ(c.telegram_channel, "tg");
  EXPECT_EQ(c.maintenance_notice_before_us, 7200LL * 1000000);
  EXPECT_EQ(c.connector_problem_after_us, 600LL * 1000000);
  EXPECT_EQ(c.payment_lookback_us, 3 * 86400LL * 1000000);
  EXPECT_EQ(c.poll_interval_us, 500000);
  EXPECT_EQ(c.email_limit, 4);
  EXPECT_EQ(c.email_limit_per_us, 3600LL * 1000000);
  EXPECT_EQ(c.api_limit, 30);
  EXPECT_EQ(c.api_limit_per_us, 60LL * 1000000);
  EXPECT_EQ(c.database_connections, 3);
}

TEST(ParseNoticesConfig, ErrorsNameTheKey) {
  const struct {
    const char* yaml;
    const char* key;
  } cases[] = {
      {"email_channel: nope", "notices.email_channel"},
      {"email_channel: slack", "notices.email_channel"},
      {"email_channel: tg", "notices.email_channel"},
      {"telegram_channel: mail", "notices.telegram_channel"},
      {"telegram_channel: nope", "notices.telegram_channel"},
      {"telegram_channel: [tg]", "notices.telegram_channel"},
      {"connector_problem_after: 15", "notices.connector_problem_after"},
      {"poll_interval: 1ms", "notices.poll_interval"},
      {"rate_limit: {notices: 0, per: 1h}", "notices.rate_limit.notices"},
      {"rate_limit: {notices: 3}", "notices.rate_limit"},
      {"api_rate_limit: {requests: 3, per: soon}", "notices.api_rate_limit.per"},
      {"surprise: 1", "notices.surprise"},
      {"database_connections: 100", "notices.database_connections"},
      {"[1, 2]", "notices"},
  };
  for (const auto& c : cases) {
    NoticesConfig out;
    std::string error;
    EXPECT_FALSE(ParseNoticesConfig(YAML::Load(c.yaml), Channels(), &out, &error)) << c.yaml;
    EXPECT_EQ(error.substr(0, error.find(": ")), c.key) << c.yaml << " -> " << error;
  }
}

TEST(DecideLinkCodeTarget, UsersLinkOnlyTheirOwnCustomerAdminsNameOne) {
  const Caller alice{"alice", "user", "cust-a"};
  const Caller admin{"root", "admin", ""};
  const struct {
    Caller caller;
    std::string body;
    int status;
    std::string field, customer;
  } cases[] = {
      {alice, "", 200, "", "cust-a"},
      {alice, "{}", 200, "", "cust-a"},
      {alice, R"({"customer":"cust-a"})", 200, "", "cust-a"},
      {alice, R"({"customer":"cust-b"})", 403, "customer", ""},
      {{"nobody", "user", ""}, "{}", 403, "customer", ""},
      {admin, R"({"customer":"cust-b"})", 200, "", "cust-b"},
      {admin, "{}", 400, "customer", ""},
      {admin, R"({"customer":""})", 400, "customer", ""},
      {admin, R"({"customer":"a/b"})", 400, "customer", ""},
      {admin, R"({"customer":7})", 400, "customer", ""},
      {admin, R"({"customer":"c","x":1})", 400, "x", ""},
      {admin, "[]", 400, "", ""},
      {admin, "not json", 400, "", ""},
      {{"sue", "support", ""}, R"({"customer":"c"})", 403, "", ""},
      {{"max", "manager", ""}, R"({"customer":"c"})", 403, "", ""},
  };
  for (const auto& c : cases) {
    const LinkCodeTarget t = DecideLinkCodeTarget(c.caller, c.body);
    EXPECT_EQ(t.status, c.status) << c.caller.role << " " << c.body;
    EXPECT_EQ(t.field, c.field) << c.caller.role << " " << c.body;
    EXPECT_EQ(t.customer_id, c.customer) << c.caller.role << " " << c.body;
  }
}

}  // namespace
}  // namespace bpmc::notices
