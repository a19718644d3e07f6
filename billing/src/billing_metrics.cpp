// BillingMetrics: the billing counters on /metrics (billing_metrics.h).

#include "billing_metrics.h"

#include <string_view>

#include "billing/payment_reason.h"

namespace bpmc::billing {
namespace {

constexpr size_t kMaxCurrencyLabels = 50;

}  // namespace

BillingMetrics::BillingMetrics(prometheus::Registry& registry)
    : payments_(prometheus::BuildCounter()
                    .Name("bpmc_payments_total")
                    .Help("Payments newly recorded, by status and failure reason category "
                          "(\"none\" for succeeded; insufficient_funds, card_declined, "
                          "expired_card, fraud_suspected, processing_error or other).")
                    .Register(registry)),
      amounts_(prometheus::BuildCounter()
                   .Name("bpmc_payment_amount_minor_total")
                   .Help("Sum of newly recorded payment amounts in minor units, by status and "
                         "currency (\"other\" past 50 currencies).")
                   .Register(registry)),
      events_(prometheus::BuildCounter()
                  .Name("bpmc_billing_events_total")
                  .Help("Billing events by type and result: applied, duplicate (event_id seen "
                        "before), rejected (one per refused request; type \"unknown\" when the "
                        "body could not be read).")
                  .Register(registry)),
      started_(prometheus::BuildCounter()
                   .Name("bpmc_subscriptions_started_total")
                   .Help("New subscriptions, by whether they started as a trial.")
                   .Register(registry)),
      cancelled_(prometheus::BuildCounter()
                     .Name("bpmc_subscriptions_cancelled_total")
                     .Help("Subscriptions cancelled (first cancellation of each).")
                     .Register(registry)
                     .Add({})),
      converted_(prometheus::BuildCounter()
                     .Name("bpmc_trials_converted_total")
                     .Help("Trial subscriptions converted to paid (first conversion of each).")
                     .Register(registry)
                     .Add({})) {
  for (size_t t = 0; t < kBillingEventTypeCount; ++t) {
    const std::string type(BillingEventTypeName(static_cast<BillingEventType>(t)));
    applied_[t] = &events_.Add({{"type", type}, {"result", "applied"}});
    duplicate_[t] = &events_.Add({{"type", type}, {"result", "duplicate"}});
    rejected_[t] = &events_.Add({{"type", type}, {"result", "rejected"}});
  }
  rejected_unknown_ = &events_.Add({{"type", "unknown"}, {"result", "rejected"}});
  started_trial_ = &started_.Add({{"trial", "true"}});
  started_paid_ = &started_.Add({{"trial", "false"}});
  succeeded_ = &payments_.Add({{"status", "succeeded"}, {"reason", "none"}});
  // The reason is free text (it may name the card holder): only its category
  // is a label, so the label set is closed and visible at 0 from the start.
  for (std::string_view category : kPaymentFailureCategories) {
    failed_.emplace(std::string(category),
                    &payments_.Add({{"status", "failed"}, {"reason", std::string(category)}}));
  }
}

void BillingMetrics::Rejected(std::optional<BillingEventType> type) {
  (type ? rejected_[static_cast<size_t>(*type)] : rejected_unknown_)->Increment();
}

void BillingMetrics::Record(const std::vector<Effect>& effects) {
  for (const Effect& e : effects) {
    const auto t = static_cast<size_t>(e.type);
    (e.duplicate ? duplicate_[t] : applied_[t])->Increment();
    if (e.new_subscription) (e.trial ? started_trial_ : started_paid_)->Increment();
    if (e.newly_converted) converted_.Increment();
    if (e.newly_cancelled) cancelled_.Increment();
    if (e.new_payment) {
      const bool ok = e.type == BillingEventType::kPaymentSucceeded;
      const char* status = ok ? "succeeded" : "failed";
      std::lock_guard<std::mutex> lock(mu_);
      (ok ? succeeded_ : failed_.at(std::string(PaymentFailureCategory(e.reason))))->Increment();
      Capped(amounts_, amounts_by_key_, kMaxCurrencyLabels * 2, "status", status, "currency",
             e.money.currency)
          ->Increment(static_cast<double>(e.money.amount_minor));
    }
  }
}

prometheus::Counter* BillingMetrics::Capped(
    prometheus::Family<prometheus::Counter>& family,
    std::unordered_map<std::string, prometheus::Counter*>& cache, size_t cap, const std::string& k1,
    const std::string& v1, const std::string& k2, const std::string& v2) {
  const std::string key = v1 + '\0' + v2;
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  const bool overflow = cache.size() >= cap;
  prometheus::Counter* c = &family.Add({{k1, v1}, {k2, overflow ? "other" : v2}});
  if (!overflow) cache.emplace(key, c);
  return c;
}

}  // namespace bpmc::billing
