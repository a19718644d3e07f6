#include "notices/store.h"

#include <algorithm>
#include <set>

#include "common/ids.h"
#include "common/pg_statements.h"
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

  // The notice of `kind` in `customer`'s locale and time zone, naming the
  // connectors (ids) by their display names.
  NoticeText Compose(pqxx::work& txn, const std::string& customer, const std::string& kind,
                     const std::vector<std::string>& connector_ids, NoticeFacts facts) {
    facts.connectors = Names(txn, connector_ids);
    return ComposeNotice(config_.templates, kind, Prefs(txn, customer), facts);
  }

 private:
  CustomerPrefs Prefs(pqxx::work& txn, const std::string& customer) {
    auto it = prefs_.find(customer);
    if (it != prefs_.end()) return it->second;
    CustomerPrefs p;
    const pqxx::result r = txn.exec_params(
        "SELECT locale, time_zone FROM notice_preferences WHERE customer_id = $1", customer);
    if (!r.empty()) p = {r[0][0].as<std::string>(), r[0][1].as<std::string>()};
    return prefs_[customer] = p;
  }

  // identity's connector_names view; the id when a connector has no name.
  std::vector<std::string> Names(pqxx::work& txn, const std::vector<std::string>& ids) {
    std::vector<std::string> out;
    for (const std::string& id : ids) {
      auto it = names_.find(id);
      if (it == names_.end()) {
        const pqxx::result r =
            txn.exec_params("SELECT name FROM connector_names WHERE id = $1 AND name <> ''", id);
        it = names_.emplace(id, r.empty() ? id : r[0][0].as<std::string>()).first;
      }
      out.push_back(it->second);
    }
    return out;
  }

 public:
 private:
  // Enqueues the notice to the customer's contacts: e-mail addresses through the
  // email channel, telegram chats through the telegram channel (each when
  // configured); returns why not ("" when it did).
  std::string Email(pqxx::work& txn, int64_t id, const Draft& d) {
    if (config_.email_channel.empty() && config_.telegram_channel.empty()) return "no_channel";
    std::vector<std::pair<std::string, std::string>> to;  // (channel, address)
    for (const auto& row :
         txn.exec_params("SELECT channel, address FROM notice_contacts WHERE customer_id = $1"
                         " ORDER BY channel, address",
                         d.customer_id)) {
      const std::string type = row[0].as<std::string>();
      const std::string& channel = type == "email"      ? config_.email_channel
                                   : type == "telegram" ? config_.telegram_channel
                                                        : std::string();
      if (!channel.empty()) to.emplace_back(channel, row[1].as<std::string>());
    }
    if (to.empty()) return "no_contact";
    const int64_t recent =
        txn.exec_params(
               "SELECT count(*) FROM notices WHERE customer_id = $1 AND emails > 0"
               " AND created_at > $2::timestamptz - make_interval(secs => $3)",
               d.customer_id, Ts(now_us_), Seconds(config_.email_limit_per_us))[0][0]
            .as<int64_t>();
    if (recent >= config_.email_limit) return "rate_limited";
    std::vector<notifier::OutboxEntry> entries;
    for (const auto& [channel, address] : to) entries.push_back({channel, address, View(id, d)});
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
  std::map<std::string, CustomerPrefs> prefs_;  // by customer, for this pass
  std::map<std::string, std::string> names_;    // connector id -> display name
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

// The customers told of window `id` (an advance or change notice) and not told of
// its cancellation since, each with the connectors (ids) of its latest notice.
std::vector<std::pair<std::string, std::vector<std::string>>> Told(pqxx::work& txn, int64_t id) {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (const auto& row :
       txn.exec_params("SELECT customer_id, connectors FROM ("
                       "  SELECT DISTINCT ON (customer_id) customer_id, kind,"
                       "         array_to_json(connectors)::text AS connectors FROM notices"
                       "  WHERE dedup_key LIKE $1 AND kind IN ('maintenance_scheduled',"
                       "        'maintenance_changed', 'maintenance_cancelled')"
                       "  ORDER BY customer_id, id DESC) latest"
                       " WHERE kind <> 'maintenance_cancelled' ORDER BY customer_id",
                       "maintenance:" + std::to_string(id) + ":%"))
    out.emplace_back(row[0].as<std::string>(), Strings(row[1].as<std::string>()));
  return out;
}

// Advance notices of windows starting within the lead time (and not over, not cancelled).
void MaintenanceAdvance(pqxx::connection& conn, Pass& pass) {
  const pqxx::result due =
      Read(conn,
           "SELECT id, array_to_json(connectors)::text, " + Micros("starts_at") + ", " +
               Micros("ends_at") +
               ", message, revision FROM maintenance_windows"
               " WHERE advance_noticed_at IS NULL AND end_noticed_at IS NULL"
               "   AND cancelled_at IS NULL"
               "   AND starts_at <= $1::timestamptz + make_interval(secs => $2)"
               "   AND ends_at > $1::timestamptz ORDER BY id LIMIT 100",
           Ts(pass.now_us()), Seconds(pass.config().maintenance_notice_before_us));
  for (const auto& w : due) {
    const int64_t id = w[0].as<int64_t>();
    NoticeFacts facts;
    facts.starts_us = w[2].as<int64_t>();
    facts.ends_us = w[3].as<int64_t>();
    facts.message = w[4].as<std::string>();
    pqxx::work txn(conn);
    for (const auto& [customer, connectors] :
         Subscribers(txn, Strings(w[1].as<std::string>()), pass.now_us()))
      pass.Add(txn, {customer, "maintenance_scheduled", connectors,
                     pass.Compose(txn, customer, "maintenance_scheduled", connectors, facts),
                     "maintenance:" + std::to_string(id) + ":advance", false});
    // The texts were written at `revision`: a later edit is still to be told.
    txn.exec_params(
        "UPDATE maintenance_windows SET advance_noticed_at = $2::timestamptz,"
        " noticed_revision = $3, noticed_starts_at = $4::timestamptz,"
        " noticed_ends_at = $5::timestamptz WHERE id = $1",
        id, Ts(pass.now_us()), w[5].as<int>(), Ts(facts.starts_us), Ts(facts.ends_us));
    txn.commit();
  }
}

// Edits of windows whose advance notice is out: `maintenance_changed` to the live
// subscribers of the window's connectors now; a customer told before whose
// connectors left the window gets `maintenance_cancelled` instead.
void MaintenanceChanges(pqxx::connection& conn, Pass& pass) {
  const pqxx::result due =
      Read(conn,
           "SELECT id, array_to_json(connectors)::text, " + Micros("starts_at") + ", " +
               Micros("ends_at") + ", message, revision, " + Micros("noticed_starts_at") + ", " +
               Micros("noticed_ends_at") +
               " FROM maintenance_windows"
               " WHERE advance_noticed_at IS NOT NULL AND end_noticed_at IS NULL"
               "   AND cancelled_at IS NULL AND revision > noticed_revision"
               "   AND ends_at > $1::timestamptz ORDER BY id LIMIT 100",
           Ts(pass.now_us()));
  for (const auto& w : due) {
    const int64_t id = w[0].as<int64_t>();
    const std::string revision = w[5].as<std::string>();
    NoticeFacts facts;
    facts.starts_us = w[2].as<int64_t>();
    facts.ends_us = w[3].as<int64_t>();
    facts.message = w[4].as<std::string>();
    NoticeFacts before = facts;
    before.starts_us = w[6].is_null() ? facts.starts_us : w[6].as<int64_t>();
    before.ends_us = w[7].is_null() ? facts.ends_us : w[7].as<int64_t>();
    const std::string prefix = "maintenance:" + std::to_string(id);
    pqxx::work txn(conn);
    std::set<std::string> now_affected;
    for (const auto& [customer, connectors] :
         Subscribers(txn, Strings(w[1].as<std::string>()), pass.now_us())) {
      now_affected.insert(customer);
      pass.Add(txn, {customer, "maintenance_changed", connectors,
                     pass.Compose(txn, customer, "maintenance_changed", connectors, facts),
                     prefix + ":changed:" + revision, false});
    }
    for (const auto& [customer, connectors] : Told(txn, id)) {
      if (now_affected.count(customer)) continue;
      pass.Add(txn, {customer, "maintenance_cancelled", connectors,
                     pass.Compose(txn, customer, "maintenance_cancelled", connectors, before),
                     prefix + ":cancelled:" + revision, false});
    }
    txn.exec_params(
        "UPDATE maintenance_windows SET noticed_revision = $2, noticed_starts_at = "
        "$3::timestamptz, noticed_ends_at = $4::timestamptz WHERE id = $1",
        id, w[5].as<int>(), Ts(facts.starts_us), Ts(facts.ends_us));
    txn.commit();
  }
}

// Cancelled windows: `maintenance_cancelled` to the customers told of them, with
// the times they were told. A window cancelled before its advance notice tells nobody.
void MaintenanceCancellations(pqxx::connection& conn, Pass& pass) {
  const pqxx::result due = Read(
      conn,
      "SELECT id, message, " + Micros("coalesce(noticed_starts_at, starts_at)") + ", " +
          Micros("coalesce(noticed_ends_at, ends_at)") +
          " FROM maintenance_windows"
          " WHERE cancelled_at IS NOT NULL AND cancel_noticed_at IS NULL ORDER BY id LIMIT 100");
  for (const auto& w : due) {
    const int64_t id = w[0].as<int64_t>();
    NoticeFacts facts;
    facts.message = w[1].as<std::string>();
    facts.starts_us = w[2].as<int64_t>();
    facts.ends_us = w[3].as<int64_t>();
    pqxx::work txn(conn);
    for (const auto& [customer, connectors] : Told(txn, id))
      pass.Add(txn, {customer, "maintenance_cancelled", connectors,
                     pass.Compose(txn, customer, "maintenance_cancelled", connectors, facts),
                     "maintenance:" + std::to_string(id) + ":cancelled", false});
    txn.exec_params(
        "UPDATE maintenance_windows SET cancel_noticed_at = $2::timestamptz WHERE id = $1", id,
        Ts(pass.now_us()));
    txn.commit();
  }
}

// End notices, to the customers told of the window (and not of its cancellation).
void MaintenanceEnd(pqxx::connection& conn, Pass& pass) {
  const pqxx::result due = Read(conn,
                                "SELECT id, message FROM maintenance_windows"
                                " WHERE end_noticed_at IS NULL AND cancelled_at IS NULL"
                                "   AND ends_at <= $1::timestamptz ORDER BY id LIMIT 100",
                                Ts(pass.now_us()));
  for (const auto& w : due) {
    const int64_t id = w[0].as<int64_t>();
    NoticeFacts facts;
    facts.message = w[1].as<std::string>();
    pqxx::work txn(conn);
    for (const auto& [customer, connectors] : Told(txn, id))
      pass.Add(txn, {customer, "maintenance_ended", connectors,
                     pass.Compose(txn, customer, "maintenance_ended", connectors, facts),
                     "maintenance:" + std::to_string(id) + ":ended", false});
    txn.exec_params(
        "UPDATE maintenance_windows SET end_noticed_at = $2::timestamptz,"
        " advance_noticed_at = coalesce(advance_noticed_at, $2::timestamptz) WHERE id = $1",
        id, Ts(pass.now_us()));
    txn.commit();
  }
}

// Incidents of a connector still unresolved (acknowledged or not) after
// connector_problem_after: DecideIncidentNotice. The query selects the candidates;
// the pure decision has the last word. The timer is the incident's created_at in
// PostgreSQL, so a restart does not reset it; the notices' unique key makes several
// receivers send it once.
void ConnectorProblems(pqxx::connection& conn, Pass& pass) {
  const pqxx::result due =
      Read(conn,
           "SELECT i.id, i.connector, " + Micros("i.created_at") +
               ", i.status, i.muted FROM incident_states i"
               " WHERE i.connector <> '' AND i.status <> 'resolved' AND NOT i.muted"
               "   AND i.created_at <= $1::timestamptz - make_interval(secs => $2)"
               "   AND NOT EXISTS (SELECT 1 FROM notices n"
               "                   WHERE n.dedup_key = 'incident:' || i.id || ':problem')"
               " ORDER BY i.id LIMIT 100",
           Ts(pass.now_us()), Seconds(pass.config().connector_problem_after_us));
  for (const auto& inc : due) {
    IncidentFacts facts;
    facts.connector = inc[1].as<std::string>();
    facts.created_us = inc[2].as<int64_t>();
    facts.status = inc[3].as<std::string>();
    facts.muted = inc[4].as<bool>();
    if (DecideIncidentNotice(facts, pass.now_us(), pass.config().connector_problem_after_us) !=
        IncidentNotice::kProblem)
      continue;
    const std::string& connector = facts.connector;
    NoticeFacts text;
    text.at_us = facts.created_us;
    pqxx::work txn(conn);
    int added = 0;
    for (const auto& sub : Subscribers(txn, {connector}, pass.now_us()))
      added += pass.Add(txn, {sub.first,
                              "connector_problem",
                              {connector},
                              pass.Compose(txn, sub.first, "connector_problem", {connector}, text),
                              "incident:" + inc[0].as<std::string>() + ":problem",
                              true});
    TimelineNotice(txn, inc[0].as<std::string>(), "connector_problem", added, pass.now_us());
    txn.commit();
  }
}

// A resolution notice for each open problem notice whose incident is resolved.
void ConnectorResolutions(pqxx::connection& conn, Pass& pass) {
  pqxx::work txn(conn);
  const pqxx::result done = txn.exec_params(
      "SELECT n.id, n.customer_id, n.connectors[1], i.id, " +
          Micros("coalesce(i.resolved_at, $1::timestamptz)") + ", " + Micros("i.created_at") +
          " FROM notices n JOIN incident_states i ON n.dedup_key = 'incident:' || "
          "i.id || ':problem'"
          " WHERE n.open AND i.status = 'resolved' ORDER BY n.id LIMIT 500",
      Ts(pass.now_us()));
  std::map<std::string, int> added;  // by incident id
  for (const auto& row : done) {
    const std::string connector = row[2].is_null() ? "" : row[2].as<std::string>();
    const std::string customer = row[1].as<std::string>();
    NoticeFacts text;
    text.resolved_us = row[4].as<int64_t>();
    text.at_us = row[5].as<int64_t>();
    added[row[3].as<std::string>()] +=
        pass.Add(txn, {customer,
                       "connector_resolved",
                       {connector},
                       pass.Compose(txn, customer, "connector_resolved", {connector}, text),
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
    const std::string customer = p[1].as<std::string>();
    NoticeFacts text;
    text.amount_minor = p[3].as<int64_t>();
    text.currency = p[4].as<std::string>();
    text.reason = p[5].as<std::string>();
    text.at_us = p[6].as<int64_t>();
    pass.Add(txn, {customer,
                   "payment_failed",
                   {connector},
                   pass.Compose(txn, customer, "payment_failed", {connector}, text),
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
          {"end_noticed", !r[8].is_null()},
          {"revision", r[9].as<int>()},
          {"updated_by", r[10].is_null() ? Json() : Json(r[10].as<std::string>())},
          {"cancelled", !r[11].is_null()},
          {"cancelled_at", r[11].is_null() ? Json() : Json(Ts(r[11].as<int64_t>()))},
          {"cancelled_by", r[12].is_null() ? Json() : Json(r[12].as<std::string>())}};
}

std::string WindowColumns() {
  return "id, array_to_json(connectors)::text, " + Micros("starts_at") + ", " + Micros("ends_at") +
         ", message, created_by, " + Micros("created_at") +
         ", advance_noticed_at, end_noticed_at, revision, updated_by, " + Micros("cancelled_at") +
         ", cancelled_by";
}

}  // namespace

bool InMaintenance(pqxx::work& txn, const std::map<std::string, std::string>& labels,
                   int64_t now_us) {
  auto it = labels.find("connector");
  if (it == labels.end() || it->second.empty()) return false;
  return txn
      .exec_params(
          "SELECT EXISTS (SELECT 1 FROM maintenance_windows"
          " WHERE connectors @> ARRAY[$1::text] AND cancelled_at IS NULL"
          "   AND starts_at <= $2::timestamptz"
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

WindowChange UpdateWindow(pqxx::work& txn, int64_t id, std::string_view body, const std::string& by,
                          int64_t now_us) {
  const pqxx::result r = txn.exec_params(
      "SELECT array_to_json(connectors)::text, " + Micros("starts_at") + ", " + Micros("ends_at") +
          ", message, cancelled_at IS NOT NULL FROM maintenance_windows WHERE id = $1 FOR UPDATE",
      id);
  if (r.empty()) return {404, "no such maintenance window", "id", nullptr};
  MaintenanceRequest current;
  current.connectors = Strings(r[0][0].as<std::string>());
  current.starts_us = r[0][1].as<int64_t>();
  current.ends_us = r[0][2].as<int64_t>();
  current.message = r[0][3].as<std::string>();
  if (std::string e = WindowLocked(r[0][4].as<bool>(), current.ends_us, now_us); !e.empty())
    return {409, e, "id", nullptr};
  auto parsed = ParseMaintenancePatch(body, current, now_us);
  if (auto* e = std::get_if<FieldError>(&parsed)) return {400, e->message, e->field, nullptr};
  const MaintenanceRequest& w = std::get<MaintenanceRequest>(parsed);
  const pqxx::result u = txn.exec_params(
      "UPDATE maintenance_windows SET connectors = ARRAY(SELECT jsonb_array_elements_text("
      "$2::jsonb)), starts_at = $3::timestamptz, ends_at = $4::timestamptz, message = $5,"
      " revision = revision + 1, updated_by = $6, updated_at = $7::timestamptz"
      " WHERE id = $1 RETURNING " +
          WindowColumns(),
      id, Json(w.connectors).dump(), Ts(w.starts_us), Ts(w.ends_us), w.message, by, Ts(now_us));
  return {200, "", "", WindowJson(u[0])};
}

WindowChange CancelWindow(pqxx::work& txn, int64_t id, const std::string& by, int64_t now_us) {
  const pqxx::result r = txn.exec_params(
      "SELECT " + Micros("ends_at") +
          ", cancelled_at IS NOT NULL FROM maintenance_windows WHERE id = $1 FOR UPDATE",
      id);
  if (r.empty()) return {404, "no such maintenance window", "id", nullptr};
  if (std::string e = WindowLocked(r[0][1].as<bool>(), r[0][0].as<int64_t>(), now_us); !e.empty())
    return {409, e, "id", nullptr};
  const pqxx::result u = txn.exec_params(
      "UPDATE maintenance_windows SET cancelled_at = $2::timestamptz, cancelled_by = $3"
      " WHERE id = $1 RETURNING " +
          WindowColumns(),
      id, Ts(now_us), by);
  return {200, "", "", WindowJson(u[0])};
}

CustomerPrefs GetPreferences(pqxx::work& txn, const std::string& customer_id) {
  CustomerPrefs p;
  const pqxx::result r = txn.exec_params(
      "SELECT locale, time_zone FROM notice_preferences WHERE customer_id = $1", customer_id);
  if (!r.empty()) p = {r[0][0].as<std::string>(), r[0][1].as<std::string>()};
  return p;
}

void SetPreferences(pqxx::work& txn, const std::string& customer_id, const CustomerPrefs& prefs) {
  txn.exec_params(
      "INSERT INTO notice_preferences (customer_id, locale, time_zone) VALUES ($1, $2, $3)"
      " ON CONFLICT (customer_id) DO UPDATE SET locale = EXCLUDED.locale,"
      " time_zone = EXCLUDED.time_zone, updated_at = now()",
      customer_id, prefs.locale, prefs.time_zone);
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
                           "$2::timestamptz AND cancelled_at IS NULL"
                           " ORDER BY starts_at, id LIMIT 1000",
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

void AddTelegramContact(pqxx::work& txn, const std::string& customer_id,
                        const std::string& chat_id) {
  txn.exec_params(
      "INSERT INTO notice_contacts (customer_id, channel, address) VALUES ($1, 'telegram', $2)"
      " ON CONFLICT DO NOTHING",
      customer_id, chat_id);
}

int RemoveTelegramContacts(pqxx::work& txn, const std::string& chat_id) {
  return static_cast<int>(
      txn.exec_params("DELETE FROM notice_contacts WHERE channel = 'telegram' AND address = $1",
                      chat_id)
          .affected_rows());
}

void SetContacts(pqxx::work& txn, const std::string& customer_id,
                 const std::vector<std::string>& emails) {
  txn.exec_params("DELETE FROM notice_contacts WHERE customer_id = $1 AND channel = 'email'",
                  customer_id);
  if (emails.empty()) return;
  txn.exec_params(
      "INSERT INTO notice_contacts (customer_id, channel, address)"
      " SELECT $1, 'email', e FROM jsonb_array_elements_text($2::jsonb) AS e",
      customer_id, Json(emails).dump());
}

namespace {

// The pass lease of transaction pooling (migration 0004): taken when free or
// expired; a holder that died leaves it for kPassLeaseSeconds at most.
constexpr int kPassLeaseSeconds = 300;

bool TakePassLease(pqxx::connection& conn, const std::string& holder) {
  pqxx::work txn(conn);
  const pqxx::result r = txn.exec_params(
      "INSERT INTO notice_pass_lease (name, holder, expires_at)"
      " VALUES ('pass', $1, clock_timestamp() + make_interval(secs => $2))"
      " ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder,"
      " expires_at = EXCLUDED.expires_at"
      " WHERE notice_pass_lease.expires_at < clock_timestamp() RETURNING 1",
      holder, kPassLeaseSeconds);
  txn.commit();
  return !r.empty();
}

void RunPass(pqxx::connection& conn, Pass& pass) {
  MaintenanceAdvance(conn, pass);
  MaintenanceChanges(conn, pass);
  MaintenanceCancellations(conn, pass);
  MaintenanceEnd(conn, pass);
  ConnectorProblems(conn, pass);
  ConnectorResolutions(conn, pass);
  PaymentFailures(conn, pass);
}

}  // namespace

StepCounts RunNoticeStep(pqxx::connection& conn, const NoticesConfig& config, int64_t now_us) {
  StepCounts counts;
  if (GetPgPooling() == PgPooling::kTransaction) {
    const std::string holder = HexEncode(RandomBytes(16));
    if (!TakePassLease(conn, holder)) {
      counts.skipped = true;
      return counts;
    }
    struct Release {
      pqxx::connection& conn;
      const std::string& holder;
      ~Release() {
        try {
          pqxx::work txn(conn);
          txn.exec_params(
              "UPDATE notice_pass_lease SET expires_at = clock_timestamp() - interval '1 second'"
              " WHERE name = 'pass' AND holder = $1",
              holder);
          txn.commit();
        } catch (const std::exception&) {  // expires by itself
        }
      }
    } release{conn, holder};
    Pass pass(config, now_us, &counts);
    RunPass(conn, pass);
    return counts;
  }
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
  RunPass(conn, pass);
  return counts;
}

}  // namespace bpmc::notices
