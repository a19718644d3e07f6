#include "notifier/telegram.h"

#include <charconv>

#include "common/ids.h"
#include "notifier/templates.h"

namespace bpmc::notifier {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxText = 4096;  // Telegram counts characters; bytes are a safe bound

// Cuts at a UTF-8 character boundary so that the result is at most `max` bytes, and never
// inside an HTML entity or tag (an unbalanced tag makes Telegram refuse the message).
std::string CutHtml(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  std::string out = s.substr(0, end);
  const size_t amp = out.rfind('&');
  if (amp != std::string::npos && out.find(';', amp) == std::string::npos) out.resize(amp);
  const size_t lt = out.rfind('<');
  if (lt != std::string::npos && out.find('>', lt) == std::string::npos) out.resize(lt);
  // Our templates open at most <b>: close it when the cut left it open.
  const size_t open = out.rfind("<b>"), close = out.rfind("</b>");
  if (open != std::string::npos && (close == std::string::npos || close < open)) out += "</b>";
  return out;
}

// The first line of a message. An incident's page brings its own headline in the
// reader's language and time zone (annotations.page_headline, incidents/model.h);
// other alerts get an English line in UTC.
std::string StateLine(const AlertView& a) {
  const char* icon = a.status == "acknowledged" ? "\u2705"
                     : a.status == "resolved"   ? "\U0001F7E2"
                     : a.severity == "critical" ? "\U0001F534"
                     : a.severity == "warning"  ? "\U0001F7E0"
                                                : "\U0001F535";
  if (const std::string headline = AnnotationOf(a, "page_headline"); !headline.empty())
    return std::string(icon) + " <b>" + TelegramEscape(headline) + "</b>";
  if (a.status == "acknowledged") {
    std::string line = std::string(icon) + " <b>Acknowledged</b>";
    if (const std::string by = AnnotationOf(a, "acknowledged_by"); !by.empty())
      line += " by " + TelegramEscape(by);
    if (const std::string at = UtcClockTime(AnnotationOf(a, "acknowledged_at")); !at.empty())
      line += " at " + at;
    return line;
  }
  if (a.status == "resolved") {
    std::string line = std::string(icon) + " <b>Resolved</b>";
    if (const std::string by = AnnotationOf(a, "resolved_by"); !by.empty())
      line += " by " + TelegramEscape(by);
    if (const std::string at = UtcClockTime(a.ends_at); !at.empty()) line += " at " + at;
    return line;
  }
  return std::string(icon) + " <b>FIRING</b> " + TelegramEscape(a.severity);
}

Json Button(const char* text, TelegramAction action, int64_t id) {
  return {{"text", text}, {"callback_data", TelegramCallbackData(action, id)}};
}

}  // namespace

std::string TelegramEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string TelegramText(const ChannelConfig& channel, const std::string& chat_id,
                         const AlertView& alert) {
  if (alert.source == "notices")  // a customer's notice: its title in bold, then its body
    return CutHtml(
        "<b>" + TelegramEscape(alert.summary) + "</b>\n\n" + TelegramEscape(alert.description),
        kMaxText);
  const std::string body =
      Render(channel.telegram.text, TemplateContext({alert}, channel.name, chat_id));
  return CutHtml(StateLine(alert) + "\n" + body, kMaxText);
}

int64_t TelegramIncidentId(const AlertView& alert) {
  if (alert.source != "incident") return 0;
  const std::string id = AnnotationOf(alert, "incident_id");
  int64_t v = 0;
  auto [p, ec] = std::from_chars(id.data(), id.data() + id.size(), v);
  if (ec != std::errc() || p != id.data() + id.size() || v <= 0) return 0;
  return v;
}

std::string TelegramCallbackData(TelegramAction action, int64_t incident_id) {
  const char* prefix = action == TelegramAction::kAcknowledge    ? "a:"
                       : action == TelegramAction::kResolve      ? "r:"
                       : action == TelegramAction::kSnooze       ? "s:"
                       : action == TelegramAction::kReassignMenu ? "g:"
                       : action == TelegramAction::kReassignBack ? "b:"
                       : action == TelegramAction::kReassign     ? "g:"  // needs a target
                                                                 : "e:";
  return prefix + std::to_string(incident_id);
}

namespace {
bool ValidTarget(std::string_view t) {
  if (t.empty()) return false;
  for (char c : t) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == ':') return false;
  }
  return true;
}
}  // namespace

