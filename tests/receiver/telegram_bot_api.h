#pragma once
// A loopback Telegram Bot API stand-in for integration tests (receiver_telegram_test,
// notices_service_test).

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace bpmc::testing {

// A Bot API stand-in on 127.0.0.1: serves getUpdates (from a queue, waiting up to
// 300 ms when empty), sendMessage, editMessageText, editMessageReplyMarkup and answerCallbackQuery
// under /bot<token>/, and records every call.
class BotApi {
 public:
  using Json = nlohmann::json;
  using SteadyClock = std::chrono::steady_clock;
  struct Call {
    std::string method;
    Json body;
    SteadyClock::time_point at;
    int status = 200;
  };

  explicit BotApi(std::string token) : token_(std::move(token)) {
    server_.Post(R"(/bot([^/]+)/(\w+))",
                 [this](const httplib::Request& req, httplib::Response& res) { Answer(req, res); });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~BotApi() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    server_.stop();
    thread_.join();
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void PushUpdate(Json update) {
    std::lock_guard<std::mutex> lock(mu_);
    update["update_id"] = next_update_++;
    updates_.push_back(std::move(update));
    cv_.notify_all();
  }
  // The next `n` sendMessage calls get 429 with parameters.retry_after = seconds.
  void Throttle(int n, int seconds) {
    std::lock_guard<std::mutex> lock(mu_);
    throttle_ = n;
    retry_after_ = seconds;
  }
  std::vector<Call> Calls(const std::string& method) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Call> out;
    for (const Call& c : calls_)
      if (c.method == method) out.push_back(c);
    return out;
  }
  std::vector<int64_t> Offsets() const {
    std::lock_guard<std::mutex> lock(mu_);
    return offsets_;
  }

 private:
  static std::string Ok(const Json& result) {
    return Json{{"ok", true}, {"result", result}}.dump();
  }

  void Answer(const httplib::Request& req, httplib::Response& res) {
    const std::string token = req.matches[1];
    const std::string method = req.matches[2];
    Json body = Json::parse(req.body, nullptr, false);
    std::unique_lock<std::mutex> lock(mu_);
    Call call{method, body, SteadyClock::now(), 200};
    std::string out;
    if (token != token_) {
      call.status = 401;
      out = R"({"ok":false,"error_code":401,"description":"Unauthorized"})";
    } else if (method == "getUpdates") {
      const int64_t offset = body.value("offset", int64_t{0});
      offsets_.push_back(offset);
      auto pending = [&] {
        for (const Json& u : updates_)
          if (u["update_id"].get<int64_t>() >= offset) return true;
        return false;
      };
      cv_.wait_for(lock, std::chrono::milliseconds(300), [&] { return stopping_ || pending(); });
      Json result = Json::array();
      for (const Json& u : updates_)
        if (u["update_id"].get<int64_t>() >= offset) result.push_back(u);
      out = Ok(result);
    } else if (method == "sendMessage" && throttle_ > 0) {
      --throttle_;
      call.status = 429;
      out = Json{{"ok", false},
                 {"error_code", 429},
                 {"description", "Too Many Requests: retry after " + std::to_string(retry_after_)},
                 {"parameters", {{"retry_after", retry_after_}}}}
                .dump();
    } else if (method == "sendMessage") {
      out = Ok({{"message_id", next_message_++},
                {"chat", {{"id", body["chat_id"]}}},
                {"text", body["text"]}});
    } else if (method == "editMessageText") {
      out = Ok({{"message_id", body["message_id"]}, {"text", body["text"]}});
    } else if (method == "answerCallbackQuery" || method == "editMessageReplyMarkup") {
      out = Ok(true);
    } else {
      call.status = 404;
      out = R"({"ok":false,"error_code":404,"description":"Not Found"})";
    }
    calls_.push_back(call);
    res.status = call.status;
    res.set_content(out, "application/json");
  }

  const std::string token_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::deque<Json> updates_;
  int64_t next_update_ = 1000;
  int64_t next_message_ = 77;
  int throttle_ = 0, retry_after_ = 0;
  std::vector<Call> calls_;
  std::vector<int64_t> offsets_;
};

}  // namespace bpmc::testing
