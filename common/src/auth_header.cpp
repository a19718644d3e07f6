#include "common/auth_header.h"

#include <cctype>

namespace bpmc {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<std::string_view> AuthCredentials(std::string_view header, std::string_view scheme) {
  header = TrimSpaces(header);
  if (header.size() < scheme.size()) return std::nullopt;
  for (size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(header[i])) != scheme[i]) return std::nullopt;
  if (header.size() == scheme.size()) return std::string_view();
  if (!IsSpace(header[scheme.size()])) return std::nullopt;
  return TrimSpaces(header.substr(scheme.size()));
}

}  // namespace bpmc
