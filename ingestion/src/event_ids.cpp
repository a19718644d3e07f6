#include "ingestion/event_ids.h"

#include <algorithm>

namespace bpmc::ingestion {

std::string_view EventDifference(const UsageEvent& stored, const UsageEvent& incoming) {
  if (stored.connector != incoming.connector) return "connector";
  if (stored.operation != incoming.operation) return "operation";
  if (stored.make_account_id != incoming.make_account_id) return "make_account_id";
  const int64_t apart = stored.timestamp_us > incoming.timestamp_us
                            ? stored.timestamp_us - incoming.timestamp_us
                            : incoming.timestamp_us - stored.timestamp_us;
  if (apart > kRetryWindowUs) return "timestamp";
  if (stored.status != incoming.status) return "status";
  if (stored.error_type != incoming.error_type) return "error_type";
  if (stored.error_message != incoming.error_message) return "error_message";
  if (stored.duration_ms != incoming.duration_ms) return "duration_ms";
  return "";
}

IdPlan PlanEventIds(const std::vector<const UsageEvent*>& events,
                    const std::vector<size_t>& group_ends, const StoredEvents& stored) {
  const size_t n = events.size();
  IdPlan plan;
  plan.verdicts.assign(n, IdVerdict::kNew);
  plan.difference.assign(n, "");
  // Ids standing for an event of an accepted earlier request of this call.
  std::unordered_map<std::string_view, const UsageEvent*> accepted;
  std::vector<std::string_view> added;  // ids the current request added
  size_t begin = 0, g = 0;
  while (begin < n) {
    size_t end = n;  // past the last given end: one last request
    if (group_ends.empty()) {
      end = begin + 1;
    } else if (g < group_ends.size()) {
      end = std::min(n, group_ends[g++]);
      if (end <= begin) continue;  // an empty request
    }
    added.clear();
    size_t conflict = n;
    for (size_t i = begin; i < end && conflict == n; ++i) {
      const UsageEvent& e = *events[i];
      const UsageEvent* reference = nullptr;
      bool known = false;
      if (auto it = stored.find(e.id); it != stored.end()) {
        known = true;
        if (it->second) reference = &*it->second;
      } else if (auto a = accepted.find(e.id); a != accepted.end()) {
        known = true;
        reference = a->second;
      }
      if (!known) {
        accepted.emplace(e.id, &e);
        added.push_back(e.id);
        continue;
      }
      const std::string_view diff = reference ? EventDifference(*reference, e) : "";
      if (diff.empty()) {
        plan.verdicts[i] = IdVerdict::kDuplicate;
      } else {
        plan.verdicts[i] = IdVerdict::kConflict;
        plan.difference[i] = std::string(diff);
        conflict = i;
      }
    }
    if (conflict != n) {
      // The request is refused whole: its other events are not stored and no
      // longer stand for their ids.
      for (std::string_view id : added) accepted.erase(id);
      for (size_t i = begin; i < end; ++i)
        if (i != conflict) plan.verdicts[i] = IdVerdict::kWithdrawn;
    }
    begin = end;
  }
  return plan;
}

}  // namespace bpmc::ingestion
