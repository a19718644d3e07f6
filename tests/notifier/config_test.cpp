// The `channels:` and `delivery:` sections: a full config, defaults, secrets,
// and errors that name the key (template errors included).
#include "notifier/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace bpmc::notifier {
namespace {

constexpr const char* kFull = R"(
channels:
  ops-email:
    type: email
    smtp:
      url: smtp://127.0.0.1:2525
      starttls: none
      username: alerts
      password_env: BPMC_TEST_SMTP_PASSWORD
      timeout_seconds: 5
    from: "BPM Centr <alerts@bpmc.example>"
    to: [oncall@bpmc.example, lead@bpmc.example]
    subject_template: "[{{severity}}] {{alertname}}"
  ops-slack:
    type: slack
    url_env: BPMC_TEST_SLACK_URL
    rate_limit: {messages: 2, per_seconds: 1.5}
    max_bundle: 100
  oncall-sms:
    type: sms
    url: http://127.0.0.1:9/send
    auth: {bearer_token_env: BPMC_TEST_SMS_TOKEN}
    headers: {X-Account: bpmc}
    to: ["+15550001", "+15550002", "+15550003"]
    max_parts: 2
  audit-hook:
    type: webhook
    url: http://127.0.0.1:9/hook
    secret_file: SECRET_FILE
    rate_limit: none
  pd:
    type: pagerduty
    url: http://127.0.0.1:9/v2/enqueue
    routing_key_env: BPMC_TEST_PD_KEY
    severity_map: {info: warning}
delivery:
  max_attempts: 5
  initial_backoff_seconds: 0.5
  max_backoff_seconds: 60
  jitter: 0.2
)";

class NotifierConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("BPMC_TEST_SMTP_PASSWORD", "smtp-secret", 1);
    setenv("BPMC_TEST_SLACK_URL", "http://127.0.0.1:9/services/T/B/X", 1);
    setenv("BPMC_TEST_SMS_TOKEN", "sms-token", 1);
    setenv("BPMC_TEST_PD_KEY", "0123456789abcdef0123456789abcdef", 1);
    secret_file_ = ::testing::TempDir() + "/hook_secret";
    std::ofstream(secret_file_) << "hook-secret\n";
  }

  // Parses kFull with `edit` applied (a YAML node path → new value or deletion).
  bool Parse(const std::string& yaml, NotifierConfig* out, std::string* error) {
    std::string text = yaml;
    const auto pos = text.find("SECRET_FILE");
    if (pos != std::string::npos) text.replace(pos, 11, secret_file_);
    const YAML::Node root = YAML::Load(text);
    return ParseNotifierConfig(root["channels"], root["delivery"], out, error);
  }

  std::string secret_file_;
};

