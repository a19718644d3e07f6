// DecideReload (a table) and ReloadRecord's metrics.
#include "common/config_reload.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "common/testing/fake_clock.h"

namespace bpmc {
namespace {

TEST(DecideReloadTest, Table) {
  struct Case {
    bool loaded;
    std::string load_error;
    std::vector<std::string> restart_keys;
    std::string want_result, want_error;
  };
  const Case cases[] = {
      {true, "", {}, "ok", ""},
      {false,
       "log_level: must be trace, debug, info, warn, error or off, got 'loud'",
       {},
       "invalid",
       "log_level: must be trace, debug, info, warn, error or off, got 'loud'"},
      // A load error wins over keys (there is no new config to compare).
      {false, "cannot read x.yaml", {"listen"}, "invalid", "cannot read x.yaml"},
      {true, "", {"listen"}, "needs_restart", "listen: changing it needs a restart"},
      {true,
       "",
       {"http_threads", "database_url"},
       "needs_restart",
       "http_threads, database_url: changing it needs a restart"},
  };
  for (const Case& c : cases) {
    const ReloadVerdict v = DecideReload(c.loaded, c.load_error, c.restart_keys);
    EXPECT_EQ(v.result, c.want_result) << c.load_error;
    EXPECT_EQ(v.error, c.want_error) << c.load_error;
  }
}

TEST(ReloadRecordTest, CountsRefusalsAndSuccesses) {
  prometheus::Registry registry;
  testing::FakeClock clock(1'000'000'000'000'000);
  ReloadRecord record(registry, "bpmc_test", clock);
  auto text = [&] { return prometheus::TextSerializer().Serialize(registry.Collect()); };
  EXPECT_NE(text().find("bpmc_test_config_last_reload_successful 1\n"), std::string::npos);
  EXPECT_NE(text().find("bpmc_test_config_reloads_total{result=\"needs_restart\"} 0\n"),
            std::string::npos);

  EXPECT_FALSE(record.Count(DecideReload(true, "", {"listen"})));
  EXPECT_NE(text().find("bpmc_test_config_last_reload_successful 0\n"), std::string::npos);
  EXPECT_NE(text().find("bpmc_test_config_reloads_total{result=\"needs_restart\"} 1\n"),
            std::string::npos);

  clock.Advance(std::chrono::seconds(5));
  EXPECT_TRUE(record.Count(DecideReload(true, "", {})));
  record.Applied();
  EXPECT_NE(text().find("bpmc_test_config_last_reload_successful 1\n"), std::string::npos);
  EXPECT_NE(text().find("bpmc_test_config_reloads_total{result=\"ok\"} 1\n"), std::string::npos);
  EXPECT_NE(text().find("bpmc_test_config_last_reload_success_timestamp_seconds 1000000005\n"),
            std::string::npos)
      << text();
}

}  // namespace
}  // namespace bpmc
