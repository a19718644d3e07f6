// POST /v1/billing/events against a real throwaway PostgreSQL: every event
// type applied, idempotent replays (also concurrent), 401/405/409/413/415/422,
// batches all or nothing, metrics through promtool, the platform-token CLI.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "billing/billing.h"
#include "common/testing/temp_dir.h"
#include "exporter/service.h"
#include "testing/exporter_harness.h"
#include "testing/process.h"

namespace bpmc::testing {
namespace {

using exporter::Config;
using exporter::Service;

constexpr char kPath[] = "/v1/billing/events";

// A billing event body; `extra` is appended inside the object.
std::string Event(const std::string& event_id, const std::string& type,
                  const std::string& subscription, const std::string& extra,
                  const std::string& occurred_at = "", const std::string& customer = "acme") {
  return R"({"event_id":")" + event_id + R"(","type":")" + type + R"(","occurred_at":")" +
         (occurred_at.empty() ? NowIso(-3600) : occurred_at) + R"(","customer":")" + customer +
         R"(","subscription_id":")" + subscription + "\"" + extra + "}";
}

std::string Started(const std::string& id, const std::string& sub, bool trial = true,
                    const std::string& connector = "crm-connector",
                    const std::string& occurred_at = "", const std::string& customer = "acme") {
  return Event(id, "subscription_started", sub,
               R"(,"connector":")" + connector + R"(","plan":"pro-monthly","trial":)" +
                   (trial ? "true" : "false") +
                   R"(,"price":{"amount_minor":150000,"currency":"RUB"})",
               occurred_at, customer);
}

std::string Payment(const std::string& id, const std::string& sub, const std::string& payment_id,
                    const std::string& reason = "", long long amount = 150000,
                    const std::string& connector = "crm-connector",
                    const std::string& currency = "RUB") {
  return Event(id, reason.empty() ? "payment_succeeded" : "payment_failed", sub,
               R"(,"payment_id":")" + payment_id + R"(","connector":")" + connector +
                   R"(","amount":{"amount_minor":)" + std::to_string(amount) + R"(,"currency":")" +
                   currency + "\"}" + (reason.empty() ? "" : R"(,"reason":")" + reason + "\""));
}

// Event ids: a fixed prefix and a counter.
std::string Id(int n) {
  char buf[40];
  snprintf(buf, sizeof buf, "0190f1d2-7c3a-7b5e-9a1b-%012d", n);
  return buf;
}

class BillingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<TestDatabase>(SharedCluster());
    pqxx::connection conn(db_->url);
    token_ = identity::CreatePlatformToken(conn, "platform");
  }
  void TearDown() override {
    if (service_) service_->Shutdown();
    service_.reset();
  }

  void StartService() {
    Config config;
    config.listen = "127.0.0.1:0";
    config.database_url = db_->url;
    config.data_dir = data_dir_.path();
    config.key_refresh_ms = 300;
    config.http_threads = 16;
    std::string error;
    service_ = Service::Start(config, SystemClock::Get(), &error);
    ASSERT_TRUE(service_) << error;
    client_ = std::make_unique<httplib::Client>("127.0.0.1", service_->port());
    client_->set_keep_alive(true);
  }

  httplib::Result Post(const std::string& body, const std::string& token = "",
                       const char* type = "application/json") {
    return client_->Post(kPath, Bearer(token.empty() ? token_ : token), body, type);
  }

  // Posts and checks the status; returns the body.
  std::string Expect(int status, const std::string& body) {
    auto r = Post(body);
    if (!r) {
      ADD_FAILURE() << "no response";
      return "";
    }
    EXPECT_EQ(r->status, status) << r->body;
    return r->body;
  }

  std::string Metrics() {
    auto r = client_->Get("/metrics");
    return r ? r->body : "";
  }

  long long Count(const std::string& table) { return db_->Scalar("SELECT count(*) FROM " + table); }
  long long Stored() {
    return Count("billing_events") * 1000000 + Count("subscriptions") * 1000 + Count("payments");
  }

  std::unique_ptr<TestDatabase> db_;
  std::string token_;
  TempDir data_dir_{"bpmc-billing"};
  std::unique_ptr<Service> service_;
  std::unique_ptr<httplib::Client> client_;
};