std::optional<std::string> TelegramReassignData(int64_t incident_id, bool schedule,
                                                std::string_view target) {
  if (incident_id <= 0 || !ValidTarget(target)) return std::nullopt;
  std::string out = (schedule ? "q:" : "p:") + std::to_string(incident_id) + ":";
  out.append(target);
  if (out.size() > kMaxCallbackData) return std::nullopt;
  return out;
}

std::optional<TelegramPress> ParseTelegramCallbackData(std::string_view data) {
  if (data.size() < 3 || data.size() > kMaxCallbackData || data[1] != ':') return std::nullopt;
  TelegramPress press;
  std::string_view digits = data.substr(2);
  switch (data[0]) {
    case 'a':
      press.action = TelegramAction::kAcknowledge;
      break;
    case 'r':
      press.action = TelegramAction::kResolve;
      break;
    case 'e':
      press.action = TelegramAction::kEscalate;
      break;
    case 's':
      press.action = TelegramAction::kSnooze;
      break;
    case 'g':
      press.action = TelegramAction::kReassignMenu;
      break;
    case 'b':
      press.action = TelegramAction::kReassignBack;
      break;
    case 'p':
    case 'q': {
      press.action = TelegramAction::kReassign;
      press.to_schedule = data[0] == 'q';
      const size_t colon = digits.find(':');
      if (colon == std::string_view::npos) return std::nullopt;
      if (!ValidTarget(digits.substr(colon + 1))) return std::nullopt;
      press.target = std::string(digits.substr(colon + 1));
      digits = digits.substr(0, colon);
      break;
    }
    default:
      return std::nullopt;
  }
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), press.incident_id);
  if (ec != std::errc() || p != digits.data() + digits.size() || press.incident_id <= 0)
    return std::nullopt;
  return press;
}

Json TelegramKeyboard(const AlertView& alert) {
  const int64_t id = TelegramIncidentId(alert);
  if (id == 0 || alert.status == "resolved") return nullptr;
  // The reader's language (annotations.page_locale of an incident's page; ru by default).
  const bool en = AnnotationOf(alert, "page_locale") == "en";
  Json row = Json::array();
  if (alert.status == "firing")
    row.push_back(Button(en ? "Acknowledge" : "Подтвердить", TelegramAction::kAcknowledge, id));
  row.push_back(Button(en ? "Resolve" : "Решить", TelegramAction::kResolve, id));
  if (alert.status == "acknowledged")
    row.push_back(Button(en ? "Snooze 1h" : "Отложить на 1 ч", TelegramAction::kSnooze, id));
  row.push_back(Button(en ? "Escalate now" : "Эскалировать", TelegramAction::kEscalate, id));
  Json second =
      Json::array({Button(en ? "Reassign" : "Переназначить", TelegramAction::kReassignMenu, id)});
  return {{"inline_keyboard", Json::array({row, second})}};
}

Json TelegramReassignKeyboard(int64_t incident_id, const std::vector<ReassignChoice>& choices,
                              const std::string& locale) {
  Json rows = Json::array();
  for (const ReassignChoice& c : choices) {
    if (rows.size() >= kMaxReassignChoices) break;
    auto data = TelegramReassignData(incident_id, c.schedule, c.id);
    if (!data) continue;  // longer than Telegram's 64 bytes: not offered (docs/RECEIVER.md)
    rows.push_back(Json::array({{{"text", c.label}, {"callback_data", *data}}}));
  }
  rows.push_back(Json::array(
      {Button(locale == "en" ? "Back" : "Назад", TelegramAction::kReassignBack, incident_id)}));
  return {{"inline_keyboard", rows}};
}

