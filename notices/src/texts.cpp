#include "notices/texts.h"

#include <date/date.h>
#include <date/tz.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "notifier/config.h"
#include "notifier/templates.h"

namespace bpmc::notices {
namespace {

constexpr const char* kNbsp = "\xC2\xA0";

const date::time_zone* FindZone(const std::string& name) {
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    return nullptr;
  }
}

// "1234567" -> "1<sep>234<sep>567".
std::string Group(uint64_t n, const std::string& sep) {
  std::string digits = std::to_string(n);
  std::string out;
  const size_t lead = digits.size() % 3 == 0 ? 3 : digits.size() % 3;
  out = digits.substr(0, lead);
  for (size_t i = lead; i < digits.size(); i += 3) out += sep + digits.substr(i, 3);
  return out;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

bool ValidLocale(std::string_view locale) { return locale == "ru" || locale == "en"; }

bool ValidTimeZone(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  const bool chars_ok = std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '+' || ch == '-' || ch == '/';
  });
  return chars_ok && FindZone(name) != nullptr;
}

std::string FormatMoney(int64_t amount_minor, const std::string& currency,
                        const std::string& locale) {
  const bool negative = amount_minor < 0;
  const uint64_t abs =
      negative ? 0 - static_cast<uint64_t>(amount_minor) : static_cast<uint64_t>(amount_minor);
  std::string cents = std::to_string(abs % 100);
  if (cents.size() < 2) cents = "0" + cents;
  const std::string sign = negative ? "-" : "";
  if (locale == "en") {
    const std::string number = Group(abs / 100, ",") + "." + cents;
    if (currency == "USD") return sign + "$" + number;
    if (currency == "EUR") return sign + "\xE2\x82\xAC" + number;
    return sign + currency + kNbsp + number;
  }
  std::string symbol = currency;
  if (currency == "RUB") symbol = "\xE2\x82\xBD";  // ₽
  if (currency == "USD") symbol = "$";
  if (currency == "EUR") symbol = "\xE2\x82\xAC";  // €
  return sign + Group(abs / 100, kNbsp) + "," + cents + kNbsp + symbol;
}

std::string FormatLocalTime(int64_t us, const std::string& locale, const std::string& time_zone) {
  static const char* const kRu[] = {"января",   "февраля", "марта",  "апреля",
                                    "мая",      "июня",    "июля",   "августа",
                                    "сентября", "октября", "ноября", "декабря"};
  static const char* const kEn[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const date::time_zone* zone = FindZone(time_zone);
  if (!zone) zone = FindZone("Europe/Moscow");
  using Micros = std::chrono::microseconds;
  const date::sys_time<Micros> t{Micros{us}};
  int64_t offset_us = 0;
  std::string abbrev = "UTC";
  if (zone) {
    const date::sys_info info = zone->get_info(t);
    offset_us = std::chrono::duration_cast<Micros>(info.offset).count();
    abbrev = info.abbrev;
  }
  const date::sys_time<Micros> local{Micros{us + offset_us}};
  const auto day = date::floor<date::days>(local);
  const date::year_month_day ymd{day};
  const auto hms = date::make_time(std::chrono::duration_cast<std::chrono::minutes>(local - day));
  char hm[8];
  std::snprintf(hm, sizeof hm, "%02d:%02d", static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()));
  const unsigned month = static_cast<unsigned>(ymd.month());
  const std::string month_name = locale == "en" ? kEn[month - 1] : kRu[month - 1];
  return std::to_string(static_cast<unsigned>(ymd.day())) + " " + month_name + " " +
         std::to_string(static_cast<int>(ymd.year())) + ", " + hm + " (" + abbrev + ")";
}

const std::vector<std::string>& NoticeKinds() {
  static const std::vector<std::string> kKinds = {
      "maintenance_scheduled", "maintenance_changed", "maintenance_cancelled", "maintenance_ended",
      "connector_problem",     "connector_resolved",  "payment_failed"};
  return kKinds;
}

const std::vector<std::string>& TemplateNames(const std::string& kind) {
  static const std::vector<std::string> kMaintenance = {"connectors", "starts", "ends", "message"};
  static const std::vector<std::string> kProblem = {"connector", "since"};
  static const std::vector<std::string> kResolved = {"connector", "since", "resolved_at"};
  static const std::vector<std::string> kPayment = {"connector", "amount", "reason", "occurred_at"};
  static const std::vector<std::string> kNone;
  if (kind.rfind("maintenance_", 0) == 0 &&
      std::find(NoticeKinds().begin(), NoticeKinds().end(), kind) != NoticeKinds().end())
    return kMaintenance;
  if (kind == "connector_problem") return kProblem;
  if (kind == "connector_resolved") return kResolved;
  if (kind == "payment_failed") return kPayment;
  return kNone;
}

