// The console's server side through a real bpmc-exporter and PostgreSQL
// (console/routes.h): the embedded page, logins and their audit rows, the
// cookie's attributes, CSRF on changes, logout, the analytics API by cookie,
// hostile login bodies, and the receiver's APIs forwarded to a loopback
// stand-in that records what it gets.
#include <gtest/gtest.h>
#include <httplib.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/testing/temp_dir.h"
#include "console/routes.h"
#include "exporter/service.h"
#include "http/raw_client.h"
#include "identity/sessions.h"
#include "identity/users.h"
#include "testing/exporter_harness.h"
#include "testing/process.h"

namespace bpmc::testing {
namespace {

using exporter::Config;
using exporter::Service;
using nlohmann::json;

// What the stand-in receiver saw of one request.
struct Seen {
  std::string method, path, query, cookie, csrf, body, forwarded_for;
};

class ConsoleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<TestDatabase>(SharedCluster());
    pqxx::connection conn(db_->url);
    ASSERT_TRUE(identity::CreateUser(conn, "ivan", identity::Role::kAdmin, ""));
    ASSERT_TRUE(identity::SetPassword(conn, "ivan", "correct horse"));
    receiver_.Get(R"(/api/v1/.*)", [this](const httplib::Request& req, httplib::Response& res) {
      Record(req);
      res.set_content(R"({"incidents":[]})", "application/json");
    });
    receiver_.Post(R"(/api/v1/.*)", [this](const httplib::Request& req, httplib::Response& res) {
      Record(req);
      res.status = 202;
      res.set_header("Content-Disposition", "attachment; filename=x.json");
      res.set_content(R"({"ok":true})", "application/json");
    });
    receiver_port_ = receiver_.bind_to_any_port("127.0.0.1");
    receiver_thread_ = std::thread([this] { receiver_.listen_after_bind(); });
    Config config;
    config.listen = "127.0.0.1:0";
    config.database_url = db_->url;
    config.data_dir = data_dir_.path();
    config.http_threads = 8;
    config.request_deadline_ms = 1500;  // slow clients are cut soon
    config.pseudonym_key = "test-pseudonym-key-0123456789";
    config.receiver_url = "http://127.0.0.1:" + std::to_string(receiver_port_);
    std::string error;
    service_ = Service::Start(config, SystemClock::Get(), &error);
    ASSERT_TRUE(service_) << error;
    client_ = std::make_unique<httplib::Client>("127.0.0.1", service_->port());
  }
  void TearDown() override {
    if (service_) service_->Shutdown();
    receiver_.stop();
    if (receiver_thread_.joinable()) receiver_thread_.join();
  }
  void Record(const httplib::Request& req) {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.push_back({req.method, req.path, req.params.empty() ? "" : req.get_param_value("from"),
                     req.get_header_value("Cookie"), req.get_header_value("X-CSRF-Token"), req.body,
                     req.get_header_value("X-Forwarded-For")});
  }

  httplib::Result Login(const std::string& name, const std::string& password) {
    return client_->Post("/console/api/login", json{{"name", name}, {"password", password}}.dump(),
                         "application/json");
  }
  // Logs in; returns the session id and sets csrf_.
  std::string LogIn() {
    auto r = Login("ivan", "correct horse");
    EXPECT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    csrf_ = json::parse(r->body)["csrf_token"].get<std::string>();
    const std::string cookie = r->get_header_value("Set-Cookie");
    return cookie.substr(cookie.find('=') + 1, 43);
  }
  httplib::Headers Cookie(const std::string& id, bool with_csrf = false) {
    httplib::Headers h{{"Cookie", "bpmc_session=" + id}};
    if (with_csrf) h.emplace("X-CSRF-Token", csrf_);
    return h;
  }
  std::vector<std::pair<std::string, int>> AuditOf(const std::string& endpoint) {
    pqxx::connection conn(db_->url);
    pqxx::work txn(conn);
    std::vector<std::pair<std::string, int>> out;
    for (const auto& row : txn.exec_params(
             "SELECT coalesce(user_name, '-'), status FROM audit_log WHERE endpoint = $1 "
             "ORDER BY id",
             endpoint))
      out.emplace_back(row[0].c_str(), row[1].as<int>());
    return out;
  }

