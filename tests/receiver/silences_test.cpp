// The pure part of silences (webhook_receiver/silences.h): parsing a request and
// matching labels, as table tests.
#include "webhook_receiver/silences.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace bpmc::webhook_receiver {
namespace {

constexpr int64_t kNow = 1'800'000'000'000'000;  // 2027-01-15T08:00:00Z
const std::string kEnd = "\"ends_at\":\"2027-01-15T10:00:00Z\"";

TEST(SilenceRequestTest, Parses) {
  auto r =
      ParseSilenceRequest(R"({"matchers":["connector=\"crm\"","severity=~\"critical|warning\""],)" +
                              kEnd + R"(,"comment":"upgrade"})",
                          kNow);
  ASSERT_TRUE(std::holds_alternative<SilenceRequest>(r)) << std::get<RequestError>(r).message;
  const SilenceRequest& s = std::get<SilenceRequest>(r);
  EXPECT_EQ(s.matchers.size(), 2u);
  EXPECT_EQ(s.starts_us, kNow);  // default: now
  EXPECT_EQ(s.ends_us, kNow + 2 * 3'600'000'000);
  EXPECT_EQ(s.comment, "upgrade");
}

TEST(SilenceRequestTest, RefusesNamingTheField) {
  const std::string many = [] {
    std::string m;
    for (int i = 0; i < 33; ++i) m += std::string(i ? "," : "") + "\"a=\\\"b\\\"\"";
    return m;
  }();
  const std::string deep = std::string(40, '[') + std::string(40, ']');
  std::string deep_path = "matchers";  // the container past kMaxJsonDepth
  for (int i = 0; i < 31; ++i) deep_path += "[0]";
  struct Case {
    std::string body;
    std::string field;
  } cases[] = {
      {"", ""},
      {"[]", ""},
      {"{\"matchers\":" + deep + "}", deep_path},
      {R"({"comment":"x",)" + kEnd + "}", "matchers"},
      {R"({"matchers":[],"comment":"x",)" + kEnd + "}", "matchers"},
      {R"({"matchers":"a=b","comment":"x",)" + kEnd + "}", "matchers"},
      {R"({"matchers":[")" + std::string("a=") + "\"],\"comment\":\"x\"," + kEnd + "}",
       "matchers"},  // a="" matches an alert without labels: everything
      {R"({"matchers":["a!=\"x\""],"comment":"x",)" + kEnd + "}", "matchers"},
      {R"({"matchers":["a=~\".*\""],"comment":"x",)" + kEnd + "}", "matchers"},
      {R"({"matchers":[1],"comment":"x",)" + kEnd + "}", "matchers[0]"},
      {R"({"matchers":["a=\"b\"","9a=\"b\""],"comment":"x",)" + kEnd + "}", "matchers[1]"},
      {R"({"matchers":["a=~\"(\""],"comment":"x",)" + kEnd + "}", "matchers[0]"},
      {R"({"matchers":["a<>b"],"comment":"x",)" + kEnd + "}", "matchers[0]"},
      {R"({"matchers":[""],"comment":"x",)" + kEnd + "}", "matchers[0]"},
      {"{\"matchers\":[\"a=\\\"" + std::string(1100, 'x') + "\\\"\"],\"comment\":\"x\"," + kEnd +
           "}",
       "matchers[0]"},
      {"{\"matchers\":[" + many + "],\"comment\":\"x\"," + kEnd + "}", "matchers"},
      {R"({"matchers":["a=\"b\""],"comment":"x"})", "ends_at"},
      {R"({"matchers":["a=\"b\""],"comment":"x","ends_at":"tomorrow"})", "ends_at"},
      {R"({"matchers":["a=\"b\""],"comment":"x","ends_at":7})", "ends_at"},
      {R"({"matchers":["a=\"b\""],"comment":"x","ends_at":"2027-01-15T07:00:00Z"})", "ends_at"},
      {R"({"matchers":["a=\"b\""],"comment":"x","starts_at":"2027-01-15T11:00:00Z",)" + kEnd + "}",
       "ends_at"},
      {R"({"matchers":["a=\"b\""],"comment":"x","ends_at":"2027-05-15T07:00:00Z"})", "ends_at"},
      {R"({"matchers":["a=\"b\""],"comment":"x","starts_at":"yesterday",)" + kEnd + "}",
       "starts_at"},
      {R"({"matchers":["a=\"b\""],)" + kEnd + "}", "comment"},
      {R"({"matchers":["a=\"b\""],"comment":"",)" + kEnd + "}", "comment"},
      {R"({"matchers":["a=\"b\""],"comment":["x"],)" + kEnd + "}", "comment"},
      {"{\"matchers\":[\"a=\\\"b\\\"\"],\"comment\":\"" + std::string(2001, 'c') + "\"," + kEnd +
           "}",
       "comment"},
      {R"({"matchers":["a=\"b\""],"comment":"x","createdBy":"me",)" + kEnd + "}", "createdBy"},
  };
  for (const Case& c : cases) {
    auto r = ParseSilenceRequest(c.body, kNow);
    ASSERT_TRUE(std::holds_alternative<RequestError>(r)) << c.body.substr(0, 200);
    EXPECT_EQ(std::get<RequestError>(r).field, c.field) << c.body.substr(0, 200);
    EXPECT_EQ(std::get<RequestError>(r).http_status, 400);
  }
}

TEST(SilenceMatchesTest, AlertmanagerSemantics) {
  const Labels labels = {{"alertname", "HighErrorRate"}, {"connector", "crm-connector"}};
  struct Case {
    std::vector<std::string> matchers;
    bool matches;
  } cases[] = {
      {{"connector=\"crm-connector\""}, true},
      {{"connector=crm-connector"}, true},
      {{"connector=\"crm\""}, false},
      {{"connector=~\"crm\""}, false},  // anchored at both ends
      {{"connector=~\"crm-.*\""}, true},
      {{"connector!~\"crm-.*\""}, false},
      {{"connector!=\"mail\""}, true},
      {{"missing=\"\""}, true},  // a missing label is ""
      {{"missing!=\"\""}, false},
      {{"connector=~\"crm-.*\"", "alertname=\"HighErrorRate\""}, true},
      {{"connector=~\"crm-.*\"", "alertname=\"Other\""}, false},
      {{"connector=~\"(\""}, false},  // does not parse: matches nothing
      {{}, false},                    // no matchers: mutes nothing
  };
  for (const Case& c : cases) {
    std::string text;
    for (const auto& m : c.matchers) text += m + " ";
    EXPECT_EQ(SilenceMatches(c.matchers, labels), c.matches) << text;
  }
}

}  // namespace
}  // namespace bpmc::webhook_receiver
