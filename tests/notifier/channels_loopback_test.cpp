// Every channel's request as the peer receives it: the libcurl client and
// mailer against the loopback recorders (Slack, PagerDuty, SMS, webhook, SMTP).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/http_client.h"
#include "common/ids.h"
#include "notifier/channels.h"
#include "notifier/mailer.h"
#include "notifier/policy.h"
#include "recorders/http_recorder.h"
#include "recorders/smtp_recorder.h"
#include "test_util.h"

namespace bpmc::notifier {
namespace {

using recorders::HttpRecorder;
using recorders::SmtpRecorder;
using test::MakeAlert;
using test::MustParse;
using Json = nlohmann::json;

class LoopbackTest : public ::testing::Test {
 protected:
  void SetUp() override { test::SetTestSecrets(); }

  // Sends every request of the message; returns the last classification.
  Classification SendAll(const ChannelConfig& channel, const Message& m) {
    Classification c{Outcome::kDelivered, "ok"};
    for (const HttpRequest& r : BuildHttpRequests(channel, m)) {
      const HttpResponse resp = http_->Send(r);
      c = ClassifyHttp(resp.status, resp.transport_error);
    }
    return c;
  }

  std::unique_ptr<HttpClient> http_ = NewCurlHttpClient();
  std::unique_ptr<Mailer> mailer_ = NewCurlMailer();
};

TEST_F(LoopbackTest, Slack) {
  auto slack = HttpRecorder::Slack();
  const NotifierConfig c =
      MustParse("s: {type: slack, url: \"" + slack->Url("/services/T0/B0/X") + "\"}");
  EXPECT_EQ(SendAll(c.channels.at("s"), {"s", "", {MakeAlert("HighErrorRate")}, "m1"}).outcome,
            Outcome::kDelivered);
  ASSERT_EQ(slack->AcceptedCount(), 1u);
  const auto r = slack->Accepted()[0];
  EXPECT_EQ(r.path, "/services/T0/B0/X");
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_EQ(r.Header("idempotency-key"), "m1");
  const Json j = Json::parse(r.body);
  EXPECT_EQ(j["attachments"][0]["color"], "#E01E5A");
  EXPECT_NE(j["text"].get<std::string>().find("HighErrorRate"), std::string::npos);
}

TEST_F(LoopbackTest, SlackErrorsAreClassified) {
  auto slack = HttpRecorder::Slack();
  slack->Script({{404, "channel_not_found", "text/plain", {}},
                 {429, "rate_limited", "text/plain", {{"Retry-After", "7"}}},
                 {500, "rollup_error", "text/plain", {}}});
  const NotifierConfig c = MustParse("s: {type: slack, url: \"" + slack->Url("/hook") + "\"}");
  const auto request = BuildHttpRequests(c.channels.at("s"), {"s", "", {MakeAlert("A")}, "m"})[0];
  HttpResponse r = http_->Send(request);
  EXPECT_EQ(ClassifyHttp(r.status, r.transport_error).outcome, Outcome::kPermanent);
  EXPECT_EQ(r.body, "channel_not_found");
  r = http_->Send(request);
  EXPECT_EQ(ClassifyHttp(r.status, r.transport_error).reason, "http_429");
  EXPECT_EQ(r.Header("Retry-After"), "7");
  EXPECT_EQ(ParseRetryAfter(r.Header("retry-after"), 0), std::chrono::seconds(7));
  r = http_->Send(request);
  EXPECT_EQ(ClassifyHttp(r.status, r.transport_error).reason, "http_5xx");
}

TEST_F(LoopbackTest, PagerDutyTriggerThenResolve) {
  auto pd = HttpRecorder::PagerDuty();
  const NotifierConfig c = MustParse("pd: {type: pagerduty, url: \"" + pd->Url("/v2/enqueue") +
                                     "\", routing_key_env: BPMC_TEST_PD_KEY}");
  const ChannelConfig& ch = c.channels.at("pd");
  EXPECT_EQ(SendAll(ch, {"pd", "", {MakeAlert("Down")}, "m1"}).outcome, Outcome::kDelivered);
  EXPECT_EQ(SendAll(ch, {"pd", "", {MakeAlert("Down", "resolved")}, "m2"}).outcome,
            Outcome::kDelivered);
  const auto got = pd->Requests();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].status, 202);  // the recorder validates events as PagerDuty does
  EXPECT_EQ(got[1].status, 202);
  const Json trigger = Json::parse(got[0].body), resolve = Json::parse(got[1].body);
  EXPECT_EQ(trigger["event_action"], "trigger");
  EXPECT_EQ(resolve["event_action"], "resolve");
  EXPECT_EQ(trigger["dedup_key"], resolve["dedup_key"]);
  EXPECT_EQ(trigger["payload"]["severity"], "critical");
}

