#pragma once
// The incident timeline's one writer (incident_timeline is incidents' table):
// the engine records pages, acknowledgements and notes through it, and other
// libraries (notices/) record what they did about an incident.

#include <cstdint>
#include <pqxx/transaction>
#include <string>

namespace bpmc::incidents {

struct TimelineRecord {
  int64_t incident_id = 0;
  int64_t at_us = 0;          // microseconds since the epoch
  std::string kind;           // "page", "ack", "note", "notice", ...
  std::string actor;          // who did it: a person, "escalation", "notices", ...
  std::string channel;        // page attempts: the channel ("" otherwise)
  std::string person;         // page attempts: the person paged ("" otherwise)
  std::string result;         // page attempts: the outcome ("" otherwise)
  std::string detail = "{}";  // a JSON object
};

// Appends `record` to the incident's timeline inside `txn`.
void AppendTimeline(pqxx::work& txn, const TimelineRecord& record);

}  // namespace bpmc::incidents
