// Ingestion against a real throwaway PostgreSQL: rows, batches, idempotency,
// every 4xx class with nothing stored, revocation, metrics text.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "common/testing/temp_dir.h"
#include "exporter/service.h"
#include "ingestion/store.h"
#include "testing/exporter_harness.h"
#include "testing/process.h"

namespace bpmc::testing {
namespace {

using exporter::Config;
using exporter::Service;

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override { db_ = std::make_unique<TestDatabase>(SharedCluster()); }
  void TearDown() override {
    if (service_) service_->Shutdown();
    service_.reset();
  }

  void StartService(const std::function<void(Config*)>& tweak = {}) {
    Config config;
    config.listen = "127.0.0.1:0";
    config.database_url = db_->url;
    config.data_dir = data_dir_.path();
    config.key_refresh_ms = 500;
    config.http_threads = 16;
    if (tweak) tweak(&config);
    std::string error;
    service_ = Service::Start(config, SystemClock::Get(), &error);
    ASSERT_TRUE(service_) << error;
    ASSERT_GT(service_->port(), 0);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", service_->port());
    client_->set_keep_alive(true);
  }

  httplib::Result Post(const std::string& path, const std::string& body,
                       const std::string& key = "", const char* type = "application/json") {
    return client_->Post(path.c_str(), Bearer(key.empty() ? db_->api_key : key), body, type);
  }

  std::string Metrics() {
    auto r = client_->Get("/metrics");
    return r ? r->body : "";
  }

  std::unique_ptr<TestDatabase> db_;
  TempDir data_dir_{"bpmc-ingest"};
  std::unique_ptr<Service> service_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(IngestTest, SeedRequestIsStoredAndCounted) {
  StartService();
  auto r = Post("/v1/connector/usage", SeedBody());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;
  // {"id":"<36-char uuid>"}
  const std::string body = r->body.size() == 45 ? r->body.substr(7, 36) : r->body;
  EXPECT_EQ(body.size(), 36u) << r->body;
  EXPECT_EQ(db_->Rows(), 1);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM connector_usage WHERE id = '" + body +
                        "' AND connector_id = 'crm-connector' AND operation = 'getContact' "
                        "AND make_account_id = '12345' AND status = 'success' "
                        "AND api_key_id = (SELECT id FROM api_keys WHERE owner = 'acme')"),
            1);
  const std::string m = Metrics();
  EXPECT_EQ(
      MetricValue(
          m,
          R"(connector_operations_total{connector="crm-connector",operation="getContact",status="success"})"),
      1)
      << m;
  EXPECT_EQ(m.find("make_account_id"), std::string::npos);
  EXPECT_GE(MetricValue(m, R"(bpmc_exporter_http_requests_total{code="201",route="usage"})"), 1);
}

TEST_F(IngestTest, OptionalFieldsFeedErrorsAndHistogram) {
  StartService();
  auto r = Post(
      "/v1/connector/usage",
      SeedBody(
          "getContact",
          R"(,"status":"error","error_type":"auth_error","error_message":"token expired","duration_ms":123.5)"));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  r = Post("/v1/connector/usage", SeedBody("getContact", R"(,"duration_ms":40)"));
  ASSERT_EQ(r->status, 201) << r->body;
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM connector_usage WHERE status='error' AND "
                        "error_type='auth_error' AND error_message='token expired' AND "
                        "duration_ms=123.5"),
            1);
  const std::string m = Metrics();
  EXPECT_EQ(
      MetricValue(
          m,
          R"(connector_errors_total{connector="crm-connector",error_type="auth_error",operation="getContact"})"),
      1)
      << m;
  EXPECT_EQ(
      MetricValue(
          m,
          R"(connector_operations_total{connector="crm-connector",operation="getContact",status="error"})"),
      1);
  EXPECT_EQ(
      MetricValue(
          m,
          R"(connector_operation_duration_seconds_count{connector="crm-connector",operation="getContact"})"),
      2);
  EXPECT_EQ(
      MetricValue(
          m,
          R"(connector_operation_duration_seconds_bucket{connector="crm-connector",operation="getContact",le="0.05"})"),
      1);
  EXPECT_EQ(
      MetricValue(
          m,
          R"(connector_operation_duration_seconds_bucket{connector="crm-connector",operation="getContact",le="0.25"})"),
      2);
}

