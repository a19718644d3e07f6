#include "webhook_receiver/severity.h"

#include <cctype>
#include <map>

namespace bpmc::webhook_receiver {

std::optional<std::string> NormalizeSeverity(std::string_view raw) {
  static const std::map<std::string, const char*, std::less<>> kWords = {
      {"critical", kCritical},
      {"crit", kCritical},
      {"fatal", kCritical},
      {"emergency", kCritical},
      {"emerg", kCritical},
      {"alert", kCritical},
      {"page", kCritical},
      {"error", kCritical},
      {"err", kCritical},
      {"high", kCritical},
      {"p1", kCritical},
      {"sev1", kCritical},
      {"sev-1", kCritical},
      {"urgent", kCritical},
      {"disaster", kCritical},
      {"warning", kWarning},
      {"warn", kWarning},
      {"medium", kWarning},
      {"moderate", kWarning},
      {"major", kWarning},
      {"minor", kWarning},
      {"p2", kWarning},
      {"p3", kWarning},
      {"sev2", kWarning},
      {"sev3", kWarning},
      {"sev-2", kWarning},
      {"sev-3", kWarning},
      {"info", kInfo},
      {"informational", kInfo},
      {"notice", kInfo},
      {"debug", kInfo},
      {"low", kInfo},
      {"none", kInfo},
      {"ok", kInfo},
      {"success", kInfo},
      {"p4", kInfo},
      {"p5", kInfo},
      {"sev4", kInfo},
      {"sev5", kInfo},
  };
  std::string word;
  for (char c : raw) {
    if (c == ' ' || c == '\t') continue;
    word.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  auto it = kWords.find(word);
  if (it == kWords.end()) return std::nullopt;
  return std::string(it->second);
}

std::string ClassifySeverity(std::string_view raw, const std::string& default_severity) {
  auto s = NormalizeSeverity(raw);
  return s ? *s : default_severity;
}

}  // namespace bpmc::webhook_receiver
