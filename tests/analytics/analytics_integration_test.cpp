// The analytics API end to end: an oracle test (random usage and billing
// events with a fixed seed, expected numbers computed here independently of
// the product's SQL, ingested over HTTP with late and duplicate events, every
// endpoint compared) and the role matrix (each role against each endpoint,
// with the audit rows it leaves).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "analytics/access.h"
#include "analytics/analytics.h"
#include "billing/billing.h"
#include "common/pg_pool.h"
#include "common/testing/temp_dir.h"
#include "exporter/service.h"
#include "testing/exporter_harness.h"
#include "testing/process.h"

namespace bpmc::testing {
namespace {

using analytics::Role;
using exporter::Config;
using exporter::Service;
using nlohmann::json;

constexpr int64_t kHour = 3600LL * 1000000;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kMoscow = 3 * kHour;  // Europe/Moscow is UTC+3 all year since 2014
constexpr double kHllError = 0.02;      // stated in docs/AGGREGATION.md (log2m 13: ±1.15 %)

std::string Uuid(uint64_t n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012llx",
                static_cast<unsigned long long>(n));
  return buf;
}

std::string Day(int64_t local_us) { return FormatRfc3339Micros(local_us).substr(0, 10); }

struct Event {
  std::string id, connector, operation, account, customer, error_type;
  int64_t ts = 0;
  bool error = false;
  int duration_ms = 0;
  std::string Json() const {
    json j = {{"event_id", id},
              {"connector", connector},
              {"operation", operation},
              {"make_account_id", account},
              {"timestamp", FormatRfc3339Micros(ts)},
              {"duration_ms", duration_ms}};
    if (error) {
      j["status"] = "error";
      j["error_type"] = error_type;
      j["error_message"] = "failed for ivan@example.com, call +7 999 123-45-67";
    }
    return j.dump();
  }
};

class AnalyticsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    db_ = new TestDatabase(SharedCluster());
    pqxx::connection conn(db_->url);
    identity::AddConnector(conn, "mail-connector", "Mail Connector");
    for (int c = 0; c < kCustomers; ++c)
      keys_[Customer(c)] = identity::CreateApiKey(conn, Customer(c));
    admin_ = *identity::CreateUser(conn, "root", Role::kAdmin, "");
    manager_ = *identity::CreateUser(conn, "mona", Role::kManager, "");
    support_ = *identity::CreateUser(conn, "sam", Role::kSupport, "");
    user_ = *identity::CreateUser(conn, "ulla", Role::kUser, Customer(3));
    platform_ = identity::CreatePlatformToken(conn, "platform");
    data_dir_ = std::make_unique<TempDir>("bpmc-analytics");
    Config config;
    config.listen = "127.0.0.1:0";
    config.database_url = db_->url;
    config.data_dir = data_dir_->path();
    config.http_threads = 16;
    config.reporting_time_zone = "Europe/Moscow";
    config.pseudonym_key = "test-pseudonym-key";
    config.rollup_interval_ms = 100;  // reads never aggregate: the background does, soon
    // Many requests of one user in a row: the limits have their own tests (access_test).
    config.analytics_requests_per_minute = 0;
    config.analytics_concurrent_per_user = 0;
    std::string error;
    service_ = Service::Start(config, SystemClock::Get(), &error).release();
    ASSERT_NE(service_, nullptr) << error;
  }
  static void TearDownTestSuite() {
    service_->Shutdown();
    delete service_;
    delete db_;
    data_dir_.reset();
  }

  static std::string Customer(int c) { return "cust-" + std::to_string(c); }

  // Waits until the background aggregation has every committed event: analytics
  // answer as of the rollup watermark and never aggregate themselves.
  static void WaitAggregated() {
    const bool caught_up = WaitFor(
        [] {
          return db_->Scalar(
                     "SELECT count(*) FROM connector_usage WHERE seq > "
                     "(SELECT last_seq FROM rollup_state WHERE name = 'usage')") == 0;
        },
        std::chrono::seconds(60));
    ASSERT_TRUE(caught_up) << "the background aggregation did not catch up";
  }

  static httplib::Result Get(const std::string& path, const std::string& token,
                             httplib::Headers extra = {}) {
    WaitAggregated();
    httplib::Client c("127.0.0.1", service_->port());
    c.set_read_timeout(60);
    extra.emplace("Authorization", "Bearer " + token);
    return c.Get(path.c_str(), extra);
  }
  static httplib::Result Post(const std::string& path, const std::string& token,
                              const std::string& body) {
    httplib::Client c("127.0.0.1", service_->port());
    c.set_read_timeout(60);
    return c.Post(path.c_str(), Bearer(token), body, "application/json");
  }
  static json GetJson(const std::string& path, const std::string& token) {
    auto r = Get(path, token);
    EXPECT_TRUE(r);
    if (!r) return json();
    EXPECT_EQ(r->status, 200) << path << " " << r->body;
    return json::parse(r->body, nullptr, false);
  }

  static constexpr int kCustomers = 20;
  static TestDatabase* db_;
  static std::map<std::string, std::string> keys_;
  static std::string admin_, manager_, support_, user_, platform_;
  static std::unique_ptr<TempDir> data_dir_;
  static Service* service_;
};

