#include "common/time_format.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <ostream>
#include <string>

namespace bpmc {
namespace {

constexpr int64_t kSec = 1'000'000;
constexpr int64_t kSeedTs = 1'795'600'800 * kSec;  // 2026-11-25T10:00:00Z

struct ParseCase {
  const char* name;
  std::string input;
  std::optional<int64_t> expected;  // nullopt: must be refused
};

void PrintTo(const ParseCase& c, std::ostream* os) { *os << c.name; }

const ParseCase kParseCases[] = {
    // Accepted forms.
    {"seed_millis", "2026-11-25T10:00:00.000Z", kSeedTs},
    {"no_fraction", "2026-11-25T10:00:00Z", kSeedTs},
    {"lowercase_t_z", "2026-11-25t10:00:00z", kSeedTs},
    {"space_separator", "2026-11-25 10:00:00Z", kSeedTs},
    {"epoch", "1970-01-01T00:00:00Z", 0},
    {"before_epoch", "1969-12-31T23:59:59.5Z", -kSec / 2},
    {"year_0000", "0000-01-01T00:00:00Z", -62'167'219'200 * kSec},
    {"year_9999_end", "9999-12-31T23:59:59.999999Z", 253'402'300'800 * kSec - 1},
    {"fraction_1_digit", "2026-11-25T10:00:00.1Z", kSeedTs + 100'000},
    {"fraction_3_digits", "2026-11-25T10:00:00.123Z", kSeedTs + 123'000},
    {"fraction_6_digits", "2026-11-25T10:00:00.123456Z", kSeedTs + 123'456},
    {"fraction_9_digits_truncated", "2026-11-25T10:00:00.123456789Z", kSeedTs + 123'456},
    {"fraction_7_digits_truncated_not_rounded", "2026-11-25T10:00:00.9999999Z", kSeedTs + 999'999},
    {"offset_plus", "2026-11-25T13:00:00+03:00", kSeedTs},
    {"offset_minus", "2026-11-25T04:30:00-05:30", kSeedTs},
    {"offset_zero", "2026-11-25T10:00:00+00:00", kSeedTs},
    {"offset_minus_zero", "2026-11-25T10:00:00-00:00", kSeedTs},
    {"offset_max", "2026-11-26T09:59:00+23:59", kSeedTs},
    {"offset_crosses_date", "2026-11-25T00:30:00+01:00", kSeedTs - 10 * 3600 * kSec - 1800 * kSec},
    {"offset_with_fraction", "2026-11-25T13:00:00.25+03:00", kSeedTs + 250'000},
    {"leap_day_2024", "2024-02-29T00:00:00Z", 1'709'164'800 * kSec},
    {"leap_day_2000", "2000-02-29T00:00:00Z", 951'782'400 * kSec},
    {"leap_second", "2016-12-31T23:59:60Z", 1'483'228'800 * kSec - 1},
    {"leap_second_fraction_ignored", "2016-12-31T23:59:60.5Z", 1'483'228'800 * kSec - 1},
    {"end_of_month_30", "2026-04-30T00:00:00Z", 1'777'507'200 * kSec},
    {"end_of_day", "2026-11-25T23:59:59Z", kSeedTs + 13 * 3600 * kSec + 3599 * kSec},
    // Refused forms.
    {"empty", "", std::nullopt},
    {"date_only", "2026-11-25", std::nullopt},
    {"no_zone", "2026-11-25T10:00:00", std::nullopt},
    {"no_zone_fraction", "2026-11-25T10:00:00.000", std::nullopt},
    {"bad_separator", "2026-11-25X10:00:00Z", std::nullopt},
    {"slashes", "2026/11/25T10:00:00Z", std::nullopt},
    {"short_year", "226-11-25T10:00:00Z", std::nullopt},
    {"five_digit_year", "20261-11-25T10:00:00Z", std::nullopt},
    {"signed_year", "+2026-11-25T10:00:00Z", std::nullopt},
    {"one_digit_month", "2026-1-25T10:00:00Z", std::nullopt},
    {"month_00", "2026-00-25T10:00:00Z", std::nullopt},
    {"month_13", "2026-13-25T10:00:00Z", std::nullopt},
    {"day_00", "2026-11-00T10:00:00Z", std::nullopt},
    {"day_31_in_november", "2026-11-31T10:00:00Z", std::nullopt},
    {"day_32", "2026-01-32T10:00:00Z", std::nullopt},
    {"feb_29_non_leap", "2026-02-29T00:00:00Z", std::nullopt},
    {"feb_29_1900", "1900-02-29T00:00:00Z", std::nullopt},
    {"feb_30_leap", "2024-02-30T00:00:00Z", std::nullopt},
    {"hour_24", "2026-11-25T24:00:00Z", std::nullopt},
    {"minute_60", "2026-11-25T10:60:00Z", std::nullopt},
    {"second_61", "2026-11-25T10:00:61Z", std::nullopt},
    {"no_seconds", "2026-11-25T10:00Z", std::nullopt},
    {"empty_fraction", "2026-11-25T10:00:00.Z", std::nullopt},
    {"fraction_10_digits", "2026-11-25T10:00:00.1234567890Z", std::nullopt},
    {"comma_fraction", "2026-11-25T10:00:00,5Z", std::nullopt},
    {"offset_hour_24", "2026-11-25T10:00:00+24:00", std::nullopt},
    {"offset_minute_60", "2026-11-25T10:00:00+01:60", std::nullopt},
    {"offset_no_colon", "2026-11-25T10:00:00+0300", std::nullopt},
    {"offset_hours_only", "2026-11-25T10:00:00+03", std::nullopt},
    {"offset_too_long", "2026-11-25T10:00:00+03:000", std::nullopt},
    {"zone_name", "2026-11-25T10:00:00UTC", std::nullopt},
    {"trailing_space", "2026-11-25T10:00:00Z ", std::nullopt},
    {"leading_space", " 2026-11-25T10:00:00Z", std::nullopt},
    {"trailing_garbage", "2026-11-25T10:00:00Zx", std::nullopt},
    {"double_zone", "2026-11-25T10:00:00Z+01:00", std::nullopt},
    {"letters_in_digits", "2026-1a-25T10:00:00Z", std::nullopt},
    {"minus_in_digits", "2026-11--5T10:00:00Z", std::nullopt},
    {"nul_inside", std::string("2026-11-25T10:00:00\0Z", 21), std::nullopt},
    {"unix_number", "1795600800", std::nullopt},
};

class ParseTest : public ::testing::TestWithParam<ParseCase> {};

TEST_P(ParseTest, Parses) {
  const ParseCase& c = GetParam();
  EXPECT_EQ(ParseRfc3339Micros(c.input), c.expected) << c.input;
}

INSTANTIATE_TEST_SUITE_P(Table, ParseTest, ::testing::ValuesIn(kParseCases),
                         [](const auto& info) { return std::string(info.param.name); });

struct FormatCase {
  const char* name;
  int64_t micros;
  const char* expected;
};

void PrintTo(const FormatCase& c, std::ostream* os) { *os << c.name; }

const FormatCase kFormatCases[] = {
    {"seed", kSeedTs, "2026-11-25T10:00:00.000000Z"},
    {"epoch", 0, "1970-01-01T00:00:00.000000Z"},
    {"one_micro", 1, "1970-01-01T00:00:00.000001Z"},
    {"before_epoch", -1, "1969-12-31T23:59:59.999999Z"},
    {"fraction", kSeedTs + 123'456, "2026-11-25T10:00:00.123456Z"},
    {"leap_day", 1'709'164'800 * kSec, "2024-02-29T00:00:00.000000Z"},
    {"year_0000", -62'167'219'200 * kSec, "0000-01-01T00:00:00.000000Z"},
    {"year_9999", 253'402'300'800 * kSec - 1, "9999-12-31T23:59:59.999999Z"},
    {"year_10000", 253'402'300'800 * kSec, "10000-01-01T00:00:00.000000Z"},
};

class FormatTest : public ::testing::TestWithParam<FormatCase> {};

TEST_P(FormatTest, Formats) {
  const FormatCase& c = GetParam();
  EXPECT_EQ(FormatRfc3339Micros(c.micros), c.expected);
}

INSTANTIATE_TEST_SUITE_P(Table, FormatTest, ::testing::ValuesIn(kFormatCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(FormatTest, ExtremesDoNotCrash) {
  EXPECT_FALSE(FormatRfc3339Micros(INT64_MIN).empty());
  EXPECT_FALSE(FormatRfc3339Micros(INT64_MAX).empty());
  EXPECT_EQ(FormatRfc3339Micros(INT64_MIN)[0], '-');
}

TEST(RoundTripTest, FormatThenParseIsIdentity) {
  // Every day of years 0000..9999 would be slow under sanitizers; a stride
  // that is coprime with days and seconds still visits all months and leap days.
  const int64_t first = -62'167'219'200 * kSec;
  const int64_t last = 253'402'300'800 * kSec - 1;
  const int64_t step = 86'400 * kSec * 7 + 3'723 * kSec + 654'321;
  int checked = 0;
  for (int64_t t = first; t <= last; t += step) {
    const std::string s = FormatRfc3339Micros(t);
    ASSERT_EQ(ParseRfc3339Micros(s), t) << s;
    ++checked;
  }
  EXPECT_GT(checked, 500'000);
  EXPECT_EQ(ParseRfc3339Micros(FormatRfc3339Micros(last)), last);
}

TEST(RoundTripTest, EveryDayAroundLeapYears) {
  for (int year : {1900, 2000, 2023, 2024, 2100}) {
    for (int month = 1; month <= 12; ++month) {
      for (int day = 1; day <= 31; ++day) {
        char buf[32];
        std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT12:34:56.789Z", year, month, day);
        const bool leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        const int days_in_month[] = {31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        const std::optional<int64_t> t = ParseRfc3339Micros(buf);
        if (day > days_in_month[month - 1]) {
          EXPECT_FALSE(t.has_value()) << buf;
          continue;
        }
        ASSERT_TRUE(t.has_value()) << buf;
        std::string expected = buf;
        expected.replace(expected.size() - 1, 1, "000Z");
        EXPECT_EQ(FormatRfc3339Micros(*t), expected);
      }
    }
  }
}

}  // namespace
}  // namespace bpmc