bool Has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST_F(BillingTest, EveryEventTypeIsApplied) {
  StartService();
  EXPECT_EQ(Expect(201, Started(Id(1), "sub-1", true, "crm-connector", "2026-10-01T10:00:00Z")),
            R"({"event_id":")" + Id(1) + R"(","result":"applied"})");
  Expect(201, Event(Id(2), "trial_converted", "sub-1", "", "2026-10-15T10:00:00Z"));
  Expect(201, Payment(Id(3), "sub-1", "pay-1"));
  Expect(201, Payment(Id(4), "sub-1", "pay-2", "card_declined", 99));
  Expect(201, Event(Id(5), "subscription_cancelled", "sub-1", R"(,"reason":"too expensive")",
                    "2026-11-01T00:00:00+03:00"));
  Expect(201, Started(Id(6), "sub-2", false, "payment-connector", "2026-11-02T10:00:00Z", "beta"));

  EXPECT_EQ(
      db_->Scalar("SELECT count(*) FROM subscriptions WHERE id = 'sub-1' AND customer_id = 'acme' "
                  "AND connector_id = 'crm-connector' AND plan = 'pro-monthly' AND trial "
                  "AND price_minor = 150000 AND currency = 'RUB' "
                  "AND started_at = '2026-10-01T10:00:00Z' "
                  "AND trial_converted_at = '2026-10-15T10:00:00Z' "
                  "AND cancelled_at = '2026-10-31T21:00:00Z' AND cancel_reason = 'too expensive'"),
      1);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM subscriptions WHERE id = 'sub-2' AND NOT trial "
                        "AND customer_id = 'beta' AND trial_converted_at IS NULL "
                        "AND cancelled_at IS NULL"),
            1);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM payments WHERE id = 'pay-1' AND status = "
                        "'succeeded' AND failure_reason IS NULL AND amount_minor = 150000 AND "
                        "currency = 'RUB' AND subscription_id = 'sub-1' AND customer_id = 'acme' "
                        "AND connector_id = 'crm-connector'"),
            1);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM payments WHERE id = 'pay-2' AND status = 'failed' "
                        "AND failure_reason = 'card_declined' AND amount_minor = 99"),
            1);
  EXPECT_EQ(Count("billing_events"), 6);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM billing_events WHERE event_id = '" + Id(4) +
                        "' AND type = 'payment_failed' AND body->>'reason' = 'card_declined' "
                        "AND (body->'amount'->>'amount_minor')::int = 99"),
            1);

  const std::string m = Metrics();
  EXPECT_EQ(MetricValue(m, R"(bpmc_payments_total{reason="none",status="succeeded"})"), 1) << m;
  EXPECT_EQ(MetricValue(m, R"(bpmc_payments_total{reason="card_declined",status="failed"})"), 1);
  EXPECT_EQ(MetricValue(m, R"(bpmc_payment_amount_minor_total{currency="RUB",status="succeeded"})"),
            150000);
  EXPECT_EQ(MetricValue(m, R"(bpmc_payment_amount_minor_total{currency="RUB",status="failed"})"),
            99);
  EXPECT_EQ(MetricValue(m, R"(bpmc_subscriptions_started_total{trial="true"})"), 1);
  EXPECT_EQ(MetricValue(m, R"(bpmc_subscriptions_started_total{trial="false"})"), 1);
  EXPECT_EQ(MetricValue(m, "bpmc_subscriptions_cancelled_total"), 1);
  EXPECT_EQ(MetricValue(m, "bpmc_trials_converted_total"), 1);
  for (const char* type :
       {"trial_converted", "payment_succeeded", "payment_failed", "subscription_cancelled"}) {
    EXPECT_EQ(MetricValue(m, std::string(R"(bpmc_billing_events_total{result="applied",type=")") +
                                 type + "\"}"),
              1)
        << type;
  }
  EXPECT_EQ(
      MetricValue(m, R"(bpmc_billing_events_total{result="applied",type="subscription_started"})"),
      2);
  EXPECT_GE(MetricValue(m, R"(bpmc_exporter_http_requests_total{code="201",route="billing"})"), 6);
}

