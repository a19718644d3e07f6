#include "exporter/http.h"

#include "http_util.h"

namespace bpmc::exporter {
namespace {
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 &&
               HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}
}  // namespace

std::map<std::string, std::string> ParseQuery(const std::string& query) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start <= query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    const std::string part = query.substr(start, end - start);
    if (!part.empty()) {
      const size_t eq = part.find('=');
      if (eq == std::string::npos) {
        out[PercentDecode(part)] = "";
      } else {
        out[PercentDecode(part.substr(0, eq))] = PercentDecode(part.substr(eq + 1));
      }
    }
    start = end + 1;
  }
  return out;
}

HttpResponse JsonError(int status, const std::string& message, const std::string& field) {
  HttpResponse r;
  r.status = status;
  r.body = ErrorBody(message, field);
  return r;
}

}  // namespace bpmc::exporter
