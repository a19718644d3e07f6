#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <string>

#include "ingestion/event.h"

namespace bpmc::ingestion {
namespace {

UsageEvent Minimal() {
  UsageEvent e;
  e.connector = "c";
  e.operation = "o";
  e.make_account_id = "1";
  e.timestamp_us = 1'795'600'800'000'000;
  return e;
}

UsageEvent Full() {
  UsageEvent e;
  e.id = "0190a6b2-7d1c-7abc-8def-0123456789ab";
  e.api_key_id = "00000000-0000-4000-8000-000000000001";
  e.connector = "crm-connector \xd0\xb4\xf0\x9f\x98\x80";
  e.operation = "getContact";
  e.make_account_id = "12345";
  e.timestamp_us = 1'795'600'800'123'456;
  e.status = EventStatus::kError;
  e.error_type = "Timeout";
  e.error_message = std::string(4096 * 4, 'm');  // forces multi-byte varints
  e.duration_ms = 1234.5;
  return e;
}

struct RoundTripCase {
  const char* name;
  UsageEvent event;
};

void PrintTo(const RoundTripCase& c, std::ostream* os) { *os << c.name; }

std::vector<RoundTripCase> RoundTripCases() {
  std::vector<RoundTripCase> cases;
  cases.push_back({"minimal", Minimal()});
  cases.push_back({"full", Full()});
  UsageEvent e = Minimal();
  e.duration_ms = 0.0;
  cases.push_back({"zero_duration", e});
  e.duration_ms = 86'400'000.0;
  cases.push_back({"max_duration", e});
  e = Minimal();
  e.timestamp_us = INT64_MIN;
  cases.push_back({"min_timestamp", e});
  e.timestamp_us = INT64_MAX;
  cases.push_back({"max_timestamp", e});
  e.timestamp_us = -1;
  cases.push_back({"negative_timestamp", e});
  e = UsageEvent();
  cases.push_back({"all_empty", e});
  e = Minimal();
  e.error_message = std::string(127, 'x');
  cases.push_back({"length_127", e});
  e.error_message = std::string(128, 'x');
  cases.push_back({"length_128", e});
  e.error_message = std::string("a\0b", 3);
  cases.push_back({"embedded_nul", e});
  e = Minimal();
  e.status = EventStatus::kError;
  cases.push_back({"error_without_details", e});
  return cases;
}

class RoundTripTest : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(RoundTripTest, DecodeOfEncodeIsIdentity) {
  const UsageEvent& event = GetParam().event;
  const std::string record = EncodeEventRecord(event);
  EXPECT_EQ(record[0], '\x01');
  UsageEvent decoded;
  decoded.connector = "stale value that must be overwritten";
  ASSERT_TRUE(DecodeEventRecord(record, &decoded));
  EXPECT_EQ(decoded, event);
  EXPECT_EQ(EncodeEventRecord(decoded), record);
}

TEST_P(RoundTripTest, EveryTruncationIsRejected) {
  const std::string record = EncodeEventRecord(GetParam().event);
  for (size_t n = 0; n < record.size(); ++n) {
    UsageEvent decoded = Full();
    ASSERT_FALSE(DecodeEventRecord(std::string_view(record).substr(0, n), &decoded)) << n;
    EXPECT_EQ(decoded, Full()) << "output changed on failure at " << n;
  }
}

TEST_P(RoundTripTest, TrailingBytesAreRejected) {
  const std::string record = EncodeEventRecord(GetParam().event);
  UsageEvent decoded;
  EXPECT_FALSE(DecodeEventRecord(record + '\0', &decoded));
  EXPECT_FALSE(DecodeEventRecord(record + record, &decoded));
}

INSTANTIATE_TEST_SUITE_P(Table, RoundTripTest, ::testing::ValuesIn(RoundTripCases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(RecordLayoutTest, MinimalBytes) {
  // version, seven length-prefixed strings, 8-byte LE timestamp, status, no duration.
  const std::string expected = std::string("\x01", 1) + std::string("\x00\x00", 2) +
                               "\x01"
                               "c"
                               "\x01"
                               "o"
                               "\x01"
                               "1" +
                               std::string("\x00\x00", 2) +
                               std::string("\x00\xa8\xd7\xe3\x16\x61\x06\x00", 8) +
                               std::string("\x00\x00", 2);
  EXPECT_EQ(EncodeEventRecord(Minimal()), expected);
}

// Corruptions of a valid minimal record, by byte offset (see MinimalBytes).
struct CorruptCase {
  const char* name;
  size_t offset;
  char value;
};

const CorruptCase kCorruptCases[] = {
    {"version_0", 0, '\x00'},
    {"version_2", 0, '\x02'},
    {"version_ff", 0, '\xff'},
    {"id_length_past_end", 1, '\x7f'},
    {"connector_length_past_end", 3, '\x40'},
    {"status_2", 19, '\x02'},
    {"status_ff", 19, '\xff'},
    {"duration_flag_2", 20, '\x02'},
    {"duration_flag_1_without_value", 20, '\x01'},
};

TEST(RecordCorruptionTest, Table) {
  const std::string good = EncodeEventRecord(Minimal());
  ASSERT_EQ(good.size(), 21u);
  for (const CorruptCase& c : kCorruptCases) {
    std::string bad = good;
    bad[c.offset] = c.value;
    UsageEvent decoded;
    EXPECT_FALSE(DecodeEventRecord(bad, &decoded)) << c.name;
  }
}

TEST(RecordCorruptionTest, VarintRules) {
  const std::string tail = EncodeEventRecord(Minimal()).substr(2);  // after id's length
  struct VarintCase {
    const char* name;
    std::string id_length;  // encoded length of `id`, followed by the rest of Minimal()
    bool ok;
  };
  const VarintCase cases[] = {
      {"zero", std::string("\x00", 1), true},
      {"non_minimal_zero", std::string("\x80\x00", 2), false},
      {"six_byte", std::string("\x80\x80\x80\x80\x80\x00", 6), false},
      {"over_32_bits", std::string("\xff\xff\xff\xff\x1f", 5), false},
      {"max_u32_past_end", std::string("\xff\xff\xff\xff\x0f", 5), false},
      {"unterminated", std::string("\x80\x80\x80\x80\x80", 5), false},
  };
  for (const VarintCase& c : cases) {
    UsageEvent decoded;
    EXPECT_EQ(DecodeEventRecord(std::string("\x01", 1) + c.id_length + tail, &decoded), c.ok)
        << c.name;
  }
}

TEST(RecordCorruptionTest, NonFiniteDurationRejected) {
  UsageEvent e = Minimal();
  for (double bad :
       {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
        -std::numeric_limits<double>::infinity()}) {
    e.duration_ms = bad;
    UsageEvent decoded;
    EXPECT_FALSE(DecodeEventRecord(EncodeEventRecord(e), &decoded));
  }
}

TEST(RecordCorruptionTest, NullOutputAndEmptyInput) {
  EXPECT_FALSE(DecodeEventRecord(EncodeEventRecord(Minimal()), nullptr));
  UsageEvent decoded;
  EXPECT_FALSE(DecodeEventRecord("", &decoded));
}

TEST(RecordCorruptionTest, EverySingleByteFlipIsHandled) {
  // Not every flip is detectable (string bytes are opaque); none may crash,
  // and whatever decodes must re-encode to the same bytes.
  UsageEvent e = Full();
  e.error_message = "short";
  const std::string good = EncodeEventRecord(e);
  for (size_t i = 0; i < good.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      UsageEvent decoded;
      if (DecodeEventRecord(bad, &decoded)) {
        EXPECT_EQ(EncodeEventRecord(decoded), bad) << i << ":" << bit;
      }
    }
  }
}

}  // namespace
}  // namespace bpmc::ingestion
