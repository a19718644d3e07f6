#pragma once
// The incident engine's work inside one transaction (engine.cpp opens and
// commits it). Throws pqxx exceptions.

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "engine_metrics.h"
#include "incidents/engine.h"
#include "notifier/notification.h"
#include "oncall/escalation.h"

namespace bpmc::incidents {

// One row of receiver_alert_events, as the engine reads it.
struct StoredEvent {
  int64_t id = 0;
  std::string source, dedup_key, status, outcome, group_key, escalation_policy;
  nlohmann::json routes = nlohmann::json::array();
  int64_t starts_us = 0;
  notifier::AlertView alert;
};

// Firings of one event batch (one transaction): the open incident of each group
// seen, and the alert rows still to write (Engine::Ops::Flush).
struct FiringBatch {
  struct Open {
    int64_t id = 0;
    std::string severity, connector;
    std::map<std::string, std::string> labels;
    bool dirty = false;         // severity, connector or labels changed since written
    bool created_here = false;  // opened by this batch
  };
  std::map<std::string, Open> open;                 // by group key
  nlohmann::json alerts = nlohmann::json::array();  // incident_alerts rows to upsert
};

class Engine::Ops {
 public:
  Ops(const Engine::Options& options, Engine::Metrics& metrics,
      std::function<void(const std::string&)> failure)
      : o_(options), metrics_(metrics), failure_(std::move(failure)) {}

  // A firing opens an incident for its group or joins the open one (its alert
  // row is written by Flush).
  void HandleFiring(pqxx::work& txn, FiringBatch& batch, const StoredEvent& ev, int64_t now);
  // Writes what HandleFiring buffered. Call before committing the batch.
  void Flush(pqxx::work& txn, FiringBatch& batch, int64_t now);
  // A resolution (after a Flush) marks the alert resolved in its open incidents
  // and resolves those whose alerts are all resolved. True when it enqueued messages.
  bool HandleResolved(pqxx::work& txn, FiringBatch& batch, const StoredEvent& ev, int64_t now);
  // Locks one incident whose escalation is due (SKIP LOCKED) and performs its
  // due steps. False when none was due. *enqueued is set when messages were enqueued.
  bool EscalateOne(pqxx::work& txn, int64_t now, bool* enqueued);
  // For an acknowledged incident EscalateOne picked: when its snooze ended or its
  // policy's ack_timeout passed (oncall::AcknowledgementEnds; `policy` null = none),
  // back to triggered, a timeline entry "snooze_ended" or "ack_timeout", and `state`
  // gets the resumption (the end returned); otherwise next_due_at becomes the end,
  // or NULL when there is none (nullopt).
  std::optional<oncall::AckEnd> ResumeIfAckEnded(pqxx::work& txn, int64_t id,
                                                 const oncall::EscalationPolicy* policy,
                                                 oncall::IncidentState* state, int64_t now);

  Engine::Outcome Acknowledge(pqxx::work& txn, int64_t id, const std::string& actor,
                              const std::string& via, int64_t now, bool* enqueued);
  Engine::Outcome Resolve(pqxx::work& txn, int64_t id, const std::string& actor,
                          const std::string& by, int64_t now, bool* enqueued);
  Engine::Outcome EscalateNow(pqxx::work& txn, int64_t id, const std::string& actor, int64_t now);
  // An acknowledged incident snoozed for `duration_us` (kAlready when not acknowledged).
  Engine::Outcome Snooze(pqxx::work& txn, int64_t id, const std::string& actor, int64_t duration_us,
                         int64_t now);
  // An open incident to triggered, `target` (a person or a schedule) paged now.
  Engine::Outcome Reassign(pqxx::work& txn, int64_t id, const std::string& actor,
                           const oncall::Target& target, int64_t now, bool* enqueued);
  Engine::Outcome AddNote(pqxx::work& txn, int64_t id, const std::string& actor,
                          const std::string& text, int64_t now);

  std::optional<IncidentRecord> Load(pqxx::work& txn, int64_t id);
  std::vector<IncidentRecord> List(pqxx::work& txn, const IncidentFilter& filter);

 private:
  // Inserts a new incident for `ev`'s group, with its first timeline rows.
  int64_t OpenIncident(pqxx::work& txn, const StoredEvent& ev, const std::string& group,
                       int64_t now);
  // A message of the escalation: one destination of one channel.
  struct Dest {
    std::string channel, destination, person;
  };
  std::vector<Dest> Expand(const oncall::PageAction& a, std::string* problem) const;
  bool IsPagerDuty(const std::string& channel) const;
  PageInput BaseInput(pqxx::work& txn, int64_t id);
  // The reader's locale and zone (oncall Person; ru and Moscow for anyone else) at `now`.
  void ForReader(PageInput* in, const std::string& person, int64_t now) const;
  // A firing page of `event` to one destination (counted in incident_pages).
  void PageDest(pqxx::work& txn, int64_t id, int64_t now, const Dest& d, const PageInput& base,
                const std::string& event, const nlohmann::json& extra);
  // Pages every contact method of on-call person `person` at once; false when
  // nothing was enqueued (not an on-call person, or no channel).
  bool PagePerson(pqxx::work& txn, int64_t id, int64_t now, const std::string& person,
                  const std::string& event, const std::string& actor, const nlohmann::json& extra);
  void Timeline(pqxx::work& txn, int64_t id, int64_t at, const std::string& kind,
                const std::string& actor = "",
                const nlohmann::json& detail = nlohmann::json::object(),
                const std::string& channel = "", const std::string& person = "",
                const std::string& result = "");
  // Enqueues `view` to (channel, destination) and records a 'notified' row.
  void Notify(pqxx::work& txn, int64_t id, int64_t now, const Dest& d,
              const notifier::AlertView& view, const nlohmann::json& extra);
  bool EchoAcknowledgement(pqxx::work& txn, int64_t id, int64_t now, const std::string& actor);
  bool SendResolution(pqxx::work& txn, int64_t id, int64_t now, const std::string& actor);

  const Engine::Options& o_;
  Engine::Metrics& metrics_;
  std::function<void(const std::string&)> failure_;
};

}  // namespace bpmc::incidents