TEST_F(IngestTest, BatchIsAllOrNothing) {
  StartService();
  std::string batch = "[";
  for (int i = 0; i < 1000; ++i) batch += (i ? "," : "") + SeedBody("op" + std::to_string(i % 7));
  batch += "]";
  auto r = Post("/v1/connector/usage/batch", batch);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;
  EXPECT_EQ(r->body, R"({"accepted":1000})");
  EXPECT_EQ(db_->Rows(), 1000);

  std::string bad = "[";
  for (int i = 0; i < 10; ++i)
    bad +=
        (i ? "," : "") +
        (i == 7
             ? std::string(
                   R"({"connector":"crm-connector","operation":"x","make_account_id":"1","timestamp":"yesterday"})")
             : SeedBody());
  bad += "]";
  r = Post("/v1/connector/usage/batch", bad);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find(R"("field":"[7].timestamp")"), std::string::npos) << r->body;
  EXPECT_EQ(db_->Rows(), 1000);

  // An unknown connector in the middle of a batch: 422 naming the index.
  std::string unknown =
      "[" + SeedBody() +
      R"(,{"connector":"nope","operation":"x","make_account_id":"1","timestamp":")" + NowIso() +
      "\"}]";
  r = Post("/v1/connector/usage/batch", unknown);
  EXPECT_EQ(r->status, 422);
  EXPECT_NE(r->body.find(R"("field":"[1].connector")"), std::string::npos) << r->body;
  EXPECT_EQ(db_->Rows(), 1000);
}

TEST_F(IngestTest, RepeatedEventIdIsStoredAndCountedOnce) {
  StartService();
  const std::string id = "0190f1d2-7c3a-7b5e-9a1b-2c3d4e5f6a7b";
  const std::string body =
      R"({"event_id":")" + id +
      R"(","connector":"crm-connector","operation":"getContact","make_account_id":"12345","timestamp":")" +
      NowIso() + "\"}";
  for (int i = 0; i < 3; ++i) {
    auto r = Post("/v1/connector/usage", body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 201);
    EXPECT_EQ(r->body, R"({"id":")" + id + "\"}");
  }
  // Also twice within one batch, and concurrently from several clients.
  auto r = Post("/v1/connector/usage/batch", "[" + body + "," + body + "]");
  EXPECT_EQ(r->status, 201);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      httplib::Client c("127.0.0.1", service_->port());
      auto rr = c.Post("/v1/connector/usage", Bearer(db_->api_key), body, "application/json");
      EXPECT_TRUE(rr && rr->status == 201);
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(db_->Rows(), 1);
  const std::string m = Metrics();
  EXPECT_EQ(
      MetricValue(
          m,
          R"(connector_operations_total{connector="crm-connector",operation="getContact",status="success"})"),
      1);
  EXPECT_EQ(MetricValue(m, "bpmc_exporter_duplicate_events_total"), 12);
}

// The bug this guards against: idempotency was on (id, timestamp), so a
// retry wrapper that builds the body again (a fresh timestamp) stored and
// counted one event three times.
TEST_F(IngestTest, RetriesWithFreshTimestampsAreOneEvent) {
  StartService();
  const std::string id = "0190f1d2-7c3a-7b5e-9a1b-000000000001";
  for (int i = 0; i < 3; ++i) {
    const std::string body =
        R"({"event_id":")" + id +
        R"(","connector":"crm-connector","operation":"getContact","make_account_id":"12345","timestamp":")" +
        NowIso(i * 90) + "\"}";
    auto r = Post("/v1/connector/usage", body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 201) << r->body;
    EXPECT_EQ(r->body, R"({"id":")" + id + "\"}");
  }
  EXPECT_EQ(db_->Rows(), 1);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM connector_usage_ids WHERE id = '" + id + "'"), 1);
  const std::string m = Metrics();
  EXPECT_EQ(
      MetricValue(
          m,
          R"(connector_operations_total{connector="crm-connector",operation="getContact",status="success"})"),
      1)
      << m;
  EXPECT_EQ(MetricValue(m, "bpmc_exporter_duplicate_events_total"), 2);
}

