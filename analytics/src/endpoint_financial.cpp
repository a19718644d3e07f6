// GET /api/v1/analytics/financial (docs/ANALYTICS.md).
#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "billing/payment_reason.h"
#include "endpoints.h"

namespace bpmc::analytics::analytics_internal {
namespace {

// Succeeded payments by bucket and currency: (bucket, currency, minor units).
std::string RevenueSeriesSql(Granularity g) {
  const std::string fmt = g == Granularity::kHour ? "YYYY-MM-DD\"T\"HH24:MI:SS" : "YYYY-MM-DD";
  return "SELECT to_char(b, '" + fmt +
         "'), currency, v FROM (SELECT date_trunc(p.unit, "
         "x.occurred_at AT TIME ZONE p.tz) AS b, x.currency, sum(x.amount_minor)::bigint AS v "
         "FROM payments x, p WHERE x.status = 'succeeded' AND " +
         kPaymentsInScope + " GROUP BY 1, 2) g ORDER BY b, currency";
}

// Succeeded payments by connector and currency: (connector, currency, minor
// units, payments), the largest first.
std::string RevenueByConnectorSql() {
  return "SELECT x.connector_id, x.currency, sum(x.amount_minor)::bigint, count(*) "
         "FROM payments x, p WHERE x.status = 'succeeded' AND " +
         kPaymentsInScope + " GROUP BY 1, 2 ORDER BY 3 DESC, 1";
}

// Failed payments by reason: (reason or 'unknown', payments, minor units).
std::string FailedPaymentsSql() {
  return "SELECT coalesce(x.failure_reason, 'unknown'), count(*), sum(x.amount_minor)::bigint "
         "FROM payments x, p WHERE x.status = 'failed' AND " +
         kPaymentsInScope + " GROUP BY 1 ORDER BY 2 DESC, 1";
}

// One row: the paying customers, the number of payments (any status) and the
// period's length in days.
std::string PayingCustomersSql() {
  return "SELECT count(DISTINCT x.customer_id) FILTER (WHERE x.status = 'succeeded'), "
         "count(x.customer_id), extract(epoch FROM max(p.t) - max(p.f)) / 86400.0 "
         "FROM p LEFT JOIN payments x ON " +
         kPaymentsInScope;
}

// The churn rate's parts: subscriptions active at the period's start or
// started in it, and those cancelled in it.
struct ChurnBase {
  double base = 0, cancelled = 0;
};

ChurnBase QueryChurnBase(Txn& txn, const Scope& s) {
  const auto row = Run(txn, s,
                       "SELECT count(*) FILTER (WHERE x.started_at < p.f AND (x.cancelled_at IS "
                       "NULL OR x.cancelled_at >= p.f))"
                       " + count(*) FILTER (WHERE x.started_at >= p.f AND x.started_at < p.t),"
                       " count(*) FILTER (WHERE x.cancelled_at >= p.f AND x.cancelled_at < p.t)"
                       " FROM subscriptions x, p WHERE (p.c IS NULL OR x.connector_id = p.c)"
                       " AND (p.cu IS NULL OR x.customer_id = p.cu)")[0];
  return {row[0].as<double>(), row[1].as<double>()};
}

// "currency", "revenue", "revenue_minor" (in `currency`) and
// "revenue_by_currency"; returns the revenue in `currency`, minor units.
int64_t AddRevenue(const std::map<std::string, int64_t>& revenue, const std::string& currency,
                   json& b) {
  const int64_t minor = revenue.count(currency) ? revenue.at(currency) : 0;
  b["currency"] = currency;
  b["revenue"] = Major(minor);
  b["revenue_minor"] = minor;
  b["revenue_by_currency"] = json::object();
  for (const auto& [c, v] : revenue) b["revenue_by_currency"][c] = Major(v);
  return minor;
}

// "revenue_series" from RevenueSeriesSql's rows; returns the revenue table.
Table AddRevenueSeries(const pqxx::result& rows, json& b) {
  json series = json::array();
  Table rt{"revenue", {"bucket", "currency", "revenue"}, {}};
  for (const auto& row : rows) {
    const int64_t v = row[2].as<int64_t>();
    series.push_back({{"bucket", row[0].as<std::string>()},
                      {"currency", row[1].as<std::string>()},
                      {"revenue", Major(v)},
                      {"revenue_minor", v}});
    rt.rows.push_back(
        {Str(row[0].as<std::string>()), Str(row[1].as<std::string>()), Num(Major(v))});
  }
  b["revenue_series"] = series;
  return rt;
}

// "revenue_by_connector" from RevenueByConnectorSql's rows; returns its table.
Table AddRevenueByConnector(const pqxx::result& rows, json& b) {
  json by_connector = json::array();
  Table ct{"revenue_by_connector", {"connector", "currency", "revenue", "payments"}, {}};
  for (const auto& row : rows) {
    const int64_t v = row[2].as<int64_t>();
    by_connector.push_back({{"connector", row[0].as<std::string>()},
                            {"currency", row[1].as<std::string>()},
                            {"revenue", Major(v)},
                            {"revenue_minor", v},
                            {"payments", row[3].as<int64_t>()}});
    ct.rows.push_back({Str(row[0].as<std::string>()), Str(row[1].as<std::string>()), Num(Major(v)),
                       Num(row[3].as<int64_t>())});
  }
  b["revenue_by_connector"] = by_connector;
  return ct;
}

// ARPU = revenue (reporting currency) / customers with a succeeded payment
// in the period. LTV = (ARPU per 30 days) / (monthly churn rate), where the
// monthly churn rate is the period's churn rate scaled to 30 days; null
// when nobody churned (the estimate is unbounded). Sets "paying_customers",
// "arpu", "ltv", "ltv_formula" and "churn_rate"; returns the ARPU.
double AddArpuAndLtv(int64_t revenue_minor, int64_t customers, double days, const ChurnBase& churn,
                     json& b) {
  const double arpu = customers ? Major(revenue_minor) / double(customers) : 0.0;
  const double churn_rate = churn.base > 0 ? churn.cancelled / churn.base : 0.0;
  const double monthly_churn = days > 0 ? churn_rate * 30.0 / days : 0.0;
  const double arpu_monthly = days > 0 ? arpu * 30.0 / days : 0.0;
  b["paying_customers"] = customers;
  b["arpu"] = arpu;
  b["ltv"] = monthly_churn > 0 ? json(arpu_monthly / monthly_churn) : json(nullptr);
  b["ltv_formula"] = "(ARPU per 30 days) / (monthly churn rate); ARPU = revenue / paying customers";
  b["churn_rate"] = churn_rate;
  return arpu;
}

// Failed payments of one reason category.
struct FailedPayments {
  std::string category;
  int64_t count = 0, amount_minor = 0;
};

// Reasons are the platform's free text (a card holder's name or e-mail may be in
// it): the report shows their categories (billing/payment_reason.h), never the
// text. FailedPaymentsSql's rows by category, the most payments first (ties by
// category).
std::vector<FailedPayments> FailuresByCategory(const pqxx::result& by_reason) {
  std::map<std::string, std::pair<int64_t, int64_t>> by_category;  // count, amount
  for (const auto& row : by_reason) {
    auto& [n, amount] =
        by_category[std::string(billing::PaymentFailureCategory(row[0].as<std::string>()))];
    n += row[1].as<int64_t>();
    amount += row[2].as<int64_t>();
  }
  std::vector<FailedPayments> out;
  for (const auto& [category, totals] : by_category)
    out.push_back({category, totals.first, totals.second});
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& x, const auto& y) { return x.count > y.count; });
  return out;
}