TestDatabase* AnalyticsTest::db_ = nullptr;
std::map<std::string, std::string> AnalyticsTest::keys_;
std::string AnalyticsTest::admin_, AnalyticsTest::manager_, AnalyticsTest::support_,
    AnalyticsTest::user_, AnalyticsTest::platform_;
std::unique_ptr<TempDir> AnalyticsTest::data_dir_;
Service* AnalyticsTest::service_ = nullptr;

TEST_F(AnalyticsTest, OracleEveryEndpointMatchesIndependentComputation) {
  // Period: 20 whole Moscow days ending at the last Moscow midnight.
  const int64_t now = SystemClock::Get().NowMicros();
  const int64_t today_local = (now + kMoscow) / kDay * kDay;  // local midnight, as if UTC
  const int64_t from_local = today_local - 20 * kDay;
  const int64_t from_utc = from_local - kMoscow;
  const std::string q = "?from=" + Day(from_local) + "&to=" + Day(today_local);

  std::mt19937_64 rng(20261125);
  const std::vector<std::string> connectors = {"crm-connector", "payment-connector",
                                               "mail-connector"};
  const std::vector<std::string> error_types = {"auth_error", "timeout", "rate_limited",
                                                "bad_request"};
  const int kEvents = 200000, kAccounts = 3000, kLate = 20000, kDuplicates = 10000;
  std::vector<Event> events;
  for (int i = 0; i < kEvents; ++i) {
    Event e;
    e.id = Uuid(i + 1);
    e.connector = connectors[rng() % connectors.size()];
    e.operation = "op" + std::to_string(rng() % 8);
    const int account = static_cast<int>(rng() % kAccounts);
    e.account = "acc-" + std::to_string(account);
    e.customer = Customer(account % kCustomers);
    e.error = rng() % 10 == 0;
    if (e.error) e.error_type = error_types[rng() % error_types.size()];
    e.duration_ms = 1 + static_cast<int>(rng() % 2000);
    // The last kLate events are late: old timestamps sent after the rest.
    const int64_t span = i >= kEvents - kLate ? 3 * kDay : 20 * kDay - 1;
    e.ts = from_utc + static_cast<int64_t>(rng() % static_cast<uint64_t>(span));
    events.push_back(e);
  }

  // Independent expectations.
  int64_t ops = 0, errors = 0;
  std::map<std::string, int64_t> ops_by_connector, errors_by_connector, errors_by_type;
  std::map<std::string, std::map<std::string, int64_t>> ops_by_operation;
  std::map<std::string, std::set<std::string>> users_by_connector, users_by_day;
  std::set<std::string> users;
  std::map<std::string, int64_t> ops_by_day;
  std::map<std::string, double> duration_sum;
  // One customer's own breakdowns (their connectors/{id} and errors views).
  const std::string kOne = Customer(0);
  std::map<std::string, int64_t> one_ops_by_operation, one_errors_by_type, one_crm_errors_by_type;
  for (const Event& e : events) {
    if (e.customer == kOne) {
      if (e.connector == "crm-connector") ++one_ops_by_operation[e.operation];
      if (e.error) {
        ++one_errors_by_type[e.error_type];
        if (e.connector == "crm-connector") ++one_crm_errors_by_type[e.error_type];
      }
    }
    ++ops;
    ++ops_by_connector[e.connector];
    ++ops_by_operation[e.connector][e.operation];
    users.insert(e.account);
    users_by_connector[e.connector].insert(e.account);
    ++ops_by_day[Day(e.ts + kMoscow)];
    users_by_day[Day(e.ts + kMoscow)].insert(e.account);
    duration_sum[e.connector] += e.duration_ms;
    if (e.error) {
      ++errors;
      ++errors_by_connector[e.connector];
      ++errors_by_type[e.error_type];
    }
  }

  // Ingest: the on-time events, an analytics call (aggregates catch up), then
  // the late ones and duplicates of already aggregated events.
  auto send = [&](size_t from, size_t to) {
    std::map<std::string, std::string> bodies;
    for (size_t i = from; i < to; ++i) {
      std::string& b = bodies[events[i].customer];
      b += (b.empty() ? "[" : ",") + events[i].Json();
      if (b.size() > 4'000'000 || i + 1 == to) {
        for (auto& [customer, body] : bodies) {
          if (body.empty()) continue;
          auto r = Post("/v1/connector/usage/batch", keys_[customer], body + "]");
          ASSERT_TRUE(r);
          ASSERT_EQ(r->status, 201) << r->body;
          body.clear();
        }
      }
    }
  };
  send(0, kEvents - kLate);
  GetJson("/api/v1/analytics/overview" + q, admin_);
  send(kEvents - kLate, kEvents);
  send(1000, 1000 + kDuplicates);

  // Billing: one subscription per customer and connector.
  std::vector<json> billing;
  int64_t revenue = 0, subs_total = 0, cancelled = 0, trials = 0, converted = 0;
  std::map<std::string, int64_t> revenue_by_connector, failed_by_reason;
  std::set<std::string> paying;
  int64_t payments_total = 0, failed_total = 0;
  uint64_t n = 1'000'000;
  auto at = [&](int64_t day_offset_us) { return FormatRfc3339Micros(from_utc + day_offset_us); };
  for (int c = 0; c < kCustomers; ++c) {
    for (const std::string& conn : connectors) {
      const std::string sub = "sub-" + std::to_string(c) + "-" + conn;
      const bool trial = rng() % 2 == 0;
      const int64_t price = 49000 + static_cast<int64_t>(rng() % 5) * 10000;
      const int64_t start = static_cast<int64_t>(rng() % (5 * kDay));
      ++subs_total;
      billing.push_back({{"event_id", Uuid(++n)},
                         {"type", "subscription_started"},
                         {"occurred_at", at(start)},
                         {"customer", Customer(c)},
                         {"subscription_id", sub},
                         {"connector", conn},
                         {"plan", "monthly"},
                         {"trial", trial},
                         {"price", {{"amount_minor", price}, {"currency", "RUB"}}}});
      if (trial) {
        ++trials;
        if (rng() % 2 == 0) {
          ++converted;
          billing.push_back({{"event_id", Uuid(++n)},
                             {"type", "trial_converted"},
                             {"occurred_at", at(start + kDay)},
                             {"customer", Customer(c)},
                             {"subscription_id", sub}});
        }
      }
      const int payments = 1 + static_cast<int>(rng() % 3);
      for (int p = 0; p < payments; ++p) {
        const bool ok = rng() % 4 != 0;
        const std::string reason = ok ? "" : (rng() % 2 ? "card_declined" : "insufficient_funds");
        json pay = {{"event_id", Uuid(++n)},
                    {"type", ok ? "payment_succeeded" : "payment_failed"},
                    {"occurred_at", at(start + (p + 2) * kDay)},
                    {"customer", Customer(c)},
                    {"subscription_id", sub},
                    {"payment_id", "pay-" + std::to_string(n)},
                    {"connector", conn},
                    {"amount", {{"amount_minor", price}, {"currency", "RUB"}}}};
        ++payments_total;
        if (ok) {
          revenue += price;
          revenue_by_connector[conn] += price;
          paying.insert(Customer(c));
        } else {
          pay["reason"] = reason;
          ++failed_total;
          ++failed_by_reason[reason];
        }
        billing.push_back(pay);
      }
      if (rng() % 5 == 0) {
        ++cancelled;
        billing.push_back({{"event_id", Uuid(++n)},
                           {"type", "subscription_cancelled"},
                           {"occurred_at", at(start + 6 * kDay)},
                           {"customer", Customer(c)},
                           {"subscription_id", sub}});
      }
    }
  }
  auto r = Post("/v1/billing/events", platform_, json(billing).dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  r = Post("/v1/billing/events", platform_, json(billing).dump());  // replayed: no effect
  ASSERT_EQ(r->status, 200) << r->body;

  // --- overview: the seed's shape and numbers.
  json o = GetJson("/api/v1/analytics/overview" + q, admin_);
  EXPECT_EQ(o["operations_total"], ops);
  EXPECT_NEAR(o["error_rate"].get<double>(), double(errors) / double(ops), 1e-12);
  EXPECT_NEAR(o["active_users"].get<double>(), double(users.size()), kHllError * users.size());
  EXPECT_EQ(o["active_subscriptions"], subs_total - cancelled);
  EXPECT_NEAR(o["revenue"].get<double>(), revenue / 100.0, 1e-9);
  EXPECT_EQ(o["revenue_minor"], revenue);
  ASSERT_EQ(o["connectors"].size(), 3u);
  for (const json& c : o["connectors"]) {
    const std::string id = c["id"];
    EXPECT_EQ(c["operations_total"], ops_by_connector[id]) << id;
    EXPECT_NEAR(c["error_rate"].get<double>(),
                double(errors_by_connector[id]) / double(ops_by_connector[id]), 1e-12);
    EXPECT_EQ(c["active_subscriptions"],
              kCustomers - 0 * 1 -
                  std::count_if(billing.begin(), billing.end(),
                                [&](const json& b) {
                                  return b["type"] == "subscription_cancelled" &&
                                         std::string(b["subscription_id"]).find(id) !=
                                             std::string::npos;
                                }))
        << id;
    EXPECT_TRUE(c.contains("name"));
  }
  int64_t series_sum = 0;
  for (const json& b : o["timeseries"]) {
    EXPECT_EQ(b["operations_total"], ops_by_day[b["bucket"]]) << b["bucket"];
    series_sum += b["operations_total"].get<int64_t>();
  }
  EXPECT_EQ(series_sum, ops);
  // Distinct accounts of each day (one sketch per platform day, counted as it is).
  for (const json& b : o["timeseries"]) {
    const double want = double(users_by_day[b["bucket"]].size());
    EXPECT_NEAR(b["unique_users"].get<double>(), want, kHllError * want) << b["bucket"];
  }

  // --- connectors and connectors/{id}
  json cl = GetJson("/api/v1/analytics/connectors" + q, admin_);
  ASSERT_EQ(cl["connectors"].size(), 3u);
  for (const json& c : cl["connectors"]) {
    const std::string id = c["id"];
    EXPECT_EQ(c["operations_total"], ops_by_connector[id]);
    EXPECT_EQ(c["error_count"], errors_by_connector[id]);
    EXPECT_NEAR(c["unique_users"].get<double>(), double(users_by_connector[id].size()),
                kHllError * users_by_connector[id].size());
    EXPECT_NEAR(c["avg_response_time_ms"].get<double>(), duration_sum[id] / ops_by_connector[id],
                1e-6);
    for (const json& op : c["operations"]) {
      EXPECT_EQ(op["operations_total"], ops_by_operation[id][op["operation"]]);
      EXPECT_FALSE(op.contains("p95_response_time_ms"));  // only in connectors/{id}
    }
  }
  json one =
      GetJson("/api/v1/analytics/connectors/crm-connector" + q + "&granularity=week", admin_);
  EXPECT_EQ(one["operations_total"], ops_by_connector["crm-connector"]);
  int64_t week_sum = 0;
  for (const json& b : one["timeseries"]) week_sum += b["operations_total"].get<int64_t>();
  EXPECT_EQ(week_sum, ops_by_connector["crm-connector"]);
  // Uniform durations 1..2000 ms: the true p95 is ~1900 ms; buckets keep it close.
  EXPECT_NEAR(one["p95_response_time_ms"].get<double>(), 1900.0, 0.15 * 1900.0);
  ASSERT_FALSE(one["operations"].empty());
  for (const json& op : one["operations"])
    EXPECT_NEAR(op["p95_response_time_ms"].get<double>(), 1900.0, 0.15 * 1900.0);

  // --- errors
  json er = GetJson("/api/v1/analytics/errors" + q, admin_);
  EXPECT_EQ(er["errors_total"], errors);
  for (const json& t : er["errors_by_type"])
    EXPECT_EQ(t["errors"], errors_by_type[t["error_type"]]);
  for (const json& c : er["errors_by_connector"])
    EXPECT_EQ(c["errors"], errors_by_connector[c["connector"]]);
  ASSERT_FALSE(er["most_frequent_errors"].empty());
  const std::string message = er["most_frequent_errors"][0]["last_message"];
  EXPECT_EQ(message.find("ivan@example.com"), std::string::npos) << message;
  EXPECT_EQ(message.find("999 123"), std::string::npos) << message;
  EXPECT_EQ(er["trend"]["previous_errors_total"], 0);

  // --- one customer's breakdowns (per-customer daily tables)
  json mine =
      GetJson("/api/v1/analytics/connectors/crm-connector" + q + "&customer=" + kOne, admin_);
  ASSERT_EQ(mine["operations"].size(), one_ops_by_operation.size()) << mine.dump();
  for (const json& op : mine["operations"])
    EXPECT_EQ(op["operations_total"], one_ops_by_operation[op["operation"]]) << op.dump();
  ASSERT_EQ(mine["errors_by_type"].size(), one_crm_errors_by_type.size()) << mine.dump();
  for (const json& t : mine["errors_by_type"])
    EXPECT_EQ(t["count"], one_crm_errors_by_type[t["error_type"]]) << t.dump();
  json my_errors = GetJson("/api/v1/analytics/errors" + q + "&customer=" + kOne, admin_);
  ASSERT_EQ(my_errors["errors_by_type"].size(), one_errors_by_type.size()) << my_errors.dump();
  for (const json& t : my_errors["errors_by_type"])
    EXPECT_EQ(t["errors"], one_errors_by_type[t["error_type"]]) << t.dump();
  EXPECT_FALSE(my_errors["most_frequent_errors"].empty());

  // --- users
  json us = GetJson("/api/v1/analytics/users" + q, admin_);
  ASSERT_EQ(us["active_users_series"].size(), users_by_day.size());
  for (const json& b : us["active_users_series"]) {
    const double want = double(users_by_day[b["bucket"]].size());
    EXPECT_NEAR(b["active_users"].get<double>(), want, kHllError * want) << b["bucket"];
  }
  EXPECT_EQ(us["new_users_total"], static_cast<int64_t>(users.size()));
  EXPECT_EQ(us["trial_conversion"]["trials_started"], trials);
  EXPECT_EQ(us["trial_conversion"]["converted"], converted);
  EXPECT_NEAR(us["churn"]["rate"].get<double>(), double(cancelled) / double(subs_total), 1e-12);
  // The activity distribution and the most active accounts (every account
  // has one customer here) of local days [d0, d1), expected from the events.
  // Besides the period above: one cut inside the data, and one of 150 days,
  // read from three two-month windows.
  auto expect_activity = [&](int64_t d0, int64_t d1) {
    SCOPED_TRACE(Day(d0) + " .. " + Day(d1));
    std::map<std::string, int64_t> by_account;
    for (const Event& e : events)
      if (e.ts + kMoscow >= d0 && e.ts + kMoscow < d1) ++by_account[e.account];
    std::map<std::string, int64_t> want_bins, got_bins;
    for (const auto& [account, account_ops] : by_account)
      ++want_bins[account_ops <= 1      ? "1"
                  : account_ops <= 10   ? "2-10"
                  : account_ops <= 100  ? "11-100"
                  : account_ops <= 1000 ? "101-1000"
                                        : ">1000"];
    std::vector<std::pair<int64_t, std::string>> want_top;
    for (const auto& [account, account_ops] : by_account)
      want_top.emplace_back(-account_ops, account);
    std::sort(want_top.begin(), want_top.end());
    want_top.resize(std::min<size_t>(want_top.size(), 10));
    json got = GetJson("/api/v1/analytics/users?from=" + Day(d0) + "&to=" + Day(d1), admin_);
    for (const json& b : got["activity_distribution"]) got_bins[b["operations"]] = b["accounts"];
    EXPECT_EQ(got_bins, want_bins);
    ASSERT_EQ(got["top_accounts"].size(), want_top.size());
    for (size_t i = 0; i < want_top.size(); ++i) {
      EXPECT_EQ(got["top_accounts"][i]["make_account_id"], want_top[i].second) << i;
      EXPECT_EQ(got["top_accounts"][i]["operations"], -want_top[i].first) << i;
    }
  };
  expect_activity(from_local, today_local);
  expect_activity(from_local + 7 * kDay, today_local - 2 * kDay);
  expect_activity(today_local - 150 * kDay, today_local);
  // With a connector filter the distribution counts exactly that connector's accounts.
  json us_crm = GetJson("/api/v1/analytics/users" + q + "&connector=crm-connector", admin_);
  int64_t crm_accounts = 0;
  for (const json& b : us_crm["activity_distribution"])
    crm_accounts += b["accounts"].get<int64_t>();
  EXPECT_EQ(crm_accounts, static_cast<int64_t>(users_by_connector["crm-connector"].size()));

  // --- financial
  json fi = GetJson("/api/v1/analytics/financial" + q, admin_);
  EXPECT_EQ(fi["revenue_minor"], revenue);
  for (const json& c : fi["revenue_by_connector"])
    EXPECT_EQ(c["revenue_minor"], revenue_by_connector[c["connector"]]);
  EXPECT_EQ(fi["failed_payments"]["count"], failed_total);
  for (const json& f : fi["failed_payments"]["by_reason"])
    EXPECT_EQ(f["count"], failed_by_reason[f["reason"]]);
  EXPECT_NEAR(fi["failed_payments"]["ratio"].get<double>(), double(failed_total) / payments_total,
              1e-12);
  EXPECT_NEAR(fi["arpu"].get<double>(), revenue / 100.0 / double(paying.size()), 1e-9);

  // --- the fan-out: an endpoint's queries run concurrently on pooled
  // connections sharing the request's snapshot; with a pool of one they all
  // run in the request's transaction. Both give the same answers.
  {
    // The pool of one also runs under another DateStyle: dates the product
    // reads back as text must not depend on it.
    ASSERT_EQ(db_->url.find("://"), std::string::npos) << "expects a key=value conninfo";
    const std::string sql_style = db_->url + " options='-c DateStyle=SQL,DMY'";
    PgPool pool_of_one(sql_style, 1), eight(db_->url, 8), audit(db_->url, 2);
    analytics::AccessControl access(audit, "test-pseudonym-key");
    const analytics::AnalyticsOptions opts{"Europe/Moscow", "RUB", 30, {}, {}, &SystemClock::Get()};
    auto inline_route = analytics::NewAnalyticsRoute(&pool_of_one, &access, opts);
    auto fanout_route = analytics::NewAnalyticsRoute(&eight, &access, opts);
    for (const char* ep :
         {"overview", "connectors", "connectors/crm-connector", "users", "financial", "errors"}) {
      http::Request req;
      req.method = "GET";
      req.path = std::string("/api/v1/analytics/") + ep;
      req.query = q.substr(1);
      req.headers["authorization"] = "Bearer " + admin_;
      req.remote_ip = "127.0.0.1";
      const http::Response a = inline_route->Handle(req), b = fanout_route->Handle(req);
      ASSERT_EQ(a.status, 200) << ep << " " << a.body;
      ASSERT_EQ(b.status, 200) << ep << " " << b.body;
      // Equal but for as_of (and freshness.as_of), which is each read's own
      // start while nothing waits for aggregation.
      json ja = json::parse(a.body), jb = json::parse(b.body);
      EXPECT_TRUE(ja.contains("as_of") && jb.contains("as_of")) << ep;
      ja.erase("as_of");
      jb.erase("as_of");
      // freshness.as_of is the read's time too (the replica work).
      ja["freshness"].erase("as_of");
      jb["freshness"].erase("as_of");
      EXPECT_EQ(ja, jb) << ep;
    }
  }

  // --- exports carry the same numbers as the JSON.
  auto csv = Get("/api/v1/analytics/overview" + q + "&format=csv", admin_);
  ASSERT_EQ(csv->status, 200);
  EXPECT_NE(csv->body.find("operations_total," + std::to_string(ops)), std::string::npos)
      << csv->body.substr(0, 400);
  auto pdf = Get("/api/v1/analytics/overview" + q + "&format=pdf", admin_);
  ASSERT_EQ(pdf->status, 200);
  const std::string pdf_path = data_dir_->File("overview.pdf");
  std::ofstream(pdf_path, std::ios::binary) << pdf->body;
  std::string text;
  ASSERT_EQ(RunCommand("pdftotext '" + pdf_path + "' -", &text), 0) << text;
  EXPECT_NE(text.find("Обзор"), std::string::npos);
  // The PDF groups thousands with thin spaces: compare digits only.
  std::string digits;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 3, "\xE2\x80\x89") == 0) {
      i += 2;
      continue;
    }
    if (text[i] != ' ') digits.push_back(text[i]);
  }
  EXPECT_NE(digits.find(std::to_string(ops)), std::string::npos);
  auto xlsx = Get("/api/v1/analytics/overview" + q + "&format=xlsx", admin_);
  ASSERT_EQ(xlsx->status, 200);
  const std::string xlsx_path = data_dir_->File("overview.xlsx");
  std::ofstream(xlsx_path, std::ios::binary) << xlsx->body;
  ASSERT_EQ(RunCommand("unzip -p '" + xlsx_path + "' 'xl/worksheets/*.xml'", &text), 0);
  EXPECT_NE(text.find("<v>" + std::to_string(ops) + "</v>"), std::string::npos);
}

