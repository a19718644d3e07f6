#pragma once

// The closed set of payment failure reasons shown on /metrics (docs/BILLING.md).
// A payment_failed event's `reason` is free text from the platform: it may carry
// a name, an e-mail or a card holder. It is stored as sent, but a metric label
// only ever carries one of these categories.

#include <array>
#include <string_view>

namespace bpmc::billing {

// Every value PaymentFailureCategory can return, "other" last.
inline constexpr std::array<std::string_view, 6> kPaymentFailureCategories = {
    "insufficient_funds", "card_declined",    "expired_card",
    "fraud_suspected",    "processing_error", "other"};

// The category of a failure reason. Case, spaces and '-' do not matter
// ("Card declined" = "card-declined" = "card_declined"). Checked in this order,
// the first word found wins:
//   fraud_suspected   fraud, stolen, lost_card, pickup_card, security_violation
//   expired_card      expired
//   insufficient_funds insufficient, funds, nsf, limit_exceeded
//   card_declined     declin, do_not_honor, incorrect_, invalid_card, invalid_cvc,
//                     invalid_number, card_not_supported, restricted_card
//   processing_error  processing, timeout, timed_out, unavailable, try_again,
//                     gateway, network
//   other             anything else, the empty string included.
// Pure.
std::string_view PaymentFailureCategory(std::string_view reason);

}  // namespace bpmc::billing
