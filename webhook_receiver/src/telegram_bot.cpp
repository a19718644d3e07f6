#include "telegram_bot.h"

#include <spdlog/spdlog.h>

#include "button_press.h"
#include "common/ids.h"
#include "common/pii.h"
#include "common/time_format.h"
#include "http/server.h"
#include "notices/store.h"
#include "notifier/notification.h"
#include "notifier/telegram.h"

namespace bpmc::webhook_receiver {
namespace {

using Json = nlohmann::json;

int64_t IntOf(const Json& j, const char* key) {
  if (!j.is_object()) return 0;
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

std::string StrOf(const Json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

const Json& ObjOf(const Json& j, const char* key) {
  static const Json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : kNull;
}

// A Telegram user id in the audit log: a hash, not the id.
std::string UserRef(int64_t user_id) {
  return "sha256:" +
         HexEncode(Sha256("bpmc-telegram-user\n" + std::to_string(user_id))).substr(0, 16);
}

}  // namespace

TelegramBot::TelegramBot(Deps deps) : deps_(std::move(deps)) {
  bot_key_ = notifier::TelegramBotKey(deps_.channel.telegram.bot_token);
  holder_ = HexEncode(RandomBytes(12));
}

TelegramBot::~TelegramBot() { Stop(); }

void TelegramBot::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void TelegramBot::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void TelegramBot::Failure(const std::string& reason) {
  if (deps_.count_failure) deps_.count_failure(reason);
}

void TelegramBot::Run() {
  std::unique_ptr<pqxx::connection> conn;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) break;
    }
    bool pause = false;
    try {
      if (deps_.ready && !deps_.ready()) {
        pause = true;
      } else {
        if (!conn) conn = std::make_unique<pqxx::connection>(deps_.database_url);
        pause = PollOnce(*conn) < 0;
      }
    } catch (const std::exception& e) {
      Failure("telegram_poll");
      spdlog::warn("telegram: polling failed: {}", ScrubPii(e.what()));
      conn.reset();
      pause = true;
    }
    if (pause) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, deps_.idle_retry, [&] { return stop_; });
    }
  }
  // Let another receiver take over at once.
  try {
    if (conn) {
      pqxx::work txn(*conn);
      notifier::ReleaseTelegramPollLease(txn, bot_key_, holder_);
      txn.commit();
    }
  } catch (const std::exception&) {
    // The lease expires by itself.
  }
}

int TelegramBot::PollOnce(pqxx::connection& conn) {
  const notifier::TelegramChannel& tg = deps_.channel.telegram;
  const int64_t wait_us =
      std::chrono::duration_cast<std::chrono::microseconds>(tg.poll_timeout + deps_.channel.timeout)
          .count();
  std::optional<int64_t> offset;
  {
    pqxx::work txn(conn);
    offset =
        notifier::TakeTelegramPollLease(txn, bot_key_, holder_, wait_us + deps_.lease_margin_us);
    txn.commit();
  }
  if (!offset) return -1;
  Json body = {{"offset", *offset},
               {"timeout", tg.poll_timeout.count() / 1000},
               {"allowed_updates", {"message", "callback_query"}}};
  HttpRequest request = notifier::TelegramRequest(deps_.channel, "getUpdates", body);
  request.timeout = tg.poll_timeout + deps_.channel.timeout;
  const HttpResponse response = deps_.http->Send(request);
  const notifier::TelegramReply reply = notifier::ParseTelegramReply(response.body);
  if (response.status / 100 != 2 || !reply.ok || !reply.result.is_array()) {
    Failure("telegram_get_updates");
    // The bot token never appears: errors carry the status and Telegram's description.
    spdlog::warn("telegram: getUpdates failed: http {} {}", response.status,
                 reply.description.substr(0, 200));
    if (reply.retry_after_s) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(*reply.retry_after_s), [&] { return stop_; });
      return 0;
    }
    return -1;  // pause
  }
  int handled = 0;
  for (const Json& update : reply.result) {
    const int64_t id = IntOf(update, "update_id");
    if (id < *offset) continue;  // already handled (Telegram resends until confirmed)
    Handle(conn, update);
    pqxx::work txn(conn);
    const bool still = notifier::StoreTelegramOffset(txn, bot_key_, holder_, id + 1);
    txn.commit();
    ++handled;
    if (!still) break;  // the lease was lost meanwhile: the new holder goes on
  }
  return handled;
}

