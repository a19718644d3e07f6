#include "billing/payment_reason.h"

#include <string>

namespace bpmc::billing {
namespace {

struct Rule {
  std::string_view category;
  std::array<std::string_view, 8> words;  // empty entries are unused
};

constexpr Rule kRules[] = {
    {"fraud_suspected", {"fraud", "stolen", "lost_card", "pickup_card", "security_violation"}},
    {"expired_card", {"expired"}},
    {"insufficient_funds", {"insufficient", "funds", "nsf", "limit_exceeded"}},
    {"card_declined",
     {"declin", "do_not_honor", "incorrect_", "invalid_card", "invalid_cvc", "invalid_number",
      "card_not_supported", "restricted_card"}},
    {"processing_error",
     {"processing", "timeout", "timed_out", "unavailable", "try_again", "gateway", "network"}},
};

}  // namespace

std::string_view PaymentFailureCategory(std::string_view reason) {
  // ASCII lowercase with ' ' and '-' as '_'; other bytes (Cyrillic...) stay.
  std::string norm(reason);
  for (char& c : norm) {
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
    else if (c == ' ' || c == '-')
      c = '_';
  }
  for (const Rule& rule : kRules) {
    for (std::string_view word : rule.words) {
      if (!word.empty() && norm.find(word) != std::string::npos) return rule.category;
    }
  }
  return kPaymentFailureCategories.back();
}

}  // namespace bpmc::billing