TEST_F(IngestTest, SameEventIdWithOtherContentIsAConflictAndStoresNothing) {
  StartService();
  const std::string id = "0190f1d2-7c3a-7b5e-9a1b-000000000002";
  auto event = [&](const std::string& fields, const std::string& ts) {
    return R"({"event_id":")" + id + R"(","timestamp":")" + ts + "\"" + fields + "}";
  };
  const std::string base =
      R"(,"connector":"crm-connector","operation":"getContact","make_account_id":"12345")";
  auto r = Post("/v1/connector/usage", event(base, NowIso(-3600)));
  ASSERT_EQ(r->status, 201) << r->body;
  struct Case {
    const char* name;
    std::string body;
  };
  const Case cases[] = {
      {"operation",
       event(R"(,"connector":"crm-connector","operation":"listDeals","make_account_id":"12345")",
             NowIso())},
      {"connector",
       event(
           R"(,"connector":"payment-connector","operation":"getContact","make_account_id":"12345")",
           NowIso())},
      {"make_account_id",
       event(R"(,"connector":"crm-connector","operation":"getContact","make_account_id":"12346")",
             NowIso())},
      {"status", event(base + R"(,"status":"error")", NowIso())},
      {"error_type", event(base + R"(,"error_type":"timeout")", NowIso())},
      {"duration_ms", event(base + R"(,"duration_ms":12)", NowIso())},
      {"timestamp", event(base, NowIso(-3 * 86400))},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    r = Post("/v1/connector/usage", c.body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 409) << r->body;
    EXPECT_NE(r->body.find("\"error\":"), std::string::npos) << r->body;
    EXPECT_NE(r->body.find(R"("field":"event_id")"), std::string::npos) << r->body;
    EXPECT_NE(r->body.find(std::string("its ") + c.name + " differs"), std::string::npos)
        << r->body;
  }
  EXPECT_EQ(db_->Rows(), 1);
  EXPECT_EQ(
      db_->Scalar("SELECT count(*) FROM connector_usage WHERE operation = 'getContact' AND "
                  "connector_id = 'crm-connector' AND status = 'success' AND duration_ms IS NULL"),
      1);
  const std::string m = Metrics();
  EXPECT_EQ(
      MetricValue(
          m,
          R"(connector_operations_total{connector="crm-connector",operation="getContact",status="success"})"),
      1)
      << m;
  EXPECT_EQ(m.find("listDeals"), std::string::npos);
  EXPECT_EQ(MetricValue(m, R"(bpmc_exporter_http_requests_total{code="409",route="usage"})"), 7);
  // The same content again is still the same event.
  r = Post("/v1/connector/usage", event(base, NowIso()));
  EXPECT_EQ(r->status, 201) << r->body;
  EXPECT_EQ(db_->Rows(), 1);
}

