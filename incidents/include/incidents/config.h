#pragma once
// The `incidents:` section of bpmc-receiver's YAML (docs/INCIDENTS.md).

#include <cstdint>
#include <string>

#include "notifier/config.h"
#include "oncall/model.h"

namespace YAML {
class Node;
}

namespace bpmc::incidents {

struct IncidentsConfig {
  // Key of the HMAC that signs acknowledgement links (ack_link_secret_env or
  // ack_link_secret_file; never in the YAML). Empty: pages carry no link and
  // /ack/... answers 404. Receivers sharing a database must share it.
  std::string ack_link_secret;
  // Key of the HMAC that signs the URLs of the on-call calendar feeds
  // (ical_feed_secret_env or ical_feed_secret_file; oncall/ical.h). Empty: the
  // feeds answer 404. Changing it revokes every subscribed URL.
  std::string ical_feed_secret;
  // Where people reach this receiver, for the links in pages
  // ("https://alerts.example.com"); no trailing slash.
  std::string public_url = "http://127.0.0.1:9471";
  int64_t ack_link_ttl_micros = 24LL * 3600 * 1000000;  // a link works this long after its page
  // Longest sleep of the incident engine between passes (new alert events are
  // picked up within it; escalation steps wake it at their due time).
  int64_t poll_interval_micros = 1000000;
  int event_batch = 200;  // alert events turned into incidents per transaction
};

// Reads `node` (the value of `incidents:`; a null node leaves the defaults)
// into *out. Unknown keys and bad values fail with *error = "incidents.<key>:
// <reason>". Secrets are read here. Thread-safe.
bool ParseIncidentsConfig(const YAML::Node& node, IncidentsConfig* out, std::string* error);

// The receiver's channel type that carries a contact method of `type`.
notifier::ChannelType ChannelTypeFor(oncall::ContactType type);

// The receiver channel a contact method without `channel:` goes through: the
// first channel (by name) of its type, or "" when there is none.
std::string DefaultChannelFor(const notifier::NotifierConfig& channels, oncall::ContactType type);

// Parses the on-call sections of the receiver's YAML root (people, schedules,
// overrides, escalation_policies) with oncall::ParseOnCallConfig, checking every
// channel they name against `channels` (known, and of the contact method's type)
// and that every contact method without a channel has a channel of its type.
// *error = "<key path>: <reason>" on failure.
bool ParseOnCallSections(const YAML::Node& root, const notifier::NotifierConfig& channels,
                         oncall::OnCallConfig* out, std::string* error);

}  // namespace bpmc::incidents
