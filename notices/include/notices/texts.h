#pragma once
// What customers read: notice templates per kind and locale (Russian by default,
// English), money and local times formatted per locale and IANA time zone
// (docs/NOTICES.md "Languages, time zones, templates"). Pure: no I/O besides the
// system tzdata, read once on first use.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bpmc::notices {

// The title and body of a notice. Each names only what the receiving customer
// already knows of: its own connectors, its own payment.
struct NoticeText {
  std::string title;
  std::string body;
};

// How one customer reads notices (notices-owned table notice_preferences).
struct CustomerPrefs {
  std::string locale = "ru";                // ru | en
  std::string time_zone = "Europe/Moscow";  // IANA name
};

// "ru" or "en".
bool ValidLocale(std::string_view locale);
// An IANA zone name the system tzdata knows ("Europe/Moscow", "UTC"), at most
// 64 characters of [A-Za-z0-9_+/-].
bool ValidTimeZone(const std::string& name);

// Money in minor units as the console shows it (Intl.NumberFormat ru-RU / en-US,
// style currency): ru "1 234,50 ₽", "1 234,50 $", "1 234,50 XYZ"; en "RUB 1,234.50",
// "$1,234.50", "€1,234.50", "XYZ 1,234.50". The spaces in ru and after a code in en
// are U+00A0 (no-break), as Intl writes them. Two decimals for every currency.
std::string FormatMoney(int64_t amount_minor, const std::string& currency,
                        const std::string& locale);

// A local date and time with the zone's abbreviation at that instant:
// ru "7 декабря 2026, 15:00 (MSK)", en "7 Dec 2026, 15:00 (MSK)". An unknown zone
// falls back to Europe/Moscow.
std::string FormatLocalTime(int64_t us, const std::string& locale, const std::string& time_zone);

// Every kind of notice the library sends, in a fixed order.
const std::vector<std::string>& NoticeKinds();
// The {{names}} a template of `kind` may use (empty for an unknown kind):
//   maintenance_scheduled, maintenance_changed, maintenance_cancelled,
//   maintenance_ended: connectors, starts, ends, message
//   connector_problem: connector, since;  connector_resolved: connector, since, resolved_at
//   payment_failed: connector, amount, reason, occurred_at
const std::vector<std::string>& TemplateNames(const std::string& kind);

// A mustache title and body (plain text, nothing escaped).
struct NoticeTemplate {
  std::string title;
  std::string body;
  bool operator==(const NoticeTemplate& o) const { return title == o.title && body == o.body; }
};
// By (kind, locale).
using NoticeTemplates = std::map<std::pair<std::string, std::string>, NoticeTemplate>;
// The built-in texts: every kind in ru and en.
NoticeTemplates DefaultNoticeTemplates();
// "" when `source` parses and uses only TemplateNames(kind); else the problem
// ("unknown name 'summary'", the parser's message). Pure.
std::string CheckNoticeTemplate(const std::string& source, const std::string& kind);

// What a notice is about, before it is put in a customer's words.
struct NoticeFacts {
  std::vector<std::string> connectors;  // display names (the id when it has none)
  int64_t starts_us = 0;                // maintenance
  int64_t ends_us = 0;
  std::string message;       // the admin's message (maintenance)
  int64_t at_us = 0;         // since / occurred_at
  int64_t resolved_us = 0;   // connector_resolved
  int64_t amount_minor = 0;  // payment_failed
  std::string currency;
  std::string reason;
};

// The notice of `kind` for a customer with `prefs`: its locale's template (ru when
// the locale is unknown), times in its zone, money in its locale. Pure.
NoticeText ComposeNotice(const NoticeTemplates& templates, const std::string& kind,
                         const CustomerPrefs& prefs, const NoticeFacts& facts);

}  // namespace bpmc::notices