TEST_F(LoopbackTest, PagerDutyRefusesABadEventForGood) {
  auto pd = HttpRecorder::PagerDuty();
  setenv("BPMC_TEST_SHORT_KEY", "too-short", 1);
  const NotifierConfig c = MustParse("pd: {type: pagerduty, url: \"" + pd->Url("/v2/enqueue") +
                                     "\", routing_key_env: BPMC_TEST_SHORT_KEY}");
  const Classification got = SendAll(c.channels.at("pd"), {"pd", "", {MakeAlert("Down")}, "m"});
  EXPECT_EQ(got.outcome, Outcome::kPermanent);
  EXPECT_EQ(pd->Requests()[0].status, 400);
}

TEST_F(LoopbackTest, SmsProvider) {
  auto sms = HttpRecorder::Sms();
  const NotifierConfig c =
      MustParse("t: {type: sms, url: \"" + sms->Url("/v1/messages") +
                "\", to: [\"+15550001\", \"+15550002\"],"
                " auth: {bearer_token_env: BPMC_TEST_SMS_TOKEN},"
                " body_template: '{\"from\":\"BPMC\",\"to\":\"{{to}}\",\"body\":\"{{text}}\"}'}");
  const ChannelConfig& ch = c.channels.at("t");
  for (const std::string& to : Destinations(c, "t")) {
    EXPECT_EQ(SendAll(ch, {"t", to, {MakeAlert("Down")}, "m-" + to}).outcome, Outcome::kDelivered);
  }
  const auto got = sms->Accepted();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].Header("authorization"), "Bearer tok");
  EXPECT_EQ(got[0].path, "/v1/messages");
  EXPECT_EQ(Json::parse(got[0].body), (Json{{"from", "BPMC"},
                                            {"to", "+15550001"},
                                            {"body", "FIRING critical Down: Down summary"}}));
  EXPECT_EQ(Json::parse(got[1].body)["to"], "+15550002");
}

TEST_F(LoopbackTest, WebhookSignatureVerifiesOnTheReceivedBody) {
  auto hook = HttpRecorder::Webhook();
  const NotifierConfig c =
      MustParse("h: {type: webhook, url: \"" + hook->Url("/in") +
                "\", secret_env: BPMC_TEST_HOOK_SECRET, signature_header: X-Sig}");
  EXPECT_EQ(SendAll(c.channels.at("h"), {"h", "", {MakeAlert("A"), MakeAlert("B")}, "m"}).outcome,
            Outcome::kDelivered);
  const auto r = hook->Accepted().at(0);
  EXPECT_EQ(r.Header("x-sig"), "sha256=" + HexEncode(HmacSha256("s3cret", r.body)));
  EXPECT_EQ(Json::parse(r.body)["alerts"].size(), 2u);
}

TEST_F(LoopbackTest, NetworkErrorsAndTimeouts) {
  HttpRequest r;
  r.url = "http://127.0.0.1:1/nothing-listens";
  HttpResponse resp = http_->Send(r);
  EXPECT_EQ(resp.status, 0);
  EXPECT_NE(resp.transport_error, 0);
  EXPECT_EQ(ClassifyHttp(resp.status, resp.transport_error).outcome, Outcome::kRetry);

  auto slow = HttpRecorder::Webhook();
  slow->HoldNext();
  r.url = slow->Url("/slow");
  r.timeout = std::chrono::milliseconds(300);
  resp = http_->Send(r);
  EXPECT_EQ(resp.transport_error, 28);  // CURLE_OPERATION_TIMEDOUT
  slow->Release({200, "late", "text/plain", {}});
}

