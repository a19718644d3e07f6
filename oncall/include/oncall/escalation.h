#pragma once
// "What is due at T for this incident": pure decisions over an escalation
// policy. The caller (the receiver) persists the key of every step it performs
// and passes them back, so a restart or a second receiver never repeats a step.

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "oncall/model.h"

namespace bpmc::oncall {

// An acknowledgement that timed out (EscalationPolicy::ack_timeout_micros): the
// incident went back to triggered at `resumed_micros` and its escalation resumed
// where the acknowledgement had stopped it.
struct Resumption {
  int64_t acknowledged_micros = 0;
  int64_t resumed_micros = 0;
  // 1 for "escalate now" (acknowledged = resumed = the request's time): the new
  // plan starts at the level after the one in progress (the last level when
  // there is none after it) instead of that level.
  int advance = 0;
};

// What the caller knows about one incident under one policy.
struct IncidentState {
  int64_t started_micros = 0;  // round 0, level 0 is due at this instant
  // Escalation stops for good at the first of these (an ack at T stops a step
  // due at T). A value later than `now` is ignored until then.
  std::optional<int64_t> acknowledged_micros;
  std::optional<int64_t> resolved_micros;
  std::set<std::string> done_steps;  // keys of the steps already performed
  // Earlier acknowledgements that timed out, oldest first. Each one starts a new
  // plan at its resumed_micros: the level that was in progress when it was
  // acknowledged (the last level reached at or before that moment) is paged again
  // at once, and the levels and rounds after it follow with their delays, as if
  // the time spent acknowledged had not passed. The steps of resumption k have
  // keys "<policy>/a<k>/r<round>/l<level>/..." (k from 1); steps of earlier plans
  // are never due again.
  std::vector<Resumption> resumptions;
  // The end of the acknowledgement's snooze (POST /api/v1/incidents/<id>/snooze):
  // the incident goes back to triggered then. A snooze replaces the ack_timeout.
  std::optional<int64_t> snoozed_until_micros;
};

// One step: a page to one person by one contact method, a message to one
// channel, or the record that a schedule target had nobody on call.
struct PageAction {
  enum class Kind { kContact, kChannel, kNobodyOnCall };
  Kind kind = Kind::kContact;
  // Stable identity, unique per incident: "<policy>/r<round>/l<level>/" then
  // "person:<id>/<method>", "schedule:<id>/person:<id>/<method>",
  // "schedule:<id>/nobody" or "channel:<name>". Store it in a unique column.
  std::string key;
  // Other due steps with the same destination (person and contact method, or
  // channel) that this one stands for: they are done when this one is.
  std::vector<std::string> covered_keys;
  int64_t due_micros = 0;
  int plan = 0;  // 0, or k for the plan of resumption k (IncidentState::resumptions)
  int round = 0;
  int level = 0;
  Target target;         // as written in the level
  std::string person;    // kContact: the person paged (for a schedule: who was on call)
  ContactMethod method;  // kContact: how
  std::string channel;   // kChannel: the channel
};

// The steps due at `now` (due time <= now) that are not in state.done_steps,
// in due order; nothing once the incident is acknowledged or resolved at or
// before `now`. Steps due together for one destination (the same person and
// method, or the same channel, reached through several targets, levels or
// rounds) come as one action: the latest step, with the others in
// covered_keys. A schedule target pages whoever is on call when its level is
// reached. `config` supplies people, schedules and overrides. Pure.
std::vector<PageAction> Due(const OnCallConfig& config, const EscalationPolicy& policy,
                            const IncidentState& state, int64_t now_micros);

// When to evaluate Due next: the earliest due time of a step not yet done
// (it is <= now when something is already due), or nullopt when nothing is
// left: all steps done, or escalation stopped at or before `now`. Steps due
// at or after a known future acknowledgement or resolution do not count. Pure.
std::optional<int64_t> NextDueAt(const OnCallConfig& config, const EscalationPolicy& policy,
                                 const IncidentState& state, int64_t now_micros);

// Every step of the policy for an incident started at `started_micros`, done
// or not, in due order (ties in level, target and method order). Pure.
std::vector<PageAction> PlanSteps(const OnCallConfig& config, const EscalationPolicy& policy,
                                  int64_t started_micros);

// The steps of the current plan of `state`: PlanSteps when nothing was resumed,
// else the plan of the last resumption (see IncidentState::resumptions). Pure.
std::vector<PageAction> CurrentPlan(const OnCallConfig& config, const EscalationPolicy& policy,
                                    const IncidentState& state);

// When the current acknowledgement times out (acknowledged + the policy's
// ack_timeout), or nullopt: not acknowledged, resolved, or no timeout. Pure.
std::optional<int64_t> AckTimesOutAt(const EscalationPolicy& policy, const IncidentState& state);

// When an acknowledged, unresolved incident goes back to triggered by itself, and
// why: at the end of its snooze when one is set (the snooze replaces the policy's
// ack_timeout, which may be shorter or longer), else at AckTimesOutAt. nullopt:
// not acknowledged, resolved, or neither. `policy` may be null (no policy: only a
// snooze ends). Pure.
struct AckEnd {
  int64_t at_micros = 0;
  bool snooze = false;  // true: the snooze ends; false: the ack_timeout
};
std::optional<AckEnd> AcknowledgementEnds(const EscalationPolicy* policy,
                                          const IncidentState& state);

// The resumption a reassignment at `now` adds (PagerDuty's reassign): the new
// target stands in for the level in progress (at the acknowledgement when the
// incident is acknowledged, else at `now`), so the level after it is reached
// that level's delay after `now`, and the escalation goes on from there (with a
// level in progress that is the policy's last, that last level is paged again
// after its delay, as "escalate now" does). Pure.
Resumption ReassignResumption(const EscalationPolicy& policy, const IncidentState& state,
                              int64_t now_micros);

}  // namespace bpmc::oncall
