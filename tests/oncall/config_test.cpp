#include "oncall/config.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "oncall/escalation.h"
#include "oncall/schedule.h"
#include "oncall_test_util.h"

namespace bpmc::oncall {
namespace {

using test::kMinute;
using test::kSecond;
using test::MustParse;
using test::T;

const std::string kPeople = R"(
people:
  ann: {contact_methods: [{type: email, address: ann@example.com}]}
  bob: {contact_methods: [{type: email, address: bob@example.com}]}
)";

// A valid schedule whose layer keys the cases below replace one at a time.
std::string ScheduleYaml(const std::string& second_layer) {
  return kPeople + R"(
schedules:
  primary:
    time_zone: Europe/Moscow
    layers:
      - {rotation: daily, handoff: "09:00", start: 2026-01-05, participants: [ann, bob]}
      - )" +
         second_layer + "\n";
}

std::string PolicyYaml(const std::string& levels, const std::string& extra = "") {
  return ScheduleYaml(
             R"({rotation: weekly, handoff: "09:00", start: 2026-01-05, participants: [bob]})") +
         "escalation_policies:\n  p:\n" + extra + "    levels: " + levels + "\n";
}

struct ErrorCase {
  const char* name;
  std::string yaml;
  std::string error;  // the expected start of the error ("<key>: ...")
};

