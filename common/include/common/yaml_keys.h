#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <set>
#include <string>

namespace bpmc {

// A configuration error found by a check below: the key path it names and
// what is wrong. Each config reader turns it into its own error type.
struct YamlKeyError {
  std::string key;
  std::string message;
};

// Checks that `node` (at key path `key`) is a mapping with only `allowed`
// keys. An unknown key is named as `key.name`, or `name` alone when `key` is
// `root_name` (the document's top level).
inline std::optional<YamlKeyError> CheckOnlyKeys(const YAML::Node& node, const std::string& key,
                                                 const std::set<std::string>& allowed,
                                                 const std::string& root_name = "") {
  if (!node.IsMap()) return YamlKeyError{key, "must be a mapping"};
  for (const auto& kv : node) {
    const std::string k = kv.first.as<std::string>();
    if (!allowed.count(k))
      return YamlKeyError{!root_name.empty() && key == root_name ? k : key + "." + k,
                          "unknown key"};
  }
  return std::nullopt;
}

}  // namespace bpmc
