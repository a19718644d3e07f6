#pragma once
// `bpmc-exporter demo-data`: a realistic month of BPM Centr in an empty,
// migrated database, so a newcomer opens a console with something in it
// (docs/DEMO.md). Two halves:
//
//  * GenerateDemoData: pure. From a seed and "now" it makes the connectors,
//    customers with their Make accounts, subscriptions (trials, paid, churned),
//    payments (some failed, with reasons), usage events with a daily and weekly
//    rhythm and a few error types, and two incidents (one resolved, one open)
//    with the error bursts they were about. The same options give the same
//    data, byte for byte (std::mt19937_64 and arithmetic of our own, no
//    std::*_distribution, whose output differs between standard libraries).
//
//  * LoadDemoData: writes that data through the owners' C++ APIs, as if it had
//    arrived over HTTP: connectors and API keys (identity), billing events
//    (billing::ApplyBillingEvents), usage events (ingestion's EventStore:
//    connector_usage and connector_usage_ids), then runs the aggregation until
//    it has caught up (aggregation::Rollup::CatchUp), so every aggregate is
//    exactly what ingestion would have produced. Incidents are written
//    (incidents::RecordIncident) only when the receiver's incidents module is
//    migrated in the same database (`bpmc-receiver migrate`); otherwise they are
//    skipped and the report says so.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "incidents/history.h"
#include "ingestion/event.h"

namespace bpmc::demo {

struct DemoOptions {
  int days = 30;       // usage events over the last `days` days, 1..90
  uint64_t seed = 1;   // the same seed (and now_us) gives the same data
  int64_t now_us = 0;  // microseconds since the epoch; events end before it
};

inline constexpr int kMaxDemoDays = 90;

struct DemoConnector {
  std::string id, name;
  int64_t price_minor = 0;  // the monthly plan's price, RUB kopecks
};

struct DemoCustomer {
  std::string id;                     // api_keys.owner
  std::vector<std::string> accounts;  // Make account ids (decimal text)
};

struct DemoSubscription {
  std::string id;        // "demo-sub-0001"
  size_t customer = 0;   // index into DemoData::customers
  size_t connector = 0;  // index into DemoData::connectors
  std::string plan;
  bool trial = false;
  int64_t price_minor = 0;
  int64_t started_us = 0;
  std::optional<int64_t> converted_us;  // trial converted
  std::optional<int64_t> cancelled_us;
  std::string cancel_reason;
};

struct DemoPayment {
  std::string id;  // "demo-pay-00001"
  size_t subscription = 0;
  int64_t amount_minor = 0;
  int64_t at_us = 0;
  bool failed = false;
  std::string reason;  // failed ones: insufficient_funds, card_declined, ...
};

// A usage event and its customer (whose API key sends it). `event.api_key_id`
// is empty: the loader fills it in.
struct DemoEvent {
  size_t customer = 0;
  ingestion::UsageEvent event;
};

struct DemoData {
  int64_t from_us = 0, to_us = 0;  // events lie in [from_us, to_us)
  std::vector<DemoConnector> connectors;
  std::vector<DemoCustomer> customers;
  std::vector<DemoSubscription> subscriptions;
  std::vector<DemoPayment> payments;
  std::vector<DemoEvent> events;  // in timestamp order, ids unique
  std::vector<incidents::IncidentHistory> incidents;
};

// Pure; `options` must be valid (days 1..kMaxDemoDays, now_us > 0).
DemoData GenerateDemoData(const DemoOptions& options);

// The billing events (JSON objects, the body of POST /v1/billing/events) that
// produce `data`'s subscriptions and payments, in occurred_at order. Pure.
std::vector<std::string> BillingEventsJson(const DemoData& data);

struct LoadOptions {
  std::string database_url;       // secret: never logged
  std::string time_zone = "UTC";  // reporting_time_zone, for the aggregation
};

struct LoadReport {
  enum class Result { kLoaded, kRefused, kFailed } result = Result::kLoaded;
  std::string message;  // kRefused / kFailed: why
  size_t connectors = 0, customers = 0, subscriptions = 0, payments = 0, failed_payments = 0,
         events = 0, error_events = 0, aggregated = 0, incidents = 0;
  bool incidents_skipped = false;  // the receiver's tables are not in this database
};

// Loads `data` into a database migrated with the exporter's schema. Refuses
// (kRefused, changing nothing) when connector_usage already holds events.
// Connectors are added or renamed, each customer gets one new API key.
// Database failures are kFailed with the error (never the URL); the rows
// written before it stay (each part is its own transaction). Not thread-safe
// against another demo-data on the same database.
LoadReport LoadDemoData(const DemoData& data, const LoadOptions& options);

}  // namespace bpmc::demo