TEST_F(BillingTest, ReplaysAreAppliedOnce) {
  StartService();
  const std::string start = Started(Id(1), "sub-1");
  const std::string pay = Payment(Id(2), "sub-1", "pay-1", "insufficient_funds", 500);
  Expect(201, start);
  Expect(201, pay);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Expect(200, start), R"({"event_id":")" + Id(1) + R"(","result":"duplicate"})");
    Expect(200, pay);
  }
  // A replayed batch, and a batch repeating an event inside itself.
  EXPECT_EQ(Expect(200, "[" + start + "," + pay + "]"),
            R"({"applied":0,"duplicates":2,"results":["duplicate","duplicate"]})");
  const std::string cancel = Event(Id(3), "subscription_cancelled", "sub-1", "");
  EXPECT_EQ(Expect(201, "[" + cancel + "," + pay + "," + cancel + "]"),
            R"({"applied":1,"duplicates":2,"results":["applied","duplicate","duplicate"]})");

  EXPECT_EQ(Count("billing_events"), 3);
  EXPECT_EQ(Count("payments"), 1);
  EXPECT_EQ(Count("subscriptions"), 1);
  const std::string m = Metrics();
  EXPECT_EQ(MetricValue(m, R"(bpmc_payments_total{reason="insufficient_funds",status="failed"})"),
            1);
  EXPECT_EQ(MetricValue(m, R"(bpmc_payment_amount_minor_total{currency="RUB",status="failed"})"),
            500);
  EXPECT_EQ(MetricValue(m, R"(bpmc_subscriptions_started_total{trial="true"})"), 1);
  EXPECT_EQ(MetricValue(m, "bpmc_subscriptions_cancelled_total"), 1);
  EXPECT_EQ(MetricValue(
                m, R"(bpmc_billing_events_total{result="duplicate",type="subscription_started"})"),
            4);
  EXPECT_EQ(
      MetricValue(m, R"(bpmc_billing_events_total{result="duplicate",type="payment_failed"})"), 5);
  EXPECT_EQ(
      MetricValue(m,
                  R"(bpmc_billing_events_total{result="duplicate",type="subscription_cancelled"})"),
      1);
}