std::string BotPressAnswer(const std::string& locale, TelegramAction action, BotPressResult result,
                           int64_t incident_id) {
  const bool en = locale == "en";
  const std::string n = "#" + std::to_string(incident_id);
  switch (result) {
    case BotPressResult::kDone:
      switch (action) {
        case TelegramAction::kAcknowledge:
          return en ? "Acknowledged (incident " + n + ")" : "Подтверждено (инцидент " + n + ")";
        case TelegramAction::kResolve:
          return en ? "Resolved (incident " + n + ")" : "Решено (инцидент " + n + ")";
        case TelegramAction::kEscalate:
          return en ? "Escalated: the next level is paged now (incident " + n + ")"
                    : "Эскалировано: следующий уровень оповещён (инцидент " + n + ")";
        case TelegramAction::kSnooze:
          return en ? "Snoozed for 1 hour (incident " + n + ")"
                    : "Отложено на 1 час (инцидент " + n + ")";
        case TelegramAction::kReassign:
          return en ? "Reassigned: the new target is paged now (incident " + n + ")"
                    : "Переназначено: новый адресат оповещён (инцидент " + n + ")";
        case TelegramAction::kReassignMenu:
        case TelegramAction::kReassignBack:
          return "";
      }
      break;
    case BotPressResult::kAlready:
      switch (action) {
        case TelegramAction::kAcknowledge:
        case TelegramAction::kResolve:
          return en ? "Nothing to do: incident " + n + " is already acknowledged or resolved"
                    : "Нечего делать: инцидент " + n + " уже подтверждён или решён";
        case TelegramAction::kEscalate:
          return en ? "Nothing to do: incident " + n + " is resolved or has no escalation policy"
                    : "Нечего делать: инцидент " + n + " решён или без политики эскалации";
        case TelegramAction::kSnooze:
          return en ? "Nothing to do: incident " + n + " is not acknowledged"
                    : "Нечего делать: инцидент " + n + " не подтверждён";
        case TelegramAction::kReassign:
        case TelegramAction::kReassignMenu:
        case TelegramAction::kReassignBack:
          return en ? "Nothing to do: incident " + n + " is resolved"
                    : "Нечего делать: инцидент " + n + " решён";
      }
      break;
    case BotPressResult::kNotFound:
      if (action == TelegramAction::kReassign)
        return en ? "No such incident, person or schedule" : "Нет такого инцидента или адресата";
      return en ? "No such incident" : "Нет такого инцидента";
    case BotPressResult::kUnknownButton:
      return en ? "Unknown button" : "Неизвестная кнопка";
  }
  return "";
}

std::string BotReplyText(const std::string& locale, BotReply reply, const std::string& name) {
  const bool en = locale == "en";
  switch (reply) {
    case BotReply::kLinked:
      return en ? "Linked: this chat now receives pages for " + name +
                      ", and your buttons act as " + name + "."
                : "Привязано: этот чат получает оповещения для " + name +
                      ", а ваши кнопки действуют от имени " + name + ".";
    // Nobody is known yet in the replies below: both languages.
    case BotReply::kRefusedUnlinked:
      return "Отказано: ваш Telegram не привязан к дежурному. Попросите код привязки и "
             "отправьте боту /start <код>.\n"
             "Refused: your Telegram account is not linked to an on-call person. "
             "Ask for a link code and send /start <code> to this bot.";
    case BotReply::kStartInPrivate:
      return "Отправьте /start <код> в личном чате с этим ботом.\n"
             "Send /start <code> in a private chat with this bot.";
    case BotReply::kStartHowTo:
      return "Чтобы привязать этот чат, отправьте /start <код> с кодом от администратора.\n"
             "To link this chat, send /start <code> with the code an administrator gave you.";
    case BotReply::kBadLinkCode:
      return "Код привязки неизвестен, использован или истёк. Попросите новый.\n"
             "This link code is unknown, used or expired. Ask for a new one.";
  }
  return "";
}

HttpRequest TelegramRequest(const ChannelConfig& channel, const std::string& method,
                            const Json& body) {
  HttpRequest r;
  r.method = "POST";
  r.url = channel.telegram.api_url + "/bot" + channel.telegram.bot_token + "/" + method;
  r.timeout = channel.timeout;
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = DumpJson(body);
  return r;
}

HttpRequest TelegramSendMessage(const ChannelConfig& channel, const std::string& chat_id,
                                const AlertView& alert) {
  Json body = {{"chat_id", chat_id},
               {"text", TelegramText(channel, chat_id, alert)},
               {"parse_mode", "HTML"},
               {"disable_web_page_preview", true}};
  if (Json kb = TelegramKeyboard(alert); !kb.is_null()) body["reply_markup"] = std::move(kb);
  return TelegramRequest(channel, "sendMessage", body);
}

HttpRequest TelegramEditMessage(const ChannelConfig& channel, const std::string& chat_id,
                                int64_t message_id, const AlertView& alert) {
  Json body = {{"chat_id", chat_id},
               {"message_id", message_id},
               {"text", TelegramText(channel, chat_id, alert)},
               {"parse_mode", "HTML"},
               {"disable_web_page_preview", true}};
  // Without reply_markup Telegram removes the keyboard (a resolved incident has none).
  if (Json kb = TelegramKeyboard(alert); !kb.is_null()) body["reply_markup"] = std::move(kb);
  return TelegramRequest(channel, "editMessageText", body);
}

