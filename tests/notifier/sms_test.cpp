// Table tests of SMS length rules and splitting (notifier/sms.h).
#include "notifier/sms.h"

#include <gtest/gtest.h>

namespace bpmc::notifier {
namespace {

std::string Repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

TEST(MeasureSmsTest, Table) {
  struct Case {
    std::string text;
    bool gsm7;
    int units;
  };
  const Case cases[] = {
      {"", true, 0},
      {"Hello, world!", true, 13},
      {"Price: 5€ {x}", true, 16},       // € { } take two septets each
      {"café à Ñ ü @£$¥", true, 15},     // in the basic table
      {"Сервис недоступен", false, 17},  // Cyrillic: UCS-2
      {"ok ✓", false, 4},                // not GSM
      {"emoji 🚨", false, 8},             // a surrogate pair counts 2
      {"ç", false, 1},                   // only capital Ç is GSM
  };
  for (const Case& c : cases) {
    const SmsLength len = MeasureSms(c.text);
    EXPECT_EQ(len.gsm7, c.gsm7) << c.text;
    EXPECT_EQ(len.units, c.units) << c.text;
  }
}

TEST(SplitSmsTest, SingleWhenItFits) {
  EXPECT_EQ(SplitSms("", 1), std::vector<std::string>{""});
  const std::string gsm160 = Repeat("a", 160);
  EXPECT_EQ(SplitSms(gsm160, 1), std::vector<std::string>{gsm160});
  const std::string cyr70 = Repeat("ж", 70);
  EXPECT_EQ(SplitSms(cyr70, 3), std::vector<std::string>{cyr70});
}

TEST(SplitSmsTest, TruncatesToOneSmsWithAnEllipsis) {
  const auto gsm = SplitSms(Repeat("a", 161), 1);
  ASSERT_EQ(gsm.size(), 1u);
  EXPECT_EQ(gsm[0], Repeat("a", 157) + "...");
  EXPECT_EQ(MeasureSms(gsm[0]).units, 160);

  const auto cyr = SplitSms(Repeat("ж", 100), 1);
  ASSERT_EQ(cyr.size(), 1u);
  EXPECT_EQ(cyr[0], Repeat("ж", 69) + "…");
  EXPECT_EQ(MeasureSms(cyr[0]).units, 70);

  // A two-septet character is never split from its escape.
  const auto ext = SplitSms(Repeat("a", 156) + "€€€", 1);
  EXPECT_EQ(ext[0], Repeat("a", 156) + "...");
}

TEST(SplitSmsTest, SplitsIntoConcatenatedParts) {
  struct Case {
    std::string text;
    int max_parts;
    std::vector<int> part_units;
    bool truncated;
  };
  const Case cases[] = {
      {Repeat("a", 161), 2, {153, 8}, false},        {Repeat("a", 306), 2, {153, 153}, false},
      {Repeat("a", 307), 2, {153, 153}, true},  // last part "...": 150 + 3
      {Repeat("a", 1000), 3, {153, 153, 153}, true}, {Repeat("ж", 71), 2, {67, 4}, false},
      {Repeat("ж", 200), 2, {67, 67}, true},
  };
  for (const Case& c : cases) {
    const auto parts = SplitSms(c.text, c.max_parts);
    ASSERT_EQ(parts.size(), c.part_units.size()) << c.text.size();
    for (size_t i = 0; i < parts.size(); ++i) {
      EXPECT_EQ(MeasureSms(parts[i]).units, c.part_units[i]) << i;
    }
    const std::string& last = parts.back();
    const bool ends_with_ellipsis = last.size() >= 3 && (last.substr(last.size() - 3) == "..." ||
                                                         last.substr(last.size() - 3) == "…");
    EXPECT_EQ(ends_with_ellipsis, c.truncated);
    if (!c.truncated) {
      std::string joined;
      for (const auto& p : parts) joined += p;
      EXPECT_EQ(joined, c.text);
    }
  }
}

TEST(SplitSmsTest, InvalidUtf8DoesNotCrash) {
  const std::string bad = "abc\xff\xfe" + Repeat("x", 200);
  const auto parts = SplitSms(bad, 1);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_LE(MeasureSms(parts[0]).units, 70);
}

}  // namespace
}  // namespace bpmc::notifier