TEST_F(BillingTest, ConcurrentReplaysApplyOnce) {
  StartService();
  Expect(201, Started(Id(1), "sub-1"));
  const std::string pay = Payment(Id(2), "sub-1", "pay-1");
  std::atomic<int> created{0}, duplicates{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      httplib::Client c("127.0.0.1", service_->port());
      for (int i = 0; i < 5; ++i) {
        auto r = c.Post(kPath, Bearer(token_), pay, "application/json");
        if (r && r->status == 201) {
          ++created;
        } else if (r && r->status == 200) {
          ++duplicates;
        } else {
          ++other;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created, 1);
  EXPECT_EQ(duplicates, 39);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(Count("payments"), 1);
  EXPECT_EQ(MetricValue(Metrics(), R"(bpmc_payments_total{reason="none",status="succeeded"})"), 1);
}

TEST_F(BillingTest, UnknownConnectorIs422AndNothingIsStored) {
  StartService();
  std::string body = Expect(422, Started(Id(1), "sub-1", true, "nope"));
  EXPECT_TRUE(Has(body, R"("field":"connector")")) << body;
  EXPECT_TRUE(Has(body, "unknown connector 'nope'")) << body;
  Expect(201, Started(Id(2), "sub-1"));
  body = Expect(422, Payment(Id(3), "sub-1", "pay-1", "", 1, "nope"));
  EXPECT_TRUE(Has(body, R"("field":"connector")")) << body;
  // The payment's connector must be the subscription's.
  body = Expect(422, Payment(Id(3), "sub-1", "pay-1", "", 1, "payment-connector"));
  EXPECT_TRUE(Has(body, R"("field":"connector")")) << body;
  EXPECT_TRUE(Has(body, "does not match")) << body;
  EXPECT_EQ(Count("billing_events"), 1);
  EXPECT_EQ(Count("payments"), 0);
  EXPECT_EQ(MetricValue(Metrics(),
                        R"(bpmc_billing_events_total{result="rejected",type="payment_succeeded"})"),
            2);
}

TEST_F(BillingTest, UnknownSubscriptionIs422UntilItStarts) {
  StartService();
  const std::string convert = Event(Id(1), "trial_converted", "sub-1", "");
  const std::string cancel = Event(Id(2), "subscription_cancelled", "sub-1", "");
  const std::string pay = Payment(Id(3), "sub-1", "pay-1");
  for (const std::string& e : {convert, cancel, pay}) {
    const std::string body = Expect(422, e);
    EXPECT_TRUE(Has(body, R"("field":"subscription_id")")) << body;
    EXPECT_TRUE(Has(body, "unknown subscription 'sub-1'")) << body;
  }
  EXPECT_EQ(Stored(), 0);
  // The platform retries the same events after the start: now they apply.
  Expect(201, Started(Id(4), "sub-1"));
  Expect(201, convert);
  Expect(201, pay);
  Expect(201, cancel);
  EXPECT_EQ(Count("billing_events"), 4);
}

TEST_F(BillingTest, InconsistentEventsAreRefused) {
  StartService();
  Expect(201, Started(Id(1), "paid-sub", false));
  Expect(201, Started(Id(2), "trial-sub", true));
  // Another customer's subscription.
  std::string body =
      Expect(422, Event(Id(3), "subscription_cancelled", "paid-sub", "", "", "intruder"));
  EXPECT_TRUE(Has(body, R"("field":"customer")")) << body;
  // Converting a subscription that is not a trial.
  body = Expect(422, Event(Id(4), "trial_converted", "paid-sub", ""));
  EXPECT_TRUE(Has(body, "is not a trial")) << body;
  // The same subscription id for another customer or connector: 409.
  body = Expect(409, Started(Id(5), "paid-sub", false, "crm-connector", "", "intruder"));
  EXPECT_TRUE(Has(body, R"("field":"subscription_id")")) << body;
  body = Expect(409, Started(Id(6), "paid-sub", false, "payment-connector"));
  EXPECT_TRUE(Has(body, R"("field":"subscription_id")")) << body;
  // A payment id recorded by another event: 409.
  Expect(201, Payment(Id(7), "paid-sub", "pay-1"));
  body = Expect(409, Payment(Id(8), "paid-sub", "pay-1", "card_declined"));
  EXPECT_TRUE(Has(body, R"("field":"payment_id")")) << body;
  EXPECT_EQ(Count("billing_events"), 3);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM subscriptions WHERE customer_id = 'acme' AND "
                        "connector_id = 'crm-connector' AND cancelled_at IS NULL"),
            2);
  const std::string m = Metrics();
  EXPECT_EQ(
      MetricValue(m, R"(bpmc_billing_events_total{result="rejected",type="subscription_started"})"),
      2);
  EXPECT_EQ(MetricValue(m, R"(bpmc_payments_total{reason="card_declined",status="failed"})"), 0);
}

