#pragma once
// The Telegram channel (Bot API, docs/RECEIVER.md "Telegram"): the requests it
// sends as pure functions, and the notifier's Telegram tables (migration
// 0002_telegram.sql): the message sent per (chat, incident) for later edits, the
// people's bound chats, one-time link codes, and the lease and offset of the
// one getUpdates poller per bot.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <vector>

#include "common/http_client.h"
#include "notifier/config.h"
#include "notifier/notification.h"

namespace bpmc::notifier {

// --- Pure ---------------------------------------------------------------------

// Telegram's HTML parse mode: & < > " become &amp; &lt; &gt; &quot; (all it needs).
std::string TelegramEscape(std::string_view text);

// The message text (HTML). A customer notice (source "notices"): its title in bold,
// then its body, both escaped. Otherwise a state line ("🔴 FIRING critical", "✅ Acknowledged by
// ivan at 10:05 UTC", "🟢 Resolved"), then the channel's template; at most 4096
// characters (Telegram's limit), cut at a character boundary.
std::string TelegramText(const ChannelConfig& channel, const std::string& chat_id,
                         const AlertView& alert);

// The incident an alert view pages about (annotations.incident_id of an incident
// page), or 0.
int64_t TelegramIncidentId(const AlertView& alert);

// Button payloads (callback_data, at most 64 bytes): "a:<id>" acknowledge,
// "r:<id>" resolve, "e:<id>" escalate now, "s:<id>" snooze for kPressSnoozeUs.
// They name the incident only: the authority to act comes from who pressed (the
// binding of the Telegram user, or the Slack member's contact method).
// Reassign (docs/RECEIVER.md "Reassign from a button"): "g:<id>" opens the list of
// targets (kReassignMenu), "b:<id>" goes back to the incident's buttons
// (kReassignBack), "p:<id>:<person id>" / "q:<id>:<schedule id>" reassigns
// (kReassign; the Slack app's select carries the same values).
enum class TelegramAction {
  kAcknowledge,
  kResolve,
  kEscalate,
  kSnooze,
  kReassignMenu,
  kReassignBack,
  kReassign
};
inline constexpr int64_t kPressSnoozeUs = 3600LL * 1000000;  // "Snooze 1h"
inline constexpr size_t kMaxCallbackData = 64;               // Telegram's callback_data limit
std::string TelegramCallbackData(TelegramAction action, int64_t incident_id);
// "p:<id>:<person>" (schedule false) or "q:<id>:<schedule>"; nullopt when the target
// is empty, holds a control character or ':', or the value exceeds 64 bytes.
std::optional<std::string> TelegramReassignData(int64_t incident_id, bool schedule,
                                                std::string_view target);
struct TelegramPress {
  TelegramAction action;
  int64_t incident_id = 0;
  bool to_schedule = false;  // kReassign: target is a schedule id, else a person id
  std::string target;        // kReassign only
};
std::optional<TelegramPress> ParseTelegramCallbackData(std::string_view data);

// One entry of the reassign list: a person (label: name) or a schedule (label:
// "schedule: <name>"), in the order given.
struct ReassignChoice {
  std::string label;
  bool schedule = false;
  std::string id;
};
inline constexpr size_t kMaxReassignChoices = 8;
// The reassign keyboard: one button per choice whose value fits 64 bytes (the others
// are skipped), at most kMaxReassignChoices, then "Назад"/"Back" (b:<id>).
nlohmann::json TelegramReassignKeyboard(int64_t incident_id,
                                        const std::vector<ReassignChoice>& choices,
                                        const std::string& locale);

// The inline keyboard of an incident page in this state: firing → Acknowledge,
// Resolve, Escalate now; acknowledged → Resolve, Snooze 1h, Escalate now (both with
// a second row: Reassign, g:<id>); resolved
// or not an incident page → none (null). Labels in annotations.page_locale (ru
// unless "en").
nlohmann::json TelegramKeyboard(const AlertView& alert);

// The bots' answers, in a person's locale (oncall Person::locale: "en", else
// Russian). A press's answer (Telegram's answerCallbackQuery text) by what the
// engine did; kUnknownButton for data that does not parse.
enum class BotPressResult { kDone, kAlready, kNotFound, kUnknownButton };
std::string BotPressAnswer(const std::string& locale, TelegramAction action, BotPressResult result,
                           int64_t incident_id);
// Replies to /start and to presses by unlinked users. kLinked names the person
// (`name`) in their locale; the others go to someone not known yet and so carry
// both languages (Russian first), whatever `locale` says.
enum class BotReply { kLinked, kRefusedUnlinked, kStartInPrivate, kStartHowTo, kBadLinkCode };
std::string BotReplyText(const std::string& locale, BotReply reply, const std::string& name = "");

// POST <api_url>/bot<token>/<method> with a JSON body.
HttpRequest TelegramRequest(const ChannelConfig& channel, const std::string& method,
                            const nlohmann::json& body);
HttpRequest TelegramSendMessage(const ChannelConfig& channel, const std::string& chat_id,
                                const AlertView& alert);
HttpRequest TelegramEditMessage(const ChannelConfig& channel, const std::string& chat_id,
                                int64_t message_id, const AlertView& alert);

// A Bot API answer: {"ok":true,"result":...} or {"ok":false,"error_code":429,
// "description":"...","parameters":{"retry_after":N}}.
struct TelegramReply {
  bool ok = false;
  int64_t message_id = 0;  // result.message_id, when there is one
  int error_code = 0;
  std::string description;
  std::optional<int> retry_after_s;  // parameters.retry_after
  nlohmann::json result;
};
TelegramReply ParseTelegramReply(std::string_view body);

// "Message to edit not found" and friends: the edit cannot work, send anew.
bool TelegramEditImpossible(const TelegramReply& reply);

// The per-chat rate limit: groups (negative chat ids) get the channel's group limit,
// other chats (and "person:<id>") the channel's rate_limit.
RateLimit TelegramRateLimit(const ChannelConfig& channel, const std::string& destination);

// The key of the conversation about one incident in one chat: the page's dedup key
// without the "~<n>" of repeated pages.
std::string TelegramThreadKey(const std::string& dedup_key);

// A stable, non-secret id of a bot token (the lease and offset key of its poller).
std::string TelegramBotKey(const std::string& bot_token);

// --- The notifier's Telegram tables (each throws pqxx exceptions) ---------------

std::optional<int64_t> FindTelegramMessage(pqxx::work& txn, const std::string& channel,
                                           const std::string& chat_id,
                                           const std::string& thread_key);
void SaveTelegramMessage(pqxx::work& txn, const std::string& channel, const std::string& chat_id,
                         const std::string& thread_key, int64_t message_id);

// The chat a person bound with /start, or nullopt.
std::optional<std::string> TelegramChatOfPerson(pqxx::work& txn, const std::string& person);
// The person a Telegram user is bound to, or nullopt.
std::optional<std::string> TelegramPersonOfUser(pqxx::work& txn, int64_t user_id);

// A one-time link code for `person`, valid for `ttl_us` from `now_us`: 16
// characters [a-z0-9]; only its SHA-256 is stored.
std::string CreateTelegramLinkCode(pqxx::work& txn, const std::string& person, int64_t now_us,
                                   int64_t ttl_us);
// The same for a customer's notices (POST /api/v1/notices/telegram-link-code).
std::string CreateTelegramCustomerLinkCode(pqxx::work& txn, const std::string& customer_id,
                                           int64_t now_us, int64_t ttl_us);
// What a redeemed code names: a person (bound as below) or a customer (nothing bound
// here: the caller adds the chat as the customer's notice contact). One is set.
struct TelegramLinkSubject {
  std::string person;
  std::string customer_id;
};
// Redeems a code of either kind (once, before it expires); nullopt for an unknown,
// used or expired code. A person's code binds as RedeemTelegramLinkCode does.
std::optional<TelegramLinkSubject> RedeemTelegramLink(pqxx::work& txn, const std::string& code,
                                                      int64_t user_id, const std::string& chat_id,
                                                      int64_t now_us);
// Redeems a code (once, before it expires): binds the Telegram user and their private
// chat to the code's person (replacing an earlier binding of either) and returns the
// person; nullopt for an unknown, used or expired code.
std::optional<std::string> RedeemTelegramLinkCode(pqxx::work& txn, const std::string& code,
                                                  int64_t user_id, const std::string& chat_id,
                                                  int64_t now_us);

// The getUpdates lease of one bot (TelegramBotKey): taken when free, expired, or
// already held by `holder`; extended to now + ttl. Returns the stored update offset
// when `holder` holds it after this call, nullopt when another holder does.
std::optional<int64_t> TakeTelegramPollLease(pqxx::work& txn, const std::string& bot_key,
                                             const std::string& holder, int64_t ttl_us);
// Stores the next update offset if `holder` still holds the lease; false otherwise.
bool StoreTelegramOffset(pqxx::work& txn, const std::string& bot_key, const std::string& holder,
                         int64_t offset);
// Gives the lease up (another receiver may take it at once).
void ReleaseTelegramPollLease(pqxx::work& txn, const std::string& bot_key,
                              const std::string& holder);

}  // namespace bpmc::notifier
