#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "webhook_receiver/store.h"

namespace bpmc::webhook_receiver {

// Group commit for the intake: HTTP threads Submit() a webhook and wait;
// writer threads (one PostgreSQL connection each) store everything queued so
// far in one transaction (StoreWebhooks) and then wake the waiters. With one
// webhook in flight this is one transaction per webhook; under load many
// webhooks share a transaction and its COMMIT. Thread-safe.
class IntakeWriter {
 public:
  struct Options {
    std::string database_url;  // a secret: never logged
    int connections = 4;       // writer threads = transactions in flight at once
    size_t max_batch = 64;     // webhooks per transaction at most
  };
  // `channel_exists` is StoreWebhooks'; `count_failure(reason)` is called for
  // every failure survived ("store_batch", "store_webhook", "database_connect").
  IntakeWriter(Options options, std::function<bool(const std::string&)> channel_exists,
               std::function<void(const std::string&)> count_failure);
  ~IntakeWriter();  // Stop()
  IntakeWriter(const IntakeWriter&) = delete;
  IntakeWriter& operator=(const IntakeWriter&) = delete;

  // Stores the webhook durably and returns its result, or nullopt when it
  // could not be stored (database unavailable, refused, or stopping); then
  // nothing of it is stored. Blocks until then. `job`'s pointers must stay
  // valid until it returns.
  std::optional<StoreResult> Submit(const WebhookToStore& job);

  // Stores what is queued, then joins the writers; later Submits fail. Idempotent.
  void Stop();

 private:
  struct Pending {
    WebhookToStore job;
    bool done = false;
    std::optional<StoreResult> result;
  };
  void WriterLoop();
  // Stores `batch`; on a failure of the whole batch retries each webhook
  // alone, so that one refused webhook does not fail the others.
  void StoreBatch(std::unique_ptr<pqxx::connection>& conn, std::vector<Pending*>& batch);
  std::vector<StoreResult> TryStore(std::unique_ptr<pqxx::connection>& conn,
                                    const std::vector<Pending*>& batch, bool* ok);

  const Options options_;
  const std::function<bool(const std::string&)> channel_exists_;
  const std::function<void(const std::string&)> count_failure_;
  std::mutex mu_;
  std::condition_variable work_cv_;  // writers: something queued or stopping
  std::condition_variable done_cv_;  // submitters: a batch finished
  std::deque<Pending*> queue_;
  bool stopping_ = false;
  std::vector<std::thread> writers_;
};

}  // namespace bpmc::webhook_receiver