// "failed_payments" (`all_payments`: of any status, for the ratio); returns
// the failed_payments table.
Table AddFailedPayments(const std::vector<FailedPayments>& categories, int64_t all_payments,
                        json& b) {
  json failed = json::array();
  int64_t failed_count = 0, failed_minor = 0;
  Table ft{"failed_payments", {"reason", "count", "amount"}, {}};
  for (const FailedPayments& c : categories) {
    failed_count += c.count;
    failed_minor += c.amount_minor;
    failed.push_back(
        {{"reason", c.category}, {"count", c.count}, {"amount_minor", c.amount_minor}});
    ft.rows.push_back({Str(c.category), Num(c.count), Num(Major(c.amount_minor))});
  }
  b["failed_payments"] = {
      {"count", failed_count},
      {"amount_minor", failed_minor},
      {"ratio", all_payments ? double(failed_count) / double(all_payments) : 0.0},
      {"by_reason", failed}};
  return ft;
}

}  // namespace

Answer Financial(Fanout& q, const Scope& s, const std::string& currency) {
  Answer a;
  json& b = a.body;
  a.report.title = "Финансовая статистика";
  // The payment queries run concurrently (Fanout); revenue and churn below,
  // in the request's transaction meanwhile.
  auto query = [&](std::string sql) {
    return q.Run([&s, sql = std::move(sql)](Txn& t) { return Run(t, s, sql); });
  };
  auto series_q = query(RevenueSeriesSql(s.granularity));
  auto by_connector_q = query(RevenueByConnectorSql());
  auto failed_q = query(FailedPaymentsSql());
  auto paying_q = query(PayingCustomersSql());
  Txn& txn = q.main();
  const int64_t minor = AddRevenue(Revenue(txn, s), currency, b);
  const Table rt = AddRevenueSeries(series_q.get(), b);
  const Table ct = AddRevenueByConnector(by_connector_q.get(), b);

  const pqxx::result paying_rows = paying_q.get();
  const auto paying = paying_rows[0];
  const int64_t customers = paying[0].as<int64_t>();
  const double days = paying[2].as<double>();
  const double arpu = AddArpuAndLtv(minor, customers, days, QueryChurnBase(txn, s), b);

  const Table ft =
      AddFailedPayments(FailuresByCategory(failed_q.get()), paying[1].as<int64_t>(), b);
  a.report.summary = {{"revenue " + currency, Num(Major(minor))},
                      {"ARPU", Num(arpu)},
                      {"LTV", b["ltv"].is_null() ? Cell{} : Num(b["ltv"].get<double>())},
                      {"failed_payments", Num(b["failed_payments"]["count"].get<int64_t>())}};
  a.report.tables = {rt, ct, ft};
  a.report.charts = {{"Доход по периодам", "revenue", 0, {2}, Chart::kBar}};
  return a;
}

}  // namespace bpmc::analytics::analytics_internal