TEST_F(IngestTest, BatchWithATakenEventIdIsRefusedWhole) {
  StartService();
  auto ev = [](const std::string& id, const std::string& operation, int64_t offset = 0) {
    return R"({"event_id":")" + id + R"(","connector":"crm-connector","operation":")" + operation +
           R"(","make_account_id":"7","timestamp":")" + NowIso(offset) + "\"}";
  };
  const std::string taken = "00000000-0000-4000-8000-0000000000a0";
  ASSERT_EQ(Post("/v1/connector/usage", ev(taken, "getContact"))->status, 201);
  // A batch whose second event reuses the id for another event: 409, nothing stored.
  auto r = Post("/v1/connector/usage/batch",
                "[" + ev("00000000-0000-4000-8000-0000000000a1", "a") + "," + ev(taken, "other") +
                    "," + ev("00000000-0000-4000-8000-0000000000a2", "a") + "]");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 409) << r->body;
  EXPECT_NE(r->body.find(R"("field":"[1].event_id")"), std::string::npos) << r->body;
  EXPECT_EQ(db_->Rows(), 1);
  // Two events of one batch with one id and different content: the later is named.
  r = Post("/v1/connector/usage/batch", "[" + ev("00000000-0000-4000-8000-0000000000b1", "a") +
                                            "," + ev("00000000-0000-4000-8000-0000000000b1", "b") +
                                            "]");
  EXPECT_EQ(r->status, 409) << r->body;
  EXPECT_NE(r->body.find(R"("field":"[1].event_id")"), std::string::npos) << r->body;
  EXPECT_EQ(db_->Rows(), 1);
  // A retry of a stored event inside a batch is a duplicate: the rest is stored.
  r = Post("/v1/connector/usage/batch",
           "[" + ev("00000000-0000-4000-8000-0000000000a1", "a") + "," +
               ev(taken, "getContact", 60) + "," + ev("00000000-0000-4000-8000-0000000000a2", "a") +
               "," + ev("00000000-0000-4000-8000-0000000000a2", "a", 5) + "]");
  EXPECT_EQ(r->status, 201) << r->body;
  EXPECT_EQ(db_->Rows(), 3);
  const std::string m = Metrics();
  EXPECT_EQ(
      MetricValue(
          m,
          R"(connector_operations_total{connector="crm-connector",operation="a",status="success"})"),
      2)
      << m;
  EXPECT_EQ(
      MetricValue(
          m,
          R"(connector_operations_total{connector="crm-connector",operation="getContact",status="success"})"),
      1)
      << m;
  EXPECT_EQ(MetricValue(m, "bpmc_exporter_duplicate_events_total"), 2);
}

// Concurrent requests with one id: one row. Requests with other ids committed
// in the same group commit as a refused one are stored.
TEST_F(IngestTest, ConcurrentRequestsWithOneEventIdStoreOneRow) {
  StartService();
  const std::string same = "00000000-0000-4000-8000-0000000000c0";
  const std::string contested = "00000000-0000-4000-8000-0000000000c1";
  std::atomic<bool> go{false};
  std::atomic<int> same_201{0}, contested_201{0}, contested_409{0}, fresh_201{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 24; ++t) {
    threads.emplace_back([&, t] {
      httplib::Client c("127.0.0.1", service_->port());
      std::string body;
      if (t < 8) {  // the same event, bodies built at different moments
        body =
            R"({"event_id":")" + same +
            R"(","connector":"crm-connector","operation":"getContact","make_account_id":"1","timestamp":")" +
            NowIso(t) + "\"}";
      } else if (t < 16) {  // one id, eight different events
        body = R"({"event_id":")" + contested + R"(","connector":"crm-connector","operation":"op)" +
               std::to_string(t) + R"(","make_account_id":"1","timestamp":")" + NowIso() + "\"}";
      } else {  // unrelated events
        body = SeedBody("fresh");
      }
      while (!go) std::this_thread::yield();
      auto r = c.Post("/v1/connector/usage", Bearer(db_->api_key), body, "application/json");
      ASSERT_TRUE(r);
      if (t < 8) {
        same_201 += r->status == 201;
      } else if (t < 16) {
        contested_201 += r->status == 201;
        contested_409 += r->status == 409;
      } else {
        fresh_201 += r->status == 201;
      }
    });
  }
  go = true;
  for (auto& th : threads) th.join();
  EXPECT_EQ(same_201, 8);
  EXPECT_EQ(contested_201, 1);
  EXPECT_EQ(contested_409, 7);
  EXPECT_EQ(fresh_201, 8);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM connector_usage WHERE id = '" + same + "'"), 1);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM connector_usage WHERE id = '" + contested + "'"), 1);
  EXPECT_EQ(db_->Rows(), 10);
  const std::string m = Metrics();
  EXPECT_EQ(
      MetricValue(
          m,
          R"(connector_operations_total{connector="crm-connector",operation="getContact",status="success"})"),
      1)
      << m;
  EXPECT_EQ(
      MetricValue(
          m,
          R"(connector_operations_total{connector="crm-connector",operation="fresh",status="success"})"),
      8)
      << m;
}

