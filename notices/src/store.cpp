#include "notices/store.h"

#include <algorithm>

#include "common/time_format.h"
#include "incidents/timeline.h"
#include "notifier/outbox.h"

namespace bpmc::notices {
namespace {

using Json = nlohmann::json;

// Session advisory lock of one engine pass ("bpmcnoti").
constexpr int64_t kPassLock = 0x62706d636e6f7469;

// Times go to SQL as RFC 3339 text ($n::timestamptz): exact to the microsecond.
std::string Ts(int64_t us) { return FormatRfc3339Micros(us); }
double Seconds(int64_t us) { return static_cast<double>(us) / 1e6; }
// `expr` as Unix microseconds (extract(epoch) is numeric in PostgreSQL 15: exact).
std::string Micros(const std::string& expr) {
  return "(extract(epoch FROM " + expr + ") * 1000000)::bigint";
}

std::vector<std::string> Strings(const std::string& json_array) {
  return Json::parse(json_array).get<std::vector<std::string>>();
}

// A notice to insert once per (customer, dedup key).
struct Draft {
  std::string customer_id;
  std::string kind;
  std::vector<std::string> connectors;
  NoticeText text;
  std::string dedup_key;
  bool open = false;
};

// One engine pass: inserts notices and e-mails them.
class Pass {
 public:
  Pass(const NoticesConfig& config, int64_t now_us, StepCounts* counts)
      : config_(config), now_us_(now_us), counts_(counts) {}

  // Inserts `d` unless it exists; a new notice is e-mailed in the same transaction.
  // Returns whether it was new.
  bool Add(pqxx::work& txn, const Draft& d) {
    const pqxx::result r = txn.exec_params(
        "INSERT INTO notices (customer_id, kind, connectors, title, body, dedup_key, created_at, "
        "open)"
        " VALUES ($1, $2, ARRAY(SELECT jsonb_array_elements_text($3::jsonb)), $4, $5, $6,"
        "         $7::timestamptz, $8)"
        " ON CONFLICT (customer_id, dedup_key) DO NOTHING RETURNING id",
        d.customer_id, d.kind, Json(d.connectors).dump(), d.text.title, d.text.body, d.dedup_key,
        Ts(now_us_), d.open);
    if (r.empty()) return false;
    ++counts_->notices[d.kind];
    const int64_t id = r[0][0].as<int64_t>();
    const std::string skipped = Email(txn, id, d);
    if (!skipped.empty()) {
      ++counts_->emails[skipped];
      txn.exec_params("UPDATE notices SET email_skipped = $2 WHERE id = $1", id, skipped);
    }
    return true;
  }

  int64_t now_us() const { return now_us_; }
  const NoticesConfig& config() const { return config_; }

 private:
  // Enqueues the notice to the customer's contacts; returns why not ("" when it did).
  std::string Email(pqxx::work& txn, int64_t id, const Draft& d) {
    if (config_.email_channel.empty()) return "no_channel";
    std::vector<std::string> to;
    for (const auto& row :
         txn.exec_params("SELECT email FROM notice_contacts WHERE customer_id = $1 ORDER BY email",
                         d.customer_id))
      to.push_back(row[0].as<std::string>());
    if (to.empty()) return "no_contact";
    const int64_t recent =
        txn.exec_params(
               "SELECT count(*) FROM notices WHERE customer_id = $1 AND emails > 0"
               " AND created_at > $2::timestamptz - make_interval(secs => $3)",
               d.customer_id, Ts(now_us_), Seconds(config_.email_limit_per_us))[0][0]
            .as<int64_t>();
    if (recent >= config_.email_limit) return "rate_limited";
    std::vector<notifier::OutboxEntry> entries;
    for (const std::string& address : to)
      entries.push_back({config_.email_channel, address, View(id, d)});
    notifier::Enqueue(txn, entries);
    txn.exec_params("UPDATE notices SET emails = $2 WHERE id = $1", id,
                    static_cast<int>(to.size()));
    counts_->emails["enqueued"] += static_cast<int>(to.size());
    return "";
  }

  // The notice as the email channel's templates see it (docs/NOTICES.md).
  notifier::AlertView View(int64_t id, const Draft& d) const {
    notifier::AlertView v;
    v.status = "firing";
    v.severity = d.kind == "connector_problem" || d.kind == "payment_failed" ? "warning" : "info";
    v.alertname = d.kind;
    v.summary = d.text.title;
    v.description = d.text.body;
    v.source = "notices";
    v.dedup_key = "notice-" + std::to_string(id);
    v.starts_at = Ts(now_us_);
    v.labels = {{"notice", d.kind}};
    return v;
  }

