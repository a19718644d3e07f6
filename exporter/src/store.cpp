#include "exporter/store.h"

#include <pqxx/pqxx>

#include <cmath>
#include <cstdio>
#include <unordered_map>

#include "common/time_format.h"

namespace bpmc::exporter {
namespace {

constexpr int64_t kMicrosPerDay = 86'400'000'000LL;
constexpr long long kPartitionLockKey = 0x62706d63'70617274;  // "bpmcpart"

// unnest() of one array per column: one parameterised statement per batch.
constexpr const char* kInsertSql = R"sql(
INSERT INTO connector_usage (id, api_key_id, connector_id, make_account_id, operation,
                             "timestamp", status, error_type, error_message, duration_ms)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                     $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::float8[])
ON CONFLICT DO NOTHING
RETURNING id::text, (extract(epoch FROM "timestamp") * 1000000)::bigint
)sql";

// Civil date (UTC) of a day number, for partition names and bounds.
void CivilFromDays(int64_t z, int* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int>(yoe + era * 400 + (*m <= 2));
}

// connector_usage_pYYYYMMDD, the partition holding UTC day `day`.
std::string DayName(int64_t day) {
  int y;
  unsigned m, d;
  CivilFromDays(day, &y, &m, &d);
  char buf[48];
  std::snprintf(buf, sizeof buf, "connector_usage_p%04d%02u%02u", y, m, d);
  return buf;
}

// The partition bound of `day`: midnight UTC as a timestamptz literal.
std::string DayStart(int64_t day) {
  return FormatRfc3339Micros(day * kMicrosPerDay);
}

bool IsConnectionState(const std::string& sqlstate) {
  // 08: connection exception; 57P0x: server shutting down / cannot connect
  // now; 53: insufficient resources (disk full, too many connections).
  return sqlstate.rfind("08", 0) == 0 || sqlstate.rfind("57P", 0) == 0 ||
         sqlstate.rfind("53", 0) == 0;
}

class PgEventStore final : public EventStore {
 public:
  explicit PgEventStore(std::string url) : url_(std::move(url)) {}

  bool Probe() override { return Connect(); }

  StoreResult Insert(const std::vector<const UsageEvent*>& events) override {
    StoreResult result;
    if (!Connect()) {
      result.kind = StoreResult::Kind::kUnavailable;
      result.error = last_error_;
      return result;
    }
    for (int attempt = 0; attempt < 3; ++attempt) {
      try {
        EnsurePartitionsFor(events);
        return DoInsert(events);
      } catch (const pqxx::broken_connection& e) {
        return Fail(StoreResult::Kind::kUnavailable, e.what(), "");
      } catch (const pqxx::in_doubt_error& e) {
        // The COMMIT's outcome is unknown: the caller keeps the events
        // (spool) and replays them idempotently.
        return Fail(StoreResult::Kind::kUnavailable, e.what(), "");
      } catch (const pqxx::sql_error& e) {
        const std::string state = e.sqlstate();
        if (state.rfind("40", 0) == 0) {
          // Deadlock or serialization failure: two transactions inserting the
          // same event ids in different orders. Nothing was stored; retry.
          continue;
        }
        if (state == "23514" && attempt == 0) {
          // "no partition of relation found for row": a partition was
          // dropped or our cache is stale. Forget the cache and retry once.
          known_days_.clear();
          continue;
        }
        return Fail(IsConnectionState(state) ? StoreResult::Kind::kUnavailable
                                             : StoreResult::Kind::kRejected,
                    e.what(), state);
      } catch (const std::exception& e) {
        return Fail(StoreResult::Kind::kUnavailable, e.what(), "");
      }
    }
    return Fail(StoreResult::Kind::kUnavailable, "the insert kept failing transiently", "");
  }

 private:
  bool Connect() {
    if (conn_ && conn_->is_open()) return true;
    try {
      conn_ = std::make_unique<pqxx::connection>(url_);
      conn_->prepare("insert_events", kInsertSql);
      return true;
    } catch (const std::exception& e) {
      conn_.reset();
      last_error_ = e.what();
      return false;
    }
  }

  StoreResult Fail(StoreResult::Kind kind, const std::string& what, const std::string& state) {
    StoreResult r;
    r.kind = kind;
    r.error = what;
    r.sqlstate = state;
    if (kind == StoreResult::Kind::kUnavailable) conn_.reset();
    return r;
  }

  void EnsurePartitionsFor(const std::vector<const UsageEvent*>& events) {
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    bool missing = false;
    for (const UsageEvent* e : events) {
      const int64_t day = UtcDay(e->timestamp_us);
      if (known_days_.count(day)) continue;
      missing = true;
      lo = std::min(lo, day);
      hi = std::max(hi, day);
    }
    if (!missing) return;
    EnsureDayPartitions(*conn_, lo * kMicrosPerDay, hi * kMicrosPerDay);
    for (int64_t d = lo; d <= hi; ++d) known_days_.insert(d);
  }

