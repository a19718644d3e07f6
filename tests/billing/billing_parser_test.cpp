// Table tests of ParseBillingEvents: every key, type, boundary and the batch
// rules of POST /v1/billing/events (docs/BILLING.md).
#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "billing/billing.h"

namespace bpmc::billing {
namespace {

constexpr int64_t kSec = 1'000'000;
constexpr int64_t kNow = 1'795'600'800 * kSec;  // 2026-11-25T10:00:00Z

BillingParseOptions Options() {
  BillingParseOptions o;
  o.now_us = kNow;
  o.max_batch_events = 3;
  return o;
}

std::string Q(const std::string& s) { return "\"" + s + "\""; }

std::string Repeat(const std::string& unit, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += unit;
  return out;
}

const char kEventId[] = "0190f1d2-7c3a-7b5e-9a1b-2c3d4e5f6a7b";

// An event as (key, raw JSON value) pairs, edited per case.
class Body {
 public:
  explicit Body(const std::string& type) {
    fields_ = {{"event_id", Q(kEventId)},
               {"type", Q(type)},
               {"occurred_at", Q("2026-11-25T09:00:00.000Z")},
               {"customer", Q("acme")},
               {"subscription_id", Q("sub-1")}};
    if (type == "subscription_started") {
      Set("connector", Q("crm-connector"));
      Set("plan", Q("pro-monthly"));
      Set("trial", "true");
      Set("price", R"({"amount_minor":150000,"currency":"RUB"})");
    } else if (type == "subscription_cancelled") {
      Set("reason", Q("too expensive"));
    } else if (type == "payment_succeeded" || type == "payment_failed") {
      Set("payment_id", Q("pay-1"));
      Set("connector", Q("crm-connector"));
      Set("amount", R"({"amount_minor":150000,"currency":"RUB"})");
      if (type == "payment_failed") Set("reason", Q("card_declined"));
    }
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
  Body& Add(const std::string& key, const std::string& raw) {
    fields_.emplace_back(key, raw);
    return *this;
  }
  Body& Drop(const std::string& key) {
    std::vector<std::pair<std::string, std::string>> kept;
    for (auto& f : fields_)
      if (f.first != key) kept.push_back(f);
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

Body Start() { return Body("subscription_started"); }
Body Convert() { return Body("trial_converted"); }
Body Cancel() { return Body("subscription_cancelled"); }
Body Paid() { return Body("payment_succeeded"); }
Body Failed() { return Body("payment_failed"); }

std::string Amount(const std::string& amount, const std::string& currency = Q("RUB")) {
  return R"({"amount_minor":)" + amount + R"(,"currency":)" + currency + "}";
}

struct Case {
  const char* name;
  std::string body;
  int status;           // 0: accepted
  const char* field;    // expected RequestError::field
  const char* message;  // substring of RequestError::message
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::string CaseName(const ::testing::TestParamInfo<Case>& info) { return info.param.name; }

const std::string kD = "\xd0\xb4";  // Cyrillic 'д', 2 bytes, 1 character

// "x[0][0]...": the member and the 31 arrays within the limit (the body is level 1).
const std::string kDeepField = [] {
  std::string f = "x";
  for (int i = 0; i < 31; ++i) f += "[0]";
  return f;
}();

std::vector<Case> EventCases() {
  return {
      {"start_ok", Start(), 0, "", ""},
      {"convert_ok", Convert(), 0, "", ""},
      {"cancel_ok", Cancel(), 0, "", ""},
      {"paid_ok", Paid(), 0, "", ""},
      {"failed_ok", Failed(), 0, "", ""},
      {"unknown_keys_ignored", Start().Set("x", R"({"a":[1,{"b":null}]})").Set("y", "1.5"), 0, "",
       ""},
      {"unknown_key_duplicated_ignored", Paid().Set("x", "1").Add("x", "2"), 0, "", ""},
      {"keys_of_other_types_ignored",
       Convert().Set("trial", Q("yes")).Set("price", "7").Set("payment_id", "[]"), 0, "", ""},
      {"null_optional_is_absent", Cancel().Set("reason", "null"), 0, "", ""},

      // Body.
      {"body_empty", "", 400, "", "empty"},
      {"body_number", "42", 400, "", "JSON object"},
      {"body_string", Q("x"), 400, "", "JSON object"},
      {"body_null", "null", 400, "", "JSON object"},
      {"body_truncated", Start().Json().substr(0, 30), 400, "", "not valid JSON"},
      {"body_trailing_garbage", Start().Json() + "x", 400, "", "not valid JSON"},
      {"body_invalid_utf8", Start().Set("plan", Q("p\xff")), 400, "", "UTF-8"},
      {"body_number_overflow", Start().Set("x", "1e400"), 400, "", "number"},
      // Deeper than kMaxJsonDepth (32): refused before parsing, naming where.
      {"body_too_deep", Start().Set("x", Repeat("[", 2000) + Repeat("]", 2000)), 400,
       kDeepField.c_str(), "deeper than 32 levels"},
      {"body_at_depth_limit", Start().Set("x", Repeat("[", 31) + Repeat("]", 31)), 0, "", ""},

      // event_id: required UUID.
      {"event_id_missing", Start().Drop("event_id"), 400, "event_id", "event_id is required"},
      {"event_id_null", Start().Set("event_id", "null"), 400, "event_id", "is required"},
      {"event_id_empty", Start().Set("event_id", Q("")), 400, "event_id", "must not be empty"},
      {"event_id_number", Start().Set("event_id", "1"), 400, "event_id", "must be a string"},
      {"event_id_not_uuid", Start().Set("event_id", Q("abc")), 400, "event_id", "UUID"},
      {"event_id_no_dashes", Start().Set("event_id", Q("0190f1d27c3a7b5e9a1b2c3d4e5f6a7b")), 400,
       "event_id", "UUID"},
      {"event_id_uppercase", Start().Set("event_id", Q("0190F1D2-7C3A-7B5E-9A1B-2C3D4E5F6A7B")), 0,
       "", ""},

      // type
      {"type_missing", Start().Drop("type"), 400, "type", "type is required"},
      {"type_unknown", Start().Set("type", Q("subscription_paused")), 400, "type",
       "must be one of subscription_started"},
      {"type_wrong_case", Start().Set("type", Q("Subscription_Started")), 400, "type",
       "must be one of"},
      {"type_number", Start().Set("type", "1"), 400, "type", "must be a string"},

      // occurred_at: RFC 3339, at most 24 h ahead, not before 2000.
      {"occurred_missing", Start().Drop("occurred_at"), 400, "occurred_at",
       "occurred_at is required"},
      {"occurred_number", Start().Set("occurred_at", "1795600800"), 400, "occurred_at",
       "must be a string"},
      {"occurred_no_zone", Start().Set("occurred_at", Q("2026-11-25T10:00:00")), 400, "occurred_at",
       "RFC 3339"},
      {"occurred_date_only", Start().Set("occurred_at", Q("2026-11-25")), 400, "occurred_at",
       "RFC 3339"},
      {"occurred_offset", Start().Set("occurred_at", Q("2026-11-25T13:00:00+03:00")), 0, "", ""},
      {"occurred_24h_ahead", Start().Set("occurred_at", Q("2026-11-26T10:00:00Z")), 0, "", ""},
      {"occurred_24h_1us_ahead", Start().Set("occurred_at", Q("2026-11-26T10:00:00.000001Z")), 400,
       "occurred_at", "more than 24h in the future"},
      {"occurred_year_2000", Start().Set("occurred_at", Q("2000-01-01T00:00:00Z")), 0, "", ""},
      {"occurred_1999", Start().Set("occurred_at", Q("1999-12-31T23:59:59.999999Z")), 400,
       "occurred_at", "before 2000-01-01"},
      {"occurred_old_is_fine", Paid().Set("occurred_at", Q("2020-02-29T12:00:00Z")), 0, "", ""},

      // customer, subscription_id: required strings, 1..100 characters.
      {"customer_missing", Paid().Drop("customer"), 400, "customer", "customer is required"},
      {"customer_empty", Paid().Set("customer", Q("")), 400, "customer", "must not be empty"},
      {"customer_number", Paid().Set("customer", "42"), 400, "customer", "must be a string"},
      {"customer_100", Paid().Set("customer", Q(Repeat("c", 100))), 0, "", ""},
      {"customer_101", Paid().Set("customer", Q(Repeat("c", 101))), 400, "customer",
       "customer is longer than 100 characters"},
      {"customer_100_cyrillic", Paid().Set("customer", Q(Repeat(kD, 100))), 0, "", ""},
      {"customer_101_cyrillic", Paid().Set("customer", Q(Repeat(kD, 101))), 400, "customer",
       "longer than 100"},
      {"customer_nul", Paid().Set("customer", Q("a\\u0000")), 400, "customer", "U+0000"},
      {"subscription_missing", Convert().Drop("subscription_id"), 400, "subscription_id",
       "subscription_id is required"},
      {"subscription_missing_on_payment", Failed().Drop("subscription_id"), 400, "subscription_id",
       "is required"},
      {"subscription_empty", Cancel().Set("subscription_id", Q("")), 400, "subscription_id",
       "must not be empty"},
      {"subscription_100", Start().Set("subscription_id", Q(Repeat("s", 100))), 0, "", ""},
      {"subscription_101", Start().Set("subscription_id", Q(Repeat("s", 101))), 400,
       "subscription_id", "longer than 100"},

      // subscription_started: connector, plan, trial, price.
      {"start_connector_missing", Start().Drop("connector"), 400, "connector",
       "connector is required"},
      {"start_connector_50", Start().Set("connector", Q(Repeat("k", 50))), 0, "", ""},
      {"start_connector_51", Start().Set("connector", Q(Repeat("k", 51))), 400, "connector",
       "longer than 50"},
      {"start_plan_missing", Start().Drop("plan"), 400, "plan", "plan is required"},
      {"start_plan_101", Start().Set("plan", Q(Repeat("p", 101))), 400, "plan", "longer than 100"},
      {"start_trial_missing", Start().Drop("trial"), 400, "trial", "trial is required"},
      {"start_trial_null", Start().Set("trial", "null"), 400, "trial", "is required"},
      {"start_trial_string", Start().Set("trial", Q("true")), 400, "trial",
       "must be true or false"},
      {"start_trial_number", Start().Set("trial", "1"), 400, "trial", "true or false"},
      {"start_trial_false", Start().Set("trial", "false"), 0, "", ""},
      {"start_price_missing", Start().Drop("price"), 400, "price", "price is required"},
      {"start_price_number", Start().Set("price", "1500"), 400, "price", "must be an object"},
      {"start_price_string", Start().Set("price", Q("1500 RUB")), 400, "price",
       "must be an object"},
      {"start_amount_missing", Start().Set("price", R"({"currency":"RUB"})"), 400,
       "price.amount_minor", "price.amount_minor is required"},
      {"start_amount_null", Start().Set("price", Amount("null")), 400, "price.amount_minor",
       "is required"},
      {"start_amount_zero", Start().Set("price", Amount("0")), 0, "", ""},
      {"start_amount_int64_max", Start().Set("price", Amount("9223372036854775807")), 0, "", ""},
      {"start_amount_uint64", Start().Set("price", Amount("9223372036854775808")), 400,
       "price.amount_minor", "too large"},
      {"start_amount_negative", Start().Set("price", Amount("-1")), 400, "price.amount_minor",
       "must not be negative"},
      {"start_amount_fraction", Start().Set("price", Amount("1500.5")), 400, "price.amount_minor",
       "integer number of minor units"},
      {"start_amount_float_integral", Start().Set("price", Amount("1500.0")), 400,
       "price.amount_minor", "money is exact"},
      {"start_amount_exponent", Start().Set("price", Amount("15e2")), 400, "price.amount_minor",
       "integer"},
      {"start_amount_string", Start().Set("price", Amount(Q("1500"))), 400, "price.amount_minor",
       "must be an integer"},
      {"start_amount_bool", Start().Set("price", Amount("true")), 400, "price.amount_minor",
       "must be an integer"},
      {"start_currency_missing", Start().Set("price", R"({"amount_minor":1})"), 400,
       "price.currency", "price.currency is required"},
      {"start_currency_lowercase", Start().Set("price", Amount("1", Q("rub"))), 400,
       "price.currency", "ISO 4217"},
      {"start_currency_2", Start().Set("price", Amount("1", Q("RU"))), 400, "price.currency",
       "ISO 4217"},
      {"start_currency_4", Start().Set("price", Amount("1", Q("RUBL"))), 400, "price.currency",
       "longer than 3"},
      {"start_currency_digit", Start().Set("price", Amount("1", Q("R1B"))), 400, "price.currency",
       "ISO 4217"},
      {"start_currency_cyrillic", Start().Set("price", Amount("1", Q(kD + kD + kD))), 400,
       "price.currency", "ISO 4217"},
      {"start_currency_number", Start().Set("price", Amount("1", "643")), 400, "price.currency",
       "must be a string"},
      {"start_currency_empty", Start().Set("price", Amount("1", Q(""))), 400, "price.currency",
       "must not be empty"},
      {"start_currency_usd", Start().Set("price", Amount("999", Q("USD"))), 0, "", ""},
      {"start_price_unknown_key_ignored",
       Start().Set("price", R"({"amount_minor":1,"currency":"EUR","display":"0.01 €"})"), 0, "",
       ""},
      {"start_price_duplicate_amount",
       Start().Set("price", R"({"amount_minor":1,"amount_minor":2,"currency":"EUR"})"), 400,
       "price.amount_minor", "duplicate key"},

      // subscription_cancelled: optional reason up to 1000 characters.
      {"cancel_without_reason", Cancel().Drop("reason"), 0, "", ""},
      {"cancel_reason_1000", Cancel().Set("reason", Q(Repeat(kD, 1000))), 0, "", ""},
      {"cancel_reason_1001", Cancel().Set("reason", Q(Repeat("r", 1001))), 400, "reason",
       "longer than 1000"},
      {"cancel_reason_number", Cancel().Set("reason", "3"), 400, "reason", "must be a string"},

      // payments: payment_id, connector, amount; reason on failures.
      {"paid_payment_id_missing", Paid().Drop("payment_id"), 400, "payment_id",
       "payment_id is required"},
      {"paid_payment_id_101", Paid().Set("payment_id", Q(Repeat("p", 101))), 400, "payment_id",
       "longer than 100"},
      {"paid_connector_missing", Paid().Drop("connector"), 400, "connector", "is required"},
      {"paid_amount_missing", Paid().Drop("amount"), 400, "amount", "amount is required"},
      {"paid_amount_float", Paid().Set("amount", Amount("99.99")), 400, "amount.amount_minor",
       "money is exact"},
      {"paid_amount_currency", Paid().Set("amount", Amount("1", Q("rub"))), 400, "amount.currency",
       "ISO 4217"},
      {"paid_price_is_not_amount", Paid().Drop("amount").Set("price", Amount("1")), 400, "amount",
       "is required"},
      {"paid_reason_ignored", Paid().Set("reason", "5"), 0, "", ""},
      {"failed_reason_missing", Failed().Drop("reason"), 400, "reason", "reason is required"},
      {"failed_reason_empty", Failed().Set("reason", Q("")), 400, "reason", "must not be empty"},
      {"failed_reason_100", Failed().Set("reason", Q(Repeat("r", 100))), 0, "", ""},
      {"failed_reason_101", Failed().Set("reason", Q(Repeat("r", 101))), 400, "reason",
       "longer than 100"},

      // Duplicates, U+0000 anywhere, order of checks.
      {"duplicate_known_key", Paid().Add("customer", Q("other")), 400, "customer", "duplicate key"},
      {"duplicate_found_before_other_errors", Paid().Drop("event_id").Add("amount", "1"), 400,
       "amount", "duplicate key"},
      {"nul_in_unknown_value", Paid().Set("note", Q("a\\u0000")), 400, "", "U+0000"},
      {"nul_in_unknown_key", Paid().Set("n\\u0000", "1"), 400, "", "U+0000"},
      {"nul_deep_in_unknown", Paid().Set("x", R"([{"y":["\u0000"]}])"), 400, "", "U+0000"},
      {"first_key_in_order_wins", Start().Drop("customer").Drop("event_id"), 400, "event_id",
       "event_id is required"},
      {"common_keys_before_type_keys", Start().Drop("plan").Set("customer", Q("")), 400, "customer",
       "must not be empty"},
  };
}

void ExpectCase(const Case& c, const std::variant<BillingRequest, RequestError>& r,
                const std::string& field_prefix = "") {
  if (c.status == 0) {
    const RequestError* e = std::get_if<RequestError>(&r);
    EXPECT_EQ(e, nullptr) << "refused: " << (e ? e->message + " [" + e->field + "]" : "");
    return;
  }
  ASSERT_TRUE(std::holds_alternative<RequestError>(r)) << "accepted";
  const RequestError& e = std::get<RequestError>(r);
  EXPECT_EQ(e.http_status, c.status);
  EXPECT_EQ(e.field, field_prefix + c.field) << e.message;
  EXPECT_NE(e.message.find(c.message), std::string::npos)
      << "message \"" << e.message << "\" lacks \"" << c.message << "\"";
}

class BillingEventTableTest : public ::testing::TestWithParam<Case> {};

TEST_P(BillingEventTableTest, Event) {
  const Case& c = GetParam();
  ExpectCase(c, ParseBillingEvents(c.body, Options()));
}

// The same case as item [1] of a batch fails the same way, field "[1].<field>"
// (or "[1]" for errors of the whole event).
TEST_P(BillingEventTableTest, SameRuleInsideBatch) {
  const Case& c = GetParam();
  const std::string message = c.message, field = c.field;
  if (c.status != 0 && field.empty() && message != "U+0000" && message != "JSON object")
    return;  // syntax errors belong to the whole body, not to an item
  const std::string body = "[" + Paid().Json() + "," + c.body + "]";
  const auto r = ParseBillingEvents(body, Options());
  if (c.status == 0) {
    ASSERT_TRUE(std::holds_alternative<BillingRequest>(r)) << std::get<RequestError>(r).message;
    EXPECT_TRUE(std::get<BillingRequest>(r).batch);
    EXPECT_EQ(std::get<BillingRequest>(r).events.size(), 2u);
    return;
  }
  ExpectCase(c, r, field.empty() ? "[1]" : "[1].");
}

INSTANTIATE_TEST_SUITE_P(Table, BillingEventTableTest, ::testing::ValuesIn(EventCases()), CaseName);

std::string Batch(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const auto& i : items) out += (out.size() > 1 ? "," : "") + i;
  return out + "]";
}

std::vector<Case> BatchCases() {
  const std::string ok = Paid();
  return {
      {"one", Batch({ok}), 0, "", ""},
      {"at_limit", Batch({Start(), Convert(), ok}), 0, "", ""},
      {"over_limit", Batch({ok, ok, ok, ok}), 413, "", "more than 3 events"},
      {"over_limit_with_bad_items", Batch({"1", "2", "3", "4"}), 413, "", "more than 3"},
      {"empty", "[]", 400, "", "batch is empty"},
      {"malformed", "[" + ok, 400, "", "not valid JSON"},
      {"item_number", Batch({ok, "1"}), 400, "[1]", "must be a JSON object"},
      {"item_null", Batch({"null"}), 400, "[0]", "JSON object"},
      {"nested_batch", Batch({Batch({ok})}), 400, "[0]", "JSON object"},
      {"bad_currency_index_2", Batch({ok, ok, Start().Set("price", Amount("1", Q("rub")))}), 400,
       "[2].price.currency", "ISO 4217"},
      {"float_amount_index_1", Batch({ok, Failed().Set("amount", Amount("0.5"))}), 400,
       "[1].amount.amount_minor", "money is exact"},
      {"first_bad_item_wins", Batch({ok, Paid().Drop("customer"), Paid().Drop("type")}), 400,
       "[1].customer", "customer is required"},
      {"duplicate_in_item", Batch({Paid().Add("payment_id", Q("x"))}), 400, "[0].payment_id",
       "duplicate key"},
  };
}

class BillingBatchTableTest : public ::testing::TestWithParam<Case> {};

TEST_P(BillingBatchTableTest, Batch) {
  const Case& c = GetParam();
  ExpectCase(c, ParseBillingEvents(c.body, Options()));
}

INSTANTIATE_TEST_SUITE_P(Table, BillingBatchTableTest, ::testing::ValuesIn(BatchCases()), CaseName);

// Parsed values, field by field.

BillingEvent Only(const std::string& body) {
  auto r = ParseBillingEvents(body, Options());
  if (auto* e = std::get_if<RequestError>(&r)) {
    ADD_FAILURE() << e->message << " [" << e->field << "]";
    return {};
  }
  const BillingRequest& req = std::get<BillingRequest>(r);
  EXPECT_FALSE(req.batch);
  EXPECT_EQ(req.events.size(), 1u);
  return req.events.empty() ? BillingEvent{} : req.events[0];
}

TEST(BillingParserValues, SubscriptionStarted) {
  const std::string body = Start()
                               .Set("event_id", Q("0190F1D2-7C3A-7B5E-9A1B-2C3D4E5F6A7B"))
                               .Set("occurred_at", Q("2026-11-25T12:00:00.5+03:00"))
                               .Set("extra", R"({"k": [1, 2]})");
  BillingEvent want;
  want.event_id = kEventId;
  want.type = BillingEventType::kSubscriptionStarted;
  want.occurred_us = kNow - 3600 * kSec + 500'000;
  want.customer = "acme";
  want.subscription_id = "sub-1";
  want.connector = "crm-connector";
  want.plan = "pro-monthly";
  want.trial = true;
  want.money = {150000, "RUB"};
  want.body =
      R"({"event_id":"0190F1D2-7C3A-7B5E-9A1B-2C3D4E5F6A7B","type":"subscription_started",)"
      R"("occurred_at":"2026-11-25T12:00:00.5+03:00","customer":"acme","subscription_id":"sub-1",)"
      R"("connector":"crm-connector","plan":"pro-monthly","trial":true,)"
      R"("price":{"amount_minor":150000,"currency":"RUB"},"extra":{"k":[1,2]}})";
  EXPECT_EQ(Only(body), want);
  EXPECT_EQ(BillingEventTypeName(want.type), "subscription_started");
}

TEST(BillingParserValues, PaymentFailed) {
  const BillingEvent e = Only(Failed().Set("amount", Amount("9223372036854775807", Q("EUR"))));
  EXPECT_EQ(e.type, BillingEventType::kPaymentFailed);
  EXPECT_EQ(e.payment_id, "pay-1");
  EXPECT_EQ(e.connector, "crm-connector");
  EXPECT_EQ(e.money.amount_minor, INT64_MAX);
  EXPECT_EQ(e.money.currency, "EUR");
  EXPECT_EQ(e.reason, "card_declined");
  EXPECT_EQ(e.occurred_us, kNow - 3600 * kSec);
  EXPECT_TRUE(e.plan.empty());
}

TEST(BillingParserValues, FieldsOtherTypesUseStayEmpty) {
  const BillingEvent paid = Only(Paid().Set("reason", Q("ignored")).Set("plan", Q("x")));
  EXPECT_EQ(paid.type, BillingEventType::kPaymentSucceeded);
  EXPECT_TRUE(paid.reason.empty());
  EXPECT_TRUE(paid.plan.empty());
  const BillingEvent conv = Only(Convert().Set("connector", Q("c")).Set("trial", "true"));
  EXPECT_EQ(conv.type, BillingEventType::kTrialConverted);
  EXPECT_TRUE(conv.connector.empty());
  EXPECT_FALSE(conv.trial);
  EXPECT_EQ(conv.money, Money{});
  const BillingEvent cancel = Only(Cancel());
  EXPECT_EQ(cancel.type, BillingEventType::kSubscriptionCancelled);
  EXPECT_EQ(cancel.reason, "too expensive");
  EXPECT_TRUE(Only(Cancel().Set("reason", Q(""))).reason.empty());
}

TEST(BillingParserValues, MinusZeroAmountIsZero) {
  // simdjson reads -0 as the integer 0: no negative or fractional amount.
  EXPECT_EQ(Only(Paid().Set("amount", Amount("-0"))).money.amount_minor, 0);
}

TEST(BillingParserValues, BatchKeepsOrderAndBodies) {
  const std::string a = Start(),
                    b = Paid().Set("event_id", Q("0190f1d2-7c3a-7b5e-9a1b-000000000002"));
  auto r = ParseBillingEvents(" [ " + a + " ,\n" + b + " ] ", Options());
  ASSERT_TRUE(std::holds_alternative<BillingRequest>(r));
  const BillingRequest& req = std::get<BillingRequest>(r);
  EXPECT_TRUE(req.batch);
  ASSERT_EQ(req.events.size(), 2u);
  EXPECT_EQ(req.events[0].type, BillingEventType::kSubscriptionStarted);
  EXPECT_EQ(req.events[0].body, a);
  EXPECT_EQ(req.events[1].event_id, "0190f1d2-7c3a-7b5e-9a1b-000000000002");
  EXPECT_EQ(req.events[1].body, b);
}

TEST(BillingParserValues, DefaultBatchLimitIs1000) {
  BillingParseOptions o = Options();
  o.max_batch_events = kMaxBillingBatchEvents;
  std::vector<std::string> items(1000, Paid());
  auto r = ParseBillingEvents(Batch(items), o);
  ASSERT_TRUE(std::holds_alternative<BillingRequest>(r)) << std::get<RequestError>(r).message;
  EXPECT_EQ(std::get<BillingRequest>(r).events.size(), 1000u);
  items.push_back(Paid());
  r = ParseBillingEvents(Batch(items), o);
  ASSERT_TRUE(std::holds_alternative<RequestError>(r));
  EXPECT_EQ(std::get<RequestError>(r).http_status, 413);
}

}  // namespace
}  // namespace bpmc::billing
