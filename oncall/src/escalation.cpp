#include "oncall/escalation.h"

#include <algorithm>
#include <map>

#include "oncall/schedule.h"

namespace bpmc::oncall {
namespace {

// The moment escalation stops for good, if known.
std::optional<int64_t> StopAt(const IncidentState& state) {
  std::optional<int64_t> stop = state.acknowledged_micros;
  if (state.resolved_micros && (!stop || *state.resolved_micros < *stop))
    stop = state.resolved_micros;
  return stop;
}

// `plan` 0 is the first plan, k the plan of resumption k.
std::string LevelPrefix(const EscalationPolicy& policy, int plan, int round, int level) {
  return policy.id + (plan == 0 ? "" : "/a" + std::to_string(plan)) + "/r" + std::to_string(round) +
         "/l" + std::to_string(level) + "/";
}

// When one level of one round is reached.
struct LevelStart {
  int round = 0;
  int level = 0;
  int64_t reached = 0;
};

// The levels of the first plan, in order (their reach times never decrease).
std::vector<LevelStart> FirstLevels(const EscalationPolicy& policy, int64_t started_micros) {
  std::vector<LevelStart> out;
  int64_t reached = started_micros;
  for (int round = 0; round <= policy.repeat; ++round) {
    for (size_t level = 0; level < policy.levels.size(); ++level) {
      out.push_back({round, static_cast<int>(level), reached});
      reached += policy.levels[level].delay_micros;
    }
  }
  return out;
}

// The levels after a resumption: from the level in progress at the
// acknowledgement (the last reached at or before it; the first when none was),
// shifted so that it is reached again at the resumption.
std::vector<LevelStart> ResumedLevels(const std::vector<LevelStart>& levels, const Resumption& r) {
  if (levels.empty()) return {};
  size_t current = 0;
  for (size_t i = 0; i < levels.size(); ++i)
    if (levels[i].reached <= r.acknowledged_micros) current = i;
  current = std::min(current + static_cast<size_t>(std::max(r.advance, 0)), levels.size() - 1);
  const int64_t shift = r.resumed_micros - levels[current].reached;
  std::vector<LevelStart> out(levels.begin() + static_cast<std::ptrdiff_t>(current), levels.end());
  for (LevelStart& l : out) l.reached += shift;
  return out;
}

// One step per contact method of `person_id`; `prefix` ends with '/'.
void AddContactSteps(const OnCallConfig& config, const std::string& person_id,
                     const std::string& prefix, const PageAction& base,
                     std::vector<PageAction>* out) {
  auto it = config.people.find(person_id);
  if (it == config.people.end()) return;  // validated away by ParseOnCallConfig
  for (const ContactMethod& method : it->second.contact_methods) {
    PageAction step = base;
    step.kind = PageAction::Kind::kContact;
    step.key = prefix + "person:" + person_id + "/" + method.id;
    step.due_micros = base.due_micros + method.delay_micros;
    step.person = person_id;
    step.method = method;
    out->push_back(std::move(step));
  }
}

// The steps of one target of a level reached at base.due_micros.
void AddTargetSteps(const OnCallConfig& config, const Target& target, const std::string& prefix,
                    PageAction base, std::vector<PageAction>* out) {
  base.target = target;
  switch (target.kind) {
    case Target::Kind::kPerson:
      AddContactSteps(config, target.id, prefix, base, out);
      return;
    case Target::Kind::kChannel:
      base.kind = PageAction::Kind::kChannel;
      base.key = prefix + "channel:" + target.id;
      base.channel = target.id;
      out->push_back(std::move(base));
      return;
    case Target::Kind::kSchedule: {
      auto it = config.schedules.find(target.id);
      const std::string who =
          it == config.schedules.end()
              ? std::string()
              : WhoIsOnCall(it->second, config.overrides, base.due_micros).person;
      const std::string schedule_prefix = prefix + "schedule:" + target.id + "/";
      if (who.empty()) {
        base.kind = PageAction::Kind::kNobodyOnCall;
        base.key = schedule_prefix + "nobody";
        out->push_back(std::move(base));
        return;
      }
      AddContactSteps(config, who, schedule_prefix, base, out);
      return;
    }
  }
}

// Where a step goes: steps with equal destinations due together merge.
std::string Destination(const PageAction& step) {
  switch (step.kind) {
    case PageAction::Kind::kContact:
      return "person:" + step.person + "/" + step.method.id;
    case PageAction::Kind::kChannel:
      return "channel:" + step.channel;
    case PageAction::Kind::kNobodyOnCall:
      break;
  }
  return step.key;  // a record, never merged
}

// By due time; equal times keep their order (level, target, method).
void SortByDue(std::vector<PageAction>* steps) {
  std::stable_sort(steps->begin(), steps->end(), [](const PageAction& a, const PageAction& b) {
    return a.due_micros < b.due_micros;
  });
}

}  // namespace

namespace {

// The steps of `levels`, plan number `plan`, in due order.
std::vector<PageAction> StepsOf(const OnCallConfig& config, const EscalationPolicy& policy,
                                const std::vector<LevelStart>& levels, int plan) {
  std::vector<PageAction> steps;
  for (const LevelStart& l : levels) {
    PageAction base;
    base.plan = plan;
    base.round = l.round;
    base.level = l.level;
    base.due_micros = l.reached;
    const std::string prefix = LevelPrefix(policy, plan, l.round, l.level);
    for (const Target& target : policy.levels[static_cast<size_t>(l.level)].targets)
      AddTargetSteps(config, target, prefix, base, &steps);
  }
  SortByDue(&steps);
  return steps;
}

}  // namespace

std::vector<PageAction> PlanSteps(const OnCallConfig& config, const EscalationPolicy& policy,
                                  int64_t started_micros) {
  return StepsOf(config, policy, FirstLevels(policy, started_micros), 0);
}

std::vector<PageAction> CurrentPlan(const OnCallConfig& config, const EscalationPolicy& policy,
                                    const IncidentState& state) {
  std::vector<LevelStart> levels = FirstLevels(policy, state.started_micros);
  for (const Resumption& r : state.resumptions) levels = ResumedLevels(levels, r);
  return StepsOf(config, policy, levels, static_cast<int>(state.resumptions.size()));
}

std::optional<int64_t> AckTimesOutAt(const EscalationPolicy& policy, const IncidentState& state) {
  if (policy.ack_timeout_micros <= 0 || !state.acknowledged_micros || state.resolved_micros)
    return std::nullopt;
  return *state.acknowledged_micros + policy.ack_timeout_micros;
}

std::vector<PageAction> Due(const OnCallConfig& config, const EscalationPolicy& policy,
                            const IncidentState& state, int64_t now_micros) {
  const std::optional<int64_t> stop = StopAt(state);
  if (stop && *stop <= now_micros) return {};
  std::vector<PageAction> due;
  std::map<std::string, size_t> by_destination;  // index into `due`
  for (PageAction& step : CurrentPlan(config, policy, state)) {
    if (step.due_micros > now_micros) break;  // sorted by due time
    if (state.done_steps.count(step.key)) continue;
    auto [it, fresh] = by_destination.emplace(Destination(step), due.size());
    if (fresh) {
      due.push_back(std::move(step));
      continue;
    }
    // A later step for the same destination: it stands for the earlier ones.
    PageAction& kept = due[it->second];
    step.covered_keys = std::move(kept.covered_keys);
    step.covered_keys.push_back(std::move(kept.key));
    kept = std::move(step);
  }
  SortByDue(&due);
  return due;
}

std::optional<int64_t> NextDueAt(const OnCallConfig& config, const EscalationPolicy& policy,
                                 const IncidentState& state, int64_t now_micros) {
  const std::optional<int64_t> stop = StopAt(state);
  if (stop && *stop <= now_micros) return std::nullopt;
  for (const PageAction& step : CurrentPlan(config, policy, state)) {
    if (stop && step.due_micros >= *stop) break;
    if (!state.done_steps.count(step.key)) return step.due_micros;
  }
  return std::nullopt;
}

std::optional<AckEnd> AcknowledgementEnds(const EscalationPolicy* policy,
                                          const IncidentState& state) {
  if (!state.acknowledged_micros || state.resolved_micros) return std::nullopt;
  if (state.snoozed_until_micros) return AckEnd{*state.snoozed_until_micros, true};
  if (!policy) return std::nullopt;
  if (auto at = AckTimesOutAt(*policy, state)) return AckEnd{*at, false};
  return std::nullopt;
}

Resumption ReassignResumption(const EscalationPolicy& policy, const IncidentState& state,
                              int64_t now_micros) {
  const int64_t reference = state.acknowledged_micros.value_or(now_micros);
  std::vector<LevelStart> levels = FirstLevels(policy, state.started_micros);
  for (const Resumption& r : state.resumptions) levels = ResumedLevels(levels, r);
  int64_t delay = 0;
  for (const LevelStart& l : levels)
    if (l.reached <= reference) delay = policy.levels[static_cast<size_t>(l.level)].delay_micros;
  if (levels.empty() || levels.front().reached > reference)
    delay =
        levels.empty() ? 0 : policy.levels[static_cast<size_t>(levels.front().level)].delay_micros;
  return Resumption{reference, now_micros + delay, 1};
}

}  // namespace bpmc::oncall
