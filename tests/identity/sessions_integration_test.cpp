// Console logins against a real PostgreSQL (identity/sessions.h): passwords,
// sessions found through UserDirectory::FindRequest like every API finds
// them, CSRF on changes, the growing delay after failures, and every way a
// session ends (logout, idleness, lifetime, a disabled user, a new password).
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "common/pg_pool.h"
#include "common/testing/fake_clock.h"
#include "identity/sessions.h"
#include "identity/users.h"
#include "testing/exporter_harness.h"

namespace bpmc::identity {
namespace {

using Outcome = LoginResult::Outcome;

class SessionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<bpmc::testing::TestDatabase>(bpmc::testing::SharedCluster());
    pqxx::connection conn(db_->url);
    ASSERT_TRUE(CreateUser(conn, "ivan", Role::kAdmin, ""));
    ASSERT_TRUE(CreateUser(conn, "acme-user", Role::kUser, "acme"));
    ASSERT_TRUE(SetPassword(conn, "ivan", "correct horse"));
    pool_ = std::make_unique<PgPool>(db_->url, 2);
    store_ = std::make_unique<SessionStore>(*pool_, SessionPolicy{}, &clock_);
    users_ = std::make_unique<UserDirectory>(*pool_);
  }

  // A fresh directory: no cache, so the database decides.
  RequestAuth Find(const std::string& method, const std::string& session_id,
                   const std::string& csrf = "", Principal* who = nullptr) {
    UserDirectory fresh(*pool_);
    http::Request r;
    r.method = method;
    r.headers["cookie"] = "theme=dark; bpmc_session=" + session_id;
    if (!csrf.empty()) r.headers["x-csrf-token"] = csrf;
    Principal p;
    return fresh.FindRequest(r, who ? who : &p);
  }
  void Sql(const std::string& sql) {
    pqxx::connection conn(db_->url);
    pqxx::work txn(conn);
    txn.exec(sql);
    txn.commit();
  }

