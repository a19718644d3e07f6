// Links and text taken from webhooks cannot inject Slack mrkdwn (notifier/channels.h).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "notifier/channels.h"
#include "test_util.h"

namespace bpmc::notifier {
namespace {

using Json = nlohmann::json;

TEST(SlackLinks, EscapeAndLinkTable) {
  struct Case {
    std::string url, text, want;
  };
  const std::vector<Case> cases = {
      {"https://prom.example/graph?a=1", "Source", "<https://prom.example/graph?a=1|Source>"},
      {"HTTP://prom.example/x", "Source", "<HTTP://prom.example/x|Source>"},
      {"http://prom.example/g?a=1&b=2", "Source", "<http://prom.example/g?a=1&amp;b=2|Source>"},
      {"http://prom.example/", "<!channel> & co",
       "<http://prom.example/|&lt;!channel&gt; &amp; co>"},
      // A '|' would let the sender choose the text, '>' close the link early and start another.
      {"http://evil.example|Click to re-login", "Source", ""},
      {"http://x>hi <!channel> <https://evil.example|login", "Source", ""},
      {"http://x<y", "Source", ""},
      {"http://x y", "Source", ""},
      {"http://x\ny", "Source", ""},
      {"http://x\ty", "Source", ""},
      {"javascript:alert(1)", "Source", ""},
      {"mailto:a@b.example", "Source", ""},
      {"ftp://files.example/x", "Source", ""},
      {"//evil.example/x", "Source", ""},
      {"https://", "Source", ""},
      {"", "Source", ""},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(SlackLink(c.url, c.text), c.want) << c.url;
    EXPECT_EQ(IsSafeLinkUrl(c.url), !c.want.empty()) << c.url;
  }
  EXPECT_EQ(SlackEscape("a<b>c&d"), "a&lt;b&gt;c&amp;d");
  EXPECT_EQ(SlackEscape("plain *bold* _it_"), "plain *bold* _it_");
}

class SlackLinkMessages : public ::testing::Test {
 protected:
  void SetUp() override {
    test::SetTestSecrets();
    config_ = test::MustParse(R"(
slack: {type: slack, url: "http://127.0.0.1:1/hook"}
pd: {type: pagerduty, url: "http://127.0.0.1:1/v2/enqueue", routing_key_env: BPMC_TEST_PD_KEY}
hook: {type: webhook, url: "http://127.0.0.1:1/in"}
)");
  }
  std::string SlackContext(const AlertView& a) {
    const Message m{"slack", "", {a}, "mid"};
    const Json j = Json::parse(BuildHttpRequests(config_.channels.at("slack"), m)[0].body);
    return j["attachments"][0]["blocks"][1]["elements"][0]["text"];
  }
  NotifierConfig config_;
};

TEST_F(SlackLinkMessages, InjectedLinkIsDroppedAndCounted) {
  AlertView a = test::MakeAlert("X");
  a.generator_url = "http://prom.example/|<!channel> log in at <https://evil.example|prom.example>";
  a.starts_at = "<!here>";
  const std::string context = SlackContext(a);
  EXPECT_EQ(context.find("<!channel>"), std::string::npos) << context;
  EXPECT_EQ(context.find("<!here>"), std::string::npos) << context;
  EXPECT_EQ(context.find("evil.example"), std::string::npos) << context;
  EXPECT_EQ(context.find("Source"), std::string::npos) << context;
  EXPECT_NE(context.find("<https://runbooks.example/X|Runbook>"), std::string::npos) << context;
  EXPECT_NE(context.find("&lt;!here&gt;"), std::string::npos) << context;
  const Message m{"slack", "", {a}, "mid"};
  EXPECT_EQ(DroppedLinks(config_.channels.at("slack"), m), 1);
  EXPECT_EQ(DroppedLinks(config_.channels.at("hook"), m), 0);  // JSON data, not markup
}

TEST_F(SlackLinkMessages, PagerDutyLeavesOutUnsafeLinks) {
  AlertView a = test::MakeAlert("X");
  a.generator_url = "javascript:alert(1)";
  a.runbook_url = "https://runbooks.example/X";
  const Message m{"pd", "", {a}, "mid"};
  const Json j = Json::parse(BuildHttpRequests(config_.channels.at("pd"), m)[0].body);
  ASSERT_EQ(j["links"].size(), 1u);
  EXPECT_EQ(j["links"][0]["href"], "https://runbooks.example/X");
  EXPECT_FALSE(j.contains("client_url"));
  EXPECT_EQ(DroppedLinks(config_.channels.at("pd"), m), 1);
}

TEST_F(SlackLinkMessages, SafeLinksCountNothing) {
  const Message m{"slack", "", {test::MakeAlert("A"), test::MakeAlert("B")}, "mid"};
  EXPECT_EQ(DroppedLinks(config_.channels.at("slack"), m), 0);
}

}  // namespace
}  // namespace bpmc::notifier