void TelegramBot::Handle(pqxx::connection& conn, const Json& update) {
  if (const Json& q = ObjOf(update, "callback_query"); !q.is_null()) return OnPress(conn, q);
  if (const Json& m = ObjOf(update, "message"); !m.is_null()) return OnMessage(conn, m);
}

void TelegramBot::Call(const std::string& method, const Json& body) {
  const HttpResponse response =
      deps_.http->Send(notifier::TelegramRequest(deps_.channel, method, body));
  const notifier::TelegramReply reply = notifier::ParseTelegramReply(response.body);
  if (response.status / 100 != 2 || !reply.ok) {
    Failure("telegram_api");
    spdlog::warn("telegram: {} failed: http {} {}", method, response.status,
                 reply.description.substr(0, 200));
  }
}

void TelegramBot::Audit(const std::string& person, const std::string& endpoint,
                        std::map<std::string, std::string> params, int status,
                        const std::string& denial) {
  if (!deps_.audit) return;
  identity::AuditEntry e;
  if (!person.empty()) e.actor = identity::AuditActor{"", person, ""};
  e.method = "TELEGRAM";
  e.endpoint = endpoint;
  e.params = std::move(params);
  e.ip = "telegram";
  e.allowed = denial.empty();
  e.status = status;
  e.denial = denial;
  deps_.audit->Record(e);  // a failure is counted by the audit log ("audit_write")
}

void TelegramBot::OnPress(pqxx::connection& conn, const Json& query) {
  const std::string query_id = StrOf(query, "id");
  const int64_t user = IntOf(ObjOf(query, "from"), "id");
  const std::string data = StrOf(query, "data");
  std::optional<std::string> person;
  {
    pqxx::work txn(conn);
    person = notifier::TelegramPersonOfUser(txn, user);
    txn.commit();
  }
  const auto press = notifier::ParseTelegramCallbackData(data);
  std::map<std::string, std::string> params;
  if (press) {
    params = {{"action", PressActionName(press->action)},
              {"incident", std::to_string(press->incident_id)}};
    if (press->action == notifier::TelegramAction::kReassign)
      params["target"] = PressTargetName(*press);
  }
  if (!person) {
    // Authority comes from the binding only: whoever can see a message cannot act on it.
    params["telegram_user"] = UserRef(user);
    Failure("telegram_unmapped_user");
    Audit("", "telegram:button", params, 403, "Telegram user not linked to a person");
    Call("answerCallbackQuery",
         {{"callback_query_id", query_id},
          {"text", notifier::BotReplyText("", notifier::BotReply::kRefusedUnlinked)},
          {"show_alert", true}});
    return;
  }
  const std::string locale = LocaleOf(*person);
  if (!press) {
    Failure("telegram_bad_button");
    Audit(*person, "telegram:button", params, 400, "unknown button");
    Call("answerCallbackQuery",
         {{"callback_query_id", query_id},
          {"text", notifier::BotPressAnswer(locale, notifier::TelegramAction::kAcknowledge,
                                            notifier::BotPressResult::kUnknownButton, 0)}});
    return;
  }
  if (press->action == notifier::TelegramAction::kReassignMenu ||
      press->action == notifier::TelegramAction::kReassignBack) {
    RedrawKeyboard(query, *press, locale);
    Call("answerCallbackQuery", {{"callback_query_id", query_id}});
    return;
  }
  using Outcome = incidents::Engine::Outcome;
  const Outcome outcome = ActOnPress(*deps_.engine, *press, *person, "telegram");
  const int status = outcome == Outcome::kDone ? 200 : outcome == Outcome::kAlready ? 409 : 404;
  Audit(*person, "telegram:button", params, status, "");
  const notifier::BotPressResult result =
      outcome == Outcome::kDone      ? notifier::BotPressResult::kDone
      : outcome == Outcome::kAlready ? notifier::BotPressResult::kAlready
                                     : notifier::BotPressResult::kNotFound;
  Call("answerCallbackQuery",
       {{"callback_query_id", query_id},
        {"text", notifier::BotPressAnswer(locale, press->action, result, press->incident_id)}});
}

