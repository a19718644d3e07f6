#include "ingestion/store.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <pqxx/pqxx>
#include <unordered_map>
#include <unordered_set>

#include "common/pg_statements.h"
#include "common/time.h"
#include "common/time_format.h"

namespace bpmc::ingestion {
namespace {

constexpr long long kPartitionLockKey = 0x62706d63'70617274;  // "bpmcpart"

// The events of a call as one array per column: one parameterised statement
// per batch, whatever its size.
constexpr const char* kInputCte = R"sql(
WITH input AS (
  SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                       $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::float8[])
    AS t(id, api_key_id, connector_id, make_account_id, operation, ts, status, error_type,
         error_message, duration_ms))
)sql";
constexpr const char* kRegisterIds = R"sql(
, ids AS (INSERT INTO connector_usage_ids (id, "timestamp") SELECT id, ts FROM input)
)sql";
constexpr const char* kUsageColumns =
    R"sql( (id, api_key_id, connector_id, make_account_id, operation, "timestamp", status,
            error_type, error_message, duration_ms) )sql";

// The common case: every id is new. It registers the ids and inserts the rows
// in one statement, committed on its own; an id that is taken already (or
// twice in the call) makes it fail whole with unique_violation (23505), and
// the call is decided event by event (FindEventsSql, InsertCheckedSql).
std::string InsertNewSql() {
  return std::string(kInputCte) + kRegisterIds + "INSERT INTO connector_usage" + kUsageColumns +
         "SELECT * FROM input";
}

// The events that the ids $1 name, for PlanEventIds; NULL columns when the
// row is gone (its day expired before the id was forgotten). One primary-key
// probe in one partition per id: the LATERAL subquery (kept apart by OFFSET 0)
// makes a nested loop whose Append is pruned at run time; a plain join was
// planned as a hash join over every partition (measured: 200k rows, 180 days).
constexpr const char* kFindEventsSql = R"sql(
SELECT d.id::text, u.id IS NULL, u.connector_id, u.operation, u.make_account_id,
       (extract(epoch FROM u."timestamp") * 1000000)::bigint, u.status, u.error_type,
       u.error_message, u.duration_ms
FROM connector_usage_ids d
LEFT JOIN LATERAL (SELECT * FROM connector_usage c
                   WHERE c.id = d.id AND c."timestamp" = d."timestamp" OFFSET 0) u ON true
WHERE d.id = ANY($1::uuid[])
)sql";

// The events PlanEventIds found new, in the transaction that looked them up.
// A concurrent transaction that registered one of the ids meanwhile makes it
// fail with 23505 (the call is decided again). A row with the same (id,
// timestamp) but no registered id (written around the exporter) is not
// returned: a duplicate.
std::string InsertCheckedSql() {
  return std::string(kInputCte) + kRegisterIds + "INSERT INTO connector_usage" + kUsageColumns +
         "SELECT * FROM input ON CONFLICT DO NOTHING RETURNING id::text";
}

// Events of a spool replay whose id names a different event, kept once each.
std::string QuarantineSql() {
  return std::string(kInputCte) + "INSERT INTO connector_usage_conflicts" + kUsageColumns + R"sql(
SELECT * FROM input i WHERE NOT EXISTS (
  SELECT 1 FROM connector_usage_conflicts c
  WHERE c.id = i.id AND c."timestamp" = i.ts AND c.connector_id = i.connector_id
    AND c.operation = i.operation AND c.make_account_id = i.make_account_id
    AND c.status = i.status AND c.error_type IS NOT DISTINCT FROM i.error_type
    AND c.error_message IS NOT DISTINCT FROM i.error_message
    AND c.duration_ms IS NOT DISTINCT FROM i.duration_ms)
)sql";
}

// Rows deleted per statement when forgetting expired ids.
constexpr int kPruneChunk = 50000;

// The ten column arrays of kInsertNewSql and friends, as array literals.
struct EventArrays {
  std::string ids = "{", keys = "{", connectors = "{", accounts = "{", operations = "{",
              times = "{", statuses = "{", error_types = "{", messages = "{", durations = "{";
};

// The arrays of events[order[0]], events[order[1]], ...
EventArrays BuildArrays(const std::vector<const UsageEvent*>& events,
                        const std::vector<size_t>& order);

pqxx::result ExecWithArrays(const PgStatements& statements, pqxx::transaction_base& txn,
                            const char* statement, const EventArrays& a) {
  return statements.Exec(txn, statement, a.ids, a.keys, a.connectors, a.accounts, a.operations,
                         a.times, a.statuses, a.error_types, a.messages, a.durations);
}

