#pragma once
// A messenger button press (Telegram or Slack app, the same "a:<id>" values) acted on
// as the person the pressing user is mapped to: shared by telegram_bot.cpp and
// slack_interactions.cpp.

#include <optional>
#include <string>
#include <vector>

#include "incidents/engine.h"
#include "notifier/telegram.h"

namespace bpmc::webhook_receiver {

// "acknowledge", "resolve", "escalate", "snooze": the audit's `action`. Pure.
inline const char* PressActionName(notifier::TelegramAction a) {
  switch (a) {
    case notifier::TelegramAction::kAcknowledge:
      return "acknowledge";
    case notifier::TelegramAction::kResolve:
      return "resolve";
    case notifier::TelegramAction::kEscalate:
      return "escalate";
    case notifier::TelegramAction::kSnooze:
      return "snooze";
    case notifier::TelegramAction::kReassign:
      return "reassign";
    case notifier::TelegramAction::kReassignMenu:
      return "reassign_menu";
    case notifier::TelegramAction::kReassignBack:
      return "reassign_back";
  }
  return "";
}

// The audit's `target` of a reassign press: "person:<id>" or "schedule:<id>". Pure.
inline std::string PressTargetName(const notifier::TelegramPress& press) {
  return (press.to_schedule ? "schedule:" : "person:") + press.target;
}

// The reassign list of the on-call config: its people by id (label: name), then its
// schedules by id (label: "schedule: <name>"). Pure; TelegramReassignKeyboard keeps
// the first 8 that fit 64 bytes.
inline std::vector<notifier::ReassignChoice> ReassignChoices(const oncall::OnCallConfig& config) {
  std::vector<notifier::ReassignChoice> out;
  for (const auto& [id, p] : config.people)
    out.push_back({p.name.empty() ? id : p.name, false, id});
  for (const auto& [id, s] : config.schedules)
    out.push_back({"schedule: " + (s.name.empty() ? id : s.name), true, id});
  return out;
}

// The engine's target of a reassign press when it names a person or schedule of
// `config`, else nullopt (answered 404, like the API refuses an unknown one). Pure.
inline std::optional<oncall::Target> PressTarget(const notifier::TelegramPress& press,
                                                 const oncall::OnCallConfig& config) {
  if (press.action != notifier::TelegramAction::kReassign) return std::nullopt;
  oncall::Target t;
  t.id = press.target;
  t.kind = press.to_schedule ? oncall::Target::Kind::kSchedule : oncall::Target::Kind::kPerson;
  const bool known =
      press.to_schedule ? config.schedules.count(t.id) > 0 : config.people.count(t.id) > 0;
  if (!known) return std::nullopt;
  return t;
}

// Acknowledge (via `via`), resolve, escalate now, snooze for one hour or reassign, as `person`;
// wakes the engine when something changed. Throws pqxx exceptions.
inline incidents::Engine::Outcome ActOnPress(incidents::Engine& engine,
                                             const notifier::TelegramPress& press,
                                             const std::string& person, const char* via) {
  using Outcome = incidents::Engine::Outcome;
  Outcome outcome = Outcome::kNotFound;
  switch (press.action) {
    case notifier::TelegramAction::kAcknowledge:
      outcome = engine.Acknowledge(press.incident_id, person, via);
      break;
    case notifier::TelegramAction::kResolve:
      outcome = engine.Resolve(press.incident_id, person);
      break;
    case notifier::TelegramAction::kEscalate:
      outcome = engine.EscalateNow(press.incident_id, person);
      break;
    case notifier::TelegramAction::kSnooze:
      outcome = engine.Snooze(press.incident_id, person, notifier::kPressSnoozeUs);
      break;
    case notifier::TelegramAction::kReassign:
      // An unknown person or schedule: kNotFound (404), nothing stored.
      if (auto target = PressTarget(press, engine.options().oncall))
        outcome = engine.Reassign(press.incident_id, person, *target);
      break;
    case notifier::TelegramAction::kReassignMenu:
    case notifier::TelegramAction::kReassignBack:
      break;  // not an engine action: the Telegram bot redraws the keyboard itself
  }
  if (outcome == Outcome::kDone) engine.Wake();
  return outcome;
}

}  // namespace bpmc::webhook_receiver