void TelegramBot::RedrawKeyboard(const Json& query, const notifier::TelegramPress& press,
                                 const std::string& locale) {
  const Json& message = ObjOf(query, "message");
  const int64_t chat = IntOf(ObjOf(message, "chat"), "id");
  const int64_t message_id = IntOf(message, "message_id");
  if (chat == 0 || message_id == 0) return;  // an inline-mode message: nothing to edit
  Json markup;
  if (press.action == notifier::TelegramAction::kReassignMenu) {
    markup = notifier::TelegramReassignKeyboard(
        press.incident_id, ReassignChoices(deps_.engine->options().oncall), locale);
  } else {
    // Back: the buttons of the incident's present state (none once resolved).
    const auto record = deps_.engine->Load(press.incident_id);
    notifier::AlertView view;
    view.source = "incident";
    view.status = !record ? "resolved" : record->status == "triggered" ? "firing" : record->status;
    view.annotations = {{"incident_id", std::to_string(press.incident_id)},
                        {"page_locale", locale}};
    markup = notifier::TelegramKeyboard(view);
    if (markup.is_null()) markup = {{"inline_keyboard", Json::array()}};
  }
  Call("editMessageReplyMarkup",
       {{"chat_id", chat}, {"message_id", message_id}, {"reply_markup", markup}});
}

std::string TelegramBot::LocaleOf(const std::string& person) const {
  auto p = deps_.oncall.people.find(person);
  return p == deps_.oncall.people.end() ? "ru" : p->second.locale;
}

void TelegramBot::OnMessage(pqxx::connection& conn, const Json& message) {
  const std::string text = StrOf(message, "text");
  const Json& chat = ObjOf(message, "chat");
  const int64_t chat_id = IntOf(chat, "id");
  if (text == "/stop" || text.rfind("/stop@", 0) == 0) return OnStop(conn, chat_id);
  if (text.rfind("/start", 0) != 0) return;  // the bot only listens for /start and /stop
  const int64_t user = IntOf(ObjOf(message, "from"), "id");
  std::string code = text.substr(6);
  if (!code.empty() && code[0] == '@') {  // "/start@bot_name <code>" in groups
    const size_t space = code.find(' ');
    code = space == std::string::npos ? "" : code.substr(space);
  }
  if (!code.empty() && code[0] != ' ') return;  // "/startle" is not /start
  while (!code.empty() && code.front() == ' ') code.erase(0, 1);
  while (!code.empty() && (code.back() == ' ' || code.back() == '\n')) code.pop_back();
  auto reply = [&](const std::string& t) {
    Call("sendMessage", {{"chat_id", chat_id}, {"text", t}});
  };
  if (StrOf(chat, "type") != "private" || user == 0) {
    reply(notifier::BotReplyText("", notifier::BotReply::kStartInPrivate));
    return;
  }
  if (code.empty() || code.size() > 64) {
    reply(notifier::BotReplyText("", notifier::BotReply::kStartHowTo));
    return;
  }
  std::optional<notifier::TelegramLinkSubject> subject;
  std::string locale;
  {
    pqxx::work txn(conn);
    subject = notifier::RedeemTelegramLink(txn, code, user, std::to_string(chat_id),
                                           deps_.clock->NowMicros());
    if (subject && !subject->customer_id.empty()) {  // a customer's notices (docs/NOTICES.md)
      notices::AddTelegramContact(txn, subject->customer_id, std::to_string(chat_id));
      locale = notices::GetPreferences(txn, subject->customer_id).locale;
    }
    txn.commit();
  }
  if (subject && !subject->customer_id.empty()) {
    Audit("", "telegram:start",
          {{"telegram_user", UserRef(user)}, {"customer", subject->customer_id}}, 200, "");
    reply(locale == "en" ? "Linked: this chat now receives the service notices of your account. "
                           "Send /stop to stop them."
                         : "Готово: этот чат теперь получает уведомления о работе сервиса для "
                           "вашей учётной записи. Чтобы отключить их, отправьте /stop.");
    return;
  }
  const std::optional<std::string> person =
      subject ? std::optional<std::string>(subject->person) : std::nullopt;
  if (!person) {
    Failure("telegram_bad_link_code");
    Audit("", "telegram:start", {{"telegram_user", UserRef(user)}}, 403,
          "unknown, used or expired link code");
    reply(notifier::BotReplyText("", notifier::BotReply::kBadLinkCode));
    return;
  }
  Audit(*person, "telegram:start", {{"telegram_user", UserRef(user)}}, 200, "");
  auto p = deps_.oncall.people.find(*person);
  const std::string name = p == deps_.oncall.people.end() ? *person : p->second.name;
  reply(notifier::BotReplyText(LocaleOf(*person), notifier::BotReply::kLinked, name));
}

