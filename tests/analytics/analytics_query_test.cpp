#include <gtest/gtest.h>

#include "analytics/analytics.h"
#include "common/time_format.h"

namespace bpmc::analytics {
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
      {"nameless parameter (found by analytics_query_fuzz)", {{"", "x"}}, "query"},
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

TEST(AnalyticsQueryTest, ParseBigintArray) {
  EXPECT_EQ(*ParseBigintArray("{}"), std::vector<int64_t>{});
  EXPECT_EQ(*ParseBigintArray("{1,0,-5,NULL,12345678901}"),
            (std::vector<int64_t>{1, 0, -5, 0, 12345678901}));
  EXPECT_FALSE(ParseBigintArray(""));
  EXPECT_FALSE(ParseBigintArray("{1,,2}"));
  EXPECT_FALSE(ParseBigintArray("{1,x}"));
  EXPECT_FALSE(ParseBigintArray("1,2"));
}

// Expected values worked out by hand from bpmc_buckets_quantile's definition.
TEST(AnalyticsQueryTest, BucketsQuantileTable) {
  const std::vector<double> bounds = {1.0, 2.0, 4.0};  // buckets [0,1) [1,2) [2,4) [4,inf)
  struct QuantileCase {
    const char* name;
    std::vector<int64_t> buckets;
    int64_t num, den;
    std::optional<double> want;
  };
  const QuantileCase cases[] = {
      {"empty", {}, 95, 100, std::nullopt},
      {"all zero", {0, 0, 0, 0}, 95, 100, std::nullopt},
      {"one bucket, median", {0, 10, 0, 0}, 50, 100, 1.5},         // rank 5 of 10 in [1,2)
      {"p95 in the third", {50, 40, 10, 0}, 95, 100, 3.0},         // rank 95: 5 of 10 into [2,4)
      {"exact boundary stays low", {50, 50, 0, 0}, 50, 100, 1.0},  // rank 50 = cum of bucket 1
      {"first bucket from zero", {10, 0, 0, 0}, 50, 100, 0.5},
      {"+inf bucket reports its lower bound", {0, 0, 0, 5}, 95, 100, 4.0},
      {"q = 1", {1, 1, 1, 0}, 1, 1, 4.0},
      {"q = 0", {0, 3, 0, 0}, 0, 1, 1.0},
  };
  for (const QuantileCase& c : cases) {
    const auto got = BucketsQuantile(c.buckets, bounds, c.num, c.den);
    ASSERT_EQ(got.has_value(), c.want.has_value()) << c.name;
    if (got) {
      EXPECT_DOUBLE_EQ(*got, *c.want) << c.name;
    }
  }
}

TEST(AnalyticsQueryTest, ActivityWindowStarts) {
  using V = std::vector<std::string>;
  const struct {
    const char *fd, *td;
    V want;
  } cases[] = {
      {"2026-10-27", "2026-11-27", {"2026-10-01"}},  // the default 30 days: one window
      {"2026-11-01", "2026-12-01", {"2026-11-01"}},  // one whole month
      {"2026-11-05", "2026-11-06", {"2026-11-01"}},  // one day
      {"2026-10-01", "2026-12-01", {"2026-10-01"}},  // two whole months
      {"2026-10-31", "2026-12-02", {"2026-10-01", "2026-12-01"}},  // three months touched
      {"2026-11-15", "2027-02-10", {"2026-11-01", "2027-01-01"}},  // across a year
      {"2026-12-31", "2027-01-01", {"2026-12-01"}},
      {"2026-01-01",
       "2027-01-01",
       {"2026-01-01", "2026-03-01", "2026-05-01", "2026-07-01", "2026-09-01", "2026-11-01"}},
      {"2026-11-27", "2026-11-27", {}},  // empty period
      {"2026-11-28", "2026-11-27", {}},  // reversed
      {"2026-13-01", "2027-01-01", {}},  // malformed
      {"2026-11-01", "tomorrow", {}},
  };
  for (const auto& c : cases)
    EXPECT_EQ(ActivityWindowStarts(c.fd, c.td), c.want) << c.fd << " " << c.td;
}

TEST(AnalyticsQueryTest, SummariseActivity) {
  const std::vector<AccountOpsRow> rows = {
      {"a", "c1", 1},   {"b", "c1", 4},    {"b", "c1", 6},  // b: two months, 10
      {"c", "c2", 11},  {"d", "c2", 1000}, {"e", "c2", 600},
      {"e", "c3", 401},  // e: 1001 over two customers
      {"f", "c1", 0},    // no operations: ignored
  };
  const ActivitySummary s = SummariseActivity(rows, 3);
  const std::vector<std::pair<std::string, int64_t>> bins = {
      {"1", 1}, {"2-10", 1}, {"11-100", 1}, {"101-1000", 1}, {">1000", 1}};
  EXPECT_EQ(s.bins, bins);
  ASSERT_EQ(s.top.size(), 3u);
  EXPECT_EQ(s.top[0].account, "d");
  EXPECT_EQ(s.top[0].operations, 1000);
  EXPECT_EQ(s.top[1].account, "e");  // (e, c2) 600 before (e, c3) 401
  EXPECT_EQ(s.top[1].customer, "c2");
  EXPECT_EQ(s.top[2].customer, "c3");
  // Ties by account, then customer; empty input.
  const ActivitySummary t = SummariseActivity({{"y", "c", 5}, {"x", "d", 5}, {"x", "c", 5}}, 10);
  ASSERT_EQ(t.top.size(), 3u);
  EXPECT_EQ(t.top[0].account + t.top[0].customer, "xc");
  EXPECT_EQ(t.top[1].account + t.top[1].customer, "xd");
  EXPECT_EQ(t.top[2].account, "y");
  EXPECT_TRUE(SummariseActivity({}, 10).bins.empty());
}

TEST(AnalyticsQueryTest, MergeActivityEqualsSummaryOfAllRows) {
  // Rows split into parts by account (as the users endpoint splits them):
  // the merged summary is the summary of all rows, whatever the split.
  const std::vector<AccountOpsRow> rows = {
      {"a", "c1", 1},   {"b", "c1", 4},   {"b", "c1", 6},   {"c", "c2", 11},  {"d", "c2", 1000},
      {"e", "c2", 600}, {"e", "c3", 401}, {"f", "c1", 0},   {"g", "c1", 7},   {"h", "c4", 1000},
      {"i", "c1", 3},   {"i", "c1", 1},   {"j", "c2", 250}, {"k", "c2", 2000}};
  const struct {
    const char* name;
    std::string part0_accounts;  // the rest go to part 1
    size_t top;
  } cases[] = {{"all in one part", "abcdefghijk", 3},
               {"all in the other", "", 3},
               {"alternating", "acegik", 4},
               {"heavy ones apart", "dhk", 2},
               {"top larger than all", "abe", 50}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<AccountOpsRow> part0, part1;
    for (const AccountOpsRow& r : rows)
      (c.part0_accounts.find(r.account[0]) != std::string::npos ? part0 : part1).push_back(r);
    const ActivitySummary want = SummariseActivity(rows, c.top);
    const ActivitySummary got =
        MergeActivity({SummariseActivity(part0, c.top), SummariseActivity(part1, c.top)}, c.top);
    EXPECT_EQ(got.bins, want.bins);
    ASSERT_EQ(got.top.size(), want.top.size());
    for (size_t i = 0; i < want.top.size(); ++i) {
      EXPECT_EQ(got.top[i].account, want.top[i].account) << i;
      EXPECT_EQ(got.top[i].customer, want.top[i].customer) << i;
      EXPECT_EQ(got.top[i].operations, want.top[i].operations) << i;
    }
  }
  EXPECT_TRUE(MergeActivity({}, 10).bins.empty());
  EXPECT_THROW(MergeActivity({ActivitySummary{{{"2-3", 1}}, {}}}, 10), std::invalid_argument);
}

}  // namespace
}  // namespace bpmc::analytics
