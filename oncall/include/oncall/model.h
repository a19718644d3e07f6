#pragma once
// The on-call model: people and their contact methods, schedules (layers of
// rotations in an IANA time zone), overrides and escalation policies. Plain
// values, filled by ParseOnCallConfig (oncall/config.h) and read by the pure
// decisions in oncall/schedule.h and oncall/escalation.h. docs/ONCALL.md
// describes the YAML and the semantics.
//
// Times are microseconds since the Unix epoch (UTC); durations are microseconds.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace bpmc::oncall {

// How a person is reached; the names match the receiver's channel types.
enum class ContactType { kEmail, kSlack, kSms, kWebhook, kPagerDuty, kTelegram };

// "email", "slack", "sms", "webhook", "pagerduty", "telegram".
const char* ContactTypeName(ContactType type);

struct ContactMethod {
  std::string id;  // unique per person; defaults to the type name ("sms")
  ContactType type = ContactType::kEmail;
  std::string address;       // e-mail address, phone number, Slack member id, URL or routing key,
                             // Telegram chat id (`chat_id`; without one "person:<id>", the chat
                             // the person bound with /start); may be empty when `channel`
                             // carries the destination itself
  std::string channel;       // the receiver's channel to send through ("" = its default for `type`)
  int64_t delay_micros = 0;  // after the start of this person's page (Slack at once, SMS later)
};

struct Person {
  std::string id;
  std::string name;
  std::vector<ContactMethod> contact_methods;  // at least one
  // The language of this person's pages: "ru" (the default: the product's
  // market) or "en" (incidents/model.h RenderPage).
  std::string locale = "ru";
  // The IANA zone of the times in this person's pages ("" = Europe/Moscow).
  std::string time_zone;
};

// A window in which a layer is active (PagerDuty's restrictions). Start is a
// local time of day in the schedule's zone; the window lasts `duration_micros`
// of elapsed time.
struct Restriction {
  enum class Kind { kDaily, kWeekly };
  Kind kind = Kind::kDaily;
  int weekday = 0;              // kWeekly: 0 = Sunday ... 6 = Saturday
  int start_seconds = 0;        // local time of day, seconds after midnight
  int64_t duration_micros = 0;  // kDaily: < 24 h; kWeekly: < 7 days
};

enum class RotationType { kDaily, kWeekly, kCustom };

// One rotation. Turns follow each other from the first handoff, at local
// `start_day` + `handoff_seconds`, in participant order. A turn is either
// `shift_days` calendar days (the handoff stays at the same local time, so a
// turn across a DST change lasts 23 or 25 hours) or, when shift_days is 0,
// `shift_micros` of elapsed time.
struct Layer {
  std::string name;
  RotationType rotation = RotationType::kDaily;
  int shift_days = 1;
  int64_t shift_micros = 0;
  int handoff_seconds = 0;  // local time of day of the handoff
  int64_t start_day = 0;    // local calendar day of the first handoff, days since 1970-01-01
  std::vector<std::string> participants;  // person ids, in turn order (repeats allowed)
  std::vector<Restriction> restrictions;  // empty: always active
};

struct Schedule {
  std::string id;
  std::string name;
  std::string time_zone;  // IANA name, e.g. "Europe/Moscow"
  // Later layers lie on top of earlier ones (PagerDuty's order): at any time
  // the last layer with someone on call wins.
  std::vector<Layer> layers;
};

// `person` replaces whoever the schedule's layers put on call during [from, to).
struct Override {
  std::string schedule;
  std::string person;
  int64_t from_micros = 0;
  int64_t to_micros = 0;
};

struct Target {
  enum class Kind { kPerson, kSchedule, kChannel };
  Kind kind = Kind::kPerson;
  std::string id;  // person id, schedule id or the receiver's channel name
};

// One escalation level: its targets are paged when the level is reached, and
// the next level is reached `delay_micros` later unless the incident has been
// acknowledged or resolved (PagerDuty's escalation_delay_in_minutes).
struct Level {
  int64_t delay_micros = 0;
  std::vector<Target> targets;
};

struct EscalationPolicy {
  std::string id;
  std::string name;
  std::vector<Level> levels;  // at least one
  int repeat = 0;             // extra rounds over all levels after the first one
  // An acknowledged incident not resolved within this goes back to triggered and
  // its escalation resumes (IncidentState::resumptions); 0 = never.
  int64_t ack_timeout_micros = 0;
};

struct OnCallConfig {
  std::map<std::string, Person> people;
  std::map<std::string, Schedule> schedules;
  std::vector<Override> overrides;  // later entries win where overrides of a schedule overlap
  std::map<std::string, EscalationPolicy> escalation_policies;
};

}  // namespace bpmc::oncall
