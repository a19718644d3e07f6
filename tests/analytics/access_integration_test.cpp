// Access control against a real PostgreSQL: `user add` through the binary,
// token authentication and disabling, the audit route for each role, audit
// rows for allowed and denied requests, the support reason rule, and 503
// when the audit row cannot be written.
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>
#include <stdlib.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "analytics/access.h"
#include "analytics/analytics.h"
#include "common/ids.h"
#include "common/pg_pool.h"
#include "common/testing/fake_clock.h"
#include "common/testing/temp_dir.h"
#include "exporter/service.h"
#include "ingestion/ingest_metrics.h"
#include "testing/exporter_harness.h"
#include "testing/process.h"

namespace bpmc::testing {
namespace {

using analytics::AccessControl;
using analytics::DataKind;
using analytics::Role;
using exporter::Config;
using exporter::Service;
using http::Request;
using nlohmann::json;

struct CliRun {
  int code;
  std::string out, err;
  // The last non-empty line of stdout.
  std::string LastLine() const {
    std::string s = out;
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s.substr(s.rfind('\n') == std::string::npos ? 0 : s.rfind('\n') + 1);
  }
};

CliRun Exporter(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {BinPath("bpmc-exporter")};
  argv.insert(argv.end(), args.begin(), args.end());
  Process p(argv);
  const int code = p.Wait(std::chrono::seconds(30));
  return {code, p.Stdout(), p.Stderr()};
}

class AccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<TestDatabase>(SharedCluster());
    pqxx::connection conn(db_->url);
    admin_ = *identity::CreateUser(conn, "ada", Role::kAdmin, "");
    manager_ = *identity::CreateUser(conn, "meg", Role::kManager, "");
    support_ = *identity::CreateUser(conn, "sam", Role::kSupport, "");
    user_ = *identity::CreateUser(conn, "ann", Role::kUser, "acme");
  }
  void TearDown() override {
    if (service_) service_->Shutdown();
    service_.reset();
  }

  void StartService(const std::string& pseudonym_key = "test-pseudonym-key-0123456789",
                    const std::function<void(Config&)>& adjust = nullptr) {
    Config config;
    config.listen = "127.0.0.1:0";
    config.database_url = db_->url;
    config.data_dir = data_dir_.path();
    config.http_threads = 8;
    config.pseudonym_key = pseudonym_key;
    if (adjust) adjust(config);
    std::string error;
    service_ = Service::Start(config, SystemClock::Get(), &error);
    ASSERT_TRUE(service_) << error;
    client_ = std::make_unique<httplib::Client>("127.0.0.1", service_->port());
  }

  httplib::Result Get(const std::string& path, const std::string& token,
                      httplib::Headers headers = {}) {
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    return client_->Get(path.c_str(), headers);
  }

  // Every audit row, oldest first, straight from the table.
  json AuditRows() {
    pqxx::connection conn(db_->url);
    pqxx::work txn(conn);
    json rows = json::array();
    for (const auto& r : txn.exec(
             "SELECT coalesce(user_name, ''), coalesce(role, ''), method, endpoint, params::text, "
             "coalesce(ip, ''), coalesce(reason, ''), allowed, status, coalesce(denial, '') "
             "FROM audit_log ORDER BY id")) {
      rows.push_back({{"user", r[0].c_str()},
                      {"role", r[1].c_str()},
                      {"method", r[2].c_str()},
                      {"endpoint", r[3].c_str()},
                      {"params", json::parse(r[4].c_str())},
                      {"ip", r[5].c_str()},
                      {"reason", r[6].c_str()},
                      {"allowed", r[7].as<bool>()},
                      {"status", r[8].as<int>()},
                      {"denial", r[9].c_str()}});
    }
    return rows;
  }

  std::string Metrics() {
    auto r = client_->Get("/metrics");
    return r ? r->body : "";
  }

  std::unique_ptr<TestDatabase> db_;
  TempDir data_dir_{"bpmc-access"};
  std::unique_ptr<Service> service_;
  std::unique_ptr<httplib::Client> client_;
  std::string admin_, manager_, support_, user_;
};