// Indices of `events` in id order: concurrent calls then register their ids
// in one order and cannot deadlock on them.
std::vector<size_t> ByIdOrder(const std::vector<const UsageEvent*>& events,
                              std::vector<size_t> indices) {
  std::sort(indices.begin(), indices.end(),
            [&](size_t a, size_t b) { return events[a]->id < events[b]->id; });
  return indices;
}

// connector_usage_pYYYYMMDD, the partition holding UTC day `day`.
std::string DayName(int64_t day) {
  const Civil c = CivilFromDays(day);
  char buf[48];
  std::snprintf(buf, sizeof buf, "connector_usage_p%04lld%02u%02u", static_cast<long long>(c.year),
                c.month, c.day);
  return buf;
}

// The partition bound of `day`: midnight UTC as a timestamptz literal.
std::string DayStart(int64_t day) { return FormatRfc3339Micros(day * kMicrosPerDay); }

bool IsConnectionState(const std::string& sqlstate) {
  // 08: connection exception; 57P0x: server shutting down / cannot connect
  // now; 53: insufficient resources (disk full, too many connections).
  return sqlstate.rfind("08", 0) == 0 || sqlstate.rfind("57P", 0) == 0 ||
         sqlstate.rfind("53", 0) == 0;
}

class PgEventStore final : public EventStore {
 public:
  explicit PgEventStore(std::string url) : url_(std::move(url)) {
    statements_.Add("insert_new_events", InsertNewSql());
    statements_.Add("find_events", kFindEventsSql);
    statements_.Add("insert_checked_events", InsertCheckedSql());
    statements_.Add("quarantine_events", QuarantineSql());
  }

  bool Probe() override { return Connect(); }

