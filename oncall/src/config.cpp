#include "oncall/config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <set>

#include "common/process.h"
#include "common/time.h"
#include "common/time_format.h"
#include "common/yaml_keys.h"
#include "oncall/schedule.h"

namespace bpmc::oncall {
namespace {

constexpr int kMaxRepeat = 100;
constexpr int kMaxLevels = 50;

// Thrown while walking the YAML, caught once in ParseOnCallConfig.
struct Bad {
  std::string key;
  std::string message;
};

std::string Indexed(const std::string& key, size_t i) {
  return key + "[" + std::to_string(i) + "]";
}

template <typename T>
T Scalar(const YAML::Node& node, const std::string& key) {
  if (!node.IsScalar()) throw Bad{key, "must be a scalar"};
  try {
    return node.as<T>();
  } catch (const YAML::Exception&) {
    throw Bad{key, "has the wrong type"};
  }
}

// Checks that `node` is a mapping with only `allowed` keys.
void OnlyKeys(const YAML::Node& node, const std::string& key,
              const std::set<std::string>& allowed) {
  if (auto e = CheckOnlyKeys(node, key, allowed)) throw Bad{e->key, e->message};
}

std::string RequiredString(const YAML::Node& node, const std::string& key,
                           const std::string& name) {
  if (!node[name]) throw Bad{key + "." + name, "is required"};
  std::string value = Scalar<std::string>(node[name], key + "." + name);
  if (value.empty()) throw Bad{key + "." + name, "must not be empty"};
  return value;
}

void RequireSequence(const YAML::Node& node, const std::string& key) {
  if (!node.IsSequence()) throw Bad{key, "must be a list"};
}

// Ids become parts of step keys and URLs: keep them plain.
void CheckId(const std::string& id, const std::string& key) {
  if (id.empty() || id.size() > 64) throw Bad{key, "an id must have 1 to 64 characters"};
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '@';
    if (!ok) throw Bad{key, "'" + id + "' may only contain letters, digits and - _ . @"};
  }
}

// Channel names are the receiver's; here they only must not break step keys.
void CheckChannelName(const std::string& name, const std::string& key) {
  if (name.empty()) throw Bad{key, "must not be empty"};
  if (name.find_first_of("/ \t\r\n") != std::string::npos)
    throw Bad{key, "a channel name must not contain '/' or white space"};
}

int64_t Duration(const YAML::Node& node, const std::string& key) {
  const std::string text = Scalar<std::string>(node, key);
  auto micros = ParseDurationMicros(text);
  if (!micros) throw Bad{key, "must be a duration like 30m, 45s or 1h30m, got '" + text + "'"};
  return *micros;
}

// "HH:MM" or "HH:MM:SS" → seconds after midnight.
int TimeOfDay(const YAML::Node& node, const std::string& key) {
  const std::string text = Scalar<std::string>(node, key);
  const auto bad = Bad{key, "must be HH:MM or HH:MM:SS, got '" + text + "'"};
  if (text.size() != 5 && text.size() != 8) throw bad;
  int parts[3] = {0, 0, 0};
  for (size_t i = 0; i < text.size(); ++i) {
    if (i % 3 == 2) {
      if (text[i] != ':') throw bad;
    } else if (text[i] < '0' || text[i] > '9') {
      throw bad;
    } else {
      parts[i / 3] = parts[i / 3] * 10 + (text[i] - '0');
    }
  }
  if (parts[0] > 23 || parts[1] > 59 || parts[2] > 59) throw bad;
  return parts[0] * 3600 + parts[1] * 60 + parts[2];
}

// "YYYY-MM-DD" → days since 1970-01-01.
int64_t Date(const YAML::Node& node, const std::string& key) {
  const std::string text = Scalar<std::string>(node, key);
  auto micros = text.size() == 10 ? ParseRfc3339Micros(text + "T00:00:00Z") : std::nullopt;
  if (!micros) throw Bad{key, "must be a date YYYY-MM-DD, got '" + text + "'"};
  return *micros / kMicrosPerDay - (*micros % kMicrosPerDay < 0 ? 1 : 0);
}

int64_t Instant(const YAML::Node& node, const std::string& key) {
  const std::string text = Scalar<std::string>(node, key);
  auto micros = ParseRfc3339Micros(text);
  if (!micros) throw Bad{key, "must be an RFC 3339 time with an offset, got '" + text + "'"};
  return *micros;
}

std::string ReadSecret(const YAML::Node& node, const std::string& key) {
  const bool file = static_cast<bool>(node["address_file"]);
  const std::string name = Scalar<std::string>(node[file ? "address_file" : "address_env"],
                                               key + (file ? ".address_file" : ".address_env"));
  if (file) {
    std::optional<std::string> s = ReadTrimmedFile(name);
    if (!s) throw Bad{key + ".address_file", "cannot read " + name};
    if (s->empty()) throw Bad{key + ".address_file", name + " is empty"};
    return *s;
  }
  const char* v = std::getenv(name.c_str());
  if (v == nullptr || *v == '\0')
    throw Bad{key + ".address_env", "environment variable " + name + " is not set"};
  return v;
}

ContactType ParseContactType(const YAML::Node& node, const std::string& key) {
  const std::string text = Scalar<std::string>(node, key);
  for (ContactType t : {ContactType::kEmail, ContactType::kSlack, ContactType::kSms,
                        ContactType::kWebhook, ContactType::kPagerDuty, ContactType::kTelegram})
    if (text == ContactTypeName(t)) return t;
  throw Bad{key, "must be email, slack, sms, webhook, pagerduty or telegram, got '" + text + "'"};
}

ContactMethod ParseContactMethod(const YAML::Node& node, const std::string& key) {
  OnlyKeys(node, key,
           {"id", "type", "address", "address_env", "address_file", "chat_id", "channel", "delay"});
  ContactMethod m;
  if (!node["type"]) throw Bad{key + ".type", "is required"};
  m.type = ParseContactType(node["type"], key + ".type");
  m.id = node["id"] ? RequiredString(node, key, "id") : ContactTypeName(m.type);
  CheckId(m.id, key + ".id");
  const int sources =
      !!node["address"] + !!node["address_env"] + !!node["address_file"] + !!node["chat_id"];
  if (sources > 1) throw Bad{key, "give one of address, address_env, address_file, chat_id"};
  if (node["chat_id"] && m.type != ContactType::kTelegram)
    throw Bad{key + ".chat_id", "only with type: telegram"};
  if (node["address"]) m.address = RequiredString(node, key, "address");
  if (node["chat_id"]) m.address = RequiredString(node, key, "chat_id");
  if (m.type == ContactType::kTelegram && !m.address.empty()) {
    const std::string& c = m.address;
    const size_t digits = c.size() - (c[0] == '-' ? 1 : 0);
    if (digits == 0 || digits > 20 ||
        c.find_first_not_of("0123456789", c.size() - digits) != std::string::npos)
      throw Bad{key + ".chat_id", "must be a numeric Telegram chat id"};
  }
  if (node["address_env"] || node["address_file"]) m.address = ReadSecret(node, key);
  if (node["channel"]) {
    m.channel = Scalar<std::string>(node["channel"], key + ".channel");
    CheckChannelName(m.channel, key + ".channel");
  }
  // Telegram without a chat id: the chat the person binds with /start (ParsePerson).
  if (m.address.empty() && m.channel.empty() && m.type != ContactType::kTelegram)
    throw Bad{key + ".address", "is required (or a channel that carries the destination)"};
  if (node["delay"]) m.delay_micros = Duration(node["delay"], key + ".delay");
  return m;
}

Person ParsePerson(const std::string& id, const YAML::Node& node, const std::string& key) {
  CheckId(id, key);
  OnlyKeys(node, key, {"name", "contact_methods", "locale", "time_zone"});
  Person p;
  p.id = id;
  p.name = node["name"] ? RequiredString(node, key, "name") : id;
  if (node["locale"]) {
    p.locale = RequiredString(node, key, "locale");
    if (p.locale != "ru" && p.locale != "en") throw Bad{key + ".locale", "must be ru or en"};
  }
  if (node["time_zone"]) {
    p.time_zone = RequiredString(node, key, "time_zone");
    if (!IsKnownTimeZone(p.time_zone))
      throw Bad{key + ".time_zone", "unknown IANA time zone '" + p.time_zone + "'"};
  }
  const std::string methods_key = key + ".contact_methods";
  if (!node["contact_methods"]) throw Bad{methods_key, "is required"};
  RequireSequence(node["contact_methods"], methods_key);
  std::set<std::string> ids;
  for (size_t i = 0; i < node["contact_methods"].size(); ++i) {
    const std::string k = Indexed(methods_key, i);
    ContactMethod m = ParseContactMethod(node["contact_methods"][i], k);
    if (m.type == ContactType::kTelegram && m.address.empty()) m.address = "person:" + id;
    if (!ids.insert(m.id).second)
      throw Bad{k + ".id", "duplicate contact method id '" + m.id + "' (give each an id)"};
    p.contact_methods.push_back(std::move(m));
  }
  if (p.contact_methods.empty()) throw Bad{methods_key, "must not be empty"};
  return p;
}

int Weekday(const YAML::Node& node, const std::string& key) {
  const std::string text = Scalar<std::string>(node, key);
  static const char* kDays[7] = {"sunday",   "monday", "tuesday", "wednesday",
                                 "thursday", "friday", "saturday"};
  for (int d = 0; d < 7; ++d)
    if (text == kDays[d] || text == std::string(kDays[d], 3)) return d;
  throw Bad{key, "must be a day of the week like monday or mon, got '" + text + "'"};
}

Restriction ParseRestriction(const YAML::Node& node, const std::string& key) {
  OnlyKeys(node, key, {"type", "day", "start", "duration"});
  Restriction r;
  const std::string type = RequiredString(node, key, "type");
  if (type == "daily") {
    r.kind = Restriction::Kind::kDaily;
    if (node["day"]) throw Bad{key + ".day", "only with type: weekly"};
  } else if (type == "weekly") {
    r.kind = Restriction::Kind::kWeekly;
    if (!node["day"]) throw Bad{key + ".day", "is required with type: weekly"};
    r.weekday = Weekday(node["day"], key + ".day");
  } else {
    throw Bad{key + ".type", "must be daily or weekly, got '" + type + "'"};
  }
  if (!node["start"]) throw Bad{key + ".start", "is required"};
  r.start_seconds = TimeOfDay(node["start"], key + ".start");
  if (!node["duration"]) throw Bad{key + ".duration", "is required"};
  r.duration_micros = Duration(node["duration"], key + ".duration");
  const int64_t limit = r.kind == Restriction::Kind::kDaily ? kMicrosPerDay : 7 * kMicrosPerDay;
  if (r.duration_micros <= 0 || r.duration_micros >= limit)
    throw Bad{key + ".duration", r.kind == Restriction::Kind::kDaily
                                     ? "must be more than 0 and less than 24h"
                                     : "must be more than 0 and less than 7d"};
  return r;
}

// Sets the rotation type and the length of a turn.
void ParseRotation(const YAML::Node& node, const std::string& key, Layer* layer) {
  const std::string rotation = RequiredString(node, key, "rotation");
  const bool has_length = static_cast<bool>(node["shift_length"]);
  if (rotation == "daily" || rotation == "weekly") {
    layer->rotation = rotation == "daily" ? RotationType::kDaily : RotationType::kWeekly;
    layer->shift_days = rotation == "daily" ? 1 : 7;
    if (has_length) throw Bad{key + ".shift_length", "only with rotation: custom"};
    return;
  }
  if (rotation != "custom")
    throw Bad{key + ".rotation", "must be daily, weekly or custom, got '" + rotation + "'"};
  layer->rotation = RotationType::kCustom;
  if (!has_length) throw Bad{key + ".shift_length", "is required with rotation: custom"};
  const int64_t length = Duration(node["shift_length"], key + ".shift_length");
  if (length < kMicrosPerSecond || length > 366 * kMicrosPerDay)
    throw Bad{key + ".shift_length", "must be between 1s and 366d"};
  // Whole days are calendar days (the handoff keeps its local time); the rest is elapsed time.
  layer->shift_days = length % kMicrosPerDay == 0 ? static_cast<int>(length / kMicrosPerDay) : 0;
  layer->shift_micros = layer->shift_days == 0 ? length : 0;
}

Layer ParseLayer(const YAML::Node& node, const std::string& key, size_t index,
                 const OnCallConfig& config) {
  OnlyKeys(
      node, key,
      {"name", "rotation", "shift_length", "handoff", "start", "participants", "restrictions"});
  Layer layer;
  layer.name = node["name"] ? RequiredString(node, key, "name") : "layer " + std::to_string(index);
  ParseRotation(node, key, &layer);
  if (!node["handoff"]) throw Bad{key + ".handoff", "is required"};
  layer.handoff_seconds = TimeOfDay(node["handoff"], key + ".handoff");
  if (!node["start"]) throw Bad{key + ".start", "is required"};
  layer.start_day = Date(node["start"], key + ".start");
  const std::string pkey = key + ".participants";
  if (!node["participants"]) throw Bad{pkey, "is required"};
  RequireSequence(node["participants"], pkey);
  for (size_t i = 0; i < node["participants"].size(); ++i) {
    const std::string id = Scalar<std::string>(node["participants"][i], Indexed(pkey, i));
    if (!config.people.count(id)) throw Bad{Indexed(pkey, i), "unknown person '" + id + "'"};
    layer.participants.push_back(id);
  }
  if (layer.participants.empty()) throw Bad{pkey, "must not be empty"};
  if (const YAML::Node rs = node["restrictions"]) {
    RequireSequence(rs, key + ".restrictions");
    for (size_t i = 0; i < rs.size(); ++i)
      layer.restrictions.push_back(ParseRestriction(rs[i], Indexed(key + ".restrictions", i)));
  }
  return layer;
}

Schedule ParseSchedule(const std::string& id, const YAML::Node& node, const std::string& key,
                       const OnCallConfig& config) {
  CheckId(id, key);
  OnlyKeys(node, key, {"name", "time_zone", "layers"});
  Schedule s;
  s.id = id;
  s.name = node["name"] ? RequiredString(node, key, "name") : id;
  s.time_zone = RequiredString(node, key, "time_zone");
  if (!IsKnownTimeZone(s.time_zone))
    throw Bad{key + ".time_zone", "unknown IANA time zone '" + s.time_zone + "'"};
  if (!node["layers"]) throw Bad{key + ".layers", "is required"};
  RequireSequence(node["layers"], key + ".layers");
  for (size_t i = 0; i < node["layers"].size(); ++i)
    s.layers.push_back(ParseLayer(node["layers"][i], Indexed(key + ".layers", i), i, config));
  if (s.layers.empty()) throw Bad{key + ".layers", "must not be empty"};
  return s;
}

Override ParseOverride(const YAML::Node& node, const std::string& key, const OnCallConfig& config) {
  OnlyKeys(node, key, {"schedule", "person", "from", "to"});
  Override o;
  o.schedule = RequiredString(node, key, "schedule");
  if (!config.schedules.count(o.schedule))
    throw Bad{key + ".schedule", "unknown schedule '" + o.schedule + "'"};
  o.person = RequiredString(node, key, "person");
  if (!config.people.count(o.person))
    throw Bad{key + ".person", "unknown person '" + o.person + "'"};
  if (!node["from"]) throw Bad{key + ".from", "is required"};
  if (!node["to"]) throw Bad{key + ".to", "is required"};
  o.from_micros = Instant(node["from"], key + ".from");
  o.to_micros = Instant(node["to"], key + ".to");
  if (o.to_micros <= o.from_micros) throw Bad{key + ".to", "must be later than from"};
  return o;
}

Target ParseTarget(const YAML::Node& node, const std::string& key, const OnCallConfig& config) {
  OnlyKeys(node, key, {"person", "schedule", "channel"});
  if (node.size() != 1) throw Bad{key, "give exactly one of person, schedule, channel"};
  Target t;
  const std::string kind = node.begin()->first.as<std::string>();
  t.id = RequiredString(node, key, kind);
  if (kind == "person") {
    t.kind = Target::Kind::kPerson;
    if (!config.people.count(t.id)) throw Bad{key + ".person", "unknown person '" + t.id + "'"};
  } else if (kind == "schedule") {
    t.kind = Target::Kind::kSchedule;
    if (!config.schedules.count(t.id))
      throw Bad{key + ".schedule", "unknown schedule '" + t.id + "'"};
  } else {
    t.kind = Target::Kind::kChannel;
    CheckChannelName(t.id, key + ".channel");
  }
  return t;
}

Level ParseLevel(const YAML::Node& node, const std::string& key, const OnCallConfig& config) {
  OnlyKeys(node, key, {"delay", "targets"});
  Level level;
  if (!node["delay"]) throw Bad{key + ".delay", "is required"};
  level.delay_micros = Duration(node["delay"], key + ".delay");
  if (!node["targets"]) throw Bad{key + ".targets", "is required"};
  RequireSequence(node["targets"], key + ".targets");
  for (size_t i = 0; i < node["targets"].size(); ++i)
    level.targets.push_back(ParseTarget(node["targets"][i], Indexed(key + ".targets", i), config));
  if (level.targets.empty()) throw Bad{key + ".targets", "must not be empty"};
  return level;
}

EscalationPolicy ParsePolicy(const std::string& id, const YAML::Node& node, const std::string& key,
                             const OnCallConfig& config) {
  CheckId(id, key);
  OnlyKeys(node, key, {"name", "levels", "repeat", "ack_timeout"});
  EscalationPolicy p;
  p.id = id;
  p.name = node["name"] ? RequiredString(node, key, "name") : id;
  if (node["ack_timeout"]) {
    p.ack_timeout_micros = Duration(node["ack_timeout"], key + ".ack_timeout");
    // A week is longer than any incident should stay acknowledged unseen.
    if (p.ack_timeout_micros < 1'000'000 || p.ack_timeout_micros > 7 * 86'400'000'000)
      throw Bad{key + ".ack_timeout", "must be between 1s and 7d"};
  }
  if (node["repeat"]) {
    p.repeat = Scalar<int>(node["repeat"], key + ".repeat");
    if (p.repeat < 0 || p.repeat > kMaxRepeat)
      throw Bad{key + ".repeat", "must be between 0 and " + std::to_string(kMaxRepeat)};
  }
  if (!node["levels"]) throw Bad{key + ".levels", "is required"};
  RequireSequence(node["levels"], key + ".levels");
  int64_t round = 0;
  for (size_t i = 0; i < node["levels"].size(); ++i) {
    p.levels.push_back(ParseLevel(node["levels"][i], Indexed(key + ".levels", i), config));
    round += p.levels.back().delay_micros;
  }
  if (p.levels.empty()) throw Bad{key + ".levels", "must not be empty"};
  if (p.levels.size() > kMaxLevels)
    throw Bad{key + ".levels", "at most " + std::to_string(kMaxLevels) + " levels"};
  if (p.repeat > 0 && round == 0)
    throw Bad{key + ".repeat", "needs levels whose delays add up to more than 0"};
  return p;
}

// Calls parse(id, node, key) for each entry of the mapping root[section].
template <typename F>
void ForEachEntry(const YAML::Node& root, const std::string& section, F parse) {
  const YAML::Node node = root[section];
  if (!node || node.IsNull()) return;
  if (!node.IsMap()) throw Bad{section, "must be a mapping from id to entry"};
  for (const auto& kv : node) {
    const std::string id = kv.first.as<std::string>();
    parse(id, kv.second, section + "." + id);
  }
}

void ParseAll(const YAML::Node& root, OnCallConfig* config) {
  if (!root.IsMap()) throw Bad{"(root)", "the config must be a YAML mapping"};
  ForEachEntry(root, "people",
               [&](const std::string& id, const YAML::Node& n, const std::string& k) {
                 config->people[id] = ParsePerson(id, n, k);
               });
  ForEachEntry(root, "schedules",
               [&](const std::string& id, const YAML::Node& n, const std::string& k) {
                 config->schedules[id] = ParseSchedule(id, n, k, *config);
               });
  if (const YAML::Node overrides = root["overrides"]; overrides && !overrides.IsNull()) {
    RequireSequence(overrides, "overrides");
    for (size_t i = 0; i < overrides.size(); ++i)
      config->overrides.push_back(ParseOverride(overrides[i], Indexed("overrides", i), *config));
  }
  ForEachEntry(root, "escalation_policies",
               [&](const std::string& id, const YAML::Node& n, const std::string& k) {
                 config->escalation_policies[id] = ParsePolicy(id, n, k, *config);
               });
}

}  // namespace

const char* ContactTypeName(ContactType type) {
  switch (type) {
    case ContactType::kEmail:
      return "email";
    case ContactType::kSlack:
      return "slack";
    case ContactType::kSms:
      return "sms";
    case ContactType::kWebhook:
      return "webhook";
    case ContactType::kTelegram:
      return "telegram";
    case ContactType::kPagerDuty:
      return "pagerduty";
  }
  return "?";
}

bool ParseOnCallConfig(const YAML::Node& root, OnCallConfig* out, std::string* error) {
  return ParseOnCallConfig(root, nullptr, out, error);
}

bool ParseOnCallConfig(const YAML::Node& root, const ChannelCheck& check, OnCallConfig* out,
                       std::string* error) {
  OnCallConfig config;
  try {
    ParseAll(root, &config);
  } catch (const Bad& bad) {
    *error = bad.key + ": " + bad.message;
    return false;
  } catch (const YAML::Exception& e) {
    *error = std::string("(yaml): ") + e.what();
    return false;
  }
  if (check) {
    for (const ChannelUse& use : ChannelUses(config)) {
      const std::string complaint = check(use);
      if (!complaint.empty()) {
        *error = use.key + ": " + complaint;
        return false;
      }
    }
  }
  *out = std::move(config);
  return true;
}

std::vector<ChannelUse> ChannelUses(const OnCallConfig& config) {
  std::vector<ChannelUse> uses;
  for (const auto& [id, person] : config.people) {
    for (size_t i = 0; i < person.contact_methods.size(); ++i) {
      const ContactMethod& m = person.contact_methods[i];
      if (!m.channel.empty())
        uses.push_back(
            {Indexed("people." + id + ".contact_methods", i) + ".channel", m.channel, m.type});
    }
  }
  for (const auto& [id, policy] : config.escalation_policies) {
    for (size_t l = 0; l < policy.levels.size(); ++l) {
      const std::string level_key = Indexed("escalation_policies." + id + ".levels", l);
      for (size_t t = 0; t < policy.levels[l].targets.size(); ++t) {
        const Target& target = policy.levels[l].targets[t];
        if (target.kind == Target::Kind::kChannel)
          uses.push_back(
              {Indexed(level_key + ".targets", t) + ".channel", target.id, std::nullopt});
      }
    }
  }
  return uses;
}

std::optional<int64_t> ParseDurationMicros(std::string_view text) {
  if (text == "0") return 0;
  if (text.empty()) return std::nullopt;
  constexpr int64_t kMax = 3660 * kMicrosPerDay;  // ten years and then some
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    int64_t value = 0;
    const size_t digits_at = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      value = value * 10 + (text[i] - '0');
      if (value > kMax) return std::nullopt;
      ++i;
    }
    const size_t unit_at = i;
    while (i < text.size() && text[i] >= 'a' && text[i] <= 'z') ++i;
    if (i == digits_at || unit_at == digits_at || unit_at == i) return std::nullopt;
    const std::string_view unit = text.substr(unit_at, i - unit_at);
    int64_t scale = 0;
    if (unit == "d")
      scale = kMicrosPerDay;
    else if (unit == "h")
      scale = 3600 * kMicrosPerSecond;
    else if (unit == "m")
      scale = 60 * kMicrosPerSecond;
    else if (unit == "s")
      scale = kMicrosPerSecond;
    else if (unit == "ms")
      scale = 1000;
    else
      return std::nullopt;
    if (value > kMax / scale) return std::nullopt;
    total += value * scale;
    if (total > kMax) return std::nullopt;
  }
  return total;
}

}  // namespace bpmc::oncall
