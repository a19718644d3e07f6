// What customers read, as tables: money and local times per locale, the built-in
// templates of every kind in ru and en (a connector's display name, Moscow time),
// template checks and config overrides, the incident notice decision, PATCH of a
// maintenance window and the preferences request.
#include "notices/texts.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "common/time_format.h"
#include "notices/config.h"
#include "notices/rules.h"

namespace bpmc::notices {
namespace {

const std::string kNb = "\xC2\xA0";  // U+00A0, as Intl.NumberFormat writes it
int64_t At(const char* rfc3339) { return *ParseRfc3339Micros(rfc3339); }

TEST(FormatMoney, AsTheConsoleFormatsIt) {
  const struct {
    int64_t minor;
    const char* currency;
    const char* locale;
    std::string want;
  } cases[] = {
      {123450, "RUB", "ru", "1" + kNb + "234,50" + kNb + "₽"},
      {123450, "RUB", "en", "RUB" + kNb + "1,234.50"},
      {5, "RUB", "ru", "0,05" + kNb + "₽"},
      {0, "RUB", "en", "RUB" + kNb + "0.00"},
      {123456789, "USD", "en", "$1,234,567.89"},
      {123456789, "USD", "ru", "1" + kNb + "234" + kNb + "567,89" + kNb + "$"},
      {99900, "EUR", "en", "€999.00"},
      {99900, "EUR", "ru", "999,00" + kNb + "€"},
      {100000, "KZT", "ru", "1" + kNb + "000,00" + kNb + "KZT"},
      {100000, "KZT", "en", "KZT" + kNb + "1,000.00"},
      {-250, "RUB", "ru", "-2,50" + kNb + "₽"},
      {-250, "USD", "en", "-$2.50"},
  };
  for (const auto& c : cases)
    EXPECT_EQ(FormatMoney(c.minor, c.currency, c.locale), c.want)
        << c.minor << " " << c.currency << " " << c.locale;
}

TEST(FormatLocalTime, LocaleAndZone) {
  const struct {
    const char* at;
    const char* locale;
    const char* zone;
    const char* want;
  } cases[] = {
      {"2026-12-07T12:00:00Z", "ru", "Europe/Moscow", "7 декабря 2026, 15:00 (MSK)"},
      {"2026-12-07T12:00:00Z", "en", "Europe/Moscow", "7 Dec 2026, 15:00 (MSK)"},
      {"2026-12-31T21:30:00Z", "ru", "Europe/Moscow", "1 января 2027, 00:30 (MSK)"},
      {"2026-07-01T10:05:00Z", "en", "Europe/Berlin", "1 Jul 2026, 12:05 (CEST)"},
      {"2026-01-01T10:05:00Z", "en", "Europe/Berlin", "1 Jan 2026, 11:05 (CET)"},
      {"2026-03-08T06:59:00Z", "ru", "UTC", "8 марта 2026, 06:59 (UTC)"},
      {"2026-05-09T00:00:00Z", "ru", "Asia/Vladivostok", "9 мая 2026, 10:00 (+10)"},
      {"2026-12-07T12:00:00Z", "ru", "No/Such_Zone", "7 декабря 2026, 15:00 (MSK)"},
  };
  for (const auto& c : cases)
    EXPECT_EQ(FormatLocalTime(At(c.at), c.locale, c.zone), c.want) << c.at << " " << c.zone;
}

TEST(ComposeNotice, EveryKindInBothLocalesNamesTheConnectorInMoscowTime) {
  const NoticeTemplates t = DefaultNoticeTemplates();
  NoticeFacts f;
  f.connectors = {"CRM Коннектор"};
  f.starts_us = At("2026-12-07T12:00:00Z");
  f.ends_us = At("2026-12-07T14:30:00Z");
  f.message = "Обновление базы";
  f.at_us = At("2026-12-07T12:00:00Z");
  f.resolved_us = At("2026-12-07T13:15:00Z");
  f.amount_minor = 123450;
  f.currency = "RUB";
  f.reason = "card_declined";
  const CustomerPrefs ru{"ru", "Europe/Moscow"}, en{"en", "Europe/Moscow"};
  const struct {
    const char* kind;
    const CustomerPrefs& prefs;
    std::string title;
    std::vector<std::string> in_body;
  } cases[] = {
      {"maintenance_scheduled",
       ru,
       "Плановые работы: CRM Коннектор",
       {"Начало: 7 декабря 2026, 15:00 (MSK)", "Окончание: 7 декабря 2026, 17:30 (MSK)",
        "Обновление базы"}},
      {"maintenance_scheduled",
       en,
       "Planned maintenance of CRM Коннектор",
       {"from 7 Dec 2026, 15:00 (MSK) to 7 Dec 2026, 17:30 (MSK)"}},
      {"maintenance_changed",
       ru,
       "Плановые работы изменены: CRM Коннектор",
       {"с 7 декабря 2026, 15:00 (MSK) до 7 декабря 2026, 17:30 (MSK)"}},
      {"maintenance_changed",
       en,
       "Maintenance of CRM Коннектор changed",
       {"now runs from 7 Dec 2026, 15:00 (MSK)"}},
      {"maintenance_cancelled",
       ru,
       "Плановые работы отменены: CRM Коннектор",
       {"с 7 декабря 2026, 15:00 (MSK) до 7 декабря 2026, 17:30 (MSK) отменены"}},
      {"maintenance_cancelled", en, "Maintenance of CRM Коннектор cancelled", {"is cancelled"}},
      {"maintenance_ended", ru, "Плановые работы завершены: CRM Коннектор", {"(Обновление базы)"}},
      {"maintenance_ended", en, "Maintenance of CRM Коннектор has ended", {"has ended"}},
      {"connector_problem",
       ru,
       "Проблема с коннектором CRM Коннектор",
       {"С 7 декабря 2026, 15:00 (MSK) коннектор CRM Коннектор работает с ошибками"}},
      {"connector_problem",
       en,
       "Problem with connector CRM Коннектор",
       {"since 7 Dec 2026, 15:00 (MSK)"}},
      {"connector_resolved",
       ru,
       "Коннектор CRM Коннектор снова работает",
       {"устранена 7 декабря 2026, 16:15 (MSK)"}},
      {"connector_resolved",
       en,
       "Connector CRM Коннектор works again",
       {"resolved at 7 Dec 2026, 16:15 (MSK)"}},
      {"payment_failed",
       ru,
       "Не прошёл платёж за коннектор CRM Коннектор",
       {"Ваш платёж 1" + kNb + "234,50" + kNb + "₽", "от 7 декабря 2026, 15:00 (MSK)",
        "(card_declined)"}},
      {"payment_failed",
       en,
       "Payment for connector CRM Коннектор failed",
       {"payment of RUB" + kNb + "1,234.50", "on 7 Dec 2026, 15:00 (MSK)"}},
  };
  for (const auto& c : cases) {
    const NoticeText n = ComposeNotice(t, c.kind, c.prefs, f);
    EXPECT_EQ(n.title, c.title) << c.kind << " " << c.prefs.locale;
    for (const std::string& s : c.in_body)
      EXPECT_NE(n.body.find(s), std::string::npos) << c.kind << ": " << s << "\n" << n.body;
  }
  // Every kind has both locales, and every built-in template passes its own check.
  for (const std::string& kind : NoticeKinds())
    for (const char* locale : {"ru", "en"}) {
      ASSERT_TRUE(t.count({kind, locale})) << kind << " " << locale;
      EXPECT_EQ(CheckNoticeTemplate(t.at({kind, locale}).title, kind), "") << kind;
      EXPECT_EQ(CheckNoticeTemplate(t.at({kind, locale}).body, kind), "") << kind;
    }
  // No reason: no empty parentheses. An unknown locale reads Russian.
  f.reason = "";
  EXPECT_EQ(ComposeNotice(t, "payment_failed", en, f).body.find("()"), std::string::npos);
  EXPECT_EQ(ComposeNotice(t, "connector_problem", {"de", "Europe/Moscow"}, f).title,
            "Проблема с коннектором CRM Коннектор");
  // Several connectors are listed; nothing is HTML-escaped in plain text.
  f.connectors = {"A & B", "C <1>"};
  EXPECT_EQ(ComposeNotice(t, "maintenance_ended", en, f).title,
            "Maintenance of A & B, C <1> has ended");
}

TEST(CheckNoticeTemplate, NamesOfTheKindOnly) {
  const struct {
    const char* source;
    const char* kind;
    bool ok;
  } cases[] = {
      {"{{connector}} since {{since}}", "connector_problem", true},
      {"{{connector}} {{amount}}", "connector_problem", false},  // a payment's name
      {"{{summary}}", "connector_problem", false},               // an alert's name
      {"{{#reason}}({{reason}}){{/reason}}", "payment_failed", true},
      {"{{connectors}} {{starts}} {{ends}} {{message}}", "maintenance_changed", true},
      {"{{connector}", "connector_problem", false},
      {"{{#since}}", "connector_problem", false},
      {"{{> partial}}", "connector_problem", false},
      {"plain", "no_such_kind", false},
  };
  for (const auto& c : cases)
    EXPECT_EQ(CheckNoticeTemplate(c.source, c.kind).empty(), c.ok) << c.source;
}

TEST(ParseNoticesConfig, TemplatesOverridePerKindAndLocale) {
  notifier::NotifierConfig channels;
  NoticesConfig c;
  std::string error;
  ASSERT_TRUE(ParseNoticesConfig(YAML::Load(R"(
templates:
  connector_problem:
    en: {title: "Trouble: {{connector}}"}
    ru: {body: "Сбой {{connector}} с {{since}}"}
)"),
                                 channels, &c, &error))
      << error;
  EXPECT_EQ(c.templates.at({"connector_problem", "en"}).title, "Trouble: {{connector}}");
  EXPECT_EQ(c.templates.at({"connector_problem", "en"}).body,
            DefaultNoticeTemplates().at({"connector_problem", "en"}).body);
  EXPECT_EQ(c.templates.at({"connector_problem", "ru"}).body, "Сбой {{connector}} с {{since}}");

  const struct {
    const char* yaml;
    const char* key;
  } bad[] = {
      {"templates: {connector_problem: {en: {title: '{{amount}}'}}}",
       "notices.templates.connector_problem.en.title"},
      {"templates: {connector_problem: {de: {title: 'x'}}}",
       "notices.templates.connector_problem.de"},
      {"templates: {connector_fire: {en: {title: 'x'}}}", "notices.templates.connector_fire"},
      {"templates: {payment_failed: {ru: {subject: 'x'}}}",
       "notices.templates.payment_failed.ru.subject"},
      {"templates: {payment_failed: {ru: {body: '{{#reason}}'}}}",
       "notices.templates.payment_failed.ru.body"},
      {"templates: [1]", "notices.templates"},
  };
  for (const auto& b : bad) {
    NoticesConfig out;
    EXPECT_FALSE(ParseNoticesConfig(YAML::Load(b.yaml), channels, &out, &error)) << b.yaml;
    EXPECT_EQ(error.substr(0, error.find(": ")), b.key) << b.yaml << " -> " << error;
  }
}

TEST(DecideIncidentNotice, UnresolvedAfterTheDelayAcknowledgedOrNot) {
  const int64_t kAfter = 15 * 60 * 1000000LL, kNow = At("2026-12-07T12:00:00Z");
  const int64_t old = kNow - kAfter, young = kNow - kAfter + 1;
  using N = IncidentNotice;
  const struct {
    IncidentFacts i;
    N want;
  } cases[] = {
      {{"c1", "triggered", false, old, false, false}, N::kProblem},
      {{"c1", "acknowledged", false, old, false, false}, N::kProblem},  // ack is not a fix
      {{"c1", "acknowledged", false, young, false, false}, N::kNone},   // not long enough
      {{"c1", "triggered", false, young, false, false}, N::kNone},
      {{"c1", "triggered", true, old, false, false}, N::kNone},     // muted (maintenance)
      {{"", "triggered", false, old, false, false}, N::kNone},      // no connector
      {{"c1", "acknowledged", false, old, true, false}, N::kNone},  // already told
      {{"c1", "resolved", false, old, true, false}, N::kResolved},
      {{"c1", "resolved", false, old, true, true}, N::kNone},    // already told
      {{"c1", "resolved", false, old, false, false}, N::kNone},  // fixed in time: never told
      {{"c1", "resolved", true, old, true, false}, N::kResolved},
  };
  for (const auto& c : cases)
    EXPECT_EQ(DecideIncidentNotice(c.i, kNow, kAfter), c.want)
        << c.i.connector << " " << c.i.status << " muted=" << c.i.muted
        << " problem=" << c.i.problem_noticed << " resolved=" << c.i.resolved_noticed;
}

TEST(ParseMaintenancePatch, OverTheCurrentWindowValidatedAsAWhole) {
  const int64_t now = At("2026-11-26T10:00:00Z");
  MaintenanceRequest cur;
  cur.connectors = {"c1"};
  cur.starts_us = At("2026-11-27T00:00:00Z");
  cur.ends_us = At("2026-11-27T02:00:00Z");
  cur.message = "m";
  const std::string long_text(10000, 'x');
  const struct {
    std::string body;
    const char* field;  // "" with ok
    bool ok;
  } cases[] = {
      {R"({"message":"new"})", "", true},
      {R"({"ends_at":"2026-11-27T03:00:00Z"})", "", true},
      {R"({"connectors":["c2","c1"]})", "", true},
      {"{}", "", false},
      {"not json", "", false},
      {R"({"ends_at":"2026-11-26T23:00:00Z"})", "ends_at", false},  // before starts_at
      {R"({"starts_at":"2026-11-20T00:00:00Z","ends_at":"2026-11-26T09:00:00Z"})", "ends_at",
       false},  // over already
      {R"({"message":""})", "message", false},
      {"{\"message\":\"" + long_text + "\"}", "message", false},
      {R"({"connectors":["bad id"]})", "connectors[0]", false},
      {R"({"id":3})", "id", false},
      {R"({"starts_at":7})", "starts_at", false},
  };
  for (const auto& c : cases) {
    auto r = ParseMaintenancePatch(c.body, cur, now);
    if (c.ok) {
      EXPECT_TRUE(std::holds_alternative<MaintenanceRequest>(r)) << c.body;
    } else {
      ASSERT_TRUE(std::holds_alternative<FieldError>(r)) << c.body.substr(0, 80);
      EXPECT_EQ(std::get<FieldError>(r).field, c.field) << c.body.substr(0, 80);
    }
  }
  auto r = std::get<MaintenanceRequest>(
      ParseMaintenancePatch(R"({"ends_at":"2026-11-27T03:00:00Z"})", cur, now));
  EXPECT_EQ(r.connectors, cur.connectors);
  EXPECT_EQ(r.starts_us, cur.starts_us);
  EXPECT_EQ(r.ends_us, At("2026-11-27T03:00:00Z"));
  EXPECT_EQ(r.message, "m");
  EXPECT_EQ(WindowLocked(false, cur.ends_us, now), "");
  EXPECT_NE(WindowLocked(true, cur.ends_us, now), "");
  EXPECT_NE(WindowLocked(false, now, now), "");
}

TEST(ParsePreferencesRequest, LocaleAndZone) {
  const struct {
    std::string body;
    const char* field;
    const char* locale;
    const char* zone;
  } cases[] = {
      {R"({"locale":"en","time_zone":"Europe/Berlin"})", nullptr, "en", "Europe/Berlin"},
      {R"({})", nullptr, "ru", "Europe/Moscow"},
      {R"({"locale":"de"})", "locale", "", ""},
      {R"({"locale":1})", "locale", "", ""},
      {R"({"time_zone":"Mars/Olympus"})", "time_zone", "", ""},
      {R"({"time_zone":"../../etc/passwd"})", "time_zone", "", ""},
      {"{\"time_zone\":\"" + std::string(10000, 'x') + "\"}", "time_zone", "", ""},
      {R"({"language":"en"})", "language", "", ""},
      {"[]", "", "", ""},
  };
  for (const auto& c : cases) {
    auto r = ParsePreferencesRequest(c.body);
    if (!c.field) {
      ASSERT_TRUE(std::holds_alternative<CustomerPrefs>(r)) << c.body;
      EXPECT_EQ(std::get<CustomerPrefs>(r).locale, c.locale);
      EXPECT_EQ(std::get<CustomerPrefs>(r).time_zone, c.zone);
    } else {
      ASSERT_TRUE(std::holds_alternative<FieldError>(r)) << c.body.substr(0, 80);
      EXPECT_EQ(std::get<FieldError>(r).field, c.field);
    }
  }
}

}  // namespace
}  // namespace bpmc::notices
