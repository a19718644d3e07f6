#pragma once
// The /metrics side of billing: what applying one event changed (Effect) and
// the bpmc_payments_*, bpmc_billing_* and bpmc_subscriptions_* counters it is
// recorded on (BillingMetrics). Private to the billing library.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "billing/billing.h"

namespace bpmc::billing {

// What applying one event changed; recorded on /metrics after COMMIT.
struct Effect {
  BillingEventType type = BillingEventType::kSubscriptionStarted;
  bool duplicate = false;
  bool new_subscription = false;
  bool trial = false;
  bool newly_converted = false;
  bool newly_cancelled = false;
  bool new_payment = false;
  Money money;
  std::string reason;
};

// Registers its families on `registry` at construction, every closed label
// set visible at 0 from the start. Thread-safe.
class BillingMetrics {
 public:
  explicit BillingMetrics(prometheus::Registry& registry);

  // One refused request: by the type of the event that was refused, or
  // "unknown" (nullopt) when the body could not be read.
  void Rejected(std::optional<BillingEventType> type);
  // The effects of one committed request.
  void Record(const std::vector<Effect>& effects);

 private:
  // The counter for (k1=v1, k2=v2); past `cap` distinct entries v2 becomes
  // "other". Called with mu_ held.
  static prometheus::Counter* Capped(prometheus::Family<prometheus::Counter>& family,
                                     std::unordered_map<std::string, prometheus::Counter*>& cache,
                                     size_t cap, const std::string& k1, const std::string& v1,
                                     const std::string& k2, const std::string& v2);

  prometheus::Family<prometheus::Counter>& payments_;
  prometheus::Family<prometheus::Counter>& amounts_;
  prometheus::Family<prometheus::Counter>& events_;
  prometheus::Family<prometheus::Counter>& started_;
  prometheus::Counter& cancelled_;
  prometheus::Counter& converted_;
  prometheus::Counter* applied_[kBillingEventTypeCount];
  prometheus::Counter* duplicate_[kBillingEventTypeCount];
  prometheus::Counter* rejected_[kBillingEventTypeCount];
  prometheus::Counter* rejected_unknown_;
  prometheus::Counter* started_trial_;
  prometheus::Counter* started_paid_;
  prometheus::Counter* succeeded_;
  std::mutex mu_;                                                         // guards the caches
  std::unordered_map<std::string, prometheus::Counter*> failed_;          // by category, fixed
  std::unordered_map<std::string, prometheus::Counter*> amounts_by_key_;  // status \0 currency
};

}  // namespace bpmc::billing