  const NoticesConfig& config_;
  const int64_t now_us_;
  StepCounts* counts_;
};

// Records on the incident's timeline that `customers` customers got a notice of
// `kind` (how many, never who: the timeline is read by engineers and reports).
void TimelineNotice(pqxx::work& txn, const std::string& incident_id, const std::string& kind,
                    int customers, int64_t now_us) {
  if (customers == 0) return;
  incidents::TimelineRecord record;
  record.incident_id = std::stoll(incident_id);
  record.at_us = now_us;
  record.kind = "notice";
  record.actor = "notices";
  record.detail = Json{{"notice", kind}, {"customers", customers}}.dump();
  incidents::AppendTimeline(txn, record);
}

// Customers with a live subscription to any of `connectors`, each with those of
// `connectors` it subscribes to; ordered by customer.
std::vector<std::pair<std::string, std::vector<std::string>>> Subscribers(
    pqxx::work& txn, const std::vector<std::string>& connectors, int64_t now_us) {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (const auto& row : txn.exec_params(
           "SELECT customer_id, array_to_json(array_agg(DISTINCT connector_id::text"
           "                                            ORDER BY connector_id::text))::text"
           " FROM billing_subscribers"
           " WHERE connector_id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))"
           "   AND (cancelled_at IS NULL OR cancelled_at > $2::timestamptz)"
           " GROUP BY customer_id ORDER BY customer_id",
           Json(connectors).dump(), Ts(now_us)))
    out.emplace_back(row[0].as<std::string>(), Strings(row[1].as<std::string>()));
  return out;
}

// The rows of one read-only statement, in a transaction of its own.
template <typename... Args>
pqxx::result Read(pqxx::connection& conn, const std::string& sql, Args&&... args) {
  pqxx::work txn(conn);
  pqxx::result r = txn.exec_params(sql, std::forward<Args>(args)...);
  txn.commit();
  return r;
}

// Advance notices of windows starting within the lead time (and not over).
void MaintenanceAdvance(pqxx::connection& conn, Pass& pass) {
  const pqxx::result due =
      Read(conn,
           "SELECT id, array_to_json(connectors)::text, " + Micros("starts_at") + ", " +
               Micros("ends_at") +
               ", message FROM maintenance_windows"
               " WHERE advance_noticed_at IS NULL AND end_noticed_at IS NULL"
               "   AND starts_at <= $1::timestamptz + make_interval(secs => $2)"
               "   AND ends_at > $1::timestamptz ORDER BY id LIMIT 100",
           Ts(pass.now_us()), Seconds(pass.config().maintenance_notice_before_us));
  for (const auto& w : due) {
    const int64_t id = w[0].as<int64_t>();
    pqxx::work txn(conn);
    for (const auto& [customer, connectors] :
         Subscribers(txn, Strings(w[1].as<std::string>()), pass.now_us()))
      pass.Add(txn, {customer, "maintenance_scheduled", connectors,
                     MaintenanceScheduledText(connectors, w[2].as<int64_t>(), w[3].as<int64_t>(),
                                              w[4].as<std::string>()),
                     "maintenance:" + std::to_string(id) + ":advance", false});
    txn.exec_params(
        "UPDATE maintenance_windows SET advance_noticed_at = $2::timestamptz WHERE id = $1", id,
        Ts(pass.now_us()));
    txn.commit();
  }
}

// End notices, to the customers that got the advance notice.
void MaintenanceEnd(pqxx::connection& conn, Pass& pass) {
  const pqxx::result due =
      Read(conn,
           "SELECT id, message FROM maintenance_windows"
           " WHERE end_noticed_at IS NULL AND ends_at <= $1::timestamptz ORDER BY id LIMIT 100",
           Ts(pass.now_us()));
  for (const auto& w : due) {
    const int64_t id = w[0].as<int64_t>();
    const std::string prefix = "maintenance:" + std::to_string(id);
    pqxx::work txn(conn);
    const pqxx::result got = txn.exec_params(
        "SELECT customer_id, array_to_json(connectors)::text FROM notices WHERE dedup_key = $1"
        " ORDER BY customer_id",
        prefix + ":advance");
    for (const auto& row : got) {
      const std::vector<std::string> connectors = Strings(row[1].as<std::string>());
      pass.Add(txn, {row[0].as<std::string>(), "maintenance_ended", connectors,
                     MaintenanceEndedText(connectors, w[1].as<std::string>()), prefix + ":ended",
                     false});
    }
    txn.exec_params(
        "UPDATE maintenance_windows SET end_noticed_at = $2::timestamptz,"
        " advance_noticed_at = coalesce(advance_noticed_at, $2::timestamptz) WHERE id = $1",
        id, Ts(pass.now_us()));
    txn.commit();
  }
}

// Incidents of a connector still unacknowledged after connector_problem_after.
void ConnectorProblems(pqxx::connection& conn, Pass& pass) {
  const pqxx::result due =
      Read(conn,
           "SELECT i.id, i.connector, " + Micros("i.created_at") +
               " FROM incident_states i"
               " WHERE i.connector <> '' AND i.status = 'triggered' AND NOT i.muted"
               "   AND i.created_at <= $1::timestamptz - make_interval(secs => $2)"
               "   AND NOT EXISTS (SELECT 1 FROM notices n"
               "                   WHERE n.dedup_key = 'incident:' || i.id || ':problem')"
               " ORDER BY i.id LIMIT 100",
           Ts(pass.now_us()), Seconds(pass.config().connector_problem_after_us));
  for (const auto& inc : due) {
    const std::string connector = inc[1].as<std::string>();
    pqxx::work txn(conn);
    int added = 0;
    for (const auto& sub : Subscribers(txn, {connector}, pass.now_us()))
      added += pass.Add(txn, {sub.first,
                              "connector_problem",
                              {connector},
                              ConnectorProblemText(connector, inc[2].as<int64_t>()),
                              "incident:" + inc[0].as<std::string>() + ":problem",
                              true});
    TimelineNotice(txn, inc[0].as<std::string>(), "connector_problem", added, pass.now_us());
    txn.commit();
  }
}

// A resolution notice for each open problem notice whose incident is resolved.
void ConnectorResolutions(pqxx::connection& conn, Pass& pass) {
  pqxx::work txn(conn);
  const pqxx::result done =
      txn.exec_params("SELECT n.id, n.customer_id, n.connectors[1], i.id, " +
                          Micros("coalesce(i.resolved_at, $1::timestamptz)") +
                          " FROM notices n JOIN incident_states i ON n.dedup_key = 'incident:' || "
                          "i.id || ':problem'"
                          " WHERE n.open AND i.status = 'resolved' ORDER BY n.id LIMIT 500",
                      Ts(pass.now_us()));
  std::map<std::string, int> added;  // by incident id
  for (const auto& row : done) {
    const std::string connector = row[2].is_null() ? "" : row[2].as<std::string>();
    added[row[3].as<std::string>()] +=
        pass.Add(txn, {row[1].as<std::string>(),
                       "connector_resolved",
                       {connector},
                       ConnectorResolvedText(connector, row[4].as<int64_t>()),
                       "incident:" + row[3].as<std::string>() + ":resolved",
                       false});
    txn.exec_params("UPDATE notices SET open = false WHERE id = $1", row[0].as<int64_t>());
  }
  for (const auto& [incident, n] : added)
    TimelineNotice(txn, incident, "connector_resolved", n, pass.now_us());
  txn.commit();
}

// Failed payments since the cursor (and within the lookback), each noticed once.
void PaymentFailures(pqxx::connection& conn, Pass& pass) {
  pqxx::work txn(conn);
  const pqxx::result failed = txn.exec_params(
      "SELECT p.id, p.customer_id, p.connector_id, p.amount_minor, p.currency::text,"
      "       coalesce(p.failure_reason, ''), " +
          Micros("p.occurred_at") +
          " FROM billing_failed_payments p"
          " WHERE p.occurred_at >= greatest((SELECT since FROM notice_cursors WHERE name = "
          "'payments'),"
          "                                 $1::timestamptz - make_interval(secs => $2))"
          "   AND NOT EXISTS (SELECT 1 FROM notices n WHERE n.customer_id = p.customer_id"
          "                   AND n.dedup_key = 'payment:' || p.id)"
          " ORDER BY p.customer_id, p.occurred_at, p.id LIMIT 500",
      Ts(pass.now_us()), Seconds(pass.config().payment_lookback_us));
  for (const auto& p : failed) {
    const std::string connector = p[2].as<std::string>();
    pass.Add(txn, {p[1].as<std::string>(),
                   "payment_failed",
                   {connector},
                   PaymentFailedText(connector, p[3].as<int64_t>(), p[4].as<std::string>(),
                                     p[5].as<std::string>(), p[6].as<int64_t>()),
                   "payment:" + p[0].as<std::string>(),
                   false});
  }
  txn.commit();
}

Json WindowJson(const pqxx::row& r) {
  return {{"id", r[0].as<int64_t>()},
          {"connectors", Json::parse(r[1].as<std::string>())},
          {"starts_at", Ts(r[2].as<int64_t>())},
          {"ends_at", Ts(r[3].as<int64_t>())},
          {"message", r[4].as<std::string>()},
          {"created_by", r[5].as<std::string>()},
          {"created_at", Ts(r[6].as<int64_t>())},
          {"advance_noticed", !r[7].is_null()},
          {"end_noticed", !r[8].is_null()}};
}

std::string WindowColumns() {
  return "id, array_to_json(connectors)::text, " + Micros("starts_at") + ", " + Micros("ends_at") +
         ", message, created_by, " + Micros("created_at") + ", advance_noticed_at, end_noticed_at";
}

}  // namespace

bool InMaintenance(pqxx::work& txn, const std::map<std::string, std::string>& labels,
                   int64_t now_us) {
  auto it = labels.find("connector");
  if (it == labels.end() || it->second.empty()) return false;
  return txn
      .exec_params(
          "SELECT EXISTS (SELECT 1 FROM maintenance_windows"
          " WHERE connectors @> ARRAY[$1::text] AND starts_at <= $2::timestamptz"
          "   AND ends_at > $2::timestamptz)",
          it->second, Ts(now_us))[0][0]
      .as<bool>();
}

Json CreateWindow(pqxx::work& txn, const MaintenanceRequest& request,
                  const std::string& created_by) {
  const pqxx::result r = txn.exec_params(
      "INSERT INTO maintenance_windows (connectors, starts_at, ends_at, message, created_by)"
      " VALUES (ARRAY(SELECT jsonb_array_elements_text($1::jsonb)), $2::timestamptz,"
      "         $3::timestamptz, $4, $5) RETURNING " +
          WindowColumns(),
      Json(request.connectors).dump(), Ts(request.starts_us), Ts(request.ends_us), request.message,
      created_by);
  return WindowJson(r[0]);
}

Json ListWindows(pqxx::work& txn, int64_t now_us) {
  Json out = Json::array();
  for (const auto& r : txn.exec_params("SELECT " + WindowColumns() +
                                           " FROM maintenance_windows"
                                           " WHERE ends_at > $1::timestamptz - interval '7 days'"
                                           " ORDER BY starts_at, id LIMIT 1000",
                                       Ts(now_us)))
    out.push_back(WindowJson(r));
  return out;
}

Json CustomerStatus(pqxx::work& txn, const std::string& customer_id, int64_t now_us) {
  const std::string now = Ts(now_us);
  Json connectors = Json::array();
  std::map<std::string, size_t> index;  // connector id -> position in `connectors`
  for (const auto& r : txn.exec_params(
           "SELECT s.connector_id, COALESCE(n.name, s.connector_id) FROM "
           "(SELECT DISTINCT connector_id FROM billing_subscribers WHERE customer_id = $1 "
           "AND started_at <= $2::timestamptz AND (cancelled_at IS NULL OR cancelled_at > "
           "$2::timestamptz)) s LEFT JOIN connector_names n ON n.id = s.connector_id "
           "ORDER BY 1",
           customer_id, now)) {
    index[r[0].as<std::string>()] = connectors.size();
    connectors.push_back({{"id", r[0].as<std::string>()},
                          {"name", r[1].as<std::string>()},
                          {"incidents", Json::array()},
                          {"maintenance", Json::array()}});
  }
  std::vector<std::string> ids;
  for (const auto& [id, pos] : index) ids.push_back(id);
  const std::string ids_json = Json(ids).dump();
  for (const auto& r : txn.exec_params(
           "SELECT connector, id, status, " + Micros("created_at") +
               " FROM incident_states WHERE connector IN (SELECT "
               "json_array_elements_text($1::json))"
               " AND status <> 'resolved' AND NOT muted ORDER BY created_at, id LIMIT 1000",
           ids_json)) {
    connectors[index.at(r[0].as<std::string>())]["incidents"].push_back(
        {{"id", r[1].as<int64_t>()},
         {"status", r[2].as<std::string>()},
         {"since", Ts(r[3].as<int64_t>())}});
  }
  for (const auto& r :
       txn.exec_params("SELECT c, id, " + Micros("starts_at") + ", " + Micros("ends_at") +
                           ", message FROM maintenance_windows, unnest(connectors) AS c"
                           " WHERE c IN (SELECT json_array_elements_text($1::json)) AND ends_at > "
                           "$2::timestamptz ORDER BY starts_at, id LIMIT 1000",
                       ids_json, now)) {
    const int64_t starts = r[2].as<int64_t>();
    connectors[index.at(r[0].as<std::string>())]["maintenance"].push_back(
        {{"id", r[1].as<int64_t>()},
         {"starts_at", Ts(starts)},
         {"ends_at", Ts(r[3].as<int64_t>())},
         {"in_progress", starts <= now_us},
         {"message", r[4].as<std::string>()}});
  }
  for (Json& c : connectors) {
    bool in_maintenance = false;
    for (const Json& w : c["maintenance"]) in_maintenance = in_maintenance || w["in_progress"];
    c["status"] = ConnectorStatus(in_maintenance, !c["incidents"].empty());
  }
  return {{"customer", customer_id}, {"as_of", now}, {"connectors", std::move(connectors)}};
}

Json ListNotices(pqxx::work& txn, const FeedAccess& access, int64_t before_id, int limit) {
  const pqxx::result rows = txn.exec_params(
      "SELECT id, customer_id, kind, array_to_json(connectors)::text, title, body, " +
          Micros("created_at") +
          " FROM notices WHERE ($1 = '' OR customer_id = $1) AND ($2::bigint = 0 OR id < "
          "$2::bigint)"
          " ORDER BY id DESC LIMIT $3",
      access.customer_id, before_id, limit);
  Json list = Json::array();
  for (const auto& r : rows) {
    Json n = {{"id", r[0].as<int64_t>()},
              {"kind", r[2].as<std::string>()},
              {"connectors", Json::parse(r[3].as<std::string>())},
              {"title", r[4].as<std::string>()},
              {"body", r[5].as<std::string>()},
              {"created_at", Ts(r[6].as<int64_t>())}};
    if (access.show_customer) n["customer_id"] = r[1].as<std::string>();
    list.push_back(std::move(n));
  }
  Json next = static_cast<int>(rows.size()) == limit ? Json(list.back()["id"]) : Json();
  return {{"notices", list}, {"next_before", next}};
}

void SetContacts(pqxx::work& txn, const std::string& customer_id,
                 const std::vector<std::string>& emails) {
  txn.exec_params("DELETE FROM notice_contacts WHERE customer_id = $1", customer_id);
  if (emails.empty()) return;
  txn.exec_params(
      "INSERT INTO notice_contacts (customer_id, email)"
      " SELECT $1, e FROM jsonb_array_elements_text($2::jsonb) AS e",
      customer_id, Json(emails).dump());
}

StepCounts RunNoticeStep(pqxx::connection& conn, const NoticesConfig& config, int64_t now_us) {
  StepCounts counts;
  {
    pqxx::nontransaction txn(conn);
    if (!txn.exec_params("SELECT pg_try_advisory_lock($1)", kPassLock)[0][0].as<bool>()) {
      counts.skipped = true;
      return counts;
    }
  }
  // Released on every path; a broken connection releases it by ending the session.
  struct Unlock {
    pqxx::connection& conn;
    ~Unlock() {
      try {
        pqxx::nontransaction(conn).exec_params("SELECT pg_advisory_unlock($1)", kPassLock);
      } catch (const std::exception&) {
      }
    }
  } unlock{conn};
  Pass pass(config, now_us, &counts);
  MaintenanceAdvance(conn, pass);
  MaintenanceEnd(conn, pass);
  ConnectorProblems(conn, pass);
  ConnectorResolutions(conn, pass);
  PaymentFailures(conn, pass);
  return counts;
}

}  // namespace bpmc::notices
