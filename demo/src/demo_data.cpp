// LoadDemoData (demo/demo_data.h): the database half. Everything is written
// through the owning library's C++ API, the way the HTTP routes write it.

#include "demo/demo_data.h"

#include <exception>
#include <pqxx/pqxx>
#include <string>
#include <variant>
#include <vector>

#include "aggregation/rollup.h"
#include "billing/billing.h"
#include "identity/api_keys.h"
#include "incidents/schema.h"
#include "ingestion/store.h"

namespace bpmc::demo {
namespace {

constexpr size_t kEventsPerInsert = 10000;
constexpr size_t kBillingPerTransaction = 1000;

// Connectors, then one API key per customer; returns the key ids by customer.
std::vector<std::string> AddConnectorsAndKeys(const DemoData& d, const std::string& url,
                                              pqxx::connection& conn) {
  for (const DemoConnector& c : d.connectors) identity::AddConnector(conn, c.id, c.name);
  std::vector<std::string> keys;
  for (const DemoCustomer& c : d.customers) keys.push_back(identity::CreateApiKey(conn, c.id));
  identity::Directory directory(url);
  if (!directory.Refresh()) throw std::runtime_error("cannot read the API keys back");
  std::vector<std::string> ids;
  for (const std::string& key : keys) {
    auto id = directory.ApiKeyId(key);
    if (!id) throw std::runtime_error("a new API key is not active");
    ids.push_back(*id);
  }
  return ids;
}

// The billing events in transactions of 1,000, parsed exactly as the route parses them.
void ApplyBilling(const DemoData& d, pqxx::connection& conn, LoadReport* report) {
  const std::vector<std::string> events = BillingEventsJson(d);
  billing::BillingParseOptions popts;
  popts.now_us = d.to_us;
  popts.max_batch_events = kBillingPerTransaction;
  for (size_t i = 0; i < events.size(); i += kBillingPerTransaction) {
    std::string body = "[";
    for (size_t j = i; j < events.size() && j < i + kBillingPerTransaction; ++j)
      body += (j > i ? "," : "") + events[j];
    body += "]";
    auto parsed = billing::ParseBillingEvents(body, popts);
    if (auto* err = std::get_if<RequestError>(&parsed))
      throw std::runtime_error("billing event refused: " + err->field + ": " + err->message);
    pqxx::work txn(conn);
    if (auto err =
            billing::ApplyBillingEvents(txn, std::get<billing::BillingRequest>(parsed).events))
      throw std::runtime_error("billing event refused: " + err->field + ": " + err->message);
    txn.commit();
  }
  report->subscriptions = d.subscriptions.size();
  report->payments = d.payments.size();
  for (const DemoPayment& p : d.payments) report->failed_payments += p.failed;
}

void InsertEvents(const DemoData& d, const std::vector<std::string>& key_ids,
                  const std::string& url, LoadReport* report) {
  auto store = ingestion::NewPgEventStore(url);
  std::vector<ingestion::UsageEvent> chunk;
  std::vector<const ingestion::UsageEvent*> pointers;
  for (size_t i = 0; i < d.events.size(); i += kEventsPerInsert) {
    chunk.clear();
    pointers.clear();
    for (size_t j = i; j < d.events.size() && j < i + kEventsPerInsert; ++j) {
      chunk.push_back(d.events[j].event);
      chunk.back().api_key_id = key_ids[d.events[j].customer];
      report->error_events += chunk.back().status == ingestion::EventStatus::kError;
    }
    for (const auto& e : chunk) pointers.push_back(&e);
    const ingestion::StoreResult r = store->Insert(pointers, {});
    if (r.kind != ingestion::StoreResult::Kind::kOk)
      throw std::runtime_error("usage events not stored: " + r.error);
    report->events += chunk.size();
  }
}

}  // namespace

LoadReport LoadDemoData(const DemoData& d, const LoadOptions& options) {
  LoadReport report;
  try {
    pqxx::connection conn(options.database_url);
    {
      pqxx::work txn(conn);
      if (txn.exec("SELECT EXISTS (SELECT 1 FROM connector_usage)")[0][0].as<bool>()) {
        report.result = LoadReport::Result::kRefused;
        report.message =
            "the database already has usage events (connector_usage is not empty); demo-data "
            "loads only into a database without any: create a fresh one";
        return report;
      }
    }
    const std::vector<std::string> key_ids = AddConnectorsAndKeys(d, options.database_url, conn);
    report.connectors = d.connectors.size();
    report.customers = d.customers.size();
    ApplyBilling(d, conn, &report);
    InsertEvents(d, key_ids, options.database_url, &report);

    aggregation::RollupOptions ropts;
    ropts.database_url = options.database_url;
    ropts.time_zone = options.time_zone;
    std::string error;
    auto rollup = aggregation::Rollup::Create(ropts, nullptr, nullptr, &error);
    if (!rollup) throw std::runtime_error(error);
    const aggregation::RollupResult r = rollup->CatchUp();
    if (!r.ok) throw std::runtime_error("aggregation failed: " + r.error);
    report.aggregated = r.events;

    if (!SchemaApplied(conn, incidents::Schema())) {
      report.incidents_skipped = true;
    } else {
      pqxx::work txn(conn);
      for (const auto& incident : d.incidents) incidents::RecordIncident(txn, incident);
      txn.commit();
      report.incidents = d.incidents.size();
    }
  } catch (const std::exception& e) {
    // pqxx messages never contain the password of the connection string.
    report.result = LoadReport::Result::kFailed;
    report.message = e.what();
  }
  return report;
}

}  // namespace bpmc::demo
