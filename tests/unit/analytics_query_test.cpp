#include <gtest/gtest.h>

#include "common/time_format.h"
#include "exporter/analytics.h"

namespace bpmc::exporter {
namespace {

struct Case {
  const char* name;
  std::map<std::string, std::string> params;
  std::string error_field;  // "-" = must parse
  Granularity granularity = Granularity::kDay;
};

TEST(AnalyticsQueryTest, Table) {
  const int64_t now = *ParseRfc3339Micros("2026-11-25T12:00:00Z");
  const Case cases[] = {
      {"defaults", {}, "-"},
      {"dates", {{"from", "2026-11-01"}, {"to", "2026-11-25"}}, "-"},
      {"timestamps", {{"from", "2026-11-01T00:00:00+03:00"}, {"to", "2026-11-02T00:00:00Z"}}, "-"},
      {"hour", {{"granularity", "hour"}, {"from", "2026-11-20"}}, "-", Granularity::kHour},
      {"week", {{"granularity", "week"}}, "-", Granularity::kWeek},
      {"month", {{"granularity", "month"}, {"from", "2025-01-01"}}, "-", Granularity::kMonth},
      {"hour over 31 days", {{"granularity", "hour"}, {"from", "2026-10-01"}}, "granularity"},
      {"bad granularity", {{"granularity", "minute"}}, "granularity"},
      {"bad from", {{"from", "yesterday"}}, "from"},
      {"bad date", {{"from", "2026-02-30"}}, "from"},
      {"bad to", {{"to", "2026-13-01"}}, "to"},
      {"from after to", {{"from", "2026-11-25"}, {"to", "2026-11-01"}}, "from"},
      {"from equals to", {{"from", "2026-11-25"}, {"to", "2026-11-25"}}, "from"},
      {"ten years", {{"from", "2016-01-01"}}, "from"},
      {"unknown parameter", {{"connectr", "x"}}, "connectr"},
      {"connector too long", {{"connector", std::string(51, 'c')}}, "connector"},
      {"customer too long", {{"customer", std::string(101, 'c')}}, "customer"},
      {"format passes through", {{"format", "csv"}}, "-"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = ParseAnalyticsQuery(c.params, now, 30);
    if (std::string(c.error_field) == "-") {
      ASSERT_TRUE(std::holds_alternative<AnalyticsQuery>(r)) << std::get<RequestError>(r).message;
      EXPECT_EQ(std::get<AnalyticsQuery>(r).granularity, c.granularity);
    } else {
      ASSERT_TRUE(std::holds_alternative<RequestError>(r));
      EXPECT_EQ(std::get<RequestError>(r).field, c.error_field);
      EXPECT_EQ(std::get<RequestError>(r).http_status, 400);
    }
  }
}

TEST(AnalyticsQueryTest, DefaultPeriodIsTheLastThirtyDays) {
  const int64_t now = *ParseRfc3339Micros("2026-11-25T12:00:00Z");
  auto q = std::get<AnalyticsQuery>(ParseAnalyticsQuery({}, now, 30));
  EXPECT_EQ(q.to, "2026-11-25T12:00:00.000000Z");
  EXPECT_EQ(q.from, "2026-10-26T12:00:00.000000Z");
}

}  // namespace
}  // namespace bpmc::exporter
