#include <algorithm>
#include <cctype>
#include <cstdint>

#include "recorders/smtp_recorder.h"
#include "text_codec.h"

namespace bpmc::recorders {
namespace {

// Decodes "=?UTF-8?B?...?=" words (other text kept; folding whitespace between words dropped).
std::string DecodeWords(const std::string& value) {
  std::string out;
  size_t pos = 0;
  bool last_was_word = false;
  while (pos < value.size()) {
    const size_t start = value.find("=?", pos);
    if (start == std::string::npos) {
      out += value.substr(pos);
      break;
    }
    const std::string between = value.substr(pos, start - pos);
    const bool blank = between.find_first_not_of(" \t\r\n") == std::string::npos;
    if (!(last_was_word && blank)) out += between;
    const size_t q1 = value.find('?', start + 2);
    const size_t q2 = q1 == std::string::npos ? q1 : value.find('?', q1 + 1);
    const size_t end = q2 == std::string::npos ? q2 : value.find("?=", q2 + 1);
    if (end == std::string::npos) {
      out += value.substr(start);
      break;
    }
    const std::string enc = Lower(value.substr(q1 + 1, q2 - q1 - 1));
    const std::string text = value.substr(q2 + 1, end - q2 - 1);
    out += enc == "b" ? Base64Decode(text) : text;
    pos = end + 2;
    last_was_word = true;
  }
  return out;
}

// Splits "headers\r\n\r\nbody"; unfolds continuation lines.
void SplitEntity(const std::string& entity,
                 std::vector<std::pair<std::string, std::string>>* headers, std::string* body) {
  const size_t sep = entity.find("\r\n\r\n");
  const std::string head = entity.substr(0, sep);
  *body = sep == std::string::npos ? "" : entity.substr(sep + 4);
  size_t pos = 0;
  while (pos < head.size()) {
    size_t eol = head.find("\r\n", pos);
    if (eol == std::string::npos) eol = head.size();
    std::string line = head.substr(pos, eol - pos);
    pos = eol + 2;
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t') && !headers->empty()) {
      headers->back().second += line;
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    headers->emplace_back(Lower(line.substr(0, colon)), value);
  }
  for (auto& h : *headers) h.second = DecodeWords(h.second);
}

std::string Find(const std::vector<std::pair<std::string, std::string>>& headers,
                 const std::string& name) {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

std::string DecodeBody(const std::vector<std::pair<std::string, std::string>>& headers,
                       const std::string& body) {
  return Lower(Find(headers, "content-transfer-encoding")) == "base64" ? Base64Decode(body) : body;
}

}  // namespace

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string Upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

std::string Base64Decode(const std::string& in) {
  std::string out;
  uint32_t val = 0;
  int bits = -8;
  for (unsigned char c : in) {
    int d;
    if (c >= 'A' && c <= 'Z')
      d = c - 'A';
    else if (c >= 'a' && c <= 'z')
      d = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      d = c - '0' + 52;
    else if (c == '+')
      d = 62;
    else if (c == '/')
      d = 63;
    else
      continue;
    val = ((val << 6) | static_cast<uint32_t>(d)) & 0xFFFFFF;  // only the last 24 bits matter
    bits += 6;
    if (bits >= 0) {
      out += static_cast<char>((val >> bits) & 0xFF);
      bits -= 8;
    }
  }
  return out;
}

std::string ParsedMail::Header(const std::string& name) const { return Find(headers, Lower(name)); }

ParsedMail ParseMail(const std::string& data) {
  ParsedMail mail;
  std::string body;
  SplitEntity(data, &mail.headers, &body);
  const std::string type = Find(mail.headers, "content-type");
  const size_t b = type.find("boundary=\"");
  if (Lower(type).rfind("multipart/", 0) != 0 || b == std::string::npos) {
    (Lower(type).find("text/html") == 0 ? mail.html : mail.text) = DecodeBody(mail.headers, body);
    return mail;
  }
  const std::string boundary = "--" + type.substr(b + 10, type.find('"', b + 10) - b - 10);
  size_t pos = body.find(boundary);
  while (pos != std::string::npos) {
    pos += boundary.size();
    if (body.compare(pos, 2, "--") == 0) break;
    const size_t next = body.find(boundary, pos);
    const std::string part =
        body.substr(pos + 2, (next == std::string::npos ? body.size() : next) - pos - 2);
    std::vector<std::pair<std::string, std::string>> headers;
    std::string part_body;
    SplitEntity(part, &headers, &part_body);
    const std::string part_type = Lower(Find(headers, "content-type"));
    if (part_type.rfind("text/plain", 0) == 0) mail.text = DecodeBody(headers, part_body);
    if (part_type.rfind("text/html", 0) == 0) mail.html = DecodeBody(headers, part_body);
    pos = next;
  }
  return mail;
}

}  // namespace bpmc::recorders