struct RoleCase {
  const char* role;
  std::string endpoint;
  std::string reason;
  int status;
};

TEST_F(AnalyticsTest, RoleMatrixAndAudit) {
  const std::map<std::string, std::string> tokens = {
      {"admin", admin_}, {"manager", manager_}, {"support", support_}, {"user", user_}};
  const std::string own = Customer(3), other = Customer(4);
  const RoleCase cases[] = {
      {"admin", "/api/v1/analytics/overview", "", 200},
      {"admin", "/api/v1/analytics/connectors", "", 200},
      {"admin", "/api/v1/analytics/connectors/crm-connector", "", 200},
      {"admin", "/api/v1/analytics/users", "", 200},
      {"admin", "/api/v1/analytics/financial", "", 200},
      {"admin", "/api/v1/analytics/errors?customer=" + other, "", 200},
      {"admin", "/api/v1/audit", "", 200},
      {"manager", "/api/v1/analytics/overview", "", 200},
      {"manager", "/api/v1/analytics/connectors", "", 200},
      {"manager", "/api/v1/analytics/connectors/crm-connector", "", 200},
      {"manager", "/api/v1/analytics/users", "", 200},
      {"manager", "/api/v1/analytics/financial", "", 200},
      {"manager", "/api/v1/analytics/errors", "", 200},
      {"manager", "/api/v1/analytics/errors?customer=" + other, "", 403},
      {"manager", "/api/v1/audit", "", 403},
      {"support", "/api/v1/analytics/overview", "", 200},
      {"support", "/api/v1/analytics/errors?customer=" + other, "", 403},
      {"support", "/api/v1/analytics/errors?customer=" + other, "ticket 4711", 200},
      {"support", "/api/v1/analytics/connectors?customer=" + other, "ticket 4711", 200},
      {"support", "/api/v1/analytics/financial", "", 403},
      {"support", "/api/v1/analytics/users", "", 403},
      {"support", "/api/v1/audit", "", 403},
      {"user", "/api/v1/analytics/overview", "", 200},
      {"user", "/api/v1/analytics/connectors", "", 200},
      {"user", "/api/v1/analytics/errors?customer=" + own, "", 200},
      {"user", "/api/v1/analytics/errors?customer=" + other, "", 403},
      {"user", "/api/v1/analytics/financial", "", 200},
      {"user", "/api/v1/analytics/users", "", 200},
      {"user", "/api/v1/audit", "", 403},
  };
  pqxx::connection conn(db_->url);
  auto audit_rows = [&] {
    pqxx::work txn(conn);
    return txn.exec("SELECT count(*) FROM audit_log")[0][0].as<int64_t>();
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.role) + " " + c.endpoint + " reason=" + c.reason);
    const int64_t before = audit_rows();
    httplib::Headers h;
    if (!c.reason.empty()) h.emplace("X-Access-Reason", c.reason);
    auto r = Get(c.endpoint, tokens.at(c.role), h);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, c.status) << r->body;
    EXPECT_EQ(audit_rows(), before + 1);
    pqxx::work txn(conn);
    auto row = txn.exec(
        "SELECT role, allowed, status, endpoint, coalesce(reason, ''), ip "
        "FROM audit_log ORDER BY id DESC LIMIT 1")[0];
    EXPECT_EQ(row[0].as<std::string>(), c.role);
    EXPECT_EQ(row[1].as<bool>(), c.status == 200);
    EXPECT_EQ(row[2].as<int>(), c.status);
    EXPECT_EQ(c.endpoint.rfind(row[3].as<std::string>(), 0), 0u);
    EXPECT_EQ(row[4].as<std::string>(), c.reason);
    EXPECT_EQ(row[5].as<std::string>(), "127.0.0.1");
  }
  // No token: 401, audited as anonymous.
  httplib::Client anon("127.0.0.1", service_->port());
  const int64_t before = audit_rows();
  EXPECT_EQ(anon.Get("/api/v1/analytics/overview")->status, 401);
  EXPECT_EQ(audit_rows(), before + 1);

  // A user sees only their own customer's numbers; a manager sees pseudonyms.
  json mine = GetJson("/api/v1/analytics/users", user_);
  EXPECT_EQ(mine["customer"], own);
  for (const json& a : mine["top_accounts"]) EXPECT_EQ(a["customer"], own);
  json managed = GetJson("/api/v1/analytics/users", manager_);
  for (const json& a : managed["top_accounts"]) {
    EXPECT_EQ(std::string(a["customer"]).rfind("c_", 0), 0u) << a.dump();
    EXPECT_EQ(std::string(a["make_account_id"]).find("acc-"), std::string::npos) << a.dump();
  }
  // The answer cache (on by default) keys on the role's scope: an answer stored
  // for an administrator a moment ago is never served to a manager, nor the reverse.
  ASSERT_EQ(Post("/v1/connector/usage", keys_[Customer(0)], SeedBody())->status, 201);
  WaitAggregated();
  for (int round = 0; round < 2; ++round) {  // (a question not asked above: computed now)
    const json plain = GetJson("/api/v1/analytics/users?granularity=week", admin_);
    const json pseudonymised = GetJson("/api/v1/analytics/users?granularity=week", manager_);
    ASSERT_FALSE(plain["top_accounts"].empty()) << plain.dump();
    ASSERT_EQ(plain["top_accounts"].size(), pseudonymised["top_accounts"].size());
    for (size_t i = 0; i < plain["top_accounts"].size(); ++i) {
      const json& a = plain["top_accounts"][i];
      const json& p = pseudonymised["top_accounts"][i];
      EXPECT_EQ(keys_.count(a["customer"]), 1u) << a.dump();
      EXPECT_EQ(std::string(p["customer"]).rfind("c_", 0), 0u) << p.dump();
      EXPECT_NE(a["make_account_id"], p["make_account_id"]);
    }
  }
  // Bad parameters name the parameter.
  auto bad = Get("/api/v1/analytics/errors?granularity=minute", admin_);
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("\"field\":\"granularity\""), std::string::npos);
}