TEST_F(AccessTest, UserAddCommand) {
  const std::string& url = db_->url;
  CliRun r = Exporter({"user", "add", "--database-url", url, "alice", "--role", "admin"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string token = r.LastLine();
  EXPECT_TRUE(std::regex_match(token, std::regex("bpmcu_[A-Za-z0-9_-]{43}"))) << r.out;
  {
    pqxx::connection conn(url);
    pqxx::work txn(conn);
    // Only a SHA-256 is stored: no column holds the token.
    auto row = txn.exec_params(
        "SELECT role, customer_id IS NULL, token_hash = sha256($1::text::bytea), disabled_at IS "
        "NULL "
        "FROM users WHERE name = 'alice'",
        token);
    ASSERT_EQ(row.size(), 1u);
    EXPECT_EQ(row[0][0].as<std::string>(), "admin");
    EXPECT_TRUE(row[0][1].as<bool>());
    EXPECT_TRUE(row[0][2].as<bool>());
    EXPECT_TRUE(row[0][3].as<bool>());
    EXPECT_EQ(txn.exec_params("SELECT count(*) FROM users WHERE position(convert_to($1, 'UTF8') "
                              "IN token_hash) > 0",
                              token)[0][0]
                  .as<int>(),
              0);
  }

  r = Exporter(
      {"user", "add", "--database-url", url, "ann2", "--role", "user", "--customer", "acme"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM users WHERE name = 'ann2' AND role = 'user' AND "
                        "customer_id = 'acme'"),
            1);

  // Usage errors: exit 2 naming the flag; nothing stored.
  struct Bad {
    std::vector<std::string> args;
    const char* names;
  };
  const Bad bad[] = {
      {{"user", "add", "--database-url", url, "bob", "--role", "user"}, "--customer"},
      {{"user", "add", "--database-url", url, "bob", "--role", "user", "--customer="},
       "--customer"},
      {{"user", "add", "--database-url", url, "bob", "--role", "root"}, "--role"},
      {{"user", "add", "--database-url", url, "bob", "--role", "Admin"}, "--role"},
      {{"user", "add", "--database-url", url, "bob"}, "--role"},
      {{"user", "add", "--database-url", url, "bob", "--role", "manager", "--customer", "acme"},
       "--customer"},
      {{"user", "add", "--database-url", url, "--role", "admin"}, "user add"},
      {{"user", "add", "--database-url", url, std::string(101, 'x'), "--role", "admin"},
       "user add"},
      {{"user", "--database-url", url}, "user"},
      {{"connector", "add", "--database-url", url, "x", "X", "--role", "admin"}, "--role"},
  };
  for (const Bad& b : bad) {
    CliRun br = Exporter(b.args);
    EXPECT_EQ(br.code, 2) << b.names << ": " << br.err;
    EXPECT_NE(br.err.find(b.names), std::string::npos) << br.err;
  }
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM users WHERE name = 'bob'"), 0);

  // A taken name: exit 1, the first token still works.
  r = Exporter({"user", "add", "--database-url", url, "alice", "--role", "manager"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("already exists"), std::string::npos) << r.err;

  // The token works on the API...
  StartService();
  auto g = Get("/api/v1/audit", token);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->status, 200) << g->body;
  // ...until the user is disabled: refused within 2 s.
  r = Exporter({"user", "disable", "--database-url", url, "alice"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto disabled_at = std::chrono::steady_clock::now();
  EXPECT_TRUE(WaitFor(
      [&] {
        auto x = Get("/api/v1/audit", token);
        return x && x->status == 401;
      },
      std::chrono::seconds(3)));
  EXPECT_LE(std::chrono::steady_clock::now() - disabled_at, std::chrono::milliseconds(2000));
  EXPECT_EQ(Exporter({"user", "disable", "--database-url", url, "alice"}).code, 1);
}

TEST_F(AccessTest, AuthenticateAndDisable) {
  PgPool pool(db_->url, 2);
  AccessControl access(pool, "k");
  auto p = access.Authenticate(user_);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->name, "ann");
  EXPECT_EQ(p->role, Role::kUser);
  EXPECT_EQ(p->customer_id, "acme");
  EXPECT_EQ(p->user_id.size(), 36u);
  auto a = access.Authenticate(admin_);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->role, Role::kAdmin);
  EXPECT_EQ(a->customer_id, "");

  EXPECT_FALSE(access.Authenticate(""));
  EXPECT_FALSE(access.Authenticate("bpmcu_" + std::string(43, 'A')));
  EXPECT_FALSE(access.Authenticate(db_->api_key));  // an ingestion key is not a user token
  EXPECT_FALSE(access.Authenticate(admin_ + "x"));

  pqxx::connection conn(db_->url);
  ASSERT_TRUE(identity::DisableUser(conn, "ann"));
  EXPECT_FALSE(identity::DisableUser(conn, "ann"));
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] { return !access.Authenticate(user_); }, std::chrono::seconds(3)));
  EXPECT_LE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2000));
  EXPECT_TRUE(access.Authenticate(admin_));
}

