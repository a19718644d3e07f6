#include "webhook_receiver/writer.h"

#include <spdlog/spdlog.h>

#include <pqxx/pqxx>

#include "common/pii.h"

namespace bpmc::webhook_receiver {

IntakeWriter::IntakeWriter(Options options, std::function<bool(const std::string&)> channel_exists,
                           std::function<void(const std::string&)> count_failure)
    : options_(std::move(options)),
      channel_exists_(std::move(channel_exists)),
      count_failure_(std::move(count_failure)),
      commit_(options_.max_batch) {
  commit_.Start(options_.connections, [this]() -> Commit::Handler {
    // This writer thread's connection, made on first use.
    auto conn = std::make_shared<std::unique_ptr<pqxx::connection>>();
    return [this, conn](Batch& batch) { StoreBatch(*conn, batch); };
  });
}

IntakeWriter::~IntakeWriter() { Stop(); }

std::optional<StoreResult> IntakeWriter::Submit(const WebhookToStore& job) {
  std::optional<std::optional<StoreResult>> result = commit_.Submit(job);
  if (!result) return std::nullopt;  // stopping
  return std::move(*result);
}

void IntakeWriter::Stop() { commit_.Stop(); }

std::vector<StoreResult> IntakeWriter::TryStore(std::unique_ptr<pqxx::connection>& conn,
                                                const Batch& batch, bool* ok) {
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
  for (const Commit::Item* p : batch) jobs.push_back(p->job);
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

void IntakeWriter::StoreBatch(std::unique_ptr<pqxx::connection>& conn, Batch& batch) {
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
  for (Commit::Item* p : batch) {
    std::vector<StoreResult> one = TryStore(conn, {p}, &ok);
    if (ok) {
      p->result = std::move(one.at(0));
    } else {
      count_failure_("store_webhook");
    }
  }
}

}  // namespace bpmc::webhook_receiver