// Reads never write (docs/ANALYTICS.md): an analytics request neither waits for
// nor runs the aggregation. With the rollup's lock on connector_usage held by
// another session (as a step holds it), every endpoint still answers at once;
// before, each GET ran Rollup::CatchUp and queued behind that lock.
TEST_F(AnalyticsTest, ReadsDoNotQueueBehindTheAggregationLock) {
  WaitAggregated();
  pqxx::connection locker(db_->url);
  pqxx::work hold(locker);
  hold.exec("LOCK TABLE connector_usage IN EXCLUSIVE MODE");
  httplib::Client c("127.0.0.1", service_->port());
  c.set_read_timeout(30);
  for (const char* ep : {"overview", "connectors", "users", "errors"}) {
    const auto started = std::chrono::steady_clock::now();
    auto r = c.Get((std::string("/api/v1/analytics/") + ep).c_str(),
                   {{"Authorization", "Bearer " + admin_}});
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count();
    ASSERT_TRUE(r) << ep;
    EXPECT_EQ(r->status, 200) << ep << " " << r->body;
    EXPECT_LT(ms, 3000) << ep << " waited for the aggregation lock";
  }
  hold.abort();
}

// An answer is as of the watermark and says so: with the aggregation off, a new
// event is not counted, as_of is that event's arrival, and the read moved no
// watermark.
TEST_F(AnalyticsTest, AnswersAreAsOfTheWatermark) {
  TestDatabase db(SharedCluster());
  std::string admin;
  {
    pqxx::connection conn(db.url);
    admin = *identity::CreateUser(conn, "ada", Role::kAdmin, "");
  }
  const TempDir dir("bpmc-asof");
  Config config;
  config.listen = "127.0.0.1:0";
  config.database_url = db.url;
  config.data_dir = dir.path();
  config.rollup_enabled = false;
  config.analytics_cache_ms = 0;  // every read fresh (the next test has the cache on)
  std::string error;
  auto service = Service::Start(config, SystemClock::Get(), &error);
  ASSERT_NE(service, nullptr) << error;
  httplib::Client c("127.0.0.1", service->port());
  auto json_of = [&](const std::string& path) {
    auto r = c.Get(path.c_str(), {{"Authorization", "Bearer " + admin}});
    EXPECT_TRUE(r && r->status == 200) << path << " " << (r ? r->body : "no answer");
    return r ? json::parse(r->body) : json();
  };
  const json empty = json_of("/api/v1/analytics/overview");
  ASSERT_TRUE(empty.contains("as_of")) << empty.dump();
  // Nothing waits for aggregation: as_of is the read's own start.
  const int64_t before = SystemClock::Get().NowMicros();
  EXPECT_NEAR(static_cast<double>(*ParseRfc3339Micros(empty["as_of"].get<std::string>())),
              static_cast<double>(before), 5e6);

  auto posted = c.Post("/v1/connector/usage", Bearer(db.api_key), SeedBody(), "application/json");
  ASSERT_TRUE(posted && posted->status == 201);
  const std::string created_at = [&] {
    pqxx::connection conn(db.url);
    pqxx::work txn(conn);
    return txn
        .exec(
            "SELECT to_char(created_at AT TIME ZONE 'UTC', "
            "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM connector_usage")[0][0]
        .as<std::string>();
  }();
  const json later = json_of("/api/v1/analytics/overview");
  EXPECT_EQ(later["as_of"], created_at) << later.dump();
  EXPECT_EQ(later["operations_total"], 0) << later.dump();
  EXPECT_EQ(db.Scalar("SELECT last_seq FROM rollup_state WHERE name = 'usage'"), 0)
      << "a read aggregated";
  auto csv = c.Get("/api/v1/analytics/overview?format=csv", {{"Authorization", "Bearer " + admin}});
  ASSERT_TRUE(csv && csv->status == 200);
  EXPECT_NE(csv->body.find("data as of " + created_at), std::string::npos)
      << csv->body.substr(0, 300);
  service->Shutdown();
}