TEST(ParseOnCallConfigTest, ErrorsNameTheKeyPath) {
  unsetenv("BPMC_TEST_UNSET_ADDRESS");
  const std::string person = "people:\n  ann:\n    contact_methods:\n      - ";
  const ErrorCase cases[] = {
      {"bad handoff",
       ScheduleYaml(R"({rotation: daily, handoff: "9am", start: 2026-01-05, participants: [ann]})"),
       "schedules.primary.layers[1].handoff: must be HH:MM or HH:MM:SS"},
      {"handoff hour 24",
       ScheduleYaml(
           R"({rotation: daily, handoff: "24:00", start: 2026-01-05, participants: [ann]})"),
       "schedules.primary.layers[1].handoff:"},
      {"unknown participant",
       ScheduleYaml(
           R"({rotation: daily, handoff: "09:00", start: 2026-01-05, participants: [ann, zoe]})"),
       "schedules.primary.layers[1].participants[1]: unknown person 'zoe'"},
      {"no participants",
       ScheduleYaml(R"({rotation: daily, handoff: "09:00", start: 2026-01-05, participants: []})"),
       "schedules.primary.layers[1].participants: must not be empty"},
      {"unknown rotation",
       ScheduleYaml(
           R"({rotation: hourly, handoff: "09:00", start: 2026-01-05, participants: [ann]})"),
       "schedules.primary.layers[1].rotation: must be daily, weekly or custom"},
      {"custom without length",
       ScheduleYaml(
           R"({rotation: custom, handoff: "09:00", start: 2026-01-05, participants: [ann]})"),
       "schedules.primary.layers[1].shift_length: is required"},
      {"daily with a length",
       ScheduleYaml(
           R"({rotation: daily, shift_length: 12h, handoff: "09:00", start: 2026-01-05, participants: [ann]})"),
       "schedules.primary.layers[1].shift_length: only with rotation: custom"},
      {"no such date",
       ScheduleYaml(
           R"({rotation: daily, handoff: "09:00", start: 2026-02-30, participants: [ann]})"),
       "schedules.primary.layers[1].start: must be a date YYYY-MM-DD"},
      {"unknown layer key",
       ScheduleYaml(
           R"({rotation: daily, handof: "09:00", start: 2026-01-05, participants: [ann]})"),
       "schedules.primary.layers[1].handof: unknown key"},
      {"weekly restriction without a day",
       ScheduleYaml(
           R"({rotation: daily, handoff: "09:00", start: 2026-01-05, participants: [ann], restrictions: [{type: weekly, start: "09:00", duration: 1d}]})"),
       "schedules.primary.layers[1].restrictions[0].day: is required with type: weekly"},
      {"daily restriction of 24h",
       ScheduleYaml(
           R"({rotation: daily, handoff: "09:00", start: 2026-01-05, participants: [ann], restrictions: [{type: daily, start: "09:00", duration: 24h}]})"),
       "schedules.primary.layers[1].restrictions[0].duration: must be more than 0 and less than "
       "24h"},
      {"bad weekday",
       ScheduleYaml(
           R"({rotation: daily, handoff: "09:00", start: 2026-01-05, participants: [ann], restrictions: [{type: weekly, day: funday, start: "09:00", duration: 1d}]})"),
       "schedules.primary.layers[1].restrictions[0].day: must be a day of the week"},
      {"unknown time zone",
       kPeople + "schedules:\n  primary: {time_zone: Europe/Atlantis, layers: []}\n",
       "schedules.primary.time_zone: unknown IANA time zone 'Europe/Atlantis'"},
      {"no layers", kPeople + "schedules:\n  primary: {time_zone: Europe/Moscow, layers: []}\n",
       "schedules.primary.layers: must not be empty"},
      {"bad schedule id",
       kPeople + "schedules:\n  prim/ary: {time_zone: Europe/Moscow, layers: []}\n",
       "schedules.prim/ary: 'prim/ary' may only contain"},
      {"unknown contact type", person + "{type: pigeon, address: roof}\n",
       "people.ann.contact_methods[0].type: must be email, slack, sms, webhook, pagerduty or "
       "telegram"},
      {"telegram chat id not numeric", person + "{type: telegram, chat_id: '@ann'}\n",
       "people.ann.contact_methods[0].chat_id: must be a numeric Telegram chat id"},
      {"chat_id on another type", person + "{type: sms, chat_id: '42'}\n",
       "people.ann.contact_methods[0].chat_id: only with type: telegram"},
      {"chat_id and address", person + "{type: telegram, chat_id: '42', address: '43'}\n",
       "people.ann.contact_methods[0]: give one of address, address_env, address_file, chat_id"},
      {"no address", person + "{type: sms}\n",
       "people.ann.contact_methods[0].address: is required"},
      {"two address sources", person + "{type: sms, address: '+7', address_env: X}\n",
       "people.ann.contact_methods[0]: give one of address, address_env, address_file, chat_id"},
      {"unset address variable", person + "{type: sms, address_env: BPMC_TEST_UNSET_ADDRESS}\n",
       "people.ann.contact_methods[0].address_env: environment variable BPMC_TEST_UNSET_ADDRESS is "
       "not set"},
      {"unreadable address file", person + "{type: webhook, address_file: /nonexistent/hook}\n",
       "people.ann.contact_methods[0].address_file: cannot read /nonexistent/hook"},
      {"unknown locale",
       "people:\n  ann:\n    locale: de\n    contact_methods: [{type: sms, address: '+7'}]\n",
       "people.ann.locale: must be ru or en"},
      {"unknown person time zone",
       "people:\n  ann:\n    time_zone: Mars/Olympus\n    contact_methods: [{type: sms, address: "
       "'+7'}]\n",
       "people.ann.time_zone: unknown IANA time zone 'Mars/Olympus'"},
      {"duplicate method ids",
       person + "{type: sms, address: '+71'}\n      - {type: sms, address: '+72'}\n",
       "people.ann.contact_methods[1].id: duplicate contact method id 'sms'"},
      {"bad contact delay", person + "{type: sms, address: '+7', delay: soon}\n",
       "people.ann.contact_methods[0].delay: must be a duration like 30m"},
      {"unknown person key", "people:\n  ann: {phone: 1, contact_methods: []}\n",
       "people.ann.phone: unknown key"},
      {"no contact methods", "people:\n  ann: {contact_methods: []}\n",
       "people.ann.contact_methods: must not be empty"},
      {"people as a list", "people: [ann]\n", "people: must be a mapping from id to entry"},
      {"override ends before it starts",
       ScheduleYaml(
           R"({rotation: weekly, handoff: "09:00", start: 2026-01-05, participants: [bob]})") +
           "overrides:\n  - {schedule: primary, person: ann, from: '2026-01-06T12:00:00+03:00', "
           "to: '2026-01-06T12:00:00+03:00'}\n",
       "overrides[0].to: must be later than from"},
      {"override of an unknown person",
       ScheduleYaml(
           R"({rotation: weekly, handoff: "09:00", start: 2026-01-05, participants: [bob]})") +
           "overrides:\n  - {schedule: primary, person: zoe, from: '2026-01-06T12:00:00Z', to: "
           "'2026-01-06T13:00:00Z'}\n",
       "overrides[0].person: unknown person 'zoe'"},
      {"override time without offset",
       ScheduleYaml(
           R"({rotation: weekly, handoff: "09:00", start: 2026-01-05, participants: [bob]})") +
           "overrides:\n  - {schedule: primary, person: ann, from: '2026-01-06T12:00:00', to: "
           "'2026-01-06T13:00:00Z'}\n",
       "overrides[0].from: must be an RFC 3339 time with an offset"},
      {"delay without unit", PolicyYaml("[{delay: 30, targets: [{person: ann}]}]"),
       "escalation_policies.p.levels[0].delay: must be a duration like 30m, 45s or 1h30m, got "
       "'30'"},
      {"two kinds in one target",
       PolicyYaml("[{delay: 30m, targets: [{person: ann, schedule: primary}]}]"),
       "escalation_policies.p.levels[0].targets[0]: give exactly one of person, schedule, channel"},
      {"unknown schedule target",
       PolicyYaml(
           "[{delay: 30m, targets: [{person: ann}]}, {delay: 30m, targets: [{schedule: nope}]}]"),
       "escalation_policies.p.levels[1].targets[0].schedule: unknown schedule 'nope'"},
      {"channel name with a slash", PolicyYaml("[{delay: 30m, targets: [{channel: a/b}]}]"),
       "escalation_policies.p.levels[0].targets[0].channel: a channel name must not contain '/'"},
      {"no targets", PolicyYaml("[{delay: 30m, targets: []}]"),
       "escalation_policies.p.levels[0].targets: must not be empty"},
      {"no levels", PolicyYaml("[]"), "escalation_policies.p.levels: must not be empty"},
      {"negative repeat",
       PolicyYaml("[{delay: 30m, targets: [{person: ann}]}]", "    repeat: -1\n"),
       "escalation_policies.p.repeat: must be between 0 and 100"},
      {"ack_timeout too short",
       PolicyYaml("[{delay: 30m, targets: [{person: ann}]}]", "    ack_timeout: 0s\n"),
       "escalation_policies.p.ack_timeout: must be between 1s and 7d"},
      {"ack_timeout too long",
       PolicyYaml("[{delay: 30m, targets: [{person: ann}]}]", "    ack_timeout: 8d\n"),
       "escalation_policies.p.ack_timeout: must be between 1s and 7d"},
      {"ack_timeout not a duration",
       PolicyYaml("[{delay: 30m, targets: [{person: ann}]}]", "    ack_timeout: soon\n"),
       "escalation_policies.p.ack_timeout: "},
      {"repeat of a zero-length round",
       PolicyYaml("[{delay: 0s, targets: [{person: ann}]}]", "    repeat: 2\n"),
       "escalation_policies.p.repeat: needs levels whose delays add up to more than 0"},
      {"not a mapping", "- a\n- b\n", "(root): the config must be a YAML mapping"},
  };
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.name);
    OnCallConfig config;
    std::string error;
    EXPECT_FALSE(ParseOnCallConfig(YAML::Load(c.yaml), &config, &error)) << c.yaml;
    EXPECT_EQ(error.substr(0, c.error.size()), c.error) << error;
  }
}

