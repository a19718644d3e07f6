#pragma once
// A messenger button press (Telegram or Slack app, the same "a:<id>" values) acted on
// as the person the pressing user is mapped to: shared by telegram_bot.cpp and
// slack_interactions.cpp.

#include <string>

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
  }
  return "";
}

// Acknowledge (via `via`), resolve, escalate now or snooze for one hour, as `person`;
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
  }
  if (outcome == Outcome::kDone) engine.Wake();
  return outcome;
}

}  // namespace bpmc::webhook_receiver