// Ids are forgotten with their day: the retention job drops the partition and
// then the registered ids and quarantined conflicts of that day.
TEST_F(IngestTest, RetentionForgetsTheIdsOfDroppedDays) {
  StartService([](Config* c) { c->retention_days = 30; });
  const std::string old_id = "00000000-0000-4000-8000-0000000000d0";
  const std::string new_id = "00000000-0000-4000-8000-0000000000d1";
  auto ev = [](const std::string& id, int64_t offset) {
    return R"({"event_id":")" + id +
           R"(","connector":"crm-connector","operation":"a","make_account_id":"1","timestamp":")" +
           NowIso(offset) + "\"}";
  };
  ASSERT_EQ(Post("/v1/connector/usage", ev(old_id, -20 * 86400))->status, 201);
  ASSERT_EQ(Post("/v1/connector/usage", ev(new_id, 0))->status, 201);
  pqxx::connection conn(db_->url);
  {
    pqxx::work txn(conn);
    txn.exec(
        "INSERT INTO connector_usage_conflicts (id, api_key_id, connector_id, make_account_id, "
        "operation, \"timestamp\", status) SELECT id, api_key_id, connector_id, '2', "
        "operation, \"timestamp\", status FROM connector_usage");
    txn.commit();
  }
  // Fifteen days later the older event's day is past retention.
  const int64_t later = SystemClock::Get().NowMicros() + 15LL * 86400 * 1000000;
  const auto dropped = ingestion::DropExpiredPartitions(conn, later, 30);
  EXPECT_FALSE(dropped.empty());
  EXPECT_EQ(db_->Rows(), 1);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM connector_usage_ids WHERE id = '" + old_id + "'"), 0);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM connector_usage_ids WHERE id = '" + new_id + "'"), 1);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM connector_usage_conflicts"), 1);
}

struct BadRequest {
  const char* name;
  std::string path;
  std::string method;
  std::string auth;  // "" = none, "good" = valid key, else literal header value
  std::string content_type;
  std::string body;
  int status;
  std::string field;
};

