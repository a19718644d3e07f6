// Payment failure reasons -> the closed set of metric labels (exporter/payment_reason.h).
#include "billing/payment_reason.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace bpmc::billing {
namespace {

TEST(PaymentFailureCategory, Table) {
  struct Case {
    std::string reason;
    std::string_view want;
  };
  const std::vector<Case> cases = {
      // The categories themselves, as the platform is asked to send them.
      {"insufficient_funds", "insufficient_funds"},
      {"card_declined", "card_declined"},
      {"expired_card", "expired_card"},
      {"fraud_suspected", "fraud_suspected"},
      {"processing_error", "processing_error"},
      {"other", "other"},
      // Spelling variants.
      {"Card Declined", "card_declined"},
      {"card-declined", "card_declined"},
      {"INSUFFICIENT FUNDS", "insufficient_funds"},
      {"Expired card", "expired_card"},
      // Processor codes (Stripe-like decline codes).
      {"do_not_honor", "card_declined"},
      {"generic_decline", "card_declined"},
      {"incorrect_cvc", "card_declined"},
      {"invalid_number", "card_declined"},
      {"stolen_card", "fraud_suspected"},
      {"lost_card", "fraud_suspected"},
      {"fraudulent", "fraud_suspected"},
      {"card_velocity_exceeded", "other"},
      {"withdrawal_count_limit_exceeded", "insufficient_funds"},
      {"issuer_not_available", "other"},
      {"issuer_unavailable", "processing_error"},
      {"gateway timeout", "processing_error"},
      {"try_again_later", "processing_error"},
      // Free text with personal data: the category, never the text.
      {"card of ivan.petrov@example.com declined", "card_declined"},
      {"Insufficient funds on +7 916 123-45-67", "insufficient_funds"},
      {"expired card declined for Ivan Petrov", "expired_card"},  // first rule found wins
      {"fraud: card declined", "fraud_suspected"},
      {"Ivan Petrov asked to stop", "other"},
      {"Недостаточно средств", "other"},
      {"", "other"},
  };
  for (const Case& c : cases) EXPECT_EQ(PaymentFailureCategory(c.reason), c.want) << c.reason;
}

TEST(PaymentFailureCategory, AlwaysOneOfTheClosedSet) {
  for (const std::string& s : {std::string("x"), std::string(1000, 'a'), std::string("\xff\xfe"),
                               std::string("a\0b", 3)}) {
    const std::string_view got = PaymentFailureCategory(s);
    EXPECT_NE(std::find(kPaymentFailureCategories.begin(), kPaymentFailureCategories.end(), got),
              kPaymentFailureCategories.end());
  }
}

}  // namespace
}  // namespace bpmc::billing