TelegramReply ParseTelegramReply(std::string_view body) {
  TelegramReply out;
  const Json j = Json::parse(body.begin(), body.end(), nullptr, false);
  if (!j.is_object()) return out;
  out.ok = j.value("ok", false) == true;
  if (auto it = j.find("error_code"); it != j.end() && it->is_number_integer())
    out.error_code = it->get<int>();
  if (auto it = j.find("description"); it != j.end() && it->is_string())
    out.description = it->get<std::string>();
  if (auto p = j.find("parameters"); p != j.end() && p->is_object()) {
    if (auto r = p->find("retry_after"); r != p->end() && r->is_number_integer())
      out.retry_after_s = std::max(0, r->get<int>());
  }
  if (auto r = j.find("result"); r != j.end()) {
    out.result = *r;
    if (r->is_object()) {
      if (auto m = r->find("message_id"); m != r->end() && m->is_number_integer())
        out.message_id = m->get<int64_t>();
    }
  }
  return out;
}

bool TelegramEditImpossible(const TelegramReply& reply) {
  if (reply.ok || reply.error_code != 400) return false;
  std::string d = reply.description;
  for (char& c : d) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return d.find("message to edit not found") != std::string::npos ||
         d.find("message can't be edited") != std::string::npos;
}

RateLimit TelegramRateLimit(const ChannelConfig& channel, const std::string& destination) {
  if (destination.rfind('-', 0) == 0) return channel.telegram.group_limit;
  return channel.rate_limit;
}

std::string TelegramThreadKey(const std::string& dedup_key) {
  const size_t tilde = dedup_key.rfind('~');
  if (tilde == std::string::npos || tilde + 1 == dedup_key.size()) return dedup_key;
  if (dedup_key.find_first_not_of("0123456789", tilde + 1) != std::string::npos) return dedup_key;
  return dedup_key.substr(0, tilde);
}

std::string TelegramBotKey(const std::string& bot_token) {
  return HexEncode(Sha256("bpmc-telegram-bot\n" + bot_token)).substr(0, 32);
}

// --- Tables --------------------------------------------------------------------

std::optional<int64_t> FindTelegramMessage(pqxx::work& txn, const std::string& channel,
                                           const std::string& chat_id,
                                           const std::string& thread_key) {
  const pqxx::result r = txn.exec_params(
      "SELECT message_id FROM telegram_messages WHERE channel = $1 AND chat_id = $2"
      " AND thread_key = $3",
      channel, chat_id, thread_key);
  if (r.empty()) return std::nullopt;
  return r[0][0].as<int64_t>();
}

void SaveTelegramMessage(pqxx::work& txn, const std::string& channel, const std::string& chat_id,
                         const std::string& thread_key, int64_t message_id) {
  txn.exec_params(
      "INSERT INTO telegram_messages (channel, chat_id, thread_key, message_id)"
      " VALUES ($1, $2, $3, $4) ON CONFLICT (channel, chat_id, thread_key)"
      " DO UPDATE SET message_id = EXCLUDED.message_id, updated_at = now()",
      channel, chat_id, thread_key, message_id);
}

std::optional<std::string> TelegramChatOfPerson(pqxx::work& txn, const std::string& person) {
  const pqxx::result r =
      txn.exec_params("SELECT chat_id FROM telegram_bindings WHERE person = $1", person);
  if (r.empty()) return std::nullopt;
  return r[0][0].as<std::string>();
}

std::optional<std::string> TelegramPersonOfUser(pqxx::work& txn, int64_t user_id) {
  const pqxx::result r =
      txn.exec_params("SELECT person FROM telegram_bindings WHERE user_id = $1", user_id);
  if (r.empty()) return std::nullopt;
  return r[0][0].as<std::string>();
}

namespace {
std::string CodeHash(const std::string& code) {
  return HexEncode(Sha256("bpmc-telegram-link\n" + code));
}
}  // namespace