  bpmc::testing::FakeClock clock_{1'800'000'000'000'000};
  std::unique_ptr<bpmc::testing::TestDatabase> db_;
  std::unique_ptr<PgPool> pool_;
  std::unique_ptr<SessionStore> store_;
  std::unique_ptr<UserDirectory> users_;
};

TEST_F(SessionsTest, LoginOpensASessionThatEveryApiFinds) {
  const LoginResult r = store_->Login("ivan", "correct horse", "10.0.0.1");
  ASSERT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(r.principal.name, "ivan");
  EXPECT_EQ(r.principal.role, Role::kAdmin);
  EXPECT_EQ(r.session_id.size(), 43u);
  EXPECT_EQ(r.csrf_token, CsrfToken(r.session_id));
  Principal who;
  EXPECT_EQ(Find("GET", r.session_id, "", &who), RequestAuth::kFound);
  EXPECT_EQ(who.name, "ivan");
  // Only the hash is stored.
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM user_sessions WHERE position(convert_to('" +
                        r.session_id + "', 'UTF8') in id_hash) > 0"),
            0);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM users WHERE password_hash LIKE '$argon2id$%'"), 1);
  // A session id nobody issued, and no credential at all.
  EXPECT_EQ(Find("GET", std::string(43, 'x')), RequestAuth::kUnknown);
  http::Request none;
  none.method = "GET";
  EXPECT_EQ(users_->FindRequest(none, &who), RequestAuth::kMissing);
}

TEST_F(SessionsTest, ChangesNeedTheSessionsCsrfToken) {
  const LoginResult r = store_->Login("ivan", "correct horse", "10.0.0.1");
  ASSERT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(Find("POST", r.session_id), RequestAuth::kCsrfRefused);
  EXPECT_EQ(Find("DELETE", r.session_id, "wrong"), RequestAuth::kCsrfRefused);
  const LoginResult other = store_->Login("ivan", "correct horse", "10.0.0.1");
  EXPECT_EQ(Find("POST", r.session_id, other.csrf_token), RequestAuth::kCsrfRefused);
  EXPECT_EQ(Find("POST", r.session_id, r.csrf_token), RequestAuth::kFound);
  EXPECT_EQ(Find("PUT", r.session_id, r.csrf_token), RequestAuth::kFound);
  EXPECT_EQ(Find("HEAD", r.session_id), RequestAuth::kFound);
}

TEST_F(SessionsTest, BearerTokensStillWorkAndWinOverTheCookie) {
  pqxx::connection conn(db_->url);
  const auto token = CreateUser(conn, "api-client", Role::kManager, "");
  ASSERT_TRUE(token);
  const LoginResult r = store_->Login("ivan", "correct horse", "10.0.0.1");
  http::Request req;
  req.method = "POST";  // no CSRF needed: a bearer token is not sent by the browser on its own
  req.headers["authorization"] = "Bearer " + *token;
  req.headers["cookie"] = "bpmc_session=" + r.session_id;
  Principal who;
  EXPECT_EQ(users_->FindRequest(req, &who), RequestAuth::kFound);
  EXPECT_EQ(who.name, "api-client");
  req.headers["authorization"] = "Bearer bpmcu_unknown";
  EXPECT_EQ(users_->FindRequest(req, &who), RequestAuth::kUnknown);
}

TEST_F(SessionsTest, WrongPasswordsAreDelayedMoreAndMore) {
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(store_->Login("ivan", "wrong", "10.0.0." + std::to_string(i)).outcome,
              Outcome::kBadCredentials);
  EXPECT_EQ(db_->Scalar("SELECT failed_logins FROM users WHERE name = 'ivan'"), 3);
  // The account waits 1 s after the 3rd failure, whoever asks and whatever the password.
  const LoginResult held = store_->Login("ivan", "correct horse", "10.0.0.9");
  EXPECT_EQ(held.outcome, Outcome::kThrottled);
  EXPECT_GE(held.retry_after_s, 1);
  Sql("UPDATE users SET last_failed_login_at = now() - interval '2 seconds' WHERE name = 'ivan'");
  EXPECT_EQ(store_->Login("ivan", "wrong", "10.0.0.9").outcome, Outcome::kBadCredentials);
  Sql("UPDATE users SET last_failed_login_at = now() - interval '1 second' WHERE name = 'ivan'");
  EXPECT_EQ(store_->Login("ivan", "correct horse", "10.0.0.9").outcome,
            Outcome::kThrottled);  // 4 failures: 2 s now
  Sql("UPDATE users SET last_failed_login_at = now() - interval '3 seconds' WHERE name = 'ivan'");
  EXPECT_EQ(store_->Login("ivan", "correct horse", "10.0.0.9").outcome, Outcome::kOk);
  EXPECT_EQ(db_->Scalar("SELECT failed_logins FROM users WHERE name = 'ivan'"), 0);
}

TEST_F(SessionsTest, OneAddressGuessingNamesIsDelayedToo) {
  for (const char* name : {"nobody", "root", "admin"})
    EXPECT_EQ(store_->Login(name, "x", "192.0.2.7").outcome, Outcome::kBadCredentials);
  EXPECT_EQ(store_->Login("ivan", "correct horse", "192.0.2.7").outcome, Outcome::kThrottled);
  EXPECT_EQ(store_->Login("ivan", "correct horse", "192.0.2.8").outcome, Outcome::kOk);
  clock_.Advance(std::chrono::microseconds(1000001));
  EXPECT_EQ(store_->Login("ivan", "correct horse", "192.0.2.7").outcome, Outcome::kOk);
  // Users without a password cannot log in (they keep their token).
  EXPECT_EQ(store_->Login("acme-user", "", "192.0.2.9").outcome, Outcome::kBadCredentials);
}

TEST_F(SessionsTest, SessionsEnd) {
  auto login = [&] {
    const LoginResult r = store_->Login("ivan", "correct horse", "10.0.0.1");
    EXPECT_EQ(r.outcome, Outcome::kOk);
    EXPECT_EQ(Find("GET", r.session_id), RequestAuth::kFound);
    return r.session_id;
  };
  const std::string logged_out = login();
  ASSERT_TRUE(store_->Logout(logged_out));
  EXPECT_EQ(Find("GET", logged_out), RequestAuth::kUnknown);
  EXPECT_TRUE(store_->Logout(logged_out));  // idempotent

  const std::string idle = login();
  Sql("UPDATE user_sessions SET last_seen_at = now() - interval '31 minutes' "
      "WHERE ended_at IS NULL");
  EXPECT_EQ(Find("GET", idle), RequestAuth::kUnknown);

  const std::string old = login();
  Sql("UPDATE user_sessions SET expires_at = now() - interval '1 second' WHERE ended_at IS NULL");
  EXPECT_EQ(Find("GET", old), RequestAuth::kUnknown);

  const std::string disabled = login();
  {
    pqxx::connection conn(db_->url);
    const std::string renewed = login();
    ASSERT_TRUE(SetPassword(conn, "ivan", "battery staple"));  // ends every session
    EXPECT_EQ(Find("GET", renewed), RequestAuth::kUnknown);
    EXPECT_EQ(store_->Login("ivan", "correct horse", "10.0.0.1").outcome, Outcome::kBadCredentials);
    const LoginResult r = store_->Login("ivan", "battery staple", "10.0.0.1");
    ASSERT_EQ(r.outcome, Outcome::kOk);
    ASSERT_TRUE(DisableUser(conn, "ivan"));
    EXPECT_EQ(Find("GET", r.session_id), RequestAuth::kUnknown);
    EXPECT_EQ(store_->Login("ivan", "battery staple", "10.0.0.1").outcome,
              Outcome::kBadCredentials);
    EXPECT_FALSE(SetPassword(conn, "ivan", "x"));  // disabled: no such enabled user
  }
  EXPECT_EQ(Find("GET", disabled), RequestAuth::kUnknown);
  // Ended and expired sessions were swept at the later logins.
  EXPECT_LE(db_->Scalar("SELECT count(*) FROM user_sessions"), 2);
}

TEST_F(SessionsTest, ACachedSessionIsForgottenAtLogout) {
  const LoginResult r = store_->Login("ivan", "correct horse", "10.0.0.1");
  http::Request req;
  req.method = "GET";
  req.headers["cookie"] = "bpmc_session=" + r.session_id;
  Principal who;
  EXPECT_EQ(users_->FindRequest(req, &who), RequestAuth::kFound);  // now cached
  ASSERT_TRUE(store_->Logout(r.session_id));
  users_->ForgetSession(r.session_id);
  EXPECT_EQ(users_->FindRequest(req, &who), RequestAuth::kUnknown);
}

TEST_F(SessionsTest, DatabaseDownIsUnavailableNotRefused) {
  PgPool dead("postgresql://127.0.0.1:1/none?connect_timeout=1", 1);
  SessionStore store(dead, SessionPolicy{}, &clock_);
  const LoginResult r = store.Login("ivan", "correct horse", "10.0.0.1");
  EXPECT_EQ(r.outcome, Outcome::kUnavailable);
  EXPECT_GT(r.retry_after_s, 0);
  UserDirectory users(dead);
  http::Request req;
  req.method = "GET";
  req.headers["cookie"] = "bpmc_session=" + std::string(43, 'a');
  Principal who;
  EXPECT_EQ(users.FindRequest(req, &who), RequestAuth::kError);
  EXPECT_FALSE(store.Logout(std::string(43, 'a')));
}

}  // namespace
}  // namespace bpmc::identity