  TempDir data_dir_{"bpmc-console"};
  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<httplib::Client> client_;
  httplib::Server receiver_;
  int receiver_port_ = 0;
  std::thread receiver_thread_;
  std::mutex mu_;
  std::vector<Seen> seen_;
  std::string csrf_;
};

TEST_F(ConsoleTest, ServesThePageFromTheBinary) {
  auto r = client_->Get("/console/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(r->body.find("app.js"), std::string::npos);
  EXPECT_NE(r->get_header_value("Content-Security-Policy").find("script-src 'self'"),
            std::string::npos);
  EXPECT_EQ(r->get_header_value("X-Frame-Options"), "DENY");
  const std::string etag = r->get_header_value("ETag");
  auto again = client_->Get("/console/index.html", {{"If-None-Match", etag}});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 304);
  auto js = client_->Get("/console/app.js", {{"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(js);
  EXPECT_EQ(js->status, 200);
  EXPECT_GT(js->body.size(), 1000u);  // httplib inflates it
  EXPECT_EQ(client_->Get("/console/nope.js")->status, 404);
  client_->set_follow_location(false);
  auto bare = client_->Get("/console");
  EXPECT_EQ(bare->status, 308);
  EXPECT_EQ(bare->get_header_value("Location"), "/console/");
}

TEST_F(ConsoleTest, LoginSessionLogoutAllAudited) {
  auto bad = Login("ivan", "wrong");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 401);
  EXPECT_EQ(json::parse(bad->body)["field"], "password");
  EXPECT_TRUE(bad->get_header_value("Set-Cookie").empty());

  auto ok = Login("ivan", "correct horse");
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->status, 200) << ok->body;
  const std::string cookie = ok->get_header_value("Set-Cookie");
  for (const char* attr : {"HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"})
    EXPECT_NE(cookie.find(attr), std::string::npos) << cookie;
  EXPECT_EQ(cookie.find("Secure"), std::string::npos);  // console_secure_cookie is off
  EXPECT_EQ(ok->get_header_value("Cache-Control"), "no-store");
  const json body = json::parse(ok->body);
  EXPECT_EQ(body["user"], (json{{"name", "ivan"}, {"role", "admin"}, {"customer", nullptr}}));
  const std::string id = cookie.substr(cookie.find('=') + 1, 43);
  csrf_ = body["csrf_token"];

  auto who = client_->Get("/console/api/session", Cookie(id));
  ASSERT_TRUE(who);
  EXPECT_EQ(who->status, 200);
  EXPECT_EQ(json::parse(who->body)["csrf_token"], csrf_);
  // The analytics API takes the cookie like a token (a read needs no CSRF token).
  auto overview = client_->Get("/api/v1/analytics/overview", Cookie(id));
  ASSERT_TRUE(overview);
  EXPECT_EQ(overview->status, 200) << overview->body;

  // A change without the session's CSRF token (a cross-site form, say) is refused.
  auto forged = client_->Post("/console/api/logout", Cookie(id), "", "text/plain");
  ASSERT_TRUE(forged);
  EXPECT_EQ(forged->status, 403);
  EXPECT_EQ(json::parse(forged->body)["field"], "X-CSRF-Token");
  EXPECT_EQ(client_->Get("/console/api/session", Cookie(id))->status, 200);  // still open

  auto out = client_->Post("/console/api/logout", Cookie(id, true), "", "text/plain");
  ASSERT_TRUE(out);
  EXPECT_EQ(out->status, 204);
  EXPECT_NE(out->get_header_value("Set-Cookie").find("Max-Age=0"), std::string::npos);
  EXPECT_EQ(client_->Get("/console/api/session", Cookie(id))->status, 401);
  EXPECT_EQ(client_->Get("/api/v1/analytics/overview", Cookie(id))->status, 401);

  using Rows = std::vector<std::pair<std::string, int>>;
  EXPECT_EQ(AuditOf("/console/api/login"), (Rows{{"-", 401}, {"ivan", 200}}));
  EXPECT_EQ(AuditOf("/console/api/logout"), (Rows{{"ivan", 204}}));
  EXPECT_EQ(AuditOf("/api/v1/analytics/overview"), (Rows{{"ivan", 200}, {"-", 401}}));
  // The attempted name is recorded, never the password.
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM audit_log WHERE params::text LIKE '%horse%' "
                        "OR params::text LIKE '%wrong%'"),
            0);
}