  StoreResult Insert(const std::vector<const UsageEvent*>& events,
                     const std::vector<size_t>& group_ends) override {
    StoreResult result;
    if (!Connect()) {
      result.kind = StoreResult::Kind::kUnavailable;
      result.error = last_error_;
      return result;
    }
    for (int attempt = 0; attempt < 3; ++attempt) {
      try {
        EnsurePartitionsFor(events);
        return DoInsert(events, group_ends);
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

  bool Quarantine(const std::vector<const UsageEvent*>& events, std::string* error) override {
    if (!Connect()) {
      *error = last_error_;
      return false;
    }
    try {
      std::vector<size_t> all(events.size());
      for (size_t i = 0; i < all.size(); ++i) all[i] = i;
      pqxx::nontransaction txn(*conn_);
      ExecWithArrays(statements_, txn, "quarantine_events", BuildArrays(events, all));
      return true;
    } catch (const std::exception& e) {
      *error = e.what();
      conn_.reset();
      return false;
    }
  }

 private:
  bool Connect() {
    if (conn_ && conn_->is_open()) return true;
    try {
      conn_ = std::make_unique<pqxx::connection>(url_);
      statements_.PrepareOn(*conn_);
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

  StoreResult DoInsert(const std::vector<const UsageEvent*>& events,
                       const std::vector<size_t>& group_ends) {
    std::vector<size_t> all(events.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    try {
      // One statement in autocommit: atomic and durable when it returns, in
      // one round trip (BEGIN and COMMIT would add two, a third of a small
      // commit).
      pqxx::nontransaction txn(*conn_);
      ExecWithArrays(statements_, txn, "insert_new_events",
                     BuildArrays(events, ByIdOrder(events, all)));
      StoreResult result;
      result.inserted.assign(events.size(), true);
      return result;
    } catch (const pqxx::unique_violation&) {
      // An id is taken already, or twice in this call: nothing was stored.
    }
    for (int attempt = 0; attempt < 5; ++attempt) {
      try {
        return InsertChecked(events, group_ends);
      } catch (const pqxx::unique_violation&) {
        // A concurrent call registered one of the ids after we looked: look again.
      }
    }
    return Fail(StoreResult::Kind::kUnavailable, "event ids kept being registered concurrently",
                "23505");
  }

  // Looks up the stored events of the ids, decides each event (PlanEventIds)
  // and inserts the new ones, in one transaction.
  StoreResult InsertChecked(const std::vector<const UsageEvent*>& events,
                            const std::vector<size_t>& group_ends) {
    pqxx::work txn(*conn_);
    std::string ids = "{";
    for (size_t i = 0; i < events.size(); ++i) {
      if (i > 0) ids.push_back(',');
      AppendArrayElement(&ids, events[i]->id);
    }
    ids.push_back('}');
    StoredEvents stored;
    for (const auto& row : statements_.Exec(txn, "find_events", ids)) {
      std::optional<UsageEvent>& slot = stored[row[0].as<std::string>()];
      if (row[1].as<bool>()) continue;  // registered, row gone: nullopt
      UsageEvent e;
      e.connector = row[2].as<std::string>();
      e.operation = row[3].as<std::string>();
      e.make_account_id = row[4].as<std::string>();
      e.timestamp_us = row[5].as<int64_t>();
      e.status = row[6].as<std::string>() == "error" ? EventStatus::kError : EventStatus::kSuccess;
      if (!row[7].is_null()) e.error_type = row[7].as<std::string>();
      if (!row[8].is_null()) e.error_message = row[8].as<std::string>();
      if (!row[9].is_null()) e.duration_ms = row[9].as<double>();
      slot = std::move(e);
    }
    IdPlan plan = PlanEventIds(events, group_ends, stored);
    StoreResult result;
    result.inserted.assign(events.size(), false);
    std::vector<size_t> fresh;
    for (size_t i = 0; i < events.size(); ++i)
      if (plan.verdicts[i] == IdVerdict::kNew) fresh.push_back(i);
    if (!fresh.empty()) {
      std::unordered_set<std::string> inserted;
      for (const auto& row : ExecWithArrays(statements_, txn, "insert_checked_events",
                                            BuildArrays(events, ByIdOrder(events, fresh))))
        inserted.insert(row[0].as<std::string>());
      for (size_t i : fresh) {
        if (inserted.count(events[i]->id)) {
          result.inserted[i] = true;
        } else {
          plan.verdicts[i] = IdVerdict::kDuplicate;
        }
      }
    }
    txn.commit();
    result.verdicts = std::move(plan.verdicts);
    result.difference = std::move(plan.difference);
    return result;
  }

  std::string url_;
  PgStatements statements_;  // prepared, or unnamed behind PgBouncer (transaction mode)
  std::unique_ptr<pqxx::connection> conn_;
  std::string last_error_;
  std::set<int64_t> known_days_;
};

EventArrays BuildArrays(const std::vector<const UsageEvent*>& events,
                        const std::vector<size_t>& order) {
  EventArrays a;
  std::string* const all[] = {&a.ids,   &a.keys,     &a.connectors,  &a.accounts, &a.operations,
                              &a.times, &a.statuses, &a.error_types, &a.messages, &a.durations};
  bool first = true;
  for (size_t i : order) {
    const UsageEvent& e = *events[i];
    if (!first) {
      for (std::string* s : all) s->push_back(',');
    }
    first = false;
    AppendArrayElement(&a.ids, e.id);
    AppendArrayElement(&a.keys, e.api_key_id);
    AppendArrayElement(&a.connectors, e.connector);
    AppendArrayElement(&a.accounts, e.make_account_id);
    AppendArrayElement(&a.operations, e.operation);
    AppendArrayElement(&a.times, FormatRfc3339Micros(e.timestamp_us));
    AppendArrayElement(&a.statuses, e.status == EventStatus::kError ? "error" : "success");
    if (e.error_type.empty())
      AppendArrayNull(&a.error_types);
    else
      AppendArrayElement(&a.error_types, e.error_type);
    if (e.error_message.empty())
      AppendArrayNull(&a.messages);
    else
      AppendArrayElement(&a.messages, e.error_message);
    if (e.duration_ms) {
      char buf[40];
      std::snprintf(buf, sizeof buf, "%.17g", *e.duration_ms);
      a.durations += buf;
    } else {
      AppendArrayNull(&a.durations);
    }
  }
  for (std::string* s : all) s->push_back('}');
  return a;
}

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
  if (!txn.exec_params("SELECT pg_try_advisory_xact_lock($1)", kPartitionLockKey)[0][0].as<bool>())
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
  // The ids of dropped days name no event any more. Forgotten after the drop,
  // so an id is never forgotten while its event is kept; in chunks, so no
  // statement holds many row locks for long.
  for (const char* table : {"connector_usage_ids", "connector_usage_conflicts"}) {
    for (;;) {
      pqxx::nontransaction prune(conn);
      const pqxx::result r = prune.exec_params(
          std::string("DELETE FROM ") + table + " WHERE ctid = ANY(ARRAY(SELECT ctid FROM " +
              table + " WHERE \"timestamp\" < $1::timestamptz LIMIT $2))",
          DayStart(first_kept_day), kPruneChunk);
      if (r.affected_rows() < static_cast<size_t>(kPruneChunk)) break;
    }
  }
  return dropped;
}

std::unique_ptr<EventStore> NewPgEventStore(std::string database_url) {
  return std::make_unique<PgEventStore>(std::move(database_url));
}

}  // namespace bpmc::ingestion