TEST_F(IngestTest, EveryClientErrorIsAFourHundredAndStoresNothing) {
  StartService([](Config* c) { c->max_event_body_bytes = 4096; });
  const std::string ts = NowIso();
  auto ev = [&](const std::string& fields) {
    return R"({"connector":"crm-connector","operation":"getContact","make_account_id":"1","timestamp":")" +
           ts + "\"" + fields + "}";
  };
  const std::string long51(51, 'c');
  const BadRequest cases[] = {
      {"no auth", "/v1/connector/usage", "POST", "", "application/json", ev(""), 401,
       "Authorization"},
      {"basic auth", "/v1/connector/usage", "POST", "Basic dXNlcjpwYXNz", "application/json",
       ev(""), 401, "Authorization"},
      {"unknown key", "/v1/connector/usage", "POST", "Bearer bpmc_nope", "application/json", ev(""),
       401, "Authorization"},
      {"text/plain", "/v1/connector/usage", "POST", "good", "text/plain", ev(""), 415,
       "Content-Type"},
      {"json lookalike", "/v1/connector/usage", "POST", "good", "application/jsonp", ev(""), 415,
       "Content-Type"},
      {"too large", "/v1/connector/usage", "POST", "good", "application/json",
       std::string(5000, ' ') + ev(""), 413, ""},
      {"malformed", "/v1/connector/usage", "POST", "good", "application/json",
       "{\"connector\":", 400, ""},
      {"array to single", "/v1/connector/usage", "POST", "good", "application/json",
       "[" + ev("") + "]", 400, ""},
      {"wrong type", "/v1/connector/usage", "POST", "good", "application/json",
       R"({"connector":5,"operation":"a","make_account_id":"1","timestamp":")" + ts + "\"}", 400,
       "connector"},
      {"missing operation", "/v1/connector/usage", "POST", "good", "application/json",
       R"({"connector":"crm-connector","make_account_id":"1","timestamp":")" + ts + "\"}", 400,
       "operation"},
      {"connector too long", "/v1/connector/usage", "POST", "good", "application/json",
       R"({"connector":")" + long51 + R"(","operation":"a","make_account_id":"1","timestamp":")" +
           ts + "\"}",
       400, "connector"},
      {"not rfc3339", "/v1/connector/usage", "POST", "good", "application/json",
       R"({"connector":"crm-connector","operation":"a","make_account_id":"1","timestamp":"25.11.2026 10:00"})",
       400, "timestamp"},
      {"future", "/v1/connector/usage", "POST", "good", "application/json",
       R"({"connector":"crm-connector","operation":"a","make_account_id":"1","timestamp":")" +
           NowIso(25 * 3600) + "\"}",
       400, "timestamp"},
      {"bad status", "/v1/connector/usage", "POST", "good", "application/json",
       ev(R"(,"status":"ok")"), 400, "status"},
      {"negative duration", "/v1/connector/usage", "POST", "good", "application/json",
       ev(R"(,"duration_ms":-1)"), 400, "duration_ms"},
      {"bad event id", "/v1/connector/usage", "POST", "good", "application/json",
       ev(R"(,"event_id":"123")"), 400, "event_id"},
      {"unknown connector", "/v1/connector/usage", "POST", "good", "application/json",
       R"({"connector":"ghost","operation":"a","make_account_id":"1","timestamp":")" + ts + "\"}",
       422, "connector"},
      {"empty batch", "/v1/connector/usage/batch", "POST", "good", "application/json", "[]", 400,
       ""},
      {"GET on usage", "/v1/connector/usage", "GET", "good", "", "", 405, ""},
      {"unknown path", "/v2/whatever", "POST", "good", "application/json", ev(""), 404, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    httplib::Headers h;
    if (c.auth == "good")
      h.emplace("Authorization", "Bearer " + db_->api_key);
    else if (!c.auth.empty())
      h.emplace("Authorization", c.auth);
    httplib::Client cl("127.0.0.1", service_->port());
    httplib::Result r = c.method == "GET"
                            ? cl.Get(c.path.c_str(), h)
                            : cl.Post(c.path.c_str(), h, c.body, c.content_type.c_str());
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    EXPECT_EQ(r->status, c.status) << r->body;
    EXPECT_NE(r->body.find("\"error\":"), std::string::npos) << r->body;
    EXPECT_NE(r->body.find("\"field\":\"" + c.field + "\""), std::string::npos) << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  }
  EXPECT_EQ(db_->Rows(), 0);
  const std::string m = Metrics();
  EXPECT_EQ(m.find("connector_operations_total{"), std::string::npos);
  EXPECT_GE(MetricValue(m, R"(bpmc_exporter_http_requests_total{code="401",route="usage"})"), 3);
}

TEST_F(IngestTest, RevokedKeyIsRefusedWithinFiveSeconds) {
  StartService([](Config* c) { c->key_refresh_ms = 2000; });
  pqxx::connection conn(db_->url);
  const std::string key = identity::CreateApiKey(conn, "beta");
  auto r = Post("/v1/connector/usage", SeedBody(), key);  // a new key works at once
  ASSERT_EQ(r->status, 201) << r->body;
  ASSERT_TRUE(identity::RevokeApiKey(conn, key));
  const auto t0 = std::chrono::steady_clock::now();
  int accepted = 1;
  const bool refused = WaitFor(
      [&] {
        auto rr = Post("/v1/connector/usage", SeedBody(), key);
        if (rr && rr->status == 201) ++accepted;
        return rr && rr->status == 401;
      },
      std::chrono::seconds(10));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(refused);
  EXPECT_LT(secs, 5.0);
  EXPECT_EQ(db_->Rows(), accepted);  // the refused request stored nothing
}