TEST_F(ConsoleTest, RepeatedFailuresAnswer429WithRetryAfter) {
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Login("ivan", "wrong")->status, 401);
  auto held = Login("ivan", "correct horse");
  ASSERT_TRUE(held);
  EXPECT_EQ(held->status, 429);
  EXPECT_GE(std::stoi(held->get_header_value("Retry-After")), 1);
}

TEST_F(ConsoleTest, HostileLoginBodiesAreRefusedNamingTheField) {
  struct Case {
    std::string body, content_type;
    int status;
    std::string field;
  };
  const std::string deep = std::string(2000, '[') + std::string(2000, ']');
  const Case cases[] = {
      {"{}", "application/json", 400, "name"},
      {R"({"name":"ivan"})", "application/json", 400, "password"},
      {R"({"name":7,"password":"x"})", "application/json", 400, "name"},
      {R"({"name":"ivan","password":"x","admin":true})", "application/json", 400, ""},
      {R"({"name":")" + std::string(101, 'a') + R"(","password":"x"})", "application/json", 400,
       "name"},
      {R"({"name":"ivan","password":")" + std::string(1025, 'a') + R"("})", "application/json", 400,
       "password"},
      {"[1]", "application/json", 400, ""},
      {"not json", "application/json", 400, ""},
      {deep, "application/json", 400, ""},
      {R"({"name":"ivan","password":"correct horse"})", "text/plain", 415, "Content-Type"},
      {std::string(5000, ' '), "application/json", 413, ""},
      // Over the 4 KiB limit: refused from Content-Length, never parsed.
      {std::string(10 << 20, 'x'), "application/json", 413, ""},
      {std::string(5000, '[') + std::string(5000, ']'), "application/json", 413, ""},
      {R"({"name":")" + std::string(10000, 'a') + R"(","password":"x"})", "application/json", 413,
       ""},
  };
  for (const Case& c : cases) {
    auto r = client_->Post("/console/api/login", c.body, c.content_type.c_str());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, c.status) << c.body.substr(0, 80);
    const json j = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r->body;
    if (!c.field.empty()) EXPECT_EQ(j["field"], c.field) << c.body.substr(0, 80);
    EXPECT_TRUE(r->get_header_value("Set-Cookie").empty());
  }
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM user_sessions"), 0);
}

// One byte every half second, in the headers and then in the body of a login: cut at
// the 1.5 s request deadline, while another login is answered meanwhile.
TEST_F(ConsoleTest, SlowLoginsAreCutWhileOthersAreAnswered) {
  const std::string head =
      "POST /console/api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 100\r\n\r\n";
  for (const bool in_body : {false, true}) {
    SCOPED_TRACE(in_body ? "slow body" : "slow headers");
    RawConnection slow(service_->port());
    if (in_body) slow.Send(head);
    const std::string trickled = in_body ? std::string(100, ' ') : head;
    const auto t0 = std::chrono::steady_clock::now();
    std::thread trickle([&] {
      for (char ch : trickled) {
        if (!slow.Send(std::string(1, ch)) ||
            std::chrono::steady_clock::now() - t0 > std::chrono::seconds(5))
          return;
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
    });
    auto ok = Login("ivan", "correct horse");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200);
    const int status = slow.ReadResponse(std::chrono::seconds(6));
    if (in_body)
      EXPECT_EQ(status, 408);
    else
      EXPECT_TRUE(status == 400 || status == 408 || status == 0) << status;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(4));
    slow.Close();
    trickle.join();
  }
  // Logout without any credential: 401 before anything else.
  auto anonymous = client_->Post("/console/api/logout", "", "text/plain");
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 401);
}

// `user set-password NAME` reads the password from stdin: 8 to 1024 bytes.
TEST_F(ConsoleTest, SetPasswordReadsStdin) {
  auto run = [&](const std::string& feed, const std::string& name) {
    Process p({"/bin/sh", "-c", feed + " | \"$0\" user set-password --database-url \"$1\" \"$2\"",
               BinPath("bpmc-exporter"), db_->url, name});
    return p.Wait(std::chrono::seconds(30));
  };
  EXPECT_EQ(run("printf 'short\\n'", "ivan"), 2);
  EXPECT_EQ(run("head -c 10000 /dev/zero | tr '\\0' a", "ivan"), 2);
  EXPECT_EQ(run("printf 'battery staple\\n'", "nobody"), 1);
  EXPECT_EQ(run("printf 'battery staple\\r\\n'", "ivan"), 0);
  EXPECT_EQ(Login("ivan", "correct horse")->status, 401);
  EXPECT_EQ(Login("ivan", "battery staple")->status, 200);
}

