#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "ingestion/event.h"

namespace bpmc::ingestion {
namespace {

constexpr int64_t kSec = 1'000'000;
constexpr int64_t kNow = 1'795'600'800 * kSec;  // 2026-11-25T10:00:00Z, the seed's timestamp

// The seed's exact request body.
const char kSeedBody[] =
    R"({"connector":"crm-connector","operation":"getContact","make_account_id":"12345","timestamp":"2026-11-25T10:00:00.000Z"})";

ParseOptions Options() {
  ParseOptions o;
  o.now_us = kNow;
  o.min_timestamp_us = kNow - 30 * 86'400 * kSec;  // 2026-10-26T10:00:00Z
  o.max_batch_events = 3;
  return o;
}

// A JSON string literal: the tests write values already escaped.
std::string Q(const std::string& s) { return "\"" + s + "\""; }

std::string Repeat(const std::string& unit, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += unit;
  return out;
}

// The seed's fields as (key, raw JSON value) pairs, then edited per case.
class Body {
 public:
  Body() {
    fields_ = {{"connector", Q("crm-connector")},
               {"operation", Q("getContact")},
               {"make_account_id", Q("12345")},
               {"timestamp", Q("2026-11-25T10:00:00.000Z")}};
  }
  Body& Set(const std::string& key, const std::string& raw) {
    for (auto& f : fields_) {
      if (f.first == key) {
        f.second = raw;
        return *this;
      }
    }
    fields_.emplace_back(key, raw);
    return *this;
  }
  Body& Add(const std::string& key, const std::string& raw) {  // even if present
    fields_.emplace_back(key, raw);
    return *this;
  }
  Body& Drop(const std::string& key) {
    std::vector<std::pair<std::string, std::string>> kept;
    for (auto& f : fields_) {
      if (f.first != key) kept.push_back(f);
    }
    fields_ = kept;
    return *this;
  }
  std::string Json() const {
    std::string out = "{";
    for (const auto& f : fields_) {
      if (out.size() > 1) out += ",";
      out += Q(f.first) + ":" + f.second;
    }
    return out + "}";
  }
  operator std::string() const { return Json(); }  // NOLINT: table convenience

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

Body Seed() { return Body(); }

struct Case {
  const char* name;
  std::string body;
  int status;           // 0: accepted
  const char* field;    // expected RequestError::field
  const char* message;  // substring of RequestError::message
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

// Characters: 'a' is 1 byte, Cyrillic 'д' 2 bytes, '€' 3 bytes, an emoji 4 bytes.
const std::string kD = "\xd0\xb4";
const std::string kEuro = "\xe2\x82\xac";
const std::string kEmoji = "\xf0\x9f\x98\x80";

std::vector<Case> EventCases() {
  std::vector<Case> c = {
      {"seed_exact_body", kSeedBody, 0, "", ""},
      {"seed_whitespace_around", std::string(" \n\t") + kSeedBody + "\r\n ", 0, "", ""},
      {"unknown_keys_ignored",
       Seed().Set("foo", "1").Set("nested", R"({"a":[1,2,{"b":null}]})").Set("connector2", "[]"), 0,
       "", ""},
      {"unknown_key_duplicated_ignored", Seed().Set("x", "1").Add("x", "2"), 0, "", ""},
      {"escaped_key_recognized",
       R"({"conn\u0065ctor":"c","operation":"o","make_account_id":"1","timestamp":"2026-11-25T10:00:00Z"})",
       0, "", ""},

      // Body.
      {"body_empty", "", 400, "", "empty"},
      {"body_whitespace", "   ", 400, "", ""},
      {"body_array", std::string("[") + kSeedBody + "]", 400, "", "JSON object"},
      {"body_null", "null", 400, "", "JSON object"},
      {"body_number", "42", 400, "", "JSON object"},
      {"body_string", Q("x"), 400, "", "JSON object"},
      {"body_truncated", std::string(kSeedBody).substr(0, 40), 400, "", "not valid JSON"},
      {"body_trailing_garbage", std::string(kSeedBody) + "x", 400, "", "not valid JSON"},
      {"body_two_documents", std::string(kSeedBody) + kSeedBody, 400, "", "not valid JSON"},
      {"body_trailing_comma", R"({"connector":"c",})", 400, "", "not valid JSON"},
      {"body_single_quotes", "{'connector':'c'}", 400, "", "not valid JSON"},
      {"body_bom", "\xef\xbb\xbf" + std::string(kSeedBody), 400, "", ""},
      {"body_invalid_utf8_in_value", Seed().Set("operation", Q("get\xff")), 400, "", "UTF-8"},
      {"body_invalid_utf8_in_unknown_key", Seed().Set("x\xc3", "1"), 400, "", "UTF-8"},
      {"body_overlong_utf8", Seed().Set("operation", Q("\xc0\xaf")), 400, "", "UTF-8"},
      {"body_utf8_surrogate_bytes", Seed().Set("operation", Q("\xed\xa0\x80")), 400, "", "UTF-8"},
      {"body_lone_surrogate_escape", Seed().Set("operation", Q("\\ud800")), 400, "", ""},
      {"body_raw_control_char", Seed().Set("operation", Q("a\x01")), 400, "", ""},
      {"body_raw_nul_byte", Seed().Set("operation", Q(std::string("a\0b", 3))), 400, "", ""},
      {"body_nan_literal", Seed().Set("duration_ms", "NaN"), 400, "", "not valid JSON"},
      {"body_number_overflow", Seed().Set("duration_ms", "1e400"), 400, "", "number"},
      {"body_too_deep", Seed().Set("x", Repeat("[", 2000) + Repeat("]", 2000)), 400, "", "deep"},
      {"body_deep_but_allowed", Seed().Set("x", Repeat("[", 500) + Repeat("]", 500)), 0, "", ""},

      // connector: required string, 1..50 characters.
      {"connector_missing", Seed().Drop("connector"), 400, "connector", "connector is required"},
      {"connector_null", Seed().Set("connector", "null"), 400, "connector", "is required"},
      {"connector_number", Seed().Set("connector", "1"), 400, "connector",
       "connector must be a string"},
      {"connector_bool", Seed().Set("connector", "true"), 400, "connector", "must be a string"},
      {"connector_array", Seed().Set("connector", R"(["a"])"), 400, "connector",
       "must be a string"},
      {"connector_object", Seed().Set("connector", "{}"), 400, "connector", "must be a string"},
      {"connector_empty", Seed().Set("connector", Q("")), 400, "connector", "must not be empty"},
      {"connector_1_char", Seed().Set("connector", Q("a")), 0, "", ""},
      {"connector_50_chars", Seed().Set("connector", Q(Repeat("a", 50))), 0, "", ""},
      {"connector_51_chars", Seed().Set("connector", Q(Repeat("a", 51))), 400, "connector",
       "connector is longer than 50 characters"},
      {"connector_50_cyrillic", Seed().Set("connector", Q(Repeat(kD, 50))), 0, "", ""},
      {"connector_51_cyrillic", Seed().Set("connector", Q(Repeat(kD, 51))), 400, "connector",
       "longer than 50 characters"},
      {"connector_50_emoji", Seed().Set("connector", Q(Repeat(kEmoji, 50))), 0, "", ""},
      {"connector_51_euro", Seed().Set("connector", Q(Repeat(kEuro, 51))), 400, "connector",
       "longer than 50"},
      {"connector_50_escaped_cyrillic", Seed().Set("connector", Q(Repeat("\\u0434", 50))), 0, "",
       ""},
      {"connector_51_escaped", Seed().Set("connector", Q(Repeat("\\n", 51))), 400, "connector",
       "longer than 50"},
      {"connector_nul_escape", Seed().Set("connector", Q("a\\u0000b")), 400, "connector", "U+0000"},

      // operation: required string, 1..100.
      {"operation_missing", Seed().Drop("operation"), 400, "operation", "operation is required"},
      {"operation_number", Seed().Set("operation", "7"), 400, "operation",
       "operation must be a string"},
      {"operation_empty", Seed().Set("operation", Q("")), 400, "operation", "must not be empty"},
      {"operation_100_chars", Seed().Set("operation", Q(Repeat("o", 100))), 0, "", ""},
      {"operation_101_chars", Seed().Set("operation", Q(Repeat("o", 101))), 400, "operation",
       "operation is longer than 100 characters"},
      {"operation_100_cyrillic", Seed().Set("operation", Q(Repeat(kD, 100))), 0, "", ""},
      {"operation_101_cyrillic", Seed().Set("operation", Q(Repeat(kD, 101))), 400, "operation",
       "longer than 100"},
      {"operation_nul", Seed().Set("operation", Q("\\u0000")), 400, "operation", "U+0000"},

      // make_account_id: required string 1..100 or integer.
      {"account_missing", Seed().Drop("make_account_id"), 400, "make_account_id",
       "make_account_id is required"},
      {"account_null", Seed().Set("make_account_id", "null"), 400, "make_account_id",
       "is required"},
      {"account_integer", Seed().Set("make_account_id", "12345"), 0, "", ""},
      {"account_zero", Seed().Set("make_account_id", "0"), 0, "", ""},
      {"account_uint64_max", Seed().Set("make_account_id", "18446744073709551615"), 0, "", ""},
      {"account_too_big_integer", Seed().Set("make_account_id", "18446744073709551616"), 400, "",
       "number"},
      {"account_float", Seed().Set("make_account_id", "12345.0"), 400, "make_account_id",
       "make_account_id must be a string or an integer"},
      {"account_exponent", Seed().Set("make_account_id", "1e3"), 400, "make_account_id",
       "string or an integer"},
      {"account_bool", Seed().Set("make_account_id", "false"), 400, "make_account_id",
       "string or an integer"},
      {"account_object", Seed().Set("make_account_id", R"({"id":1})"), 400, "make_account_id",
       "string or an integer"},
      {"account_empty", Seed().Set("make_account_id", Q("")), 400, "make_account_id",
       "must not be empty"},
      {"account_100_chars", Seed().Set("make_account_id", Q(Repeat("9", 100))), 0, "", ""},
      {"account_101_chars", Seed().Set("make_account_id", Q(Repeat("9", 101))), 400,
       "make_account_id", "longer than 100 characters"},
      {"account_nul", Seed().Set("make_account_id", Q("1\\u00002")), 400, "make_account_id",
       "U+0000"},

      // timestamp: required RFC 3339 string within [now - retention, now + 24h].
      {"timestamp_missing", Seed().Drop("timestamp"), 400, "timestamp", "timestamp is required"},
      {"timestamp_null", Seed().Set("timestamp", "null"), 400, "timestamp", "is required"},
      {"timestamp_number", Seed().Set("timestamp", "1795600800000"), 400, "timestamp",
       "timestamp must be a string"},
      {"timestamp_empty", Seed().Set("timestamp", Q("")), 400, "timestamp", "RFC 3339"},
      {"timestamp_no_zone", Seed().Set("timestamp", Q("2026-11-25T10:00:00")), 400, "timestamp",
       "RFC 3339"},
      {"timestamp_bad_date", Seed().Set("timestamp", Q("2026-02-30T10:00:00Z")), 400, "timestamp",
       "RFC 3339"},
      {"timestamp_garbage", Seed().Set("timestamp", Q("yesterday")), 400, "timestamp", "RFC 3339"},
      {"timestamp_nul", Seed().Set("timestamp", Q("2026-11-25T10:00:00Z\\u0000")), 400, "timestamp",
       "RFC 3339"},
      {"timestamp_offset", Seed().Set("timestamp", Q("2026-11-25T13:00:00+03:00")), 0, "", ""},
      {"timestamp_future_boundary", Seed().Set("timestamp", Q("2026-11-26T10:00:00Z")), 0, "", ""},
      {"timestamp_future_boundary_plus_1us",
       Seed().Set("timestamp", Q("2026-11-26T10:00:00.000001Z")), 400, "timestamp",
       "timestamp is more than 24h in the future"},
      {"timestamp_far_future", Seed().Set("timestamp", Q("9999-12-31T23:59:59Z")), 400, "timestamp",
       "in the future"},
      {"timestamp_retention_boundary", Seed().Set("timestamp", Q("2026-10-26T10:00:00Z")), 0, "",
       ""},
      {"timestamp_retention_boundary_minus_1us",
       Seed().Set("timestamp", Q("2026-10-26T09:59:59.999999Z")), 400, "timestamp",
       "timestamp is older than the retention window"},
      {"timestamp_year_0000", Seed().Set("timestamp", Q("0000-01-01T00:00:00Z")), 400, "timestamp",
       "retention"},

      // event_id: optional UUID.
      {"event_id_lower", Seed().Set("event_id", Q("0190a6b2-7d1c-7abc-8def-0123456789ab")), 0, "",
       ""},
      {"event_id_upper", Seed().Set("event_id", Q("0190A6B2-7D1C-7ABC-8DEF-0123456789AB")), 0, "",
       ""},
      {"event_id_null", Seed().Set("event_id", "null"), 0, "", ""},
      {"event_id_empty", Seed().Set("event_id", Q("")), 0, "", ""},
      {"event_id_not_uuid", Seed().Set("event_id", Q("not-a-uuid")), 400, "event_id",
       "event_id must be a UUID"},
      {"event_id_no_dashes", Seed().Set("event_id", Q("0190a6b27d1c7abc8def0123456789ab")), 400,
       "event_id", "UUID"},
      {"event_id_braces", Seed().Set("event_id", Q("{0190a6b2-7d1c-7abc-8def-0123456789ab}")), 400,
       "event_id", "UUID"},
      {"event_id_non_hex", Seed().Set("event_id", Q("0190a6b2-7d1c-7abc-8def-0123456789ag")), 400,
       "event_id", "UUID"},
      {"event_id_long", Seed().Set("event_id", Q(Repeat("a", 5000))), 400, "event_id", "UUID"},
      {"event_id_number", Seed().Set("event_id", "123"), 400, "event_id",
       "event_id must be a string"},
      {"event_id_nul", Seed().Set("event_id", Q("\\u0000")), 400, "event_id", "U+0000"},

      // status: optional "success" | "error".
      {"status_success", Seed().Set("status", Q("success")), 0, "", ""},
      {"status_error", Seed().Set("status", Q("error")), 0, "", ""},
      {"status_null", Seed().Set("status", "null"), 0, "", ""},
      {"status_empty", Seed().Set("status", Q("")), 0, "", ""},
      {"status_uppercase", Seed().Set("status", Q("ERROR")), 400, "status",
       "status must be \"success\" or \"error\""},
      {"status_other", Seed().Set("status", Q("failed")), 400, "status", "\"success\" or"},
      {"status_padded", Seed().Set("status", Q("error ")), 400, "status", "\"success\" or"},
      {"status_bool", Seed().Set("status", "true"), 400, "status", "status must be a string"},
      {"status_number", Seed().Set("status", "1"), 400, "status", "must be a string"},
      {"status_long", Seed().Set("status", Q(Repeat("e", 200))), 400, "status", "\"success\" or"},

      // error_type: optional string <= 100.
      {"error_type_ok", Seed().Set("status", Q("error")).Set("error_type", Q("Timeout")), 0, "",
       ""},
      {"error_type_null", Seed().Set("error_type", "null"), 0, "", ""},
      {"error_type_empty", Seed().Set("error_type", Q("")), 0, "", ""},
      {"error_type_100", Seed().Set("error_type", Q(Repeat(kD, 100))), 0, "", ""},
      {"error_type_101", Seed().Set("error_type", Q(Repeat("t", 101))), 400, "error_type",
       "error_type is longer than 100 characters"},
      {"error_type_number", Seed().Set("error_type", "500"), 400, "error_type",
       "error_type must be a string"},
      {"error_type_nul", Seed().Set("error_type", Q("\\u0000")), 400, "error_type", "U+0000"},

      // error_message: optional string <= 4096.
      {"error_message_ok", Seed().Set("error_message", Q("line1\\nline2 \\\"quoted\\\"")), 0, "",
       ""},
      {"error_message_null", Seed().Set("error_message", "null"), 0, "", ""},
      {"error_message_4096", Seed().Set("error_message", Q(Repeat("m", 4096))), 0, "", ""},
      {"error_message_4096_emoji", Seed().Set("error_message", Q(Repeat(kEmoji, 4096))), 0, "", ""},
      {"error_message_4097", Seed().Set("error_message", Q(Repeat("m", 4097))), 400,
       "error_message", "error_message is longer than 4096 characters"},
      {"error_message_4097_cyrillic", Seed().Set("error_message", Q(Repeat(kD, 4097))), 400,
       "error_message", "longer than 4096"},
      {"error_message_object", Seed().Set("error_message", R"({"msg":"x"})"), 400, "error_message",
       "error_message must be a string"},
      {"error_message_nul", Seed().Set("error_message", Q("boom\\u0000")), 400, "error_message",
       "U+0000"},

      // duration_ms: optional number in [0, 86400000].
      {"duration_zero", Seed().Set("duration_ms", "0"), 0, "", ""},
      {"duration_fraction", Seed().Set("duration_ms", "12.5"), 0, "", ""},
      {"duration_exponent", Seed().Set("duration_ms", "1.5e3"), 0, "", ""},
      {"duration_max", Seed().Set("duration_ms", "86400000"), 0, "", ""},
      {"duration_null", Seed().Set("duration_ms", "null"), 0, "", ""},
      {"duration_negative_zero", Seed().Set("duration_ms", "-0.0"), 0, "", ""},
      {"duration_over_max", Seed().Set("duration_ms", "86400000.001"), 400, "duration_ms",
       "duration_ms must be between 0 and 86400000"},
      {"duration_negative", Seed().Set("duration_ms", "-1"), 400, "duration_ms", "between 0"},
      {"duration_tiny_negative", Seed().Set("duration_ms", "-1e-300"), 400, "duration_ms",
       "between 0"},
      {"duration_huge", Seed().Set("duration_ms", "1e308"), 400, "duration_ms", "between 0"},
      {"duration_huge_integer", Seed().Set("duration_ms", "18446744073709551615"), 400,
       "duration_ms", "between 0"},
      {"duration_string", Seed().Set("duration_ms", Q("5")), 400, "duration_ms",
       "duration_ms must be a number"},
      {"duration_string_nan", Seed().Set("duration_ms", Q("NaN")), 400, "duration_ms",
       "must be a number"},
      {"duration_infinity_literal", Seed().Set("duration_ms", "Infinity"), 400, "",
       "not valid JSON"},
      {"duration_bool", Seed().Set("duration_ms", "true"), 400, "duration_ms", "must be a number"},
      {"duration_array", Seed().Set("duration_ms", "[1]"), 400, "duration_ms", "must be a number"},

      // Duplicates of known keys, wherever they are.
      {"duplicate_connector", Seed().Add("connector", Q("other")), 400, "connector",
       "duplicate key"},
      {"duplicate_same_value", Seed().Add("operation", Q("getContact")), 400, "operation",
       "duplicate key"},
      {"duplicate_optional", Seed().Set("status", Q("error")).Add("status", Q("success")), 400,
       "status", "duplicate key"},
      {"duplicate_null_optional", Seed().Set("duration_ms", "null").Add("duration_ms", "null"), 400,
       "duration_ms", "duplicate key"},
      {"duplicate_via_escape",
       std::string(R"({"conn\u0065ctor":"x",)") + std::string(kSeedBody).substr(1), 400,
       "connector", "duplicate key"},

      // Order of checks: the first key in the documented order wins.
      {"first_error_reported", Seed().Drop("connector").Drop("timestamp"), 400, "connector",
       "connector is required"},
      {"duplicate_before_type_error",
       Seed().Set("duration_ms", Q("x")).Add("event_id", "null").Add("event_id", "null"), 400,
       "event_id", "duplicate key"},
  };
  return c;
}

void ExpectCase(const Case& c, const std::variant<UsageEvent, RequestError>& r) {
  if (c.status == 0) {
    const RequestError* e = std::get_if<RequestError>(&r);
    EXPECT_EQ(e, nullptr) << "refused: " << (e ? e->message + " [" + e->field + "]" : "");
    return;
  }
  ASSERT_TRUE(std::holds_alternative<RequestError>(r)) << "accepted";
  const RequestError& e = std::get<RequestError>(r);
  EXPECT_EQ(e.http_status, c.status);
  EXPECT_EQ(e.field, c.field) << e.message;
  EXPECT_NE(e.message.find(c.message), std::string::npos)
      << "message \"" << e.message << "\" lacks \"" << c.message << "\"";
}

class EventTableTest : public ::testing::TestWithParam<Case> {};

TEST_P(EventTableTest, Event) {
  const Case& c = GetParam();
  ExpectCase(c, ParseUsageEvent(c.body, Options()));
}

INSTANTIATE_TEST_SUITE_P(Table, EventTableTest, ::testing::ValuesIn(EventCases()),
                         [](const auto& info) { return std::string(info.param.name); });

// Every single-event case, wrapped as item [1] of a batch, must fail (or pass)
// the same way with the field prefixed by "[1].".
TEST_P(EventTableTest, SameRuleInsideBatch) {
  const Case& c = GetParam();
  if (c.status != 0 && std::string(c.field).empty()) return;  // whole-body errors differ
  const std::string body = std::string("[") + kSeedBody + "," + c.body + "]";
  const auto r = ParseUsageBatch(body, Options());
  if (c.status == 0) {
    const RequestError* e = std::get_if<RequestError>(&r);
    ASSERT_EQ(e, nullptr) << e->message << " [" << e->field << "]";
    EXPECT_EQ(std::get<std::vector<UsageEvent>>(r).size(), 2u);
    return;
  }
  ASSERT_TRUE(std::holds_alternative<RequestError>(r));
  const RequestError& e = std::get<RequestError>(r);
  EXPECT_EQ(e.http_status, c.status);
  EXPECT_EQ(e.field, "[1]." + std::string(c.field));
  EXPECT_NE(e.message.find(c.message), std::string::npos) << e.message;
}

std::string Batch(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const auto& i : items) out += (out.size() > 1 ? "," : "") + i;
  return out + "]";
}

std::vector<Case> BatchCases() {
  const std::string ok = kSeedBody;
  return {
      {"one", Batch({ok}), 0, "", ""},
      {"at_limit", Batch({ok, ok, ok}), 0, "", ""},
      {"over_limit", Batch({ok, ok, ok, ok}), 413, "", "more than 3 events"},
      {"over_limit_with_bad_items", Batch({"1", "2", "3", "4"}), 413, "", "more than 3"},
      {"empty", "[]", 400, "", "empty"},
      {"empty_whitespace", " [ ] ", 400, "", "empty"},
      {"object_not_array", ok, 400, "", "JSON array"},
      {"null", "null", 400, "", "JSON array"},
      {"malformed", "[" + ok, 400, "", "not valid JSON"},
      {"item_number", Batch({ok, "1"}), 400, "[1]", "must be a JSON object"},
      {"item_null", Batch({"null"}), 400, "[0]", "JSON object"},
      {"item_array", Batch({ok, ok, "[" + ok + "]"}), 400, "[2]", "JSON object"},
      {"item_string", Batch({Q("x")}), 400, "[0]", "JSON object"},
      {"bad_timestamp_index_2", Batch({ok, ok, Seed().Set("timestamp", Q("x"))}), 400,
       "[2].timestamp", "RFC 3339"},
      {"first_bad_item_wins", Batch({ok, Seed().Drop("operation"), Seed().Drop("connector")}), 400,
       "[1].operation", "operation is required"},
      {"duplicate_in_item", Batch({Seed().Add("connector", Q("x"))}), 400, "[0].connector",
       "duplicate key"},
      {"nested_batch", Batch({Batch({ok})}), 400, "[0]", "JSON object"},
  };
}

class BatchTableTest : public ::testing::TestWithParam<Case> {};

TEST_P(BatchTableTest, Batch) {
  const Case& c = GetParam();
  const auto r = ParseUsageBatch(c.body, Options());
  if (c.status == 0) {
    const RequestError* e = std::get_if<RequestError>(&r);
    EXPECT_EQ(e, nullptr) << (e ? e->message + " [" + e->field + "]" : "");
    return;
  }
  ASSERT_TRUE(std::holds_alternative<RequestError>(r)) << "accepted";
  const RequestError& e = std::get<RequestError>(r);
  EXPECT_EQ(e.http_status, c.status);
  EXPECT_EQ(e.field, c.field) << e.message;
  EXPECT_NE(e.message.find(c.message), std::string::npos) << e.message;
}

INSTANTIATE_TEST_SUITE_P(Table, BatchTableTest, ::testing::ValuesIn(BatchCases()),
                         [](const auto& info) { return std::string(info.param.name); });

// Accepted values land in the right fields, normalized.
TEST(EventValuesTest, SeedFields) {
  const auto r = ParseUsageEvent(kSeedBody, Options());
  ASSERT_TRUE(std::holds_alternative<UsageEvent>(r));
  const UsageEvent& e = std::get<UsageEvent>(r);
  EXPECT_EQ(e.id, "");
  EXPECT_EQ(e.api_key_id, "");
  EXPECT_EQ(e.connector, "crm-connector");
  EXPECT_EQ(e.operation, "getContact");
  EXPECT_EQ(e.make_account_id, "12345");
  EXPECT_EQ(e.timestamp_us, kNow);
  EXPECT_EQ(e.status, EventStatus::kSuccess);
  EXPECT_EQ(e.error_type, "");
  EXPECT_EQ(e.error_message, "");
  EXPECT_FALSE(e.duration_ms.has_value());
}

TEST(EventValuesTest, AllFields) {
  const std::string body = Seed()
                               .Set("event_id", Q("0190A6B2-7D1C-7ABC-8DEF-0123456789AB"))
                               .Set("make_account_id", "9007199254740993")
                               .Set("timestamp", Q("2026-11-25T13:00:00.1234569+03:00"))
                               .Set("status", Q("error"))
                               .Set("error_type", Q("Timeout"))
                               .Set("error_message", Q("\\u0434\\\"x\\\"\\n"))
                               .Set("duration_ms", "1234.5")
                               .Set("connector", Q(kD + kEuro + kEmoji));
  const auto r = ParseUsageEvent(body, Options());
  ASSERT_TRUE(std::holds_alternative<UsageEvent>(r)) << std::get<RequestError>(r).message;
  const UsageEvent& e = std::get<UsageEvent>(r);
  EXPECT_EQ(e.id, "0190a6b2-7d1c-7abc-8def-0123456789ab");
  EXPECT_EQ(e.connector, kD + kEuro + kEmoji);
  EXPECT_EQ(e.make_account_id, "9007199254740993");  // exact, not via double
  EXPECT_EQ(e.timestamp_us, kNow + 123'456);
  EXPECT_EQ(e.status, EventStatus::kError);
  EXPECT_EQ(e.error_type, "Timeout");
  EXPECT_EQ(e.error_message, kD + "\"x\"\n");
  ASSERT_TRUE(e.duration_ms.has_value());
  EXPECT_EQ(*e.duration_ms, 1234.5);
}

TEST(EventValuesTest, IntegerAccountIds) {
  const std::pair<const char*, const char*> cases[] = {
      {"0", "0"},
      {"-7", "-7"},
      {"9223372036854775807", "9223372036854775807"},
      {"18446744073709551615", "18446744073709551615"},
  };
  for (const auto& [json, expected] : cases) {
    const auto r = ParseUsageEvent(Seed().Set("make_account_id", json).Json(), Options());
    ASSERT_TRUE(std::holds_alternative<UsageEvent>(r)) << json;
    EXPECT_EQ(std::get<UsageEvent>(r).make_account_id, expected);
  }
}

TEST(EventValuesTest, EmptyOptionalsAreAbsentAndNegativeZeroIsZero) {
  const std::string body = Seed()
                               .Set("event_id", Q(""))
                               .Set("status", Q(""))
                               .Set("error_type", Q(""))
                               .Set("error_message", "null")
                               .Set("duration_ms", "-0.0");
  const auto r = ParseUsageEvent(body, Options());
  ASSERT_TRUE(std::holds_alternative<UsageEvent>(r));
  const UsageEvent& e = std::get<UsageEvent>(r);
  EXPECT_EQ(e.id, "");
  EXPECT_EQ(e.status, EventStatus::kSuccess);
  ASSERT_TRUE(e.duration_ms.has_value());
  EXPECT_FALSE(std::signbit(*e.duration_ms));
}

TEST(EventValuesTest, BatchKeepsOrder) {
  const auto r =
      ParseUsageBatch(Batch({Seed().Set("operation", Q("a")), Seed().Set("operation", Q("b")),
                             Seed().Set("operation", Q("c"))}),
                      Options());
  ASSERT_TRUE(std::holds_alternative<std::vector<UsageEvent>>(r));
  const auto& v = std::get<std::vector<UsageEvent>>(r);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].operation, "a");
  EXPECT_EQ(v[1].operation, "b");
  EXPECT_EQ(v[2].operation, "c");
}

TEST(EventOptionsTest, FutureMessageFollowsTheOption) {
  ParseOptions o = Options();
  o.max_future_us = 5 * 60 * kSec;
  const auto r =
      ParseUsageEvent(Seed().Set("timestamp", Q("2026-11-25T10:05:00.000001Z")).Json(), o);
  ASSERT_TRUE(std::holds_alternative<RequestError>(r));
  EXPECT_EQ(std::get<RequestError>(r).message, "timestamp is more than 5m in the future");
}

TEST(EventOptionsTest, ExtremeOptionsDoNotOverflow) {
  ParseOptions o;
  o.now_us = INT64_MAX;
  o.max_future_us = INT64_MAX;
  EXPECT_TRUE(std::holds_alternative<UsageEvent>(ParseUsageEvent(kSeedBody, o)));
  o.now_us = INT64_MIN;
  o.max_future_us = 0;
  EXPECT_TRUE(std::holds_alternative<RequestError>(ParseUsageEvent(kSeedBody, o)));
}

TEST(EventOptionsTest, DefaultBatchLimit) {
  ParseOptions o = Options();
  o.max_batch_events = kMaxBatchEvents;
  std::vector<std::string> items(kMaxBatchEvents, kSeedBody);
  auto r = ParseUsageBatch(Batch(items), o);
  ASSERT_TRUE(std::holds_alternative<std::vector<UsageEvent>>(r));
  EXPECT_EQ(std::get<std::vector<UsageEvent>>(r).size(), kMaxBatchEvents);
  items.push_back(kSeedBody);
  r = ParseUsageBatch(Batch(items), o);
  ASSERT_TRUE(std::holds_alternative<RequestError>(r));
  EXPECT_EQ(std::get<RequestError>(r).http_status, 413);
  // The parser released its large buffers and still works.
  EXPECT_TRUE(std::holds_alternative<UsageEvent>(ParseUsageEvent(kSeedBody, Options())));
}

TEST(EventThreadsTest, ConcurrentParsersAreIndependent) {
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &failures] {
      const std::string op = "op" + std::to_string(t);
      const std::string body = Seed().Set("operation", Q(op));
      for (int i = 0; i < 2000; ++i) {
        const auto r = ParseUsageEvent(body, Options());
        const UsageEvent* e = std::get_if<UsageEvent>(&r);
        if (e == nullptr || e->operation != op) ++failures[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

// Regression (found by the fuzzer): an empty body as a thread's first request,
// before its input buffer exists.
TEST(EventRobustnessTest, EmptyBodyOnAFreshThread) {
  for (int which = 0; which < 2; ++which) {
    std::thread([which] {
      const RequestError* e = nullptr;
      const auto one = ParseUsageEvent("", Options());
      const auto many = ParseUsageBatch("", Options());
      e = which == 0 ? std::get_if<RequestError>(&one) : std::get_if<RequestError>(&many);
      ASSERT_NE(e, nullptr);
      EXPECT_EQ(e->http_status, 400);
      EXPECT_EQ(e->field, "");
    }).join();
  }
}

TEST(EventRobustnessTest, EveryPrefixOfTheSeedIsHandled) {
  const std::string seed = kSeedBody;
  for (size_t n = 0; n < seed.size(); ++n) {
    const auto r = ParseUsageEvent(seed.substr(0, n), Options());
    ASSERT_TRUE(std::holds_alternative<RequestError>(r)) << n;
    EXPECT_EQ(std::get<RequestError>(r).field, "");
  }
}

}  // namespace
}  // namespace bpmc::ingestion