TEST_F(NotifierConfigTest, FullConfig) {
  NotifierConfig c;
  std::string error;
  ASSERT_TRUE(Parse(kFull, &c, &error)) << error;
  ASSERT_EQ(c.channels.size(), 5u);

  const ChannelConfig& email = c.channels.at("ops-email");
  EXPECT_EQ(email.type, ChannelType::kEmail);
  EXPECT_EQ(email.email.smtp.password, "smtp-secret");
  EXPECT_EQ(email.email.smtp.starttls, SmtpSettings::StartTls::kNone);
  EXPECT_EQ(email.email.smtp.timeout, std::chrono::seconds(5));
  EXPECT_EQ(email.email.subject.source, "[{{severity}}] {{alertname}}");
  EXPECT_EQ(email.rate_limit.messages, 1);  // default: one a minute per person
  EXPECT_EQ(email.rate_limit.per, std::chrono::seconds(60));

  const ChannelConfig& slack = c.channels.at("ops-slack");
  EXPECT_EQ(slack.slack.url, "http://127.0.0.1:9/services/T/B/X");
  EXPECT_EQ(slack.rate_limit.messages, 2);
  EXPECT_EQ(slack.rate_limit.per, std::chrono::milliseconds(1500));
  EXPECT_EQ(slack.max_bundle, 100);

  const ChannelConfig& sms = c.channels.at("oncall-sms");
  EXPECT_EQ(sms.sms.max_parts, 2);
  ASSERT_EQ(sms.sms.headers.size(), 2u);
  EXPECT_EQ(sms.sms.headers[0], (std::pair<std::string, std::string>{"X-Account", "bpmc"}));
  EXPECT_EQ(sms.sms.headers[1],
            (std::pair<std::string, std::string>{"Authorization", "Bearer sms-token"}));
  EXPECT_EQ(sms.sms.body.escape, Escape::kJson);

  const ChannelConfig& hook = c.channels.at("audit-hook");
  EXPECT_EQ(hook.webhook.secret, "hook-secret");
  EXPECT_EQ(hook.rate_limit.messages, 0);

  const ChannelConfig& pd = c.channels.at("pd");
  EXPECT_EQ(pd.pagerduty.routing_key, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(pd.pagerduty.severity_map.at("info"), "warning");
  EXPECT_EQ(pd.pagerduty.severity_map.at("critical"), "critical");

  EXPECT_EQ(c.delivery.max_attempts, 5);
  EXPECT_EQ(c.delivery.initial_backoff, std::chrono::milliseconds(500));
  EXPECT_EQ(c.delivery.max_backoff, std::chrono::seconds(60));
  EXPECT_DOUBLE_EQ(c.delivery.jitter, 0.2);

  EXPECT_EQ(Destinations(c, "oncall-sms"),
            (std::vector<std::string>{"+15550001", "+15550002", "+15550003"}));
  EXPECT_EQ(Destinations(c, "ops-email"),
            (std::vector<std::string>{"oncall@bpmc.example", "lead@bpmc.example"}));
  EXPECT_EQ(Destinations(c, "ops-slack"), std::vector<std::string>{""});
  EXPECT_TRUE(Destinations(c, "nope").empty());
  EXPECT_TRUE(HasChannel(c, "pd"));
  EXPECT_FALSE(HasChannel(c, "nope"));
}

TEST_F(NotifierConfigTest, EmptySectionsAreFine) {
  NotifierConfig c;
  std::string error;
  EXPECT_TRUE(ParseNotifierConfig(YAML::Node(), YAML::Node(), &c, &error)) << error;
  EXPECT_TRUE(c.channels.empty());
  EXPECT_EQ(c.delivery.max_attempts, DeliveryPolicy{}.max_attempts);
}

// Each case replaces one line of kFull (or adds one under a channel) and names
// the key the error must start with.
TEST_F(NotifierConfigTest, ErrorsNameTheKey) {
  struct Case {
    std::string from, to;
    std::string prefix;
  };
  const Case cases[] = {
      {"type: slack", "type: carrier-pigeon", "channels.ops-slack.type: "},
      {"url_env: BPMC_TEST_SLACK_URL", "url_env: BPMC_TEST_UNSET_VAR",
       "channels.ops-slack.url_env: "},
      {"url_env: BPMC_TEST_SLACK_URL", "urll: http://x", "channels.ops-slack.urll: unknown key"},
      {"url_env: BPMC_TEST_SLACK_URL", "url: ftp://x", "channels.ops-slack.url: "},
      {"max_bundle: 100", "max_bundle: 0", "channels.ops-slack.max_bundle: "},
      {"max_bundle: 100", "max_bundle: lots", "channels.ops-slack.max_bundle: "},
      {"rate_limit: {messages: 2, per_seconds: 1.5}", "rate_limit: {messages: 2, per: 1}",
       "channels.ops-slack.rate_limit.per: unknown key"},
      {"url: smtp://127.0.0.1:2525", "url: http://127.0.0.1:2525", "channels.ops-email.smtp.url: "},
      {"starttls: none", "starttls: maybe", "channels.ops-email.smtp.starttls: "},
      {"password_env: BPMC_TEST_SMTP_PASSWORD", "password: hunter2",
       "channels.ops-email.smtp.password: is a secret"},
      {"to: [oncall@bpmc.example, lead@bpmc.example]", "to: []", "channels.ops-email.to: "},
      {"to: [oncall@bpmc.example, lead@bpmc.example]", "to: [oncall@bpmc.example, nobody]",
       "channels.ops-email.to[1]: "},
      {"subject_template: \"[{{severity}}] {{alertname}}\"", "subject_template: \"{{#alerts}}\"",
       "channels.ops-email.subject_template: Unclosed section"},
      {"subject_template: \"[{{severity}}] {{alertname}}\"", "subject_template: \"{{sevrity}}\"",
       "channels.ops-email.subject_template: unknown name 'sevrity'"},
      {"max_parts: 2", "max_parts: 11", "channels.oncall-sms.max_parts: "},
      {"max_parts: 2", "body_template: '{\"to\":\"{{to}}\",\"msg\":\"{{txt}}\"}'",
       "channels.oncall-sms.body_template: unknown name 'txt'"},
      {"auth: {bearer_token_env: BPMC_TEST_SMS_TOKEN}", "auth: {bearer_token: abc}",
       "channels.oncall-sms.auth.bearer_token: is a secret"},
      {"secret_file: SECRET_FILE", "secret_file: /nonexistent/secret",
       "channels.audit-hook.secret_file: cannot read"},
      {"secret_file: SECRET_FILE", "secret: plain", "channels.audit-hook.secret: is a secret"},
      {"routing_key_env: BPMC_TEST_PD_KEY", "component: x", "channels.pd.routing_key: is required"},
      {"severity_map: {info: warning}", "severity_map: {info: loud}",
       "channels.pd.severity_map.info: "},
      {"severity_map: {info: warning}", "summary_template: \"{{labels}\"",
       "channels.pd.summary_template: "},
      {"max_attempts: 5", "max_attempts: 0", "delivery.max_attempts: "},
      {"jitter: 0.2", "jitter: 2", "delivery.jitter: "},
      {"jitter: 0.2", "backoff: 1", "delivery.backoff: unknown key"},
      {"max_backoff_seconds: 60", "max_backoff_seconds: 0.1",
       "delivery.max_backoff_seconds: must not be less"},
  };
  for (const Case& c : cases) {
    std::string yaml = kFull;
    const auto pos = yaml.find(c.from);
    ASSERT_NE(pos, std::string::npos) << c.from;
    yaml.replace(pos, c.from.size(), c.to);
    NotifierConfig config;
    std::string error;
    EXPECT_FALSE(Parse(yaml, &config, &error)) << c.to;
    EXPECT_EQ(error.rfind(c.prefix, 0), 0u) << "for '" << c.to << "' got: " << error;
  }
}

TEST_F(NotifierConfigTest, SecretsAreNotInErrors) {
  std::string yaml = kFull;
  yaml.replace(yaml.find("max_parts: 2"), 12, "max_parts: x");
  NotifierConfig config;
  std::string error;
  ASSERT_FALSE(Parse(yaml, &config, &error));
  for (const char* secret : {"smtp-secret", "sms-token", "hook-secret", "0123456789abcdef"}) {
    EXPECT_EQ(error.find(secret), std::string::npos);
  }
}

}  // namespace
}  // namespace bpmc::notifier
