#pragma once
// The receiver's side of the Telegram channel (docs/RECEIVER.md "Telegram"): one
// thread per bot that long-polls getUpdates while it holds the bot's lease (one
// poller across receivers), turns button presses into Acknowledge / Resolve /
// Escalate now / Snooze 1h as the person the pressing Telegram user is bound to, binds chats
// with "/start <code>" (a person's code, or a customer's: the chat then receives the
// customer's notices until "/stop", docs/NOTICES.md), and serves POST /api/v1/telegram/link-codes.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/http_client.h"
#include "http/types.h"
#include "identity/audit.h"
#include "incidents/engine.h"
#include "notifier/config.h"
#include "notifier/telegram.h"
#include "oncall/model.h"

namespace bpmc::webhook_receiver {

class TelegramBot {
 public:
  struct Deps {
    std::string database_url;
    notifier::ChannelConfig channel;  // a Telegram channel (its bot token and API URL)
    HttpClient* http = nullptr;
    const Clock* clock = nullptr;
    incidents::Engine* engine = nullptr;
    identity::AuditLog* audit = nullptr;
    oncall::OnCallConfig oncall;  // people, for /start and link codes
    std::function<void(const std::string& reason)> count_failure;
    std::function<bool()> ready;  // false: the database is not migrated yet
    // The lease lasts the long-poll wait plus this; another receiver takes over a
    // dead poller's lease once it has expired.
    int64_t lease_margin_us = 30'000'000;
    std::chrono::milliseconds idle_retry{2000};  // without the lease, or after a failure
  };
  explicit TelegramBot(Deps deps);
  ~TelegramBot();  // Stop()
  TelegramBot(const TelegramBot&) = delete;
  TelegramBot& operator=(const TelegramBot&) = delete;

  void Start();
  // Joins the thread: waits for a getUpdates in flight (at most poll_timeout plus the
  // channel's timeout).
  void Stop();

  // One round: take or extend the lease, getUpdates from the stored offset, handle each
  // update and store the next offset after it. Returns the updates handled, or -1 when
  // another receiver holds the lease. Throws pqxx exceptions.
  int PollOnce(pqxx::connection& conn);

  // Handles one update (a callback_query or a "/start <code>" message). Throws pqxx
  // exceptions (the offset is then not advanced and the update comes again: every
  // action is idempotent).
  void Handle(pqxx::connection& conn, const nlohmann::json& update);

  // POST /api/v1/telegram/link-codes {"person": "<id>"}: admin or support; 201
  // {"person", "code", "expires_at", "command": "/start <code>"}.
  http::Response CreateLinkCode(const http::Request& request);

  static constexpr int64_t kLinkCodeTtlUs = 3600LL * 1000000;  // one hour
  static constexpr uint64_t kMaxLinkCodeBody = 4096;

 private:
  void Run();
  void OnPress(pqxx::connection& conn, const nlohmann::json& query);
  void OnMessage(pqxx::connection& conn, const nlohmann::json& message);
  // "/stop": the chat stops being a telegram contact of customers' notices.
  void OnStop(pqxx::connection& conn, int64_t chat_id);
  void Call(const std::string& method, const nlohmann::json& body);
  void Audit(const std::string& person, const std::string& endpoint,
             std::map<std::string, std::string> params, int status, const std::string& denial);
  void Failure(const std::string& reason);
  // The person's locale (oncall Person::locale; "ru" for an unknown id).
  std::string LocaleOf(const std::string& person) const;
  // Reassign's "g:"/"b:" presses: editMessageReplyMarkup of the pressed message to the
  // list of targets, or back to the incident's buttons.
  void RedrawKeyboard(const nlohmann::json& query, const notifier::TelegramPress& press,
                      const std::string& locale);

  Deps deps_;
  std::string bot_key_;
  std::string holder_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace bpmc::webhook_receiver