  StoreResult DoInsert(const std::vector<const UsageEvent*>& events) {
    std::string ids = "{", keys = "{", connectors = "{", accounts = "{", operations = "{",
                times = "{", statuses = "{", error_types = "{", messages = "{", durations = "{";
    for (size_t i = 0; i < events.size(); ++i) {
      const UsageEvent& e = *events[i];
      if (i > 0) {
        for (std::string* s : {&ids, &keys, &connectors, &accounts, &operations, &times,
                               &statuses, &error_types, &messages, &durations})
          s->push_back(',');
      }
      AppendArrayElement(&ids, e.id);
      AppendArrayElement(&keys, e.api_key_id);
      AppendArrayElement(&connectors, e.connector);
      AppendArrayElement(&accounts, e.make_account_id);
      AppendArrayElement(&operations, e.operation);
      AppendArrayElement(&times, FormatRfc3339Micros(e.timestamp_us));
      AppendArrayElement(&statuses, e.status == EventStatus::kError ? "error" : "success");
      if (e.error_type.empty()) AppendArrayNull(&error_types);
      else AppendArrayElement(&error_types, e.error_type);
      if (e.error_message.empty()) AppendArrayNull(&messages);
      else AppendArrayElement(&messages, e.error_message);
      if (e.duration_ms) {
        char buf[40];
        std::snprintf(buf, sizeof buf, "%.17g", *e.duration_ms);
        durations += buf;
      } else {
        AppendArrayNull(&durations);
      }
    }
    for (std::string* s : {&ids, &keys, &connectors, &accounts, &operations, &times, &statuses,
                           &error_types, &messages, &durations})
      s->push_back('}');

    // One statement in autocommit: atomic and durable when it returns, in one
    // round trip (BEGIN and COMMIT would add two, a third of a small commit).
    pqxx::nontransaction txn(*conn_);
    pqxx::result rows = txn.exec_prepared("insert_events", ids, keys, connectors, accounts,
                                          operations, times, statuses, error_types, messages,
                                          durations);

    StoreResult result;
    result.inserted.assign(events.size(), false);
    if (rows.size() == events.size()) {
      result.inserted.assign(events.size(), true);
      return result;
    }
    // Some were duplicates: map the returned (id, timestamp) back to inputs.
    std::unordered_map<std::string, std::vector<size_t>> by_id;
    for (size_t i = 0; i < events.size(); ++i) by_id[events[i]->id].push_back(i);
    for (const auto& row : rows) {
      const std::string id = row[0].as<std::string>();
      const int64_t ts = row[1].as<int64_t>();
      auto it = by_id.find(id);
      if (it == by_id.end()) continue;
      for (size_t i : it->second) {
        if (events[i]->timestamp_us == ts && !result.inserted[i]) {
          result.inserted[i] = true;
          break;
        }
      }
    }
    return result;
  }

  std::string url_;
  std::unique_ptr<pqxx::connection> conn_;
  std::string last_error_;
  std::set<int64_t> known_days_;
};

}  // namespace

int64_t UtcDay(int64_t micros) {
  return micros >= 0 ? micros / kMicrosPerDay : -((-micros + kMicrosPerDay - 1) / kMicrosPerDay);
}

void AppendArrayElement(std::string* out, std::string_view value) {
  out->push_back('"');
  for (char c : value) {
    if (c == '"' || c == '\\') out->push_back('\\');
    out->push_back(c);
  }
  out->push_back('"');
}

void AppendArrayNull(std::string* out) { out->append("NULL"); }

void EnsureDayPartitions(pqxx::connection& conn, int64_t from_us, int64_t to_us) {
  pqxx::work txn(conn);
  txn.exec_params("SELECT pg_advisory_xact_lock($1)", kPartitionLockKey);
  for (int64_t day = UtcDay(from_us); day <= UtcDay(to_us); ++day) {
    // DDL cannot take parameters; the name and bounds are made here from an
    // integer day number, never from input text.
    txn.exec("CREATE TABLE IF NOT EXISTS " + DayName(day) +
             " PARTITION OF connector_usage FOR VALUES FROM ('" + DayStart(day) + "') TO ('" +
             DayStart(day + 1) + "')");
  }
  txn.commit();
}

std::vector<std::string> DropExpiredPartitions(pqxx::connection& conn, int64_t now_us,
                                               int retention_days) {
  std::vector<std::string> dropped;
  pqxx::work txn(conn);
  if (!txn.exec_params("SELECT pg_try_advisory_xact_lock($1)", kPartitionLockKey)[0][0]
           .as<bool>())
    return dropped;
  const int64_t first_kept_day = UtcDay(now_us) - retention_days;
  pqxx::result parts = txn.exec(
      "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
      "WHERE i.inhparent = 'connector_usage'::regclass ORDER BY 1");
  for (const auto& row : parts) {
    const std::string name = row[0].as<std::string>();
    // connector_usage_pYYYYMMDD: compare by name, the day is in it.
    if (name.size() != 25 || name.rfind("connector_usage_p", 0) != 0) continue;
    if (name < DayName(first_kept_day)) {
      txn.exec("DROP TABLE " + txn.quote_name(name));
      dropped.push_back(name);
    }
  }
  txn.commit();
  return dropped;
}

std::unique_ptr<EventStore> NewPgEventStore(std::string database_url) {
  return std::make_unique<PgEventStore>(std::move(database_url));
}

}  // namespace bpmc::exporter