TEST_F(ConsoleTest, TheReceiversApisAreForwardedWithTheSessionOnly) {
  const std::string id = LogIn();
  httplib::Headers h{{"Cookie", "other=secret; bpmc_session=" + id + "; theme=dark"}};
  auto list = client_->Get("/receiver/api/v1/incidents?from=2026-01-01", h);
  ASSERT_TRUE(list);
  EXPECT_EQ(list->status, 200);
  EXPECT_EQ(list->body, R"({"incidents":[])"
                        "}");
  auto forged =
      client_->Post("/receiver/api/v1/incidents/1/ack", Cookie(id), "{}", "application/json");
  EXPECT_EQ(forged->status, 403);  // refused here, never forwarded
  auto ack =
      client_->Post("/receiver/api/v1/incidents/1/ack", Cookie(id, true), "{}", "application/json");
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->status, 202);
  EXPECT_EQ(ack->get_header_value("Content-Disposition"), "attachment; filename=x.json");
  // Nothing without credentials, and only the receiver's API paths.
  EXPECT_EQ(client_->Get("/receiver/api/v1/incidents")->status, 401);
  for (const char* path :
       {"/receiver/metrics", "/receiver/v1/alertmanager", "/receiver/api/v1/../../metrics",
        "/receiver/api/v1/%2e%2e/x", "/receiver/api/v1/"}) {
    auto r = client_->Get(path, Cookie(id));
    ASSERT_TRUE(r) << path;
    EXPECT_TRUE(r->status == 404 || r->status == 400) << path << " " << r->status;
  }
  // Hostile bodies stop here, never reach the receiver: too large (from Content-Length),
  // too deep, not JSON.
  auto big = client_->Post("/receiver/api/v1/incidents/1/notes", Cookie(id, true),
                           std::string(10 << 20, ' '), "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  auto deep = client_->Post("/receiver/api/v1/incidents/1/notes", Cookie(id, true),
                            std::string(5000, '[') + std::string(5000, ']'), "application/json");
  ASSERT_TRUE(deep);
  EXPECT_EQ(deep->status, 400);
  auto text =
      client_->Post("/receiver/api/v1/incidents/1/notes", Cookie(id, true), "hello", "text/plain");
  ASSERT_TRUE(text);
  EXPECT_EQ(text->status, 415);
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_EQ(seen_.size(), 2u);
  EXPECT_EQ(seen_[0].path, "/api/v1/incidents");
  EXPECT_EQ(seen_[0].query, "2026-01-01");
  EXPECT_EQ(seen_[0].cookie, "bpmc_session=" + id);  // not the origin's other cookies
  EXPECT_EQ(seen_[0].forwarded_for, "127.0.0.1");
  EXPECT_EQ(seen_[1].method, "POST");
  EXPECT_EQ(seen_[1].csrf, csrf_);
  EXPECT_EQ(seen_[1].body, "{}");
}

TEST(ConsoleForwardTest, PathTable) {
  struct Case {
    const char* path;
    bool want;
  };
  const Case cases[] = {
      {"/receiver/api/v1/incidents", true}, {"/receiver/api/v1/incidents/7/ack", true},
      {"/receiver/api/v1/", false},         {"/receiver/api/v1/incidents/", false},
      {"/receiver/api/v2/x", false},        {"/receiver/metrics", false},
      {"/receiver/api/v1/../x", false},     {"/receiver/api/v1/./x", false},
      {"/receiver/api/v1//x", false},       {"/receiver/api/v1/%2e%2e", false},
      {"/receiver/api/v1/a\\b", false},     {"/api/v1/incidents", false},
  };
  for (const Case& c : cases) EXPECT_EQ(console::ForwardablePath(c.path), c.want) << c.path;
}

TEST(ConsoleCookieTest, Attributes) {
  EXPECT_EQ(console::SessionCookie("abc", 60, false),
            "bpmc_session=abc; Path=/; Max-Age=60; HttpOnly; SameSite=Strict");
  EXPECT_EQ(console::SessionCookie("", 60, true),
            "bpmc_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict; Secure");
}

}  // namespace
}  // namespace bpmc::testing