TEST_F(LoopbackTest, EmailWithAuthTextAndHtml) {
  SmtpRecorder smtp;
  smtp.RequireAuth("alerts", "mailpw");
  const NotifierConfig c = MustParse(
      "m: {type: email, smtp: {url: \"" + smtp.Url() +
      "\", starttls: none, username: alerts,"
      " password_env: BPMC_TEST_SMTP_PASSWORD}, from: \"BPM Centr <alerts@bpmc.example>\","
      " to: [oncall@bpmc.example]}");
  const ChannelConfig& ch = c.channels.at("m");
  const MailMessage mail = BuildMail(ch, {"m", "oncall@bpmc.example", {MakeAlert("Down")}, "m1"});
  const MailResult result = mailer_->Send(ch.email.smtp, mail);
  ASSERT_TRUE(result.ok()) << result.error;
  ASSERT_EQ(smtp.Accepted().size(), 1u);
  const recorders::RecordedMail got = smtp.Accepted()[0];
  EXPECT_EQ(got.from, "alerts@bpmc.example");
  EXPECT_EQ(got.to, std::vector<std::string>{"oncall@bpmc.example"});
  EXPECT_EQ(got.auth_user, "alerts");
  EXPECT_EQ(got.auth_password, "mailpw");
  const recorders::ParsedMail parsed = recorders::ParseMail(got.data);
  EXPECT_EQ(parsed.Header("subject"), "[FIRING critical] Down: Down summary");
  EXPECT_EQ(parsed.Header("message-id"), "<m1@bpmc>");
  EXPECT_NE(parsed.Header("content-type").find("multipart/alternative"), std::string::npos);
  EXPECT_NE(parsed.text.find("Runbook: https://runbooks.example/Down"), std::string::npos);
  EXPECT_NE(parsed.html.find("<a href=\"https://runbooks.example/Down\">Runbook</a>"),
            std::string::npos);
}

TEST_F(LoopbackTest, EmailOverStartTlsAndSmtps) {
  for (const auto tls : {SmtpRecorder::Tls::kStartTls, SmtpRecorder::Tls::kImplicit}) {
    SmtpRecorder smtp(tls);
    smtp.RequireAuth("alerts", "mailpw");
    SmtpSettings relay;
    relay.url = smtp.Url();
    relay.starttls = SmtpSettings::StartTls::kRequired;
    relay.username = "alerts";
    relay.password = "mailpw";
    MailMessage mail{"a@b.example", {"c@d.example"}, "over TLS", "text", "<p>html</p>", "id@x", ""};
    // The relay's certificate is unknown to the system store: refused.
    MailResult r = mailer_->Send(relay, mail);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(ClassifySmtp(r.smtp_code, r.transport_error).outcome, Outcome::kRetry);
    // With its CA file: verified, encrypted, authenticated.
    relay.ca_file = smtp.CertFile();
    r = mailer_->Send(relay, mail);
    ASSERT_TRUE(r.ok()) << r.error;
    ASSERT_EQ(smtp.Accepted().size(), 1u);
    EXPECT_TRUE(smtp.Accepted()[0].tls);
    EXPECT_EQ(smtp.Accepted()[0].auth_user, "alerts");
    EXPECT_EQ(recorders::ParseMail(smtp.Accepted()[0].data).html, "<p>html</p>");
  }
}

TEST_F(LoopbackTest, EmailFailuresAreClassified) {
  SmtpRecorder smtp;
  smtp.RequireAuth("alerts", "other-password");
  smtp.Script({451, 554});
  SmtpSettings relay;
  relay.url = smtp.Url();
  relay.starttls = SmtpSettings::StartTls::kNone;
  MailMessage mail{"a@b.example", {"c@d.example"}, "s", "t", "", "", ""};
  // Wrong password.
  relay.username = "alerts";
  relay.password = "mailpw";
  MailResult r = mailer_->Send(relay, mail);
  EXPECT_EQ(ClassifySmtp(r.smtp_code, r.transport_error).outcome, Outcome::kPermanent) << r.error;
  // 451 then 554 after DATA.
  relay.username.clear();
  r = mailer_->Send(relay, mail);
  EXPECT_EQ(r.smtp_code, 451);
  EXPECT_EQ(ClassifySmtp(r.smtp_code, r.transport_error).outcome, Outcome::kRetry);
  r = mailer_->Send(relay, mail);
  EXPECT_EQ(r.smtp_code, 554);
  EXPECT_EQ(ClassifySmtp(r.smtp_code, r.transport_error).outcome, Outcome::kPermanent);
  // STARTTLS required but not offered: a configuration error, not retried.
  relay.starttls = SmtpSettings::StartTls::kRequired;
  r = mailer_->Send(relay, mail);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(smtp.Accepted().size(), 0u);
}

}  // namespace
}  // namespace bpmc::notifier
