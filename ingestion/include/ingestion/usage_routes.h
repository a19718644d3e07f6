#pragma once
// The ingestion routes of the HTTP layer: POST /v1/connector/usage (one event)
// and POST /v1/connector/usage/batch (docs/INGESTION.md). The middleware of
// bpmc::http checks the API key from the headers before any body byte is read,
// then the content type and the body limit; the handler parses, checks that
// the connectors exist and hands the events to the Writer, whose answer
// (stored, spooled, refused) becomes the status.

#include <atomic>
#include <cstdint>
#include <vector>

#include "common/clock.h"
#include "http/route.h"
#include "identity/api_keys.h"
#include "ingestion/writer.h"

namespace bpmc::ingestion {

struct UsageRouteOptions {
  identity::Directory* directory = nullptr;  // API keys and connectors; not owned
  Writer* writer = nullptr;                  // not owned
  const Clock* clock = &SystemClock::Get();  // not owned
  int retention_days = 180;                  // older timestamps are refused (400)
  bool discard = false;                      // sink=discard: acknowledge, store nothing
  uint64_t max_event_body_bytes = 64 * 1024;
  uint64_t max_batch_body_bytes = 32 * 1024 * 1024;
  const std::atomic<bool>* shutting_down = nullptr;  // true: 503 + Connection: close
};

// The two routes ("usage", "usage_batch"), to be added to the binary's route
// table. Every pointer of `options` must outlive the server.
std::vector<http::Route> UsageRoutes(const UsageRouteOptions& options);

// The HTTP layer's authenticate step for API keys: "Authorization: Bearer
// <key>"; the principal is the key's id. 503 while the directory was never
// loaded (started while PostgreSQL was down), 401 otherwise.
http::AuthResult AuthenticateApiKey(identity::Directory& directory, const http::Request& request);

}  // namespace bpmc::ingestion
