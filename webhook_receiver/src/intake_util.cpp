#include "intake_util.h"

#include <algorithm>
#include <cstdlib>
#include <map>

#include "common/ids.h"
#include "common/json_depth.h"
#include "common/time_format.h"

namespace bpmc::webhook_receiver::intake {

Json ParseBody(std::string_view body) {
  if (auto path = FindTooDeep(body))
    throw Refusal{"body nests JSON deeper than " + std::to_string(kMaxJsonDepth) + " levels at " +
                      (path->empty() ? std::string("the top") : *path),
                  *path};
  try {
    return Json::parse(body.begin(), body.end());
  } catch (const Json::exception& e) {
    throw Refusal{std::string("body is not valid JSON: ") + e.what(), ""};
  }
}

Json ParseObject(std::string_view body) {
  Json root = ParseBody(body);
  if (!root.is_object()) throw Refusal{"the payload must be a JSON object", ""};
  return root;
}

std::string Clean(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), '\0'), s.end());
  return s;
}

std::string Text(const Json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null() || it->is_object() || it->is_array()) return "";
  if (it->is_string()) return Clean(it->get<std::string>());
  return it->dump();
}

std::optional<std::string> OptString(const Json& obj, const char* key, const std::string& field) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) throw Refusal{field + " must be a string", field};
  return Clean(it->get<std::string>());
}

std::string ReqString(const Json& obj, const char* key, const std::string& field) {
  auto s = OptString(obj, key, field);
  if (!s) throw Refusal{field + " is required", field};
  return *s;
}

std::map<std::string, std::string> StringMap(const Json& obj, const char* key,
                                             const std::string& field, bool strict) {
  std::map<std::string, std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_object()) throw Refusal{field + " must be an object", field};
  for (auto kv = it->begin(); kv != it->end(); ++kv) {
    if (kv.value().is_string()) {
      out[Clean(kv.key())] = Clean(kv.value().get<std::string>());
    } else if (strict) {
      throw Refusal{field + "." + kv.key() + " must be a string", field + "." + kv.key()};
    } else if (!kv.value().is_null()) {
      out[Clean(kv.key())] = Clean(kv.value().dump());
    }
  }
  return out;
}

std::optional<int64_t> OptTime(const Json& obj, const char* key, const std::string& field) {
  auto s = OptString(obj, key, field);
  if (!s || s->empty() || s->rfind("0001-01-01", 0) == 0) return std::nullopt;
  auto t = ParseRfc3339Micros(*s);
  if (!t) throw Refusal{field + " is not an RFC 3339 time: '" + *s + "'", field};
  return t;
}

std::optional<int64_t> EpochMillis(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) return std::nullopt;
  double ms = 0;
  if (it->is_number()) {
    ms = it->get<double>();
  } else if (it->is_string()) {
    const std::string s = it->get<std::string>();
    char* end = nullptr;
    ms = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size()) return std::nullopt;
  } else {
    return std::nullopt;
  }
  // 1e15 ms is year 33658: anything above is not a time.
  if (!(ms > 0 && ms < 1e15)) return std::nullopt;
  return static_cast<int64_t>(ms) * 1000;
}

std::string ShortHash(std::string_view text) { return HexEncode(Sha256(text).substr(0, 8)); }

void Start(IncomingAlert* a, Source source, bool firing) {
  a->view.source = SourceName(source);
  a->view.status = firing ? "firing" : "resolved";
}

std::string LabelName(std::string_view raw) {
  std::string out;
  for (char c : raw) {
    const bool ok =
        c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    out.push_back(ok ? c : '_');
  }
  if (!out.empty() && out[0] >= '0' && out[0] <= '9') out.insert(out.begin(), '_');
  return out;
}

void SetDedupKey(IncomingAlert* a, std::string key, const std::string& field) {
  if (key.empty()) throw Refusal{field + " must not be empty", field};
  if (key.size() > kMaxDedupKey)
    throw Refusal{field + " is longer than " + std::to_string(kMaxDedupKey) + " bytes", field};
  a->view.dedup_key = std::move(key);
}

}  // namespace bpmc::webhook_receiver::intake