TEST(ParseOnCallConfigTest, ReadsEverySection) {
  setenv("BPMC_TEST_PD_KEY", "0123456789abcdef0123456789abcdef", 1);
  const OnCallConfig config = MustParse(kPeople + R"(
  carol:
    name: Carol Ivanova
    locale: en
    time_zone: Asia/Yekaterinburg
    contact_methods:
      - {type: slack, address: U0CAROL, channel: team-slack}
      - {id: sms-work, type: sms, address: "+70000000003", delay: 5m}
      - {id: sms-home, type: sms, address: "+70000000004", delay: 10m}
      - {type: pagerduty, address_env: BPMC_TEST_PD_KEY, delay: 1h30m}
schedules:
  primary:
    name: Primary On-Call
    time_zone: Europe/Moscow
    layers:
      - {name: days, rotation: custom, shift_length: 12h, handoff: "09:00:30", start: 2026-01-05,
         participants: [ann, bob, ann],
         restrictions: [{type: weekly, day: mon, start: "09:00", duration: 4d12h}]}
overrides:
  - {schedule: primary, person: carol, from: "2026-01-06T12:00:00+03:00", to: "2026-01-06T15:00:00Z"}
escalation_policies:
  p:
    name: Primary Escalation Policy
    repeat: 2
    levels:
      - {delay: 45s, targets: [{schedule: primary}, {channel: ops-slack}]}
      - {delay: 30m, targets: [{person: carol}]}
routes: [ignored, by, this, parser]
)");
  const Person& carol = config.people.at("carol");
  EXPECT_EQ(carol.name, "Carol Ivanova");
  ASSERT_EQ(carol.contact_methods.size(), 4u);
  EXPECT_EQ(carol.contact_methods[0].id, "slack");
  EXPECT_EQ(carol.contact_methods[0].channel, "team-slack");
  EXPECT_EQ(carol.contact_methods[1].id, "sms-work");
  EXPECT_EQ(carol.contact_methods[2].delay_micros, 10 * kMinute);
  EXPECT_EQ(carol.contact_methods[3].type, ContactType::kPagerDuty);
  EXPECT_EQ(carol.contact_methods[3].address, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(carol.contact_methods[3].delay_micros, 90 * kMinute);
  EXPECT_EQ(config.people.at("ann").name, "ann");  // defaults to the id

  const Schedule& primary = config.schedules.at("primary");
  EXPECT_EQ(primary.name, "Primary On-Call");
  const Layer& layer = primary.layers.at(0);
  EXPECT_EQ(layer.rotation, RotationType::kCustom);
  EXPECT_EQ(layer.shift_days, 0);
  EXPECT_EQ(layer.shift_micros, 12 * 60 * kMinute);
  EXPECT_EQ(layer.handoff_seconds, 9 * 3600 + 30);
  EXPECT_EQ(layer.start_day, T("2026-01-05T00:00:00Z") / (86400 * kSecond));
  EXPECT_EQ(layer.participants, (std::vector<std::string>{"ann", "bob", "ann"}));
  ASSERT_EQ(layer.restrictions.size(), 1u);
  EXPECT_EQ(layer.restrictions[0].weekday, 1);
  EXPECT_EQ(layer.restrictions[0].duration_micros, 108 * 60 * kMinute);

  ASSERT_EQ(config.overrides.size(), 1u);
  EXPECT_EQ(config.overrides[0].from_micros, T("2026-01-06T09:00:00Z"));
  EXPECT_EQ(config.overrides[0].to_micros, T("2026-01-06T15:00:00Z"));

  const EscalationPolicy& p = config.escalation_policies.at("p");
  EXPECT_EQ(p.name, "Primary Escalation Policy");
  EXPECT_EQ(p.repeat, 2);
  ASSERT_EQ(p.levels.size(), 2u);
  EXPECT_EQ(p.levels[0].delay_micros, 45 * kSecond);
  EXPECT_EQ(p.levels[0].targets[1].kind, Target::Kind::kChannel);
  EXPECT_EQ(p.levels[0].targets[1].id, "ops-slack");
  EXPECT_EQ(config.people.at("carol").locale, "en");
  EXPECT_EQ(config.people.at("carol").time_zone, "Asia/Yekaterinburg");
  EXPECT_EQ(config.people.at("ann").locale, "ru");  // the default
  EXPECT_EQ(config.people.at("ann").time_zone, "");
  unsetenv("BPMC_TEST_PD_KEY");
}

TEST(ParseOnCallConfigTest, TelegramContactMethods) {
  OnCallConfig config;
  std::string error;
  ASSERT_TRUE(ParseOnCallConfig(YAML::Load(R"(
people:
  ann:
    contact_methods:
      - {type: telegram}
      - {type: telegram, id: group, chat_id: "-1001234567890", delay: 5m}
)"),
                                &config, &error))
      << error;
  const auto& methods = config.people.at("ann").contact_methods;
  ASSERT_EQ(methods.size(), 2u);
  EXPECT_EQ(methods[0].type, ContactType::kTelegram);
  EXPECT_EQ(methods[0].id, "telegram");
  EXPECT_EQ(methods[0].address, "person:ann") << "the chat ann binds with /start";
  EXPECT_EQ(methods[1].address, "-1001234567890");
  EXPECT_EQ(std::string(ContactTypeName(ContactType::kTelegram)), "telegram");
}

TEST(ParseOnCallConfigTest, EmptyAndAbsentSectionsAreEmpty) {
  const OnCallConfig config = MustParse("listen: 127.0.0.1:9471\npeople:\n");
  EXPECT_TRUE(config.people.empty());
  EXPECT_TRUE(config.schedules.empty());
  EXPECT_TRUE(config.overrides.empty());
  EXPECT_TRUE(config.escalation_policies.empty());
}

TEST(ParseOnCallConfigTest, TheReceiverChecksChannelNames) {
  const std::string yaml = R"(
people:
  ann: {contact_methods: [{type: slack, address: U0ANN, channel: ops-email}]}
escalation_policies:
  p:
    levels: [{delay: 5m, targets: [{person: ann}, {channel: ops-slack}, {channel: nope}]}]
)";
  // Receiver channels: ops-slack (slack), ops-email (email).
  const ChannelCheck check = [](const ChannelUse& use) -> std::string {
    const std::map<std::string, ContactType> known = {{"ops-slack", ContactType::kSlack},
                                                      {"ops-email", ContactType::kEmail}};
    auto it = known.find(use.name);
    if (it == known.end()) return "unknown channel '" + use.name + "'";
    if (use.as_type && *use.as_type != it->second)
      return std::string("channel '") + use.name + "' is not of type " +
             ContactTypeName(*use.as_type);
    return "";
  };
  OnCallConfig config;
  std::string error;
  EXPECT_FALSE(ParseOnCallConfig(YAML::Load(yaml), check, &config, &error));
  EXPECT_EQ(error,
            "people.ann.contact_methods[0].channel: channel 'ops-email' is not of type slack");

  OnCallConfig parsed = MustParse(yaml);
  const auto uses = ChannelUses(parsed);
  ASSERT_EQ(uses.size(), 3u);
  EXPECT_EQ(uses[1].key, "escalation_policies.p.levels[0].targets[1].channel");
  EXPECT_EQ(uses[1].name, "ops-slack");
  EXPECT_FALSE(uses[1].as_type.has_value());
  EXPECT_EQ(uses[2].name, "nope");

  const std::string fixed = std::string(yaml).replace(yaml.find("ops-email"), 9, "ops-slack");
  EXPECT_FALSE(ParseOnCallConfig(YAML::Load(fixed), check, &config, &error));
  EXPECT_EQ(error, "escalation_policies.p.levels[0].targets[2].channel: unknown channel 'nope'");
}

