#include "notifier/deliverer.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <pqxx/pqxx>
#include <random>
#include <sstream>
#include <thread>

#include "common/ids.h"
#include "common/pg_statements.h"
#include "common/pii.h"
#include "notifier/channels.h"
#include "notifier/policy.h"
#include "notifier/slack_app.h"
#include "notifier/telegram.h"

namespace bpmc::notifier {
namespace {

using std::chrono::microseconds;

// Per-channel metric children, created once (Family::Add is slow and locks).
struct ChannelMetrics {
  prometheus::Counter* delivered;      // rows (alerts) delivered
  prometheus::Counter* retried;        // rows scheduled for another attempt
  prometheus::Counter* failed;         // rows given up on
  prometheus::Counter* bundles;        // messages that carried more than one alert
  prometheus::Counter* bundled;        // alerts carried in those
  prometheus::Counter* rate_limited;   // times the rate limit held the destination back
  prometheus::Counter* links_dropped;  // unsafe generator/runbook URLs left out of a message
  prometheus::Histogram* latency;      // enqueue → delivered
  prometheus::Histogram* attempt;      // one send to the peer
  prometheus::Family<prometheus::Counter>* attempts_family;  // by result, added as met
};

// Builds "{"a","b"}" for a text[] parameter.
std::string TextArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

template <typename T>
std::string NumArray(const std::vector<T>& items) {
  std::ostringstream ss;
  ss << '{';
  for (size_t i = 0; i < items.size(); ++i) ss << (i ? "," : "") << items[i];
  ss << '}';
  return ss.str();
}

double UnitRandom() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

// The destination a worker holds (its row locked) and what is due for it.
struct Claim {
  std::string channel, destination;
  int64_t rate_tat = 0;   // GCRA state (policy.h)
  int64_t now = 0;        // database clock at the claim, Unix microseconds
  int64_t local_now = 0;  // our Clock at the same moment
  // The database clock when the request went out: the rate limit spaces request starts.
  int64_t SentAt(int64_t local_started) const { return now + (local_started - local_now); }
};

struct Row {
  long long id;
  int attempts;
  AlertView alert;
};

// The outcome of one attempt to send one message.
struct SendResult {
  Classification classification{Outcome::kDelivered, "ok"};
  std::optional<microseconds> retry_after;
  std::string error;  // for last_error: no secrets (status, curl or SMTP text)
};

// The transaction's now() (not clock_timestamp()) in WHERE clauses: a stable
// value the planner can use as an index bound. Each step is its own transaction.
constexpr const char* kClaimSql =
    "SELECT d.channel, d.destination, d.rate_tat,"
    " (extract(epoch FROM now()) * 1000000)::bigint"
    " FROM notification_destinations d"
    " WHERE d.channel = ANY($1::text[]) AND d.blocked_until <= now()"
    " AND EXISTS (SELECT 1 FROM notification_outbox o WHERE o.channel = d.channel"
    "   AND o.destination = d.destination AND o.state = 'queued' AND o.next_attempt_at <= now())"
    // The destination with the oldest waiting notification first.
    " ORDER BY (SELECT min(o.id) FROM notification_outbox o"
    "   WHERE o.channel = d.channel AND o.destination = d.destination AND o.state = 'queued')"
    " LIMIT 1 FOR UPDATE OF d SKIP LOCKED";

// Microseconds until something may be due (a retry's time or a rate-limit block ending).
constexpr const char* kNextDueSql =
    "SELECT (extract(epoch FROM min(GREATEST(d.blocked_until, q.next_at)) - clock_timestamp())"
    " * 1000000)::bigint"
    " FROM notification_destinations d"
    " CROSS JOIN LATERAL (SELECT min(o.next_attempt_at) AS next_at FROM notification_outbox o"
    "   WHERE o.channel = d.channel AND o.destination = d.destination AND o.state = 'queued') q"
    " WHERE d.channel = ANY($1::text[]) AND q.next_at IS NOT NULL";

// How many rows of one destination are due, counting at most $3.
constexpr const char* kDueCountSql =
    "SELECT count(*) FROM (SELECT 1 FROM notification_outbox"
    " WHERE channel = $1 AND destination = $2 AND state = 'queued'"
    " AND next_attempt_at <= now() LIMIT $3) s";
// Counting beyond this changes little and costs a scan per message in a storm.
constexpr int kCountCap = 20000;

// Oldest first, read along the (channel, destination, id) index.
constexpr const char* kDueRowsSql =
    "SELECT id, attempts, alert::text FROM notification_outbox"
    " WHERE channel = $1 AND destination = $2 AND state = 'queued'"
    " AND next_attempt_at <= now() ORDER BY id LIMIT $3 FOR UPDATE";

// Records one attempt: the destination's rate state and every row of the message.
// $1 channel, $2 destination, $3 rate_tat, $4 hold (µs), $5 ids, $6 sent_at (µs),
// $7 delivered, $8 give up, $9 max attempts, $10 retry delay (µs), $11 error,
// $12 message id, $13 bundle size.
constexpr const char* kRecordSql =
    "WITH d AS (UPDATE notification_destinations SET rate_tat = $3, blocked_until ="
    "   GREATEST(blocked_until, clock_timestamp() + $4::bigint * interval '1 microsecond')"
    "   WHERE channel = $1 AND destination = $2)"
    " UPDATE notification_outbox SET attempts = attempts + 1,"
    " first_attempt_at = COALESCE(first_attempt_at, to_timestamp($6::double precision / 1e6)),"
    " state = CASE WHEN $7 THEN 'delivered' WHEN $8 OR attempts + 1 >= $9 THEN 'failed'"
    "   ELSE 'queued' END,"
    " done_at = CASE WHEN $7 OR $8 OR attempts + 1 >= $9 THEN clock_timestamp() END,"
    " next_attempt_at = CASE WHEN $7 THEN next_attempt_at"
    "   ELSE clock_timestamp() + $10::bigint * interval '1 microsecond' END,"
    " last_error = CASE WHEN $7 THEN NULL ELSE $11 END, message_id = $12, bundle_size = $13"
    " WHERE id = ANY($5::bigint[])"
    " RETURNING state, extract(epoch FROM clock_timestamp() - created_at)";

}  // namespace

class Deliverer::Impl {
 public:
  Impl(Options options, const NotifierConfig& config, HttpClient& http, Mailer& mailer,
       const Clock& clock, prometheus::Registry& registry)
      : options_(std::move(options)), config_(config), http_(http), mailer_(mailer), clock_(clock) {
    std::vector<std::string> names;
    for (const auto& [name, channel] : config_.channels) names.push_back(name);
    channel_names_ = TextArray(names);
    RegisterMetrics(registry);
  }