NoticeTemplates DefaultNoticeTemplates() {
  NoticeTemplates t;
  // Russian (the default locale).
  t[{"maintenance_scheduled", "ru"}] = {
      "Плановые работы: {{connectors}}",
      "Мы проведём плановые работы: {{connectors}}.\nНачало: {{starts}}.\nОкончание: "
      "{{ends}}.\n{{message}}"};
  t[{"maintenance_changed", "ru"}] = {
      "Плановые работы изменены: {{connectors}}",
      "Плановые работы изменены: {{connectors}}.\nНовое время: с {{starts}} до "
      "{{ends}}.\n{{message}}"};
  t[{"maintenance_cancelled", "ru"}] = {
      "Плановые работы отменены: {{connectors}}",
      "Плановые работы ({{connectors}}) с {{starts}} до {{ends}} отменены. Коннекторы работают "
      "как обычно."};
  t[{"maintenance_ended", "ru"}] = {"Плановые работы завершены: {{connectors}}",
                                    "Плановые работы завершены: {{connectors}}.\n({{message}})"};
  t[{"connector_problem", "ru"}] = {
      "Проблема с коннектором {{connector}}",
      "С {{since}} коннектор {{connector}} работает с ошибками. Инженеры уже занимаются "
      "проблемой; мы сообщим, когда она будет устранена."};
  t[{"connector_resolved", "ru"}] = {
      "Коннектор {{connector}} снова работает",
      "Проблема с коннектором {{connector}} (с {{since}}) устранена {{resolved_at}}."};
  t[{"payment_failed", "ru"}] = {
      "Не прошёл платёж за коннектор {{connector}}",
      "Ваш платёж {{amount}} за коннектор {{connector}} от {{occurred_at}} не "
      "прошёл{{#reason}} ({{reason}}){{/reason}}. Проверьте способ оплаты, чтобы коннектор "
      "продолжал работать."};
  // English.
  t[{"maintenance_scheduled", "en"}] = {
      "Planned maintenance of {{connectors}}",
      "Planned maintenance of {{connectors}} from {{starts}} to {{ends}}.\n{{message}}"};
  t[{"maintenance_changed", "en"}] = {
      "Maintenance of {{connectors}} changed",
      "The planned maintenance of {{connectors}} has changed: it now runs from {{starts}} to "
      "{{ends}}.\n{{message}}"};
  t[{"maintenance_cancelled", "en"}] = {
      "Maintenance of {{connectors}} cancelled",
      "The planned maintenance of {{connectors}} from {{starts}} to {{ends}} is cancelled. The "
      "connectors work as usual."};
  t[{"maintenance_ended", "en"}] = {
      "Maintenance of {{connectors}} has ended",
      "The planned maintenance of {{connectors}} has ended.\n({{message}})"};
  t[{"connector_problem", "en"}] = {
      "Problem with connector {{connector}}",
      "Connector {{connector}} has had a problem since {{since}}. Our engineers are working on "
      "it; you will get a notice when it is resolved."};
  t[{"connector_resolved", "en"}] = {
      "Connector {{connector}} works again",
      "The problem with connector {{connector}} (since {{since}}) was resolved at "
      "{{resolved_at}}."};
  t[{"payment_failed", "en"}] = {
      "Payment for connector {{connector}} failed",
      "Your payment of {{amount}} for connector {{connector}} on {{occurred_at}} did not go "
      "through{{#reason}} ({{reason}}){{/reason}}. Please check your payment method to keep the "
      "connector running."};
  return t;
}

std::string CheckNoticeTemplate(const std::string& source, const std::string& kind) {
  const std::vector<std::string>& names = TemplateNames(kind);
  if (names.empty()) return "unknown notice kind '" + kind + "'";
  if (source.size() > 10000) return "a template is at most 10000 characters";
  return notifier::CheckTemplateTags(source, [&](const std::string& name) -> std::string {
    if (std::find(names.begin(), names.end(), name) != names.end()) return "";
    std::string known;
    for (const std::string& n : names) known += (known.empty() ? "" : ", ") + n;
    return "unknown name '" + name + "' (a " + kind + " notice has " + known + ")";
  });
}

NoticeText ComposeNotice(const NoticeTemplates& templates, const std::string& kind,
                         const CustomerPrefs& prefs, const NoticeFacts& f) {
  const std::string locale = ValidLocale(prefs.locale) ? prefs.locale : "ru";
  auto it = templates.find({kind, locale});
  if (it == templates.end()) it = templates.find({kind, "ru"});
  if (it == templates.end()) return {kind, kind};
  auto time = [&](int64_t us) { return FormatLocalTime(us, locale, prefs.time_zone); };
  const std::string joined = Join(f.connectors);
  nlohmann::json ctx;
  if (kind.rfind("maintenance_", 0) == 0) {
    ctx = {{"connectors", joined},
           {"starts", time(f.starts_us)},
           {"ends", time(f.ends_us)},
           {"message", f.message}};
  } else if (kind == "payment_failed") {
    ctx = {{"connector", joined},
           {"amount", FormatMoney(f.amount_minor, f.currency, locale)},
           {"reason", f.reason},
           {"occurred_at", time(f.at_us)}};
  } else {
    ctx = {{"connector", joined}, {"since", time(f.at_us)}};
    if (kind == "connector_resolved") ctx["resolved_at"] = time(f.resolved_us);
  }
  using notifier::Escape;
  return {notifier::Render({it->second.title, Escape::kNone}, ctx),
          notifier::Render({it->second.body, Escape::kNone}, ctx)};
}

}  // namespace bpmc::notices
