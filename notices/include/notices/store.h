#pragma once
// The notices library's use of PostgreSQL: its own tables (notices/migrations), the
// views billing and incidents publish for it (billing_subscribers,
// billing_failed_payments, incident_states) and incidents' timeline writer
// (incidents/timeline.h). Functions throw pqxx exceptions.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <vector>

#include "notices/config.h"
#include "notices/rules.h"

namespace bpmc::notices {

// The mute hook of the receiver and the incidents engine: true when `labels` has a
// non-empty `connector` label listed by a maintenance window active at `now_us`
// (starts_at <= now < ends_at). One indexed query.
bool InMaintenance(pqxx::work& txn, const std::map<std::string, std::string>& labels,
                   int64_t now_us);

// Inserts a window; returns it as JSON (see WindowJson in docs/NOTICES.md).
nlohmann::json CreateWindow(pqxx::work& txn, const MaintenanceRequest& request,
                            const std::string& created_by);
// The outcome of editing or cancelling a window: 200 and the window, or the
// error (404 unknown id, 409 cancelled or over, 400 naming the field) with nothing
// changed.
struct WindowChange {
  int status = 200;
  std::string error;
  std::string field;
  nlohmann::json window;
};
// PATCH: `body` (ParseMaintenancePatch) over the window, revision + 1, updated_by.
// The engine then tells the subscribers (maintenance_changed) if they were told.
WindowChange UpdateWindow(pqxx::work& txn, int64_t id, std::string_view body, const std::string& by,
                          int64_t now_us);
// DELETE: marks the window cancelled (the row stays, for the record and the
// cancellation notices): it mutes nothing more and the engine tells those told.
WindowChange CancelWindow(pqxx::work& txn, int64_t id, const std::string& by, int64_t now_us);

// A customer's locale and time zone (the defaults when it has no row), and setting them.
CustomerPrefs GetPreferences(pqxx::work& txn, const std::string& customer_id);
void SetPreferences(pqxx::work& txn, const std::string& customer_id, const CustomerPrefs& prefs);

// Windows that end after now_us - 7 days, by start time (cancelled ones too, marked).
nlohmann::json ListWindows(pqxx::work& txn, int64_t now_us);

// A page of the feed `access` allows, newest first: ids below `before_id` (0 = from the
// newest), at most `limit`. {"notices": [...], "next_before": id or null}.
nlohmann::json ListNotices(pqxx::work& txn, const FeedAccess& access, int64_t before_id, int limit);

// The service status of one customer's connectors (those of its subscriptions live at
// now_us), by display name: each with its ConnectorStatus, open incidents (id, status,
// since) and maintenance windows in progress or to come (id, times, the admin's
// message). Nothing of other customers or other connectors.
// {"customer", "as_of", "connectors": [{"id","name","status","incidents","maintenance"}]}
nlohmann::json CustomerStatus(pqxx::work& txn, const std::string& customer_id, int64_t now_us);

// A customer's telegram contact (a private chat id), added by "/start <code>" with the
// customer's link code (docs/NOTICES.md "Telegram"); adding it again changes nothing.
void AddTelegramContact(pqxx::work& txn, const std::string& customer_id,
                        const std::string& chat_id);
// "/stop" in a chat: removes it as a telegram contact of every customer; returns how many.
int RemoveTelegramContacts(pqxx::work& txn, const std::string& chat_id);

// Replaces a customer's e-mail contact addresses (telegram contacts are kept).
void SetContacts(pqxx::work& txn, const std::string& customer_id,
                 const std::vector<std::string>& emails);

// What one engine pass did: notices created by kind, e-mail outcomes by result
// (enqueued = outbox rows; no_channel, no_contact, rate_limited = notices not e-mailed).
struct StepCounts {
  std::map<std::string, int> notices;
  std::map<std::string, int> emails;
  bool skipped = false;  // another receiver was running its pass
  int enqueued() const {
    auto it = emails.find("enqueued");
    return it == emails.end() ? 0 : it->second;
  }
};

// One pass of the notice engine at `now_us`, under a session advisory lock (two
// receivers never run a pass at once; the other skips): advance and end notices of
// maintenance windows, connector problem and resolution notices of incidents,
// payment failure notices. Each notice is inserted once per (customer, dedup key),
// and e-mailed through the outbox in the transaction that inserts it. Missing source
// tables (no exporter or incidents schema in this database) mean nothing to notice.
StepCounts RunNoticeStep(pqxx::connection& conn, const NoticesConfig& config, int64_t now_us);

}  // namespace bpmc::notices