TEST_F(BillingTest, CorrectionsAndRepeatedStateChanges) {
  StartService();
  Expect(201, Started(Id(1), "sub-1", true, "crm-connector", "2026-10-01T00:00:00Z"));
  // A corrected start (new event id): plan, price and start replaced.
  Expect(201, Event(Id(2), "subscription_started", "sub-1",
                    R"(,"connector":"crm-connector","plan":"pro-yearly","trial":true,)"
                    R"("price":{"amount_minor":1500000,"currency":"RUB"})",
                    "2026-10-02T00:00:00Z"));
  // Two cancellations: the earliest wins, with its reason.
  Expect(201, Event(Id(3), "subscription_cancelled", "sub-1", R"(,"reason":"late")",
                    "2026-11-20T00:00:00Z"));
  Expect(201, Event(Id(4), "subscription_cancelled", "sub-1", R"(,"reason":"early")",
                    "2026-11-10T00:00:00Z"));
  Expect(201, Event(Id(5), "subscription_cancelled", "sub-1", "", "2026-11-15T00:00:00Z"));
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM subscriptions WHERE plan = 'pro-yearly' AND "
                        "price_minor = 1500000 AND started_at = '2026-10-02T00:00:00Z' AND "
                        "cancelled_at = '2026-11-10T00:00:00Z' AND cancel_reason = 'early'"),
            1);
  const std::string m = Metrics();
  EXPECT_EQ(MetricValue(m, R"(bpmc_subscriptions_started_total{trial="true"})"), 1);
  EXPECT_EQ(MetricValue(m, "bpmc_subscriptions_cancelled_total"), 1);
  EXPECT_EQ(MetricValue(
                m, R"(bpmc_billing_events_total{result="applied",type="subscription_cancelled"})"),
            3);
}

TEST_F(BillingTest, BatchIsAllOrNothing) {
  StartService();
  // The third item refers to an unknown subscription: nothing of the batch stays.
  std::string body =
      Expect(422, "[" + Started(Id(1), "sub-1") + "," + Payment(Id(2), "sub-1", "pay-1") + "," +
                      Payment(Id(3), "sub-9", "pay-2") + "]");
  EXPECT_TRUE(Has(body, R"("field":"[2].subscription_id")")) << body;
  EXPECT_EQ(Stored(), 0);
  // A bad amount at [1]: 400 naming it.
  body = Expect(400, "[" + Started(Id(1), "sub-1") + "," +
                         Event(Id(2), "payment_succeeded", "sub-1",
                               R"(,"payment_id":"p","connector":"crm-connector",)"
                               R"("amount":{"amount_minor":12.5,"currency":"RUB"})") +
                         "]");
  EXPECT_TRUE(Has(body, R"("field":"[1].amount.amount_minor")")) << body;
  EXPECT_EQ(Stored(), 0);
  // Events of one batch see each other in order.
  body = Expect(201, "[" + Started(Id(1), "sub-1") + "," +
                         Event(Id(2), "trial_converted", "sub-1", "") + "," +
                         Payment(Id(3), "sub-1", "pay-1") + "]");
  EXPECT_EQ(body, R"({"applied":3,"duplicates":0,"results":["applied","applied","applied"]})");
  EXPECT_EQ(Stored(), 3 * 1000000 + 1000 + 1);
  // More than 1000 items: 413.
  std::string big = "[";
  for (int i = 0; i < 1001; ++i)
    big += (i ? "," : "") + Payment(Id(100 + i), "sub-1", "p" + std::to_string(i));
  big += "]";
  body = Expect(413, big);
  EXPECT_TRUE(Has(body, "more than 1000")) << body;
  EXPECT_EQ(Count("payments"), 1);
}