TEST_F(IngestTest, MetricsPassPromtoolAndLabelCapFoldsToOther) {
  StartService([](Config* c) { c->max_label_sets = 3; });
  for (int i = 0; i < 6; ++i) {
    auto r = Post("/v1/connector/usage", SeedBody("op" + std::to_string(i),
                                                  R"(,"status":"error","error_type":"e)" +
                                                      std::to_string(i) + "\",\"duration_ms\":5"));
    ASSERT_EQ(r->status, 201) << r->body;
  }
  const std::string m = Metrics();
  EXPECT_GT(
      MetricValue(
          m,
          R"(connector_operations_total{connector="crm-connector",operation="other",status="error"})"),
      0)
      << m;
  EXPECT_GT(
      MetricValue(m, R"(bpmc_exporter_label_overflow_total{family="connector_operations_total"})"),
      0);
  EXPECT_EQ(m.find("operation=\"op5\""), std::string::npos);
  EXPECT_NE(m.find("bpmc_exporter_build_info{"), std::string::npos);
  EXPECT_NE(m.find("bpmc_exporter_commit_duration_seconds_bucket"), std::string::npos);
  EXPECT_NE(m.find("bpmc_exporter_commit_batch_events_bucket"), std::string::npos);
  EXPECT_NE(m.find("bpmc_exporter_queue_depth_events"), std::string::npos);
  EXPECT_NE(m.find("bpmc_exporter_spool_backlog_events"), std::string::npos);

  const std::string path = data_dir_.File("metrics.txt");
  std::ofstream(path) << m;
  std::string out;
  EXPECT_EQ(RunCommand("promtool check metrics < '" + path + "'", &out), 0) << out;
}

TEST_F(IngestTest, LateEventsGetTheirPartitionAndRetentionIsEnforced) {
  StartService([](Config* c) { c->retention_days = 30; });
  const std::string late =
      R"({"connector":"crm-connector","operation":"a","make_account_id":"1","timestamp":")" +
      NowIso(-10 * 86400) + "\"}";
  auto r = Post("/v1/connector/usage", late);
  EXPECT_EQ(r->status, 201) << r->body;
  const std::string old =
      R"({"connector":"crm-connector","operation":"a","make_account_id":"1","timestamp":")" +
      NowIso(-40 * 86400) + "\"}";
  r = Post("/v1/connector/usage", old);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(db_->Rows(), 1);
  // The late event's day got its own partition on demand.
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "WHERE i.inhparent = 'connector_usage'::regclass AND c.relname = "
                        "'connector_usage_p' || to_char(now() - interval '10 days', 'YYYYMMDD')"),
            1);
}

TEST_F(IngestTest, TwoExportersOnOneDatabaseStoreEachEventOnce) {
  StartService();
  Config config;
  config.listen = "127.0.0.1:0";
  config.database_url = db_->url;
  config.data_dir = data_dir_.File("second");
  config.http_threads = 16;
  std::string error;
  auto second = Service::Start(config, SystemClock::Get(), &error);
  ASSERT_TRUE(second) << error;
  // Both exporters receive the same 400 events (as a load balancer retrying on
  // the other replica would send them), concurrently, on days that have no
  // partition yet (both race to create it).
  const int ports[2] = {service_->port(), second->port()};
  const int64_t base_us = SystemClock::Get().NowMicros();
  std::vector<std::thread> threads;
  std::atomic<int> created{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      httplib::Client c("127.0.0.1", ports[t % 2]);
      for (int i = 0; i < 100; ++i) {
        const int n = (t / 2) * 100 + i;
        char id[40];
        std::snprintf(id, sizeof id, "00000000-0000-4000-8000-%012d", n);
        const std::string body =
            R"({"event_id":")" + std::string(id) +
            R"(","connector":"crm-connector","operation":"op","make_account_id":"1","timestamp":")" +
            FormatRfc3339Micros(base_us - 86400LL * 1000000 * (3 + n % 4) + n) + "\"}";
        auto r = c.Post("/v1/connector/usage", Bearer(db_->api_key), body, "application/json");
        if (r && r->status == 201) {
          ++created;
        } else {
          ADD_FAILURE() << (r ? std::to_string(r->status) + " " + r->body
                              : httplib::to_string(r.error()));
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  second->Shutdown();
  EXPECT_EQ(created.load(), 800);
  EXPECT_EQ(db_->Rows(), 400);
}

TEST_F(IngestTest, HealthAndReadiness) {
  StartService();
  auto r = client_->Get("/healthz");
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(WaitFor(
      [&] {
        auto rr = client_->Get("/readyz");
        return rr && rr->status == 200;
      },
      std::chrono::seconds(5)));
}

}  // namespace
}  // namespace bpmc::testing