// The answer cache (docs/ANALYTICS.md "Answer cache"): within
// analytics_cache_ms the same question gets the stored answer, which keeps the
// as_of of its own read (still true: nothing received before it is missing);
// after that a new read states the new watermark. Every request is audited.
TEST_F(AnalyticsTest, CachedAnswersKeepTheirOwnAsOf) {
  TestDatabase db(SharedCluster());
  std::string admin;
  {
    pqxx::connection conn(db.url);
    admin = *identity::CreateUser(conn, "ada", Role::kAdmin, "");
  }
  const TempDir dir("bpmc-cache");
  Config config;
  config.listen = "127.0.0.1:0";
  config.database_url = db.url;
  config.data_dir = dir.path();
  config.rollup_enabled = false;
  config.analytics_cache_ms = 3000;
  std::string error;
  auto service = Service::Start(config, SystemClock::Get(), &error);
  ASSERT_NE(service, nullptr) << error;
  httplib::Client c("127.0.0.1", service->port());
  auto json_of = [&](const std::string& path) {
    auto r = c.Get(path.c_str(), {{"Authorization", "Bearer " + admin}});
    EXPECT_TRUE(r && r->status == 200) << path << " " << (r ? r->body : "no answer");
    return r ? json::parse(r->body) : json();
  };
  const auto started = std::chrono::steady_clock::now();
  const json first = json_of("/api/v1/analytics/overview");
  auto posted = c.Post("/v1/connector/usage", Bearer(db.api_key), SeedBody(), "application/json");
  ASSERT_TRUE(posted && posted->status == 201);
  const json second = json_of("/api/v1/analytics/overview");
  ASSERT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(2500))
      << "too slow to see the cache";
  EXPECT_EQ(second, first) << "the stored answer, as of its own read";
  // Cache-Control: no-cache asks for an answer computed now.
  auto no_cache = c.Get("/api/v1/analytics/overview",
                        {{"Authorization", "Bearer " + admin}, {"Cache-Control", "no-cache"}});
  ASSERT_TRUE(no_cache && no_cache->status == 200);
  EXPECT_LT(first["as_of"].get<std::string>(),
            json::parse(no_cache->body)["as_of"].get<std::string>());
  // Another question is computed now: its as_of is the new event's arrival.
  const json other = json_of("/api/v1/analytics/overview?granularity=hour");
  EXPECT_LT(first["as_of"].get<std::string>(), other["as_of"].get<std::string>());
  std::this_thread::sleep_for(std::chrono::milliseconds(3100));
  const json third = json_of("/api/v1/analytics/overview");
  EXPECT_EQ(third["as_of"], other["as_of"]) << third.dump();
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM audit_log WHERE endpoint LIKE '/api/v1/analytics/%'"),
            5)
      << "every answer, stored or not, is audited";
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("bpmc_exporter_analytics_cache_total{result=\"hit\"} 1"),
            std::string::npos);
  EXPECT_NE(metrics->body.find("bpmc_exporter_analytics_cache_total{result=\"miss\"} 3"),
            std::string::npos);
  EXPECT_NE(metrics->body.find("bpmc_exporter_analytics_cache_total{result=\"bypass\"} 1"),
            std::string::npos);
  service->Shutdown();
}

}  // namespace
}  // namespace bpmc::testing
