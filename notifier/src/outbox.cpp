#include "notifier/outbox.h"

#include "common/time_format.h"

namespace bpmc::notifier {
namespace {

// One instant, one spelling: "2026-11-25T10:00:00Z" and "...00.000+00:00" are one key.
std::string NormaliseTime(const std::string& text) {
  if (text.empty()) return text;
  auto micros = ParseRfc3339Micros(text);
  return micros ? FormatRfc3339Micros(*micros) : text;
}

}  // namespace

void Enqueue(pqxx::work& txn, const std::vector<OutboxEntry>& entries) {
  if (entries.empty()) return;
  // Two statements whatever the count: one round trip each at 1,000 alerts a second.
  nlohmann::json rows = nlohmann::json::array();
  for (const OutboxEntry& e : entries) {
    rows.push_back({{"n", rows.size()},
                    {"channel", e.channel},
                    {"destination", e.destination},
                    {"dedup_key", e.alert.dedup_key},
                    {"alert_status", e.alert.status},
                    {"starts_at", NormaliseTime(e.alert.starts_at)},
                    {"alert", ToJson(e.alert)}});
  }
  const std::string json = DumpJson(rows);
  // Ids follow the given order, so one destination gets its messages in that order.
  txn.exec_params(
      "INSERT INTO notification_outbox"
      " (channel, destination, dedup_key, alert_status, starts_at, alert)"
      " SELECT x.channel, x.destination, x.dedup_key, x.alert_status, x.starts_at, x.alert"
      " FROM jsonb_to_recordset($1::jsonb) AS x(n bigint, channel text, destination text,"
      "   dedup_key text, alert_status text, starts_at text, alert jsonb)"
      " ORDER BY x.n"
      " ON CONFLICT (channel, destination, dedup_key, alert_status, starts_at) DO NOTHING",
      json);
  // DO NOTHING takes no lock on an existing row, so this never waits for a worker
  // that holds the destination while it sends.
  txn.exec_params(
      "INSERT INTO notification_destinations (channel, destination)"
      " SELECT DISTINCT x.channel, x.destination"
      " FROM jsonb_to_recordset($1::jsonb) AS x(channel text, destination text)"
      " ORDER BY 1, 2 ON CONFLICT DO NOTHING",
      json);
}

std::vector<std::pair<std::string, std::string>> FiringRecipients(pqxx::work& txn,
                                                                  const std::string& dedup_key,
                                                                  const std::string& starts_at) {
  pqxx::result rows = txn.exec_params(
      "SELECT DISTINCT channel, destination FROM notification_outbox"
      " WHERE dedup_key = $1 AND starts_at = $2 AND alert_status = 'firing'"
      " AND state <> 'failed' ORDER BY channel, destination",
      dedup_key, NormaliseTime(starts_at));
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.emplace_back(r[0].as<std::string>(), r[1].as<std::string>());
  return out;
}

}  // namespace bpmc::notifier