  ~Impl() { Stop(); }

  void Start() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!threads_.empty()) return;
    stopping_ = false;
    for (int i = 0; i < std::max(1, options_.threads); ++i) {
      threads_.emplace_back([this, i] { Run(i); });
    }
  }

  void Stop() {
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      threads.swap(threads_);
    }
    cv_.notify_all();
    for (auto& t : threads) t.join();
  }

  void Wake() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++wake_seq_;
    }
    cv_.notify_all();
  }

 private:
  void RegisterMetrics(prometheus::Registry& registry) {
    auto& notifications =
        prometheus::BuildCounter()
            .Name("bpmc_receiver_notifications_total")
            .Help(
                "Notifications (one alert to one destination) by channel and result: "
                "delivered, retried (another attempt scheduled), failed (given up)")
            .Register(registry);
    auto& attempts =
        prometheus::BuildCounter()
            .Name("bpmc_receiver_delivery_attempts_total")
            .Help(
                "Messages sent to a peer (one or a bundle of notifications) by channel "
                "and result: ok, http_429, http_5xx, http_4xx, network, smtp_4xx, "
                "smtp_5xx, config, build")
            .Register(registry);
    auto& bundles = prometheus::BuildCounter()
                        .Name("bpmc_receiver_bundles_total")
                        .Help("Delivered messages that carried several alerts (rate limit reached)")
                        .Register(registry);
    auto& bundled = prometheus::BuildCounter()
                        .Name("bpmc_receiver_bundled_notifications_total")
                        .Help("Notifications delivered inside bundles")
                        .Register(registry);
    auto& limited =
        prometheus::BuildCounter()
            .Name("bpmc_receiver_rate_limited_total")
            .Help("Times a destination had due notifications but no room in its rate limit")
            .Register(registry);
    auto& dropped =
        prometheus::BuildCounter()
            .Name("bpmc_receiver_links_dropped_total")
            .Help(
                "Generator or runbook links left out of Slack/PagerDuty messages because "
                "the URL was not http(s) or contained <, >, | or spaces")
            .Register(registry);
    auto& latency = prometheus::BuildHistogram()
                        .Name("bpmc_receiver_delivery_latency_seconds")
                        .Help("From enqueue to delivered, per notification")
                        .Register(registry);
    auto& attempt = prometheus::BuildHistogram()
                        .Name("bpmc_receiver_delivery_attempt_seconds")
                        .Help("Duration of one send to a peer")
                        .Register(registry);
    const prometheus::Histogram::BucketBoundaries latency_buckets = {
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600};
    const prometheus::Histogram::BucketBoundaries attempt_buckets = {
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    for (const auto& [name, channel] : config_.channels) {
      ChannelMetrics m;
      m.delivered = &notifications.Add({{"channel", name}, {"result", "delivered"}});
      m.retried = &notifications.Add({{"channel", name}, {"result", "retried"}});
      m.failed = &notifications.Add({{"channel", name}, {"result", "failed"}});
      m.bundles = &bundles.Add({{"channel", name}});
      m.bundled = &bundled.Add({{"channel", name}});
      m.rate_limited = &limited.Add({{"channel", name}});
      m.links_dropped = &dropped.Add({{"channel", name}});
      m.latency = &latency.Add({{"channel", name}}, latency_buckets);
      m.attempt = &attempt.Add({{"channel", name}}, attempt_buckets);
      m.attempts_family = &attempts;
      for (const char* result : {"ok", "http_429", "http_5xx", "http_4xx", "network", "build"}) {
        attempts.Add({{"channel", name}, {"result", result}});  // visible at 0 from the start
      }
      metrics_.emplace(name, m);
    }
    queue_depth_ = &prometheus::BuildGauge()
                        .Name("bpmc_receiver_queue_depth")
                        .Help("Notifications queued (waiting for their first or next attempt)")
                        .Register(registry)
                        .Add({});
    oldest_queued_ = &prometheus::BuildGauge()
                          .Name("bpmc_receiver_oldest_queued_seconds")
                          .Help("Age of the oldest queued notification (0 when none)")
                          .Register(registry)
                          .Add({});
    auto& vacuums =
        prometheus::BuildCounter()
            .Name("bpmc_receiver_outbox_vacuums_total")
            .Help("VACUUM (ANALYZE) runs of the outbox by the delivery workers, by result")
            .Register(registry);
    vacuums_ok_ = &vacuums.Add({{"result", "ok"}});
    vacuums_failed_ = &vacuums.Add({{"result", "error"}});
    db_errors_ = &prometheus::BuildCounter()
                      .Name("bpmc_receiver_delivery_database_errors_total")
                      .Help("Database errors the delivery workers survived (they reconnect)")
                      .Register(registry)
                      .Add({});
  }

  // Sleeps up to `timeout` or until Wake()/Stop(). Returns false when stopping.
  bool Sleep(microseconds timeout, uint64_t* seen_wake) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return stopping_ || wake_seq_ != *seen_wake; });
    *seen_wake = wake_seq_;
    return !stopping_;
  }

  bool Stopping() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_;
  }

  void Run(int index) {
    uint64_t seen_wake = 0;
    std::unique_ptr<pqxx::connection> conn;
    int64_t next_gauges = 0;
    while (!Stopping()) {
      try {
        if (!conn) conn = Connect();
        if (index == 0 && clock_.NowMicros() >= next_gauges) {
          UpdateGauges(*conn);
          next_gauges = clock_.NowMicros() + microseconds(options_.gauge_interval).count();
        }
        if (index == 0) MaybeVacuum(*conn);
        const std::optional<microseconds> idle = Step(*conn);
        if (!idle) continue;  // did some work: look again at once
        microseconds wait = std::min<microseconds>(*idle, options_.poll_interval);
        if (index == 0) wait = std::min<microseconds>(wait, options_.gauge_interval);
        Sleep(std::max(wait, microseconds(1000)), &seen_wake);
      } catch (const std::exception& e) {
        db_errors_->Increment();
        spdlog::warn("notifier: delivery worker {}: database error: {}", index, ScrubPii(e.what()));
        conn.reset();
        Sleep(options_.db_retry, &seen_wake);
      }
    }
  }

  // A worker's connection. Its commits do not wait for the WAL flush: they only
  // record delivery results and rate state, and losing the last of them in a
  // database crash means one resend, never a lost notification (the rows stay
  // queued until the result is durable). Behind PgBouncer in transaction mode
  // that session setting is not made (commits wait for the flush) and the
  // statements go unnamed (docs/SCALING.md "PgBouncer").
  std::unique_ptr<pqxx::connection> Connect() {
    auto conn = std::make_unique<pqxx::connection>(options_.database_url);
    if (statements_.prepared()) pqxx::nontransaction(*conn).exec("SET synchronous_commit = off");
    statements_.PrepareOn(*conn);
    return conn;
  }

  // Worker 0 only. VACUUM cannot run inside a transaction: a nontransaction
  // sends it alone. Not retried before the next interval when it fails.
  void MaybeVacuum(pqxx::connection& conn) {
    if (options_.vacuum_after_rows <= 0) return;
    const int64_t changed = rows_changed_.load(std::memory_order_relaxed);
    const int64_t now = clock_.NowMicros();
    if (changed - changed_at_vacuum_ < options_.vacuum_after_rows ||
        now < last_vacuum_ + microseconds(options_.vacuum_min_interval).count()) {
      return;
    }
    changed_at_vacuum_ = changed;
    last_vacuum_ = now;
    try {
      pqxx::nontransaction(conn).exec(
          "VACUUM (ANALYZE) notification_outbox, notification_destinations");
      vacuums_ok_->Increment();
    } catch (const pqxx::broken_connection&) {
      throw;  // Run() reconnects
    } catch (const std::exception& e) {
      vacuums_failed_->Increment();
      spdlog::warn("notifier: VACUUM of the outbox failed (autovacuum remains): {}", e.what());
    }
  }

  void UpdateGauges(pqxx::connection& conn) {
    pqxx::work txn(conn);
    pqxx::row r = txn.exec1(
        "SELECT count(*), COALESCE(extract(epoch FROM clock_timestamp() - min(created_at)), 0)"
        " FROM notification_outbox WHERE state = 'queued'");
    txn.commit();
    queue_depth_->Set(r[0].as<double>());
    oldest_queued_->Set(std::max(0.0, r[1].as<double>()));
  }

  // One message to one destination. Returns nullopt after doing something, or
  // how long nothing will be due when there was nothing to do.
  std::optional<microseconds> Step(pqxx::connection& conn) {
    pqxx::work txn(conn);
    pqxx::result claimed = statements_.Exec(txn, "claim", channel_names_);
    if (claimed.empty()) {
      pqxx::result next = statements_.Exec(txn, "next_due", channel_names_);
      txn.commit();
      if (next.empty() || next[0][0].is_null()) return microseconds(options_.poll_interval);
      return microseconds(std::max<long long>(0, next[0][0].as<long long>()));
    }
    Claim claim{claimed[0][0].as<std::string>(), claimed[0][1].as<std::string>(),
                claimed[0][2].as<long long>(), claimed[0][3].as<long long>(), clock_.NowMicros()};
    const ChannelConfig& channel = config_.channels.at(claim.channel);
    ChannelMetrics& metrics = metrics_.at(claim.channel);
    const RateLimit limit = LimitOf(channel, claim.destination);

    const int capacity = RateCapacity(claim.rate_tat, claim.now, limit);
    const bool can_bundle = CanBundle(channel);
    // The claim saw at least one due row. How many more matters only while they could
    // share the window's remaining messages: count up to capacity * max_bundle rows.
    int due = 1;
    if (capacity > 0 && can_bundle && capacity < kCountCap) {
      const int64_t enough =
          std::min<int64_t>(static_cast<int64_t>(capacity) * channel.max_bundle + 1, kCountCap);
      due = statements_
                .Exec(txn, "due_count", claim.channel, claim.destination,
                      static_cast<long long>(enough))
                .at(0)[0]
                .as<int>();
    }
    const SendPlan plan = PlanSend(due, capacity, can_bundle, channel.max_bundle);
    if (plan.kind == SendPlan::Kind::kWait && capacity > 0) {  // nothing due after all
      txn.commit();
      return std::nullopt;
    }
    if (plan.kind == SendPlan::Kind::kWait) {
      const int64_t free_at = NextFreeSlot(claim.rate_tat, claim.now, limit);
      txn.exec_params(
          "UPDATE notification_destinations SET blocked_until = to_timestamp($3::double precision"
          " / 1e6) WHERE channel = $1 AND destination = $2",
          claim.channel, claim.destination, static_cast<long long>(free_at));
      txn.commit();
      metrics.rate_limited->Increment();
      return std::nullopt;
    }
    const pqxx::result due_rows =
        statements_.Exec(txn, "due_rows", claim.channel, claim.destination, plan.alerts);
    if (due_rows.empty()) {  // taken meanwhile by a retry's rescheduling: look again
      txn.commit();
      return std::nullopt;
    }

    std::vector<Row> rows;
    for (int i = 0; i < plan.alerts && i < static_cast<int>(due_rows.size()); ++i) {
      const auto& r = due_rows[static_cast<pqxx::result::size_type>(i)];
      rows.push_back({r[0].as<long long>(), r[1].as<int>(),
                      AlertViewFromJson(nlohmann::json::parse(r[2].as<std::string>()))});
    }
    Message message{claim.channel, claim.destination, {}, MessageId(claim, rows)};
    for (const Row& r : rows) message.alerts.push_back(r.alert);

    // The destination row stays locked while we talk to the peer: no other worker or
    // process sends to it meanwhile, and the rate window stays exact.
    const Prepared prepared = Prepare(channel, message);
    if (const int dropped = DroppedLinks(channel, message); dropped > 0) {
      metrics.links_dropped->Increment(dropped);
    }
    const int64_t started = clock_.NowMicros();  // after building: the rate limit spaces requests
    const SendResult result =
        channel.type == ChannelType::kTelegram
            ? TransmitTelegram(txn, channel, prepared, message, claim.SentAt(started))
        : IsSlackApp(channel)
            ? TransmitSlackApp(txn, channel, prepared, message, claim.SentAt(started))
            : Transmit(channel, prepared, claim.SentAt(started));
    metrics.attempt->Observe(static_cast<double>(clock_.NowMicros() - started) / 1e6);
    metrics.attempts_family
        ->Add({{"channel", claim.channel}, {"result", result.classification.reason}})
        .Increment();
    Record(txn, claim, claim.SentAt(started), channel, rows, message, result, metrics);
    return std::nullopt;
  }

  static std::string MessageId(const Claim& claim, const std::vector<Row>& rows) {
    std::string key = claim.channel + "\n" + claim.destination;
    for (const Row& r : rows) key += "\n" + std::to_string(r.id);
    return HexEncode(Sha256(key)).substr(0, 32);
  }

  // What goes on the wire for one message: HTTP requests or one mail.
  struct Prepared {
    std::vector<HttpRequest> requests;
    MailMessage mail;
    std::optional<SendResult> failed;  // set when the message could not be built
  };

  // Never throws: a message that cannot even be built fails permanently
  // instead of blocking its destination forever.
  static Prepared Prepare(const ChannelConfig& channel, const Message& message) {
    Prepared p;
    try {
      if (channel.type == ChannelType::kEmail) {
        p.mail = BuildMail(channel, message);
      } else {
        p.requests = BuildHttpRequests(channel, message);
      }
    } catch (const std::exception& e) {
      SendResult failed;
      failed.classification = {Outcome::kPermanent, "build"};
      failed.error = e.what();
      p.failed = failed;
    }
    return p;
  }

  SendResult Transmit(const ChannelConfig& channel, const Prepared& prepared, int64_t now) {
    if (prepared.failed) return *prepared.failed;
    SendResult out;
    if (channel.type == ChannelType::kEmail) {
      const MailResult mail = mailer_.Send(channel.email.smtp, prepared.mail);
      out.classification = ClassifySmtp(mail.smtp_code, mail.transport_error);
      if (!mail.ok()) out.error = "smtp " + std::to_string(mail.smtp_code) + ": " + mail.error;
      return out;
    }
    for (const HttpRequest& request : prepared.requests) {
      const HttpResponse response = http_.Send(request);
      out.classification = ClassifyHttp(response.status, response.transport_error);
      if (out.classification.outcome == Outcome::kDelivered) continue;
      out.retry_after = ParseRetryAfter(response.Header("retry-after"), now);
      out.error = response.status ? "http " + std::to_string(response.status) + ": " +
                                        response.body.substr(0, 200)
                                  : "network: " + response.error;
      return out;  // the remaining parts go with the retry
    }
    return out;
  }

  // The rate limit of one destination: Telegram groups have their own.
  static RateLimit LimitOf(const ChannelConfig& channel, const std::string& destination) {
    return channel.type == ChannelType::kTelegram ? TelegramRateLimit(channel, destination)
                                                  : channel.rate_limit;
  }

  // Telegram's limit across all chats of one bot (about 30 messages a second), in
  // this process: requests are spaced by 1 / bot_per_second.
  void PaceBot(const ChannelConfig& channel) {
    if (channel.telegram.bot_per_second <= 0) return;
    const auto gap = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::microseconds(1000000 / channel.telegram.bot_per_second));
    std::chrono::steady_clock::time_point start;
    {
      std::lock_guard<std::mutex> lock(pace_mu_);
      auto& next = pace_next_[channel.name];
      start = std::max(std::chrono::steady_clock::now(), next);
      next = start + gap;
    }
    std::this_thread::sleep_until(start);
  }

  // A Bot API failure: 429 and 5xx retried, Telegram's parameters.retry_after (in the
  // JSON body, not a header) honoured, other 4xx permanent.
  static SendResult TelegramFailure(const HttpResponse& response, const TelegramReply& reply,
                                    int64_t now) {
    SendResult out;
    out.classification = ClassifyHttp(response.status, response.transport_error);
    if (out.classification.outcome == Outcome::kDelivered)  // 2xx without "ok": retry
      out.classification = {Outcome::kRetry, "bad_reply"};
    if (reply.retry_after_s) {
      out.retry_after = std::chrono::seconds(*reply.retry_after_s);
    } else {
      out.retry_after = ParseRetryAfter(response.Header("retry-after"), now);
    }
    out.error = response.status ? "http " + std::to_string(response.status) + ": " +
                                      reply.description.substr(0, 200)
                                : "network: " + response.error;
    return out;
  }

  // One Telegram message: an incident page that changes state edits the message sent
  // about it to that chat (editMessageText), else sendMessage; the message_id of a sent
  // page is kept (telegram_messages) in the transaction that records the delivery.
  SendResult TransmitTelegram(pqxx::work& txn, const ChannelConfig& channel,
                              const Prepared& prepared, const Message& message, int64_t now) {
    if (prepared.failed) return *prepared.failed;
    const AlertView& alert = message.alerts.front();
    std::string chat = message.destination;
    if (chat.rfind("person:", 0) == 0) {
      const std::optional<std::string> bound = TelegramChatOfPerson(txn, chat.substr(7));
      if (!bound) {
        SendResult out;
        out.classification = {Outcome::kPermanent, "no_chat"};
        out.error = "the person has not bound a Telegram chat (/start <code>)";
        return out;
      }
      chat = *bound;
    }
    if (chat.empty()) {
      SendResult out;
      out.classification = {Outcome::kPermanent, "config"};
      out.error = "no chat id";
      return out;
    }
    const bool incident = TelegramIncidentId(alert) != 0;
    const std::string thread = TelegramThreadKey(alert.dedup_key);
    if (incident && alert.status != "firing") {
      if (const auto sent = FindTelegramMessage(txn, channel.name, chat, thread)) {
        PaceBot(channel);
        const HttpResponse response = http_.Send(TelegramEditMessage(channel, chat, *sent, alert));
        const TelegramReply reply = ParseTelegramReply(response.body);
        if (response.status / 100 == 2 && reply.ok) return SendResult{};
        if (reply.description.find("message is not modified") != std::string::npos)
          return SendResult{};
        if (!TelegramEditImpossible(reply)) return TelegramFailure(response, reply, now);
        // Deleted by the user, or too old to edit: send a new message.
      }
    }
    PaceBot(channel);
    const HttpResponse response = http_.Send(TelegramSendMessage(channel, chat, alert));
    const TelegramReply reply = ParseTelegramReply(response.body);
    if (response.status / 100 != 2 || !reply.ok) return TelegramFailure(response, reply, now);
    if (incident && reply.message_id > 0)
      SaveTelegramMessage(txn, channel.name, chat, thread, reply.message_id);
    return SendResult{};
  }

  // A Slack app message: chat.postMessage (ts kept for incident pages), or chat.update
  // of the page sent about the same incident to the same destination. Slack answers
  // errors as 200 {"ok":false,"error":...}; rate limits as 429 with Retry-After.
  SendResult TransmitSlackApp(pqxx::work& txn, const ChannelConfig& channel,
                              const Prepared& prepared, const Message& message, int64_t now) {
    if (prepared.failed) return *prepared.failed;
    const AlertView& alert = message.alerts.front();
    const std::string to =
        message.destination.empty() ? channel.slack.channel : message.destination;
    const bool incident = TelegramIncidentId(alert) != 0;
    const std::string thread = TelegramThreadKey(alert.dedup_key);
    auto failure = [&](const HttpResponse& response, const SlackReply& reply) {
      SendResult out;
      out.classification = ClassifyHttp(response.status, response.transport_error);
      if (out.classification.outcome == Outcome::kDelivered)
        out.classification = SlackErrorRetryable(reply.error)
                                 ? Classification{Outcome::kRetry, "slack_error"}
                                 : Classification{Outcome::kPermanent, "slack_error"};
      out.retry_after = ParseRetryAfter(response.Header("retry-after"), now);
      out.error = response.status ? "http " + std::to_string(response.status) + ": " +
                                        reply.error.substr(0, 100)
                                  : "network: " + response.error;
      return out;
    };
    if (incident && alert.status != "firing") {
      if (const auto sent = FindSlackMessage(txn, channel.name, message.destination, thread)) {
        const HttpResponse response =
            http_.Send(SlackUpdateMessage(channel, sent->slack_channel, sent->ts,
                                          message.destination, alert, options_.reassign_choices));
        const SlackReply reply = ParseSlackReply(response.body);
        if (response.status / 100 == 2 && reply.ok) return SendResult{};
        if (reply.error != "message_not_found" && reply.error != "cant_update_message")
          return failure(response, reply);
      }
    }
    const HttpResponse response = http_.Send(
        SlackPostMessage(channel, to, message.destination, alert, options_.reassign_choices));
    const SlackReply reply = ParseSlackReply(response.body);
    if (response.status / 100 != 2 || !reply.ok) return failure(response, reply);
    if (incident && !reply.ts.empty())
      SaveSlackMessage(txn, channel.name, message.destination, thread,
                       {reply.channel.empty() ? to : reply.channel, reply.ts});
    return SendResult{};
  }

  // `sent_at`: when the request went out, on the database clock. One statement
  // updates the destination's rate state and every row of the message.
  void Record(pqxx::work& txn, const Claim& claim, int64_t sent_at, const ChannelConfig& channel,
              const std::vector<Row>& rows, const Message& message, const SendResult& result,
              ChannelMetrics& metrics) {
    std::vector<long long> ids;
    int max_attempts = 0;
    for (const Row& r : rows) {
      ids.push_back(r.id);
      max_attempts = std::max(max_attempts, r.attempts + 1);
    }
    const bool delivered = result.classification.outcome == Outcome::kDelivered;
    // A peer's Retry-After holds the whole destination, not just these rows.
    microseconds hold{0};
    RetryDecision decision;
    if (!delivered) {
      decision = AfterFailure(config_.delivery, result.classification.outcome, max_attempts,
                              result.retry_after, UnitRandom());
      if (result.retry_after)
        hold = std::min<microseconds>(*result.retry_after, config_.delivery.max_retry_after);
    }
    pqxx::result updated = statements_.Exec(
        txn, "record", claim.channel, claim.destination,
        static_cast<long long>(
            RecordSend(claim.rate_tat, sent_at, LimitOf(channel, claim.destination))),
        static_cast<long long>(hold.count()), NumArray(ids), static_cast<long long>(sent_at),
        delivered, decision.give_up, config_.delivery.max_attempts,
        static_cast<long long>(decision.delay.count()),
        result.classification.reason + " " + result.error, message.message_id,
        static_cast<int>(rows.size()));
    txn.commit();
    rows_changed_.fetch_add(static_cast<int64_t>(updated.size()), std::memory_order_relaxed);
    int failed = 0;
    for (const auto& r : updated) {
      const std::string state = r[0].as<std::string>();
      if (state == "delivered") metrics.latency->Observe(r[1].as<double>());
      failed += state == "failed" ? 1 : 0;
    }
    if (delivered) {
      metrics.delivered->Increment(static_cast<double>(updated.size()));
      if (rows.size() > 1) {
        metrics.bundles->Increment();
        metrics.bundled->Increment(static_cast<double>(rows.size()));
      }
      return;
    }
    metrics.failed->Increment(failed);
    metrics.retried->Increment(static_cast<double>(updated.size()) - failed);
    if (failed > 0) {
      spdlog::error("notifier: channel {}: {} notification(s) failed for good ({})", claim.channel,
                    failed, result.classification.reason);
    }
  }

  const Options options_;
  const NotifierConfig config_;
  HttpClient& http_;
  Mailer& mailer_;
  const Clock& clock_;
  std::string channel_names_;  // text[] literal of the configured channels
  // Prepared on each worker connection (planning them costs more than running
  // them: about 1 ms against 0.3 ms), or unnamed behind PgBouncer.
  const PgStatements statements_ = [] {
    PgStatements s;
    s.Add("claim", kClaimSql);
    s.Add("next_due", kNextDueSql);
    s.Add("due_rows", kDueRowsSql);
    s.Add("due_count", kDueCountSql);
    s.Add("record", kRecordSql);
    return s;
  }();
  std::map<std::string, ChannelMetrics> metrics_;
  prometheus::Gauge* queue_depth_ = nullptr;
  prometheus::Gauge* oldest_queued_ = nullptr;
  prometheus::Counter* db_errors_ = nullptr;
  prometheus::Counter* vacuums_ok_ = nullptr;
  prometheus::Counter* vacuums_failed_ = nullptr;
  std::atomic<int64_t> rows_changed_{0};  // outbox rows updated by attempts, all workers
  int64_t changed_at_vacuum_ = 0;         // worker 0 only
  int64_t last_vacuum_ = 0;               // worker 0 only

  std::mutex pace_mu_;                                                      // guards pace_next_
  std::map<std::string, std::chrono::steady_clock::time_point> pace_next_;  // per Telegram channel

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  uint64_t wake_seq_ = 0;
  std::vector<std::thread> threads_;
};

Deliverer::Deliverer(Options options, const NotifierConfig& config, HttpClient& http,
                     Mailer& mailer, const Clock& clock, prometheus::Registry& registry)
    : impl_(std::make_unique<Impl>(std::move(options), config, http, mailer, clock, registry)) {}

Deliverer::~Deliverer() = default;
void Deliverer::Start() { impl_->Start(); }
void Deliverer::Stop() { impl_->Stop(); }
void Deliverer::Wake() { impl_->Wake(); }

}  // namespace bpmc::notifier
