#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/group_commit.h"
#include "webhook_receiver/store.h"

namespace bpmc::webhook_receiver {

// Group commit (common/group_commit.h) for the intake: HTTP threads Submit()
// a webhook and wait; writer threads (one PostgreSQL connection each) store
// everything queued so far, up to `max_batch` webhooks, in one transaction
// (StoreWebhooks) and then wake the waiters. With one webhook in flight this
// is one transaction per webhook; under load many webhooks share a
// transaction and its COMMIT. Thread-safe.
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
  using Commit = GroupCommit<WebhookToStore, std::optional<StoreResult>>;
  using Batch = Commit::Batch;
  // Stores `batch`; on a failure of the whole batch retries each webhook
  // alone, so that one refused webhook does not fail the others.
  void StoreBatch(std::unique_ptr<pqxx::connection>& conn, Batch& batch);
  std::vector<StoreResult> TryStore(std::unique_ptr<pqxx::connection>& conn, const Batch& batch,
                                    bool* ok);

  const Options options_;
  const std::function<bool(const std::string&)> channel_exists_;
  const std::function<void(const std::string&)> count_failure_;
  Commit commit_;  // last: its writer threads use the members above
};

}  // namespace bpmc::webhook_receiver