TEST_F(AccessTest, AuditRouteByRoleAndItsRecords) {
  StartService();
  struct Call {
    std::string token;
    int status;
  };
  const Call calls[] = {
      {admin_, 200}, {manager_, 403}, {support_, 403}, {user_, 403}, {"", 401}, {"bpmcu_nope", 401},
  };
  for (const Call& c : calls) {
    auto r = Get("/api/v1/audit?limit=5", c.token, {{"X-Access-Reason", "ticket 42"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, c.status) << c.token << " " << r->body;
    if (c.status == 401) {
      EXPECT_TRUE(r->has_header("WWW-Authenticate"));
    }
    if (c.status != 200) {
      EXPECT_TRUE(json::parse(r->body).contains("error")) << r->body;
    }
  }
  const json rows = AuditRows();
  ASSERT_EQ(rows.size(), 6u) << rows.dump();
  const char* names[] = {"ada", "meg", "sam", "ann", "", ""};
  const char* roles[] = {"admin", "manager", "support", "user", "", ""};
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(rows[i]["user"], names[i]);
    EXPECT_EQ(rows[i]["role"], roles[i]);
    EXPECT_EQ(rows[i]["status"], calls[i].status);
    EXPECT_EQ(rows[i]["allowed"], calls[i].status == 200);
    EXPECT_EQ(rows[i]["method"], "GET");
    EXPECT_EQ(rows[i]["endpoint"], "/api/v1/audit");
    EXPECT_EQ(rows[i]["params"], json({{"limit", "5"}}));
    EXPECT_EQ(rows[i]["ip"], "127.0.0.1");
    EXPECT_EQ(rows[i]["reason"], "ticket 42");
    EXPECT_EQ(rows[i]["denial"] == "", calls[i].status == 200) << rows[i].dump();
  }

  // The admin reads them back through the API, newest first, filtered.
  auto r = Get("/api/v1/audit", admin_);
  ASSERT_EQ(r->status, 200) << r->body;
  json body = json::parse(r->body);
  ASSERT_EQ(body["records"].size(), 6u);  // this request is audited after it is answered
  EXPECT_EQ(body["records"][0]["user"], nullptr);
  EXPECT_EQ(body["records"][0]["status"], 401);
  EXPECT_EQ(body["records"][5]["user"], "ada");
  EXPECT_EQ(body["records"][5]["allowed"], true);
  EXPECT_EQ(body["records"][4]["user"], "meg");
  EXPECT_EQ(body["records"][4]["allowed"], false);
  EXPECT_EQ(body["records"][4]["denial"], "the audit log is for admins only");
  EXPECT_EQ(body["records"][4]["params"], json({{"limit", "5"}}));
  EXPECT_TRUE(std::regex_match(body["records"][4]["at"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)")));
  for (const auto& rec : body["records"]) {
    for (const char* key : {"id", "at", "user_id", "user", "role", "method", "endpoint", "params",
                            "ip", "reason", "allowed", "status", "denial"})
      EXPECT_TRUE(rec.contains(key)) << key;
  }

  r = Get("/api/v1/audit?user=meg", admin_);
  body = json::parse(r->body);
  ASSERT_EQ(body["records"].size(), 1u);
  EXPECT_EQ(body["records"][0]["role"], "manager");
  r = Get("/api/v1/audit?limit=2", admin_);
  EXPECT_EQ(json::parse(r->body)["records"].size(), 2u);
  r = Get("/api/v1/audit?from=2999-01-01T00:00:00Z", admin_);
  EXPECT_EQ(json::parse(r->body)["records"].size(), 0u);
  r = Get("/api/v1/audit?to=2000-01-01T00:00:00Z", admin_);
  EXPECT_EQ(json::parse(r->body)["records"].size(), 0u);

  // Bad parameters name themselves, and are audited too.
  for (const std::string q :
       {"limit=0", "limit=1001", "limit=x", "from=yesterday", "to=1", "user="}) {
    r = Get("/api/v1/audit?" + q, admin_);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << q;
    EXPECT_EQ(json::parse(r->body)["field"], q.substr(0, q.find('='))) << r->body;
  }
  auto post = client_->Post("/api/v1/audit", {{"Authorization", "Bearer " + admin_}}, "{}",
                            "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  // An unknown analytics endpoint (404) is audited too.
  auto missing = Get("/api/v1/analytics/nope", admin_);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  const json all = AuditRows();
  EXPECT_EQ(all.back()["status"], 404);
  EXPECT_EQ(all.back()["endpoint"], "/api/v1/analytics/nope");
  EXPECT_EQ(all[all.size() - 2]["status"], 405);
  EXPECT_EQ(all[all.size() - 3]["status"], 400);

  const std::string m = Metrics();
  EXPECT_GE(
      MetricValue(m, R"(bpmc_exporter_analytics_access_total{result="denied",role="manager"})"), 1)
      << m;
  EXPECT_GE(
      MetricValue(m, R"(bpmc_exporter_analytics_access_total{result="allowed",role="admin"})"), 1);
  EXPECT_GE(
      MetricValue(
          m, R"(bpmc_exporter_analytics_access_total{result="unauthenticated",role="anonymous"})"),
      2);
}

// ?endpoint= : an exact path, or a prefix ending in `*`; `%`, `_` and `\` are
// plain characters, not patterns.
TEST_F(AccessTest, AuditRouteFiltersByEndpoint) {
  StartService();
  {
    pqxx::connection conn(db_->url);
    pqxx::work txn(conn);
    for (const char* e :
         {"/api/v1/analytics/connectors", "/api/v1/analytics/errors", "/api/v1/analyticsX",
          "/api/v1/a_c%d", "/api/v1/abc%d", "/api/v1/abcxd", "/api/v1/a\\b", "/api/v1/a*b"})
      txn.exec_params(
          "INSERT INTO audit_log (user_name, role, method, endpoint, params, allowed, status)"
          " VALUES ('ada', 'admin', 'GET', $1, '{}', true, 200)",
          std::string(e));
    txn.commit();
  }
  auto endpoints = [&](const std::string& query) {
    auto r = Get("/api/v1/audit?limit=1000&" + query, admin_);
    std::set<std::string> out;
    EXPECT_TRUE(r);
    if (!r) return out;
    EXPECT_EQ(r->status, 200) << r->body;
    const json body = json::parse(r->body);
    for (const auto& rec : body["records"]) out.insert(rec["endpoint"]);
    return out;
  };
  using Set = std::set<std::string>;
  EXPECT_EQ(endpoints("endpoint=/api/v1/analytics/*"),
            (Set{"/api/v1/analytics/connectors", "/api/v1/analytics/errors"}));
  EXPECT_EQ(endpoints("endpoint=/api/v1/analytics/errors"), (Set{"/api/v1/analytics/errors"}));
  EXPECT_EQ(endpoints("endpoint=/api/v1/analytics"), Set{}) << "exact without a star";
  EXPECT_EQ(
      endpoints("endpoint=/api/v1/analytics*"),
      (Set{"/api/v1/analytics/connectors", "/api/v1/analytics/errors", "/api/v1/analyticsX"}));
  EXPECT_EQ(endpoints("endpoint=/api/v1/a_c%25d"), (Set{"/api/v1/a_c%d"}));
  EXPECT_EQ(endpoints("endpoint=/api/v1/a_*"), (Set{"/api/v1/a_c%d"}));
  EXPECT_EQ(endpoints("endpoint=/api/v1/abc%25*"), (Set{"/api/v1/abc%d"}));
  EXPECT_EQ(endpoints("endpoint=/api/v1/a%5C*"), (Set{"/api/v1/a\\b"}));
  EXPECT_EQ(endpoints("endpoint=/api/v1/a*b"), (Set{"/api/v1/a*b"})) << "an inner star is plain";
  // The audit route's own reads are rows too.
  EXPECT_EQ(endpoints("endpoint=/api/v1/audit"), (Set{"/api/v1/audit"}));
  EXPECT_EQ(endpoints("endpoint=/api/v1/audit&user=meg"), Set{});

  for (const std::string& q :
       {std::string("endpoint="), std::string("endpoint"), "endpoint=/" + std::string(256, 'x'),
        "endpoint=/" + std::string(10000, 'x')}) {
    auto r = Get("/api/v1/audit?" + q, admin_);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << q;
    EXPECT_EQ(json::parse(r->body)["field"], "endpoint") << r->body;
  }
  EXPECT_EQ(Get("/api/v1/audit?endpoint=/" + std::string(255, 'x'), admin_)->status, 200);
  // The refused reads are audited with their parameter.
  const json all = AuditRows();
  EXPECT_EQ(all.back()["params"]["endpoint"], "/" + std::string(255, 'x'));
  EXPECT_EQ(all[all.size() - 2]["status"], 400);
}

TEST_F(AccessTest, HostileInputIsStillAudited) {
  StartService();
  // NUL and invalid UTF-8 in parameters and the reason cannot break the insert.
  auto r = Get("/api/v1/audit?x=%00%ff%fe&%c3=1&limit=3", admin_,
               {{"X-Access-Reason", std::string("bad \xff\xfe utf8")}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  r = Get("/api/v1/audit?x=%00", "", {{"X-Access-Reason", std::string(5000, 'r')}});
  EXPECT_EQ(r->status, 401);
  const json rows = AuditRows();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["params"]["x"], "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(rows[0]["params"]["limit"], "3");
  EXPECT_EQ(rows[0]["reason"], "bad \xef\xbf\xbd\xef\xbf\xbd utf8");
  // A refusal's record is compact: the reason cut to 256 bytes.
  EXPECT_EQ(rows[1]["reason"].get<std::string>().size(), 256u);

  // An anonymous request with many long parameters (2,000 of those made
  // audit_log grow by 32 MB, ~16 KB a row): at most 8 parameters, a long
  // value kept only as its hash and length.
  std::string q = "/api/v1/audit?a=" + std::string(10000, 'v');
  for (int i = 0; i < 20; ++i) q += "&p" + std::to_string(i) + "=" + std::string(100, 'x');
  EXPECT_EQ(Get(q, "")->status, 401);
  const json compact = AuditRows().back();
  EXPECT_EQ(compact["params"].size(), 8u) << compact.dump().substr(0, 300);
  EXPECT_EQ(compact["params"]["a"].get<std::string>().rfind("sha256:", 0), 0u);
  EXPECT_NE(compact["params"]["a"].get<std::string>().find("(10000 bytes)"), std::string::npos);
  EXPECT_LT(compact.dump().size(), 2048u);
}

TEST_F(AccessTest, AdmitAppliesPolicyReasonAndPseudonymKey) {
  PgPool pool(db_->url, 2);
  AccessControl access(pool, "k");
  auto request = [](const std::string& token, const std::string& reason) {
    http::Request req;
    req.method = "GET";
    req.path = "/api/v1/analytics/errors";
    req.query = "customer=acme&from=2026-11-01";
    req.remote_ip = "10.1.2.3";
    req.headers["authorization"] = "Bearer " + token;
    if (!reason.empty()) req.headers["x-access-reason"] = reason;
    return req;
  };

  // Support without a reason: 403 naming the header, audited.
  auto adm = access.Admit(request(support_, "  "), DataKind::kCustomerUsage, "acme");
  EXPECT_FALSE(adm.admitted);
  EXPECT_EQ(adm.response.status, 403);
  EXPECT_EQ(json::parse(adm.response.body)["field"], "X-Access-Reason");
  // With a reason: admitted with ids in clear; audited by Finish with the final status.
  adm =
      access.Admit(request(support_, "ticket #881: sync fails"), DataKind::kCustomerUsage, "acme");
  ASSERT_TRUE(adm.admitted);
  EXPECT_FALSE(adm.decision.pseudonymise_ids);
  EXPECT_EQ(adm.principal.name, "sam");
  http::Response ok;
  ok.body = "{}";
  EXPECT_EQ(access.Finish(adm, ok).status, 200);
  // A user naming another customer; the same user on their own data.
  adm = access.Admit(request(user_, ""), DataKind::kCustomerUsage, "globex");
  EXPECT_EQ(adm.response.status, 403);
  EXPECT_EQ(json::parse(adm.response.body)["field"], "customer");
  adm = access.Admit(request(user_, ""), DataKind::kAggregate, "");
  ASSERT_TRUE(adm.admitted);
  EXPECT_EQ(adm.decision.forced_customer, "acme");
  http::Response bad;
  bad.status = 400;
  EXPECT_EQ(access.Finish(adm, bad).status, 400);

  // A manager needs the pseudonym key.
  AccessControl keyless(pool, "");
  adm = keyless.Admit(request(manager_, ""), DataKind::kAggregate, "");
  EXPECT_FALSE(adm.admitted);
  EXPECT_EQ(adm.response.status, 503);
  EXPECT_NE(adm.response.body.find("BPMC_PSEUDONYM_KEY"), std::string::npos);
  adm = access.Admit(request(manager_, ""), DataKind::kAggregate, "");
  EXPECT_TRUE(adm.admitted);
  EXPECT_TRUE(adm.decision.pseudonymise_ids);
  // Finish on a refused admission just returns its response.
  adm = access.Admit(request(manager_, ""), DataKind::kAudit, "");
  EXPECT_EQ(access.Finish(adm, ok).status, 403);

  const json rows = AuditRows();
  ASSERT_EQ(rows.size(), 6u) << rows.dump(1);  // the admitted, never finished request has none
  EXPECT_EQ(rows[0]["user"], "sam");
  EXPECT_EQ(rows[0]["allowed"], false);
  EXPECT_EQ(rows[0]["status"], 403);
  EXPECT_EQ(rows[0]["denial"], analytics::kReasonRequired);
  EXPECT_EQ(rows[0]["reason"], "");
  EXPECT_EQ(rows[1]["allowed"], true);
  EXPECT_EQ(rows[1]["status"], 200);
  EXPECT_EQ(rows[1]["reason"], "ticket #881: sync fails");
  EXPECT_EQ(rows[1]["ip"], "10.1.2.3");
  EXPECT_EQ(rows[1]["endpoint"], "/api/v1/analytics/errors");
  EXPECT_EQ(rows[1]["params"], json({{"customer", "acme"}, {"from", "2026-11-01"}}));
  EXPECT_EQ(rows[2]["user"], "ann");
  EXPECT_EQ(rows[2]["status"], 403);
  EXPECT_EQ(rows[3]["status"], 400);
  EXPECT_EQ(rows[3]["allowed"], true);
  EXPECT_EQ(rows[4]["user"], "meg");
  EXPECT_EQ(rows[4]["status"], 503);
  EXPECT_EQ(rows[4]["allowed"], false);
  EXPECT_EQ(rows[5]["user"], "meg");
  EXPECT_EQ(rows[5]["status"], 403);
  EXPECT_EQ(rows[5]["denial"], "the audit log is for admins only");
  // A download link cannot send the header: the `reason` parameter counts the same
  // (the header wins when both are sent), and is recorded as the reason.
  http::Request link = request(support_, "");
  link.query += "&format=csv&reason=ticket%20%23882";
  EXPECT_EQ(analytics::AccessReason(link), "ticket #882");
  adm = access.Admit(link, DataKind::kCustomerUsage, "acme");
  ASSERT_TRUE(adm.admitted);
  EXPECT_EQ(adm.record.reason, "ticket #882");
  link.headers["x-access-reason"] = "ticket #883";
  EXPECT_EQ(analytics::AccessReason(link), "ticket #883");
  link = request(support_, "");
  link.query += "&reason=%20%20";
  EXPECT_FALSE(access.Admit(link, DataKind::kCustomerUsage, "acme").admitted);
}

TEST_F(AccessTest, NoDataWithoutAnAuditRecord) {
  StartService();
  ASSERT_EQ(Get("/api/v1/audit", admin_)->status, 200);
  {
    pqxx::connection conn(db_->url);
    pqxx::work txn(conn);
    txn.exec("ALTER TABLE audit_log RENAME TO audit_log_away");
    txn.commit();
  }
  auto r = Get("/api/v1/audit", admin_);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << r->body;
  EXPECT_EQ(r->get_header_value("Retry-After"), "5");
  EXPECT_EQ(r->body.find("records"), std::string::npos);
  // A refusal stays a refusal; the lost record is counted.
  EXPECT_EQ(Get("/api/v1/audit", manager_)->status, 403);
  const std::string m = Metrics();
  EXPECT_GE(MetricValue(m, R"(bpmc_exporter_failures_total{reason="audit_write"})"), 2) << m;
  {
    pqxx::connection conn(db_->url);
    pqxx::work txn(conn);
    txn.exec("ALTER TABLE audit_log_away RENAME TO audit_log");
    txn.commit();
  }
  EXPECT_EQ(Get("/api/v1/audit", admin_)->status, 200);
}

TEST_F(AccessTest, AuditLogIsAppendOnly) {
  PgPool pool(db_->url, 1);
  AccessControl access(pool, "k");
  analytics::AuditRecord recv;
  recv.method = "GET";
  recv.endpoint = "/x";
  recv.status = 401;
  ASSERT_TRUE(access.Audit(recv));
  pqxx::connection conn(db_->url);
  for (const char* sql :
       {"UPDATE audit_log SET status = 200", "DELETE FROM audit_log", "TRUNCATE audit_log"}) {
    pqxx::work txn(conn);
    EXPECT_THROW(txn.exec(sql), pqxx::sql_error) << sql;
  }
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM audit_log WHERE status = 401"), 1);
}

// audit_retention_days: PruneAuditLog deletes only rows older than the
// retention it declares; without it, or for newer rows, DELETE still fails.
TEST_F(AccessTest, AuditRetentionPrunesOnlyOldRows) {
  pqxx::connection conn(db_->url);
  {
    pqxx::work txn(conn);
    txn.exec(
        "INSERT INTO audit_log (at, endpoint, params, allowed, status) VALUES "
        "(now() - interval '40 days', '/old', '{}', false, 401), "
        "(now() - interval '20 days', '/recent', '{}', false, 401)");
    txn.commit();
  }
  EXPECT_EQ(analytics::PruneAuditLog(conn, 30), 1);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM audit_log WHERE endpoint = '/old'"), 0);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM audit_log WHERE endpoint = '/recent'"), 1);
  // Declaring a retention does not let a newer row go, nor an UPDATE through.
  for (const char* sql : {"DELETE FROM audit_log WHERE endpoint = '/recent'",
                          "UPDATE audit_log SET status = 200 WHERE endpoint = '/recent'"}) {
    pqxx::work txn(conn);
    txn.exec("SELECT set_config('bpmc.audit_retention_days', '30', true)");
    EXPECT_THROW(txn.exec(sql), pqxx::sql_error) << sql;
  }
  EXPECT_EQ(analytics::PruneAuditLog(conn, 10), 1);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM audit_log WHERE endpoint = '/recent'"), 0);
}

// Pseudonymised views show no error message: the free text names the Make account
// and the customer in clear (docs/ANALYTICS.md, "Error messages").
TEST_F(AccessTest, PseudonymisedErrorsViewHasNoFreeText) {
  StartService();
  const std::string event =
      R"({"connector":"crm-connector","operation":"getContact","make_account_id":"acctA1",)"
      R"("timestamp":")" +
      NowIso() +
      R"(","status":"error","error_type":"auth_error",)"
      R"("error_message":"account acctA1 customer acme: token of ivan@example.com expired"})";
  auto posted =
      client_->Post("/v1/connector/usage", Bearer(db_->api_key), event, "application/json");
  ASSERT_TRUE(posted);
  ASSERT_EQ(posted->status, 201) << posted->body;
  // Analytics answer as of the background aggregation: wait until it has the event.
  ASSERT_TRUE(WaitFor(
      [&] {
        return db_->Scalar(
                   "SELECT count(*) FROM connector_usage WHERE seq > "
                   "(SELECT last_seq FROM rollup_state WHERE name = 'usage')") == 0;
      },
      std::chrono::seconds(30)));
  const std::string q = "/api/v1/analytics/errors?from=" + NowIso(-86400).substr(0, 10) +
                        "&to=" + NowIso(86400 * 2).substr(0, 10);
  auto admin = Get(q, admin_);
  ASSERT_TRUE(admin);
  ASSERT_EQ(admin->status, 200) << admin->body;
  const json a = json::parse(admin->body);
  ASSERT_EQ(a["most_frequent_errors"].size(), 1u) << admin->body;
  const std::string message = a["most_frequent_errors"][0]["last_message"];
  EXPECT_NE(message.find("acctA1"), std::string::npos) << message;            // admins see the text
  EXPECT_EQ(message.find("ivan@example.com"), std::string::npos) << message;  // scrubbed

  for (const std::string format : {"", "&format=csv"}) {
    auto managed = Get(q + format, manager_);
    ASSERT_TRUE(managed);
    ASSERT_EQ(managed->status, 200) << managed->body;
    EXPECT_EQ(managed->body.find("acctA1"), std::string::npos) << managed->body;
    EXPECT_EQ(managed->body.find("acme"), std::string::npos) << managed->body;
    EXPECT_EQ(managed->body.find("ivan"), std::string::npos) << managed->body;
    if (format.empty()) {
      const json m = json::parse(managed->body);
      ASSERT_EQ(m["most_frequent_errors"].size(), 1u);
      EXPECT_EQ(m["most_frequent_errors"][0]["errors"], 1);
      EXPECT_TRUE(m["most_frequent_errors"][0]["last_message"].is_null()) << managed->body;
    }
  }
}

// Analytics limits (docs/ANALYTICS.md "Limits"): a user past their token bucket
// gets 429 with Retry-After, audited and counted; other users are not affected.
TEST_F(AccessTest, AnalyticsRateLimitAnswers429WithRetryAfter) {
  StartService("test-pseudonym-key-0123456789", [](Config& c) {
    c.analytics_requests_per_minute = 1;
    c.analytics_burst = 2;
  });
  EXPECT_EQ(Get("/api/v1/analytics/overview", manager_)->status, 200);
  EXPECT_EQ(Get("/api/v1/analytics/connectors", manager_)->status, 200);
  auto r = Get("/api/v1/analytics/overview", manager_);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 429) << r->body;
  const int retry_after = std::atoi(r->get_header_value("Retry-After").c_str());
  EXPECT_GE(retry_after, 1) << r->get_header_value("Retry-After");
  EXPECT_LE(retry_after, 60);
  const json body = json::parse(r->body);
  EXPECT_EQ(body["field"], "Authorization");
  EXPECT_EQ(body.value("message", "").find("too many"), 0u) << r->body;
  EXPECT_EQ(Get("/api/v1/analytics/overview", admin_)->status, 200);  // another user
  const std::string m = Metrics();
  EXPECT_EQ(MetricValue(m, R"(bpmc_exporter_failures_total{reason="analytics_rate_limited"})"), 1)
      << m;
  const json rows = AuditRows();
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[2]["user"], "meg");
  EXPECT_EQ(rows[2]["status"], 429);
}