TEST(ParseDurationTest, Table) {
  const struct {
    const char* text;
    std::optional<int64_t> micros;
  } cases[] = {
      {"0", 0},
      {"0s", 0},
      {"45s", 45 * kSecond},
      {"30m", 30 * kMinute},
      {"1h30m", 90 * kMinute},
      {"2d", 2 * 86400 * kSecond},
      {"250ms", 250'000},
      {"1m30s", 90 * kSecond},
      {"", std::nullopt},
      {"30", std::nullopt},
      {"-5m", std::nullopt},
      {"5 m", std::nullopt},
      {"5M", std::nullopt},
      {"m", std::nullopt},
      {"5w", std::nullopt},
      {"99999999999999999999s", std::nullopt},
      {"4000d", std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_EQ(ParseDurationMicros(c.text), c.micros);
  }
}

// The complete example of docs/ONCALL.md parses and behaves as the text says.
TEST(ParseOnCallConfigTest, TheDocumentedExampleIsValid) {
  const char* source_dir = std::getenv("BPMC_SOURCE_DIR");
  ASSERT_NE(source_dir, nullptr) << "run through ctest (BPMC_SOURCE_DIR)";
  std::ifstream in(std::string(source_dir) + "/docs/ONCALL.md");
  ASSERT_TRUE(in) << "docs/ONCALL.md";
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  const size_t begin = doc.find("```yaml\n");
  ASSERT_NE(begin, std::string::npos);
  const size_t end = doc.find("```", begin + 8);
  const OnCallConfig config = MustParse(doc.substr(begin + 8, end - begin - 8));

  const Schedule& primary = config.schedules.at("primary");
  EXPECT_EQ(primary.time_zone, "Europe/Moscow");
  // Weekdays: the weekly rotation; Monday 2026-01-05 09:00 is John's first turn.
  EXPECT_EQ(WhoIsOnCall(primary, config.overrides, T("2026-01-05T12:00:00+03:00")).person, "john");
  EXPECT_EQ(WhoIsOnCall(primary, config.overrides, T("2026-01-12T12:00:00+03:00")).person, "jane");
  const EscalationPolicy& policy = config.escalation_policies.at("primary");
  ASSERT_EQ(policy.levels.size(), 2u);
  EXPECT_EQ(policy.levels[0].delay_micros, 30 * kMinute);
  // The walk-through under the example.
  const int64_t start = T("2026-01-05T12:00:00+03:00");
  std::vector<std::pair<std::string, int64_t>> plan;
  for (const PageAction& step : PlanSteps(config, policy, start))
    plan.emplace_back(step.key, (step.due_micros - start) / kMinute);
  const std::vector<std::pair<std::string, int64_t>> expected = {
      {"primary/r0/l0/schedule:primary/person:john/slack", 0},
      {"primary/r0/l0/schedule:primary/person:john/email", 0},
      {"primary/r0/l0/channel:ops-slack", 0},
      {"primary/r0/l0/schedule:primary/person:john/sms", 5},
      {"primary/r0/l1/person:jane/slack", 30},
      {"primary/r0/l1/person:lead/pagerduty", 30},
      {"primary/r0/l1/person:lead/phone", 32},
      {"primary/r0/l1/person:jane/sms", 35},
      {"primary/r1/l0/schedule:primary/person:john/slack", 60},
      {"primary/r1/l0/schedule:primary/person:john/email", 60},
      {"primary/r1/l0/channel:ops-slack", 60},
      {"primary/r1/l0/schedule:primary/person:john/sms", 65},
      {"primary/r1/l1/person:jane/slack", 90},
      {"primary/r1/l1/person:lead/pagerduty", 90},
      {"primary/r1/l1/person:lead/phone", 92},
      {"primary/r1/l1/person:jane/sms", 95},
  };
  EXPECT_EQ(plan, expected);
}

}  // namespace
}  // namespace bpmc::oncall
