#include "webhook_receiver/writer.h"

#include <spdlog/spdlog.h>

#include <pqxx/pqxx>

#include "common/pii.h"

namespace bpmc::webhook_receiver {

IntakeWriter::IntakeWriter(Options options, std::function<bool(const std::string&)> channel_exists,
                           std::function<void(const std::string&)> count_failure)
    : options_(std::move(options)),
      channel_exists_(std::move(channel_exists)),
      count_failure_(std::move(count_failure)) {
  for (int i = 0; i < options_.connections; ++i) writers_.emplace_back([this] { WriterLoop(); });
}

IntakeWriter::~IntakeWriter() { Stop(); }

std::optional<StoreResult> IntakeWriter::Submit(const WebhookToStore& job) {
  Pending pending;
  pending.job = job;
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_) return std::nullopt;
  queue_.push_back(&pending);
  work_cv_.notify_one();
  done_cv_.wait(lock, [&] { return pending.done; });
  return std::move(pending.result);
}

void IntakeWriter::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && writers_.empty()) return;
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : writers_) t.join();
  writers_.clear();
}

void IntakeWriter::WriterLoop() {
  std::unique_ptr<pqxx::connection> conn;
  for (;;) {
    std::vector<Pending*> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued is stored
      while (!queue_.empty() && batch.size() < options_.max_batch) {
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
    }
    StoreBatch(conn, batch);
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (Pending* p : batch) p->done = true;
    }
    done_cv_.notify_all();
  }
}

std::vector<StoreResult> IntakeWriter::TryStore(std::unique_ptr<pqxx::connection>& conn,
                                                const std::vector<Pending*>& batch, bool* ok) {
  *ok = false;
  try {
    if (!conn || !conn->is_open()) conn = std::make_unique<pqxx::connection>(options_.database_url);
  } catch (const std::exception& e) {
    conn.reset();
    count_failure_("database_connect");
    spdlog::warn("intake: cannot connect to the database: {}", ScrubPii(e.what()));
    return {};
  }
  std::vector<WebhookToStore> jobs;
  for (const Pending* p : batch) jobs.push_back(p->job);
  try {
    auto results = StoreWebhooks(*conn, jobs, channel_exists_);
    *ok = true;
    return results;
  } catch (const pqxx::broken_connection& e) {
    conn.reset();
    spdlog::warn("intake: lost the database connection: {}", ScrubPii(e.what()));
  } catch (const pqxx::in_doubt_error& e) {
    // The COMMIT's outcome is unknown: answer 503; the sender's retry is
    // recognised as a duplicate if the commit did happen.
    conn.reset();
    spdlog::warn("intake: commit outcome unknown: {}", ScrubPii(e.what()));
  } catch (const std::exception& e) {
    spdlog::warn("intake: {} webhook(s) not stored: {}", batch.size(), ScrubPii(e.what()));
  }
  return {};
}

void IntakeWriter::StoreBatch(std::unique_ptr<pqxx::connection>& conn,
                              std::vector<Pending*>& batch) {
  bool ok = false;
  std::vector<StoreResult> results = TryStore(conn, batch, &ok);
  if (ok) {
    for (size_t i = 0; i < batch.size(); ++i) batch[i]->result = std::move(results[i]);
    return;
  }
  if (batch.size() == 1 || !conn) {  // alone already, or the database is unreachable
    count_failure_("store_webhook");
    return;
  }
  count_failure_("store_batch");
  for (Pending* p : batch) {
    std::vector<StoreResult> one = TryStore(conn, {p}, &ok);
    if (ok) {
      p->result = std::move(one.at(0));
    } else {
      count_failure_("store_webhook");
    }
  }
}

}  // namespace bpmc::webhook_receiver