// The longest period depends on the role: 400 naming `from` past it.
TEST_F(AccessTest, AnalyticsPeriodLimitPerRole) {
  StartService("test-pseudonym-key-0123456789", [](Config& c) {
    c.analytics_max_days_support = 31;
    c.analytics_max_days_manager = 400;
  });
  const std::string q = "/api/v1/analytics/overview?from=" + NowIso(-40 * 86400).substr(0, 10);
  auto r = Get(q, support_);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(json::parse(r->body)["field"], "from");
  EXPECT_NE(r->body.find("31 days"), std::string::npos) << r->body;
  EXPECT_EQ(Get(q, manager_)->status, 200);
  EXPECT_EQ(Get(q, admin_)->status, 200);
}

// No free pooled connection within analytics_pool_wait_ms: 503 with Retry-After,
// and the same request succeeds once a connection is back.
TEST_F(AccessTest, AnalyticsPoolTimeoutAnswers503) {
  PgPool auth_pool(db_->url, 2);
  AccessControl access(auth_pool, "k");
  PgPool data_pool(db_->url, 1);
  analytics::AnalyticsOptions options;
  options.limits.pool_wait_ms = 100;
  auto route = analytics::NewAnalyticsRoute(&data_pool, &access, options);
  http::Request req;
  req.method = "GET";
  req.path = "/api/v1/analytics/overview";
  req.remote_ip = "127.0.0.1";
  req.headers["authorization"] = "Bearer " + admin_;
  {
    PgPool::Lease held = data_pool.Acquire();
    const auto started = std::chrono::steady_clock::now();
    const http::Response busy = route->Handle(req);
    const auto waited = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(busy.status, 503) << busy.body;
    bool retry_after = false;
    for (const auto& [k, v] : busy.headers) {
      retry_after = retry_after || (k == "Retry-After" && v == "1");
    }
    EXPECT_TRUE(retry_after);
    EXPECT_GE(waited, std::chrono::milliseconds(100));
    EXPECT_LT(waited, std::chrono::seconds(10));
  }
  EXPECT_EQ(route->Handle(req).status, 200);
  const json rows = AuditRows();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["status"], 503);
  EXPECT_EQ(rows[1]["status"], 200);
}