namespace {

// Stores a new code for a person or a customer (the other one "": NULL) and returns it.
std::string CreateLinkCode(pqxx::work& txn, const std::string& person, const std::string& customer,
                           int64_t now_us, int64_t ttl_us) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  const std::string random = RandomBytes(16);
  std::string code;
  for (unsigned char b : random) code += kAlphabet[b % 36];  // ~82 bits
  txn.exec_params(
      "INSERT INTO telegram_link_codes (code_hash, person, customer_id, created_at, expires_at)"
      " VALUES ($1, NULLIF($2, ''), NULLIF($3, ''), to_timestamp($4::double precision / 1e6),"
      " to_timestamp($5::double precision / 1e6))",
      CodeHash(code), person, customer, now_us, now_us + ttl_us);
  return code;
}

}  // namespace

std::string CreateTelegramLinkCode(pqxx::work& txn, const std::string& person, int64_t now_us,
                                   int64_t ttl_us) {
  return CreateLinkCode(txn, person, "", now_us, ttl_us);
}

std::string CreateTelegramCustomerLinkCode(pqxx::work& txn, const std::string& customer_id,
                                           int64_t now_us, int64_t ttl_us) {
  return CreateLinkCode(txn, "", customer_id, now_us, ttl_us);
}

std::optional<TelegramLinkSubject> RedeemTelegramLink(pqxx::work& txn, const std::string& code,
                                                      int64_t user_id, const std::string& chat_id,
                                                      int64_t now_us) {
  const pqxx::result r = txn.exec_params(
      "UPDATE telegram_link_codes SET used_at = to_timestamp($2::double precision / 1e6)"
      " WHERE code_hash = $1 AND used_at IS NULL"
      " AND expires_at > to_timestamp($2::double precision / 1e6) RETURNING person, customer_id",
      CodeHash(code), now_us);
  if (r.empty()) return std::nullopt;
  TelegramLinkSubject subject;
  if (r[0][0].is_null()) {
    subject.customer_id = r[0][1].as<std::string>();
    return subject;
  }
  subject.person = r[0][0].as<std::string>();
  txn.exec_params("DELETE FROM telegram_bindings WHERE person = $1 OR user_id = $2", subject.person,
                  user_id);
  txn.exec_params(
      "INSERT INTO telegram_bindings (person, user_id, chat_id, bound_at)"
      " VALUES ($1, $2, $3, to_timestamp($4::double precision / 1e6))",
      subject.person, user_id, chat_id, now_us);
  return subject;
}

std::optional<std::string> RedeemTelegramLinkCode(pqxx::work& txn, const std::string& code,
                                                  int64_t user_id, const std::string& chat_id,
                                                  int64_t now_us) {
  auto subject = RedeemTelegramLink(txn, code, user_id, chat_id, now_us);
  if (!subject || subject->person.empty()) return std::nullopt;
  return subject->person;
}

std::optional<int64_t> TakeTelegramPollLease(pqxx::work& txn, const std::string& bot_key,
                                             const std::string& holder, int64_t ttl_us) {
  // The database clock decides expiry, so receivers on several hosts agree.
  const pqxx::result r = txn.exec_params(
      "INSERT INTO telegram_pollers (bot_key, holder, expires_at)"
      " VALUES ($1, $2, clock_timestamp() + $3::bigint * interval '1 microsecond')"
      " ON CONFLICT (bot_key) DO UPDATE SET holder = EXCLUDED.holder,"
      " expires_at = EXCLUDED.expires_at"
      " WHERE telegram_pollers.holder = EXCLUDED.holder"
      " OR telegram_pollers.expires_at < clock_timestamp()"
      " RETURNING update_offset",
      bot_key, holder, ttl_us);
  if (r.empty()) return std::nullopt;
  return r[0][0].as<int64_t>();
}

bool StoreTelegramOffset(pqxx::work& txn, const std::string& bot_key, const std::string& holder,
                         int64_t offset) {
  return !txn.exec_params(
                 "UPDATE telegram_pollers SET update_offset = GREATEST(update_offset, $3)"
                 " WHERE bot_key = $1 AND holder = $2 RETURNING 1",
                 bot_key, holder, offset)
              .empty();
}

void ReleaseTelegramPollLease(pqxx::work& txn, const std::string& bot_key,
                              const std::string& holder) {
  txn.exec_params(
      "UPDATE telegram_pollers SET expires_at = clock_timestamp() - interval '1 second'"
      " WHERE bot_key = $1 AND holder = $2",
      bot_key, holder);
}

}  // namespace bpmc::notifier