void TelegramBot::OnStop(pqxx::connection& conn, int64_t chat_id) {
  int removed = 0;
  {
    pqxx::work txn(conn);
    removed = notices::RemoveTelegramContacts(txn, std::to_string(chat_id));
    txn.commit();
  }
  if (removed > 0) Audit("", "telegram:stop", {}, 200, "");
  // Both languages: the chat no longer belongs to a customer whose locale we could read.
  Call("sendMessage", {{"chat_id", chat_id},
                       {"text", removed > 0 ? "Уведомления в этот чат отключены. / Notices to this "
                                              "chat are stopped."
                                            : "Этот чат не получает уведомлений. / This chat "
                                              "receives no notices."}});
}

http::Response TelegramBot::CreateLinkCode(const http::Request& request) {
  if (request.principal_role != "admin" && request.principal_role != "support")
    return http::Error(403, "role '" + request.principal_role + "' may not create link codes", "");
  const Json body = Json::parse(request.body, nullptr, false);
  if (!body.is_object()) return http::Error(400, "the body must be a JSON object", "");
  for (const auto& [key, value] : body.items()) {
    if (key != "person") return http::Error(400, "unknown key", key);
  }
  const std::string person = StrOf(body, "person");
  if (person.empty()) return http::Error(400, "person is required (an id under people:)", "person");
  if (!deps_.oncall.people.count(person))
    return http::Error(400, "no person with this id under people:", "person");
  const int64_t now = deps_.clock->NowMicros();
  std::string code;
  try {
    pqxx::connection conn(deps_.database_url);
    pqxx::work txn(conn);
    code = notifier::CreateTelegramLinkCode(txn, person, now, kLinkCodeTtlUs);
    txn.commit();
  } catch (const std::exception& e) {
    Failure("telegram_link_code");
    spdlog::warn("telegram: cannot store a link code: {}", ScrubPii(e.what()));
    return http::Error(503, "cannot store the link code now; retry later", "",
                       {{"Retry-After", "5"}});
  }
  const Json out = {{"person", person},
                    {"code", code},
                    {"expires_at", FormatRfc3339Micros(now + kLinkCodeTtlUs)},
                    {"command", "/start " + code}};
  return http::Text(201, out.dump(), "application/json");
}

}  // namespace bpmc::webhook_receiver
