// GET /api/v1/analytics/users (docs/ANALYTICS.md).
#include <future>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aggregation/rollup.h"  // ActivityWindowTable
#include "endpoints.h"

namespace bpmc::analytics::analytics_internal {
namespace {

// The activity distribution reads a row per Make account (and customer):
// 10,000 for 10,000 accounts over 30 days, the slowest part of the users
// endpoint. It is read in kActivityParts parts run concurrently, split by a
// hash of the account, so that every row of an account is in one part: each
// part is summarised on its own thread and the summaries merge exactly
// (MergeActivity).
constexpr int kActivityParts = 2;
constexpr size_t kTopAccounts = 10;

// Operations per Make account and customer in the period's local days
// [fd, td), of the accounts of part $9 of $10: rows (account, customer,
// operations), an account possibly in several rows (SummariseActivity adds
// them up). Without a connector filter it reads the two-month activity
// windows (migration 0008) $11 (ActivityWindowStarts, all starting in months
// of parity `window_parity`, so in one table), each giving the operations of
// its days a..b in the period = cum_ops[b] - cum_ops[a - 1]; a period within
// two calendar months reads one window, one row per account. The grouping is
// left to the exporter (a hash aggregation over text keys in PostgreSQL
// costs more than sending the rows). With a connector filter it reads
// account_activity_daily (its rows carry the connector), grouped here.
std::string ActivitySql(bool by_connector, int window_parity) {
  const std::string part = " AND (hashtext(x.make_account_id) & 2147483647) % $10 = $9";
  if (by_connector)
    return "SELECT x.make_account_id, x.customer_id, sum(x.operation_count)::bigint "
           "FROM account_activity_daily x, p WHERE x.day >= p.fd AND x.day < p.td "
           "AND x.connector_id = p.c AND (p.cu IS NULL OR x.customer_id = p.cu)" +
           part + " GROUP BY 1, 2";
  // The window starts come as $11 (ActivityWindowStarts): planned with its
  // value, the condition uses the window_start index.
  return "SELECT x.make_account_id, x.customer_id, "
         "x.cum_ops[least(p.td, (x.window_start + interval '2 months')::date) - x.window_start] "
         "- coalesce(x.cum_ops[greatest(p.fd, x.window_start) - x.window_start], 0) "
         "FROM " +
         std::string(aggregation::ActivityWindowTable(window_parity)) +
         " x, p WHERE x.window_start = ANY ($11::date[]) "
         "AND (p.cu IS NULL OR x.customer_id = p.cu)" +
         part;
}

// The activity summary of one part (rows read as views into the result).
ActivitySummary QueryActivity(Txn& txn, const Scope& s, int part) {
  pqxx::result r;
  if (s.connector) {
    r = Run(txn, s, ActivitySql(true, 0), part, kActivityParts);
  } else {
    // The windows start every second month from fd's: all in one table.
    const std::vector<std::string> windows = ActivityWindowStarts(s.period.fd, s.period.td);
    if (windows.empty())  // the period is never empty: malformed dates, not "no activity"
      throw std::runtime_error("no activity window for " + s.period.fd + " .. " + s.period.td);
    std::string starts;  // a date[] literal
    for (const std::string& d : windows) starts += (starts.empty() ? "{" : ",") + d;
    const int parity = std::stoi(windows[0].substr(5, 2)) % 2;
    r = Run(txn, s, ActivitySql(false, parity), part, kActivityParts, starts + "}");
  }
  std::vector<AccountOpsRow> rows;
  rows.reserve(r.size());
  for (const auto& row : r) {
    // One field iterator per row: every pqxx::field made holds a copy of the
    // result (two shared pointers), ~25% of this loop's time with row[i].
    auto f = row.begin();
    const std::string_view account(f->c_str(), f->size());
    ++f;
    const std::string_view customer(f->c_str(), f->size());
    ++f;
    rows.push_back({account, customer, f->as<int64_t>()});
  }
  return SummariseActivity(rows, kTopAccounts);
}

// Starts the kActivityParts reads of the activity summary.
std::vector<std::future<ActivitySummary>> StartActivityParts(Fanout& q, const Scope& s) {
  std::vector<std::future<ActivitySummary>> parts;
  for (int part = 0; part < kActivityParts; ++part)
    parts.push_back(q.Run([&s, part](Txn& t) { return QueryActivity(t, s, part); }));
  return parts;
}

// Waits for the parts and merges them into one summary.
ActivitySummary MergeActivityParts(std::vector<std::future<ActivitySummary>>& parts) {
  std::vector<ActivitySummary> summaries;
  for (auto& part : parts) summaries.push_back(part.get());
  return MergeActivity(summaries, kTopAccounts);
}

// New users: Make accounts first seen in the period, (bucket, count) by bucket.
std::vector<std::pair<std::string, int64_t>> NewUsersByBucket(Txn& txn, const Scope& s) {
  const std::string fmt =
      s.granularity == Granularity::kHour ? "YYYY-MM-DD\"T\"HH24:MI:SS" : "YYYY-MM-DD";
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& row : Run(txn, s,
                             "SELECT to_char(b, '" + fmt +
                                 "'), n FROM (SELECT date_trunc(p.unit, "
                                 "x.first_seen AT TIME ZONE p.tz) AS b, count(*) AS n "
                                 "FROM account_first_seen x, p "
                                 "WHERE x.first_seen >= p.f AND x.first_seen < p.t "
                                 "AND (p.c IS NULL OR x.connector_id = p.c) "
                                 "AND (p.cu IS NULL OR x.customer_id = p.cu) "
                                 "GROUP BY 1) g ORDER BY b"))
    out.emplace_back(row[0].as<std::string>(), row[1].as<int64_t>());
  return out;
}

// Subscriptions of the scope over the period, for trial conversion and churn.
struct SubscriptionFlow {
  int64_t trials = 0;     // trials started in the period
  int64_t converted = 0;  // of which became paid
  int64_t at_start = 0;   // active at the period's start
  int64_t started = 0;    // started in the period
  int64_t cancelled = 0;  // cancelled in the period
};

SubscriptionFlow QuerySubscriptionFlow(Txn& txn, const Scope& s) {
  const auto row =
      Run(txn, s,
          "SELECT count(*) FILTER (WHERE x.trial AND x.started_at >= p.f AND x.started_at < p.t),"
          " count(*) FILTER (WHERE x.trial AND x.started_at >= p.f AND x.started_at < p.t"
          "   AND x.trial_converted_at IS NOT NULL),"
          " count(*) FILTER (WHERE x.started_at < p.f AND (x.cancelled_at IS NULL OR "
          "x.cancelled_at >= p.f)),"
          " count(*) FILTER (WHERE x.started_at >= p.f AND x.started_at < p.t),"
          " count(*) FILTER (WHERE x.cancelled_at >= p.f AND x.cancelled_at < p.t)"
          " FROM subscriptions x, p WHERE (p.c IS NULL OR x.connector_id = p.c)"
          " AND (p.cu IS NULL OR x.customer_id = p.cu)")[0];
  return {row[0].as<int64_t>(), row[1].as<int64_t>(), row[2].as<int64_t>(), row[3].as<int64_t>(),
          row[4].as<int64_t>()};
}

// "new_users" and "new_users_total"; returns the new_users table.
Table AddNewUsers(const std::vector<std::pair<std::string, int64_t>>& by_bucket, json& b) {
  json new_users = json::array();
  int64_t new_total = 0;
  Table nt{"new_users", {"bucket", "new_users"}, {}};
  for (const auto& [bucket, n] : by_bucket) {
    new_total += n;
    new_users.push_back({{"bucket", bucket}, {"new_users", n}});
    nt.rows.push_back({Str(bucket), Num(n)});
  }
  b["new_users_total"] = new_total;
  b["new_users"] = new_users;
  return nt;
}

// "active_users_series"; returns the active_users table.
Table AddActiveUsers(const std::vector<Usage>& by_bucket, json& b) {
  json series = json::array();
  Table at{"active_users", {"bucket", "active_users"}, {}};
  for (const Usage& u : by_bucket) {
    series.push_back({{"bucket", u.key}, {"active_users", u.users}});
    at.rows.push_back({Str(u.key), Num(u.users)});
  }
  b["active_users_series"] = series;
  return at;
}

// Trial conversion: trials started in the period that became paid.
// Churn: subscriptions cancelled in the period / (active at its start + started in it).
void AddTrialsAndChurn(const SubscriptionFlow& f, json& b) {
  b["trial_conversion"] = {{"trials_started", f.trials},
                           {"converted", f.converted},
                           {"rate", f.trials ? double(f.converted) / double(f.trials) : 0.0}};
  b["churn"] = {
      {"active_at_start", f.at_start},
      {"started", f.started},
      {"cancelled", f.cancelled},
      {"rate",
       f.at_start + f.started ? double(f.cancelled) / double(f.at_start + f.started) : 0.0}};
}

// "activity_distribution"; returns its table.
Table AddActivityDistribution(const ActivitySummary& activity, json& b) {
  json dist = json::array();
  Table dt{"activity_distribution", {"operations", "accounts"}, {}};
  for (const auto& [bin, accounts] : activity.bins) {
    dist.push_back({{"operations", bin}, {"accounts", accounts}});
    dt.rows.push_back({Str(bin), Num(accounts)});
  }
  b["activity_distribution"] = dist;
  return dt;
}

// "top_accounts", ids as pseudonyms when `pseudonyms` is given; returns its table.
Table AddTopAccounts(const ActivitySummary& activity, const AccessControl* pseudonyms, json& b) {
  json top = json::array();
  Table tt{"top_accounts", {"make_account_id", "customer", "operations"}, {}};
  for (const AccountOps& t : activity.top) {
    std::string account = t.account, customer = t.customer;
    if (pseudonyms) {
      account = pseudonyms->AccountPseudonym(account);
      customer = pseudonyms->Pseudonym(customer);
    }
    top.push_back(
        {{"make_account_id", account}, {"customer", customer}, {"operations", t.operations}});
    tt.rows.push_back({Str(account), Str(customer), Num(t.operations)});
  }
  b["top_accounts"] = top;
  return tt;
}

}  // namespace

