// Every access to the receiver's data APIs is audited in the exporter's
// audit_log, exactly like the analytics (identity/audit.h): who, what, when,
// from where, why — before the answer is sent; no data leaves unaudited.
#include <gtest/gtest.h>
#include <httplib.h>

#include <pqxx/pqxx>

#include "analytics/access.h"
#include "common/migrate.h"
#include "receiver_test_util.h"
#include "testing/pg_cluster.h"
#include "webhook_receiver/service.h"

namespace bpmc::webhook_receiver {
namespace {

class ReceiverAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& cluster = bpmc::testing::SharedCluster();
    url_ = cluster.ConnectionString(cluster.CreateDatabase());
    pqxx::connection conn(url_);
    // The receiver's schema modules, identity (users, audit_log) among them.
    ApplySchema(conn, webhook_receiver::DatabaseSchema());
    admin_ = *identity::CreateUser(conn, "olga", identity::Role::kAdmin, "");
    ReceiverConfig config = test::MustLoad(test::TestConfigYaml());
    config.listen = "127.0.0.1:0";
    config.database_url = url_;
    config.http_threads = 8;
    ServiceDeps deps;
    deps.start_delivery = false;
    std::string error;
    service_ = Service::Start(config, deps, &error);
    ASSERT_TRUE(service_) << error;
    client_ = std::make_unique<httplib::Client>("127.0.0.1", service_->port());
    client_->set_read_timeout(30, 0);
  }
  void TearDown() override {
    if (service_) service_->Shutdown();
  }
  int64_t Rows(const std::string& where) {
    return test::Count(url_, "SELECT count(*) FROM audit_log WHERE " + where);
  }
  void Exec(const std::string& sql) {
    pqxx::connection conn(url_);
    pqxx::work txn(conn);
    txn.exec(sql);
    txn.commit();
  }

  std::string url_, admin_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(ReceiverAuditTest, ApiAccessIsRecordedBeforeTheAnswer) {
  auto r = client_->Get("/api/v1/incidents?status=triggered",
                        {{"Authorization", "Bearer " + admin_}, {"X-Access-Reason", "INC-42"}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(Rows("user_name = 'olga' AND endpoint = '/api/v1/incidents' AND method = 'GET' AND "
                 "ip = '127.0.0.1' AND reason = 'INC-42' AND allowed AND status = 200 AND "
                 "params->>'status' = 'triggered'"),
            1);
  // Who, as the exporter records it: the user's id and role, not only the name.
  EXPECT_EQ(Rows("user_name = 'olga' AND role = 'admin' AND "
                 "user_id = (SELECT id FROM users WHERE name = 'olga')"),
            1);
  // A refusal is recorded too, without a user.
  r = client_->Get("/api/v1/incidents");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(Rows("user_name IS NULL AND NOT allowed AND status = 401"), 1);
  // An ack link's token is a credential: only its hash is recorded.
  r = client_->Get("/ack/not-a-valid-token");
  ASSERT_TRUE(r);
  EXPECT_EQ(Rows("endpoint LIKE '/ack/sha256:%'"), 1);
  EXPECT_EQ(Rows("endpoint LIKE '%not-a-valid-token%'"), 0);
  // Webhooks read no data: not audited.
  const int64_t before = Rows("true");
  auto w = client_->Post("/v1/alertmanager", {{"Authorization", "Bearer test-token"}},
                         test::AmPayload({test::Firing("A")}), "application/json");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->status, 200) << w->body;
  EXPECT_EQ(Rows("true"), before);
}

TEST_F(ReceiverAuditTest, NoDataWithoutAnAuditRecord) {
  Exec("ALTER TABLE audit_log RENAME TO audit_log_away");
  auto r = client_->Get("/api/v1/incidents", {{"Authorization", "Bearer " + admin_}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << r->body;
  EXPECT_EQ(r->get_header_value("Retry-After"), "5");
  EXPECT_EQ(r->body.find("\"incidents\""), std::string::npos) << r->body;
  Exec("ALTER TABLE audit_log_away RENAME TO audit_log");
  r = client_->Get("/api/v1/incidents", {{"Authorization", "Bearer " + admin_}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
}

}  // namespace
}  // namespace bpmc::webhook_receiver