TEST_F(BillingTest, AuthenticationAndRequestErrors) {
  StartService();
  const std::string ok = Started(Id(1), "sub-1");
  auto r = client_->Post(kPath, ok, "application/json");  // no Authorization
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_TRUE(Has(r->body, R"("field":"Authorization")")) << r->body;
  r = Post(ok, "bpmcp_not-a-real-token");
  EXPECT_EQ(r->status, 401);
  r = Post(ok, db_->api_key);  // a customer's API key is not a platform token
  EXPECT_EQ(r->status, 401);
  r = client_->Post(kPath, {{"Authorization", "Basic " + token_}}, ok, "application/json");
  EXPECT_EQ(r->status, 401);
  // The usage endpoint does not take platform tokens either.
  r = client_->Post("/v1/connector/usage", Bearer(token_), SeedBody(), "application/json");
  EXPECT_EQ(r->status, 401);

  r = Post(ok, "", "text/plain");
  EXPECT_EQ(r->status, 415);
  r = Post(ok, "", "application/jsonx");
  EXPECT_EQ(r->status, 415);
  r = Post("{\"event_id\":", "", "application/json; charset=utf-8");
  EXPECT_EQ(r->status, 400);
  r = client_->Get(kPath, Bearer(token_));
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->get_header_value("Allow"), "POST");
  const std::string huge(billing::kMaxBillingBodyBytes + 1, ' ');
  r = Post(huge);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(Stored(), 0);

  // A token created while running works at once; a revoked one stops within
  // the refresh interval.
  std::string fresh;
  {
    pqxx::connection conn(db_->url);
    fresh = identity::CreatePlatformToken(conn, "second");
  }
  EXPECT_EQ(fresh.rfind("bpmcp_", 0), 0u);
  EXPECT_EQ(fresh.size(), 6u + 43u);
  // "At once": an unknown token re-reads the tokens at most every 200 ms, and
  // the refusals above may have just done so.
  EXPECT_TRUE(WaitFor([&] { return (r = Post(ok, fresh))->status == 201; },
                      std::chrono::milliseconds(2000)))
      << r->body;
  {
    pqxx::connection conn(db_->url);
    pqxx::work txn(conn);
    txn.exec("UPDATE platform_tokens SET revoked_at = now() WHERE name = 'second'");
    txn.commit();
  }
  EXPECT_TRUE(
      WaitFor([&] { return Post(ok, fresh)->status == 401; }, std::chrono::milliseconds(3000)));
  EXPECT_EQ(Post(ok)->status, 200);  // the first token still works (a replay)
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM platform_tokens WHERE token_hash = "
                        "sha256(convert_to('" +
                        token_ + "', 'UTF8'))"),
            1);
  const std::string m = Metrics();
  EXPECT_GE(MetricValue(m, R"(bpmc_exporter_http_requests_total{code="401",route="billing"})"), 4);
  EXPECT_EQ(MetricValue(m, R"(bpmc_billing_events_total{result="rejected",type="unknown"})"), 4);
}

// The reason is free text: only its category is a label (exporter/payment_reason.h).
TEST_F(BillingTest, FailureReasonLabelsAreAClosedSet) {
  StartService();
  Expect(201, Started(Id(1), "sub-1"));
  const std::vector<std::string> reasons = {"card of ivan.petrov@example.com declined",
                                            "Insufficient funds on +7 916 123-45-67",
                                            "expired_card", "reason_1", "reason_2"};
  for (size_t i = 0; i < reasons.size(); ++i)
    Expect(201,
           Payment(Id(100 + static_cast<int>(i)), "sub-1", "pay-" + std::to_string(i), reasons[i]));
  const std::string m = Metrics();
  EXPECT_EQ(m.find("ivan"), std::string::npos) << m;
  EXPECT_EQ(m.find("916"), std::string::npos) << m;
  EXPECT_EQ(m.find("reason_1"), std::string::npos) << m;
  EXPECT_EQ(MetricValue(m, R"(bpmc_payments_total{reason="card_declined",status="failed"})"), 1);
  EXPECT_EQ(MetricValue(m, R"(bpmc_payments_total{reason="insufficient_funds",status="failed"})"),
            1);
  EXPECT_EQ(MetricValue(m, R"(bpmc_payments_total{reason="expired_card",status="failed"})"), 1);
  EXPECT_EQ(MetricValue(m, R"(bpmc_payments_total{reason="other",status="failed"})"), 2);
  EXPECT_EQ(MetricValue(m, R"(bpmc_payments_total{reason="fraud_suspected",status="failed"})"), 0);
  EXPECT_EQ(Count("payments"), 5);  // the database keeps every reason as sent
}