// Refusals are recorded at most kRefusalsPerMinute per client address (burst
// kRefusalBurst); the rest are counted, never stored. Allowed requests and
// other addresses are unaffected, and the bucket refills with time.
TEST_F(AccessTest, RefusalRecordsAreRateLimitedPerAddress) {
  PgPool pool(db_->url, 1);
  auto registry = std::make_shared<prometheus::Registry>();
  ingestion::IngestMetrics metrics(registry, 100);
  FakeClock clock;
  AccessControl access(
      pool, "k", registry.get(), [&](const std::string& r) { metrics.CountFailure(r); }, &clock);
  auto record = [](const std::string& ip, bool allowed) {
    analytics::AuditRecord rec;
    rec.method = "GET";
    rec.endpoint = "/api/v1/analytics/overview";
    rec.ip = ip;
    rec.allowed = allowed;
    rec.status = allowed ? 200 : 401;
    return rec;
  };
  const int64_t before = db_->Scalar("SELECT count(*) FROM audit_log");
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(access.Audit(record("203.0.113.7", false)));
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM audit_log") - before, AccessControl::kRefusalBurst);
  ASSERT_TRUE(access.Audit(record("203.0.113.8", false)));  // another address
  ASSERT_TRUE(access.Audit(record("203.0.113.7", true)));   // allowed: always
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM audit_log") - before,
            AccessControl::kRefusalBurst + 2);
  clock.Advance(std::chrono::seconds(30));  // 60 more at 120 a minute
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(access.Audit(record("203.0.113.7", false)));
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM audit_log") - before,
            AccessControl::kRefusalBurst + 2 + 60);
  const std::string text = prometheus::TextSerializer().Serialize(registry->Collect());
  EXPECT_EQ(MetricValue(text, R"(bpmc_exporter_failures_total{reason="audit_refusal_dropped"})"),
            500 - AccessControl::kRefusalBurst + 100 - 60)
      << text;
}

}  // namespace
}  // namespace bpmc::testing