Answer Users(Fanout& q, const Scope& s, const AccessControl* pseudonyms) {
  Answer a;
  json& b = a.body;
  a.report.title = "Статистика пользователей";
  // Activity distribution (Make accounts by their operations in the period)
  // and the most active accounts: the slowest part, started first.
  std::vector<std::future<ActivitySummary>> activity_q = StartActivityParts(q, s);
  auto total_q = q.Run([&](Txn& t) { return Total(t, s, {true, false}); });
  auto active_q = q.Run([&](Txn& t) { return QueryUsage(t, s, "", true, {true, false}); });
  auto new_users_q = q.Run([&](Txn& t) { return NewUsersByBucket(t, s); });

  const Table nt = AddNewUsers(new_users_q.get(), b);
  const Table at = AddActiveUsers(active_q.get(), b);
  AddTrialsAndChurn(QuerySubscriptionFlow(q.main(), s), b);
  const ActivitySummary activity = MergeActivityParts(activity_q);
  const Table dt = AddActivityDistribution(activity, b);
  const Table tt = AddTopAccounts(activity, pseudonyms, b);
  const Usage total = total_q.get();
  b["active_users"] = total.users;
  a.report.summary = {{"active_users", Num(total.users)},
                      {"new_users", Num(b["new_users_total"].get<int64_t>())},
                      {"trial_conversion_rate", Num(b["trial_conversion"]["rate"].get<double>())},
                      {"churn_rate", Num(b["churn"]["rate"].get<double>())}};
  a.report.tables = {at, nt, dt, tt};
  a.report.charts = {{"Активные пользователи", "active_users", 0, {1}, Chart::kLine},
                     {"Распределение активности", "activity_distribution", 0, {1}, Chart::kBar}};
  return a;
}

}  // namespace bpmc::analytics::analytics_internal