TEST_F(BillingTest, MetricsPassPromtool) {
  StartService();
  Expect(201, Started(Id(1), "sub-1"));
  Expect(201, Payment(Id(2), "sub-1", "pay-1"));
  Expect(201, Payment(Id(3), "sub-1", "pay-2", "card \\\"declined\\\"\\nagain"));
  Expect(201, Payment(Id(4), "sub-1", "pay-3", "", 10, "crm-connector", "EUR"));
  Expect(422, Payment(Id(5), "sub-9", "pay-4"));
  const std::string m = Metrics();
  for (const char* family : {"bpmc_payments_total", "bpmc_payment_amount_minor_total",
                             "bpmc_billing_events_total", "bpmc_subscriptions_started_total",
                             "bpmc_subscriptions_cancelled_total", "bpmc_trials_converted_total"}) {
    EXPECT_TRUE(Has(m, std::string("# TYPE ") + family + " counter")) << family;
  }
  const std::string path = data_dir_.File("metrics.txt");
  std::ofstream(path) << m;
  std::string out;
  EXPECT_EQ(RunCommand("promtool check metrics < '" + path + "'", &out), 0) << out;
}

TEST_F(BillingTest, PlatformTokenCommandPrintsAWorkingToken) {
  StartService();
  std::string out;
  ASSERT_EQ(RunCommand("'" + BinPath("bpmc-exporter") + "' platform-token create billing-ci " +
                           "--database-url '" + db_->url + "' 2>/dev/null",
                       &out),
            0)
      << out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  const std::string token = out.substr(out.rfind('\n') + 1);
  EXPECT_EQ(token.rfind("bpmcp_", 0), 0u) << out;
  EXPECT_EQ(Post(Started(Id(1), "sub-1"), token)->status, 201);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM platform_tokens WHERE name = 'billing-ci'"), 1);
  EXPECT_EQ(RunCommand("'" + BinPath("bpmc-exporter") + "' platform-token create " +
                       "--database-url '" + db_->url + "' >/dev/null 2>&1"),
            2);
}

// The examples of docs/BILLING.md are real: every ```json block applies.
TEST_F(BillingTest, DocumentedExamplesApply) {
  StartService();
  const char* src = std::getenv("BPMC_SOURCE_DIR");
  ASSERT_NE(src, nullptr) << "BPMC_SOURCE_DIR is not set";
  std::ifstream in(std::string(src) + "/docs/BILLING.md");
  ASSERT_TRUE(in) << "cannot read docs/BILLING.md";
  std::string line, block;
  std::vector<std::string> blocks;
  bool inside = false;
  while (std::getline(in, line)) {
    if (!inside && line == "```json") {
      inside = true;
      block.clear();
    } else if (inside && line == "```") {
      inside = false;
      blocks.push_back(block);
    } else if (inside) {
      block += line + "\n";
    }
  }
  ASSERT_EQ(blocks.size(), 7u);  // six events and one batch of two
  for (const std::string& b : blocks) Expect(201, b);
  EXPECT_EQ(Count("billing_events"), 8);
  EXPECT_EQ(db_->Scalar("SELECT sum(amount_minor) FROM payments WHERE status = 'succeeded'"),
            298000);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM subscriptions WHERE trial_converted_at IS NOT NULL "
                        "AND cancelled_at IS NOT NULL AND cancel_reason = 'too expensive'"),
            1);
}

}  // namespace
}  // namespace bpmc::testing
