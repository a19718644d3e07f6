#include "common/pii.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/utf8.h"

namespace bpmc {
namespace {

// ------------------------------------------------------------- ScrubPii ----

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAsciiAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsAsciiWord(char c) { return IsAsciiAlpha(c) || IsDigit(c) || c == '_'; }

// A letter outside ASCII, roughly: Latin-1 letters and everything above
// except the common punctuation blocks (so «quotes», dashes and the like end
// an address, while Cyrillic and other scripts belong to it).
bool IsNonAsciiLetter(uint32_t cp) {
  if (cp < 0xc0 || cp == 0xd7 || cp == 0xf7) return false;
  if (cp >= 0x2000 && cp <= 0x2bff) return false;  // punctuation, symbols, arrows
  if (cp >= 0x3000 && cp <= 0x303f) return false;  // CJK punctuation
  if (cp >= 0xfe30 && cp <= 0xfe4f) return false;
  if (cp >= 0xff00 && cp <= 0xff65) return false;  // full-width punctuation
  return cp != 0xfeff && cp != 0xfffd;
}

// Length of the letter sequence starting at s[i] (non-ASCII), or 0.
size_t LetterAt(std::string_view s, size_t i) {
  uint32_t cp = 0;
  const size_t len = DecodeUtf8(s, i, &cp);
  return len > 1 && IsNonAsciiLetter(cp) ? len : 0;
}

// Start of the UTF-8 sequence that ends just before `end`, skipping back over
// continuation bytes (at most 3).
size_t SequenceStartBefore(std::string_view s, size_t end) {
  size_t i = end - 1;
  for (int k = 0; k < 3 && i > 0 && (static_cast<unsigned char>(s[i]) & 0xc0) == 0x80; ++k) --i;
  return i;
}

bool IsLocalAscii(char c) {
  return IsAsciiAlpha(c) || IsDigit(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

// Pass 1: "scheme://USERINFO@host" -> "scheme://[email]@host".
std::string ScrubUrlUserinfo(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t copied = 0;
  size_t pos = 0;
  while ((pos = s.find("://", pos)) != std::string_view::npos) {
    const size_t start = pos + 3;
    size_t j = start;
    while (j < s.size() && j - start < 512) {
      const char c = s[j];
      if (c == '@' || c == '/' || c == '?' || c == '#' || c == '<' || c == '>' || c == '"' ||
          c == '\'' || std::isspace(static_cast<unsigned char>(c)))
        break;
      ++j;
    }
    if (j < s.size() && s[j] == '@' && j > start) {
      out.append(s.substr(copied, start - copied));
      out.append("[email]");
      copied = j;
    }
    pos = j > start ? j : start;
  }
  out.append(s.substr(copied));
  return out;
}

// The end of the host part of an e-mail address whose '@' is at `at`, or
// `at` when what follows is not a domain with a plausible top-level label.
size_t EmailDomainEnd(std::string_view s, size_t at) {
  std::vector<std::pair<size_t, size_t>> labels;  // [begin, end)
  size_t i = at + 1;
  while (i < s.size() && i - at <= 253) {
    const size_t begin = i;
    while (i < s.size()) {
      if (IsAsciiAlpha(s[i]) || IsDigit(s[i]) || s[i] == '-') {
        ++i;
      } else if (static_cast<unsigned char>(s[i]) >= 0x80) {
        const size_t len = LetterAt(s, i);
        if (len == 0) break;
        i += len;
      } else {
        break;
      }
    }
    if (i == begin) break;
    labels.emplace_back(begin, i);
    if (i + 1 < s.size() && s[i] == '.') {
      ++i;
    } else {
      break;
    }
  }
  // The longest run of labels (at least two) ending in a top-level label:
  // letters only (any script), at least two characters, or punycode.
  for (size_t n = labels.size(); n >= 2; --n) {
    const std::string_view tld =
        s.substr(labels[n - 1].first, labels[n - 1].second - labels[n - 1].first);
    bool ok = tld.size() >= 2;
    if (tld.substr(0, 4) == "xn--") {
      ok = tld.size() > 4;
    } else {
      for (size_t k = 0; ok && k < tld.size();) {
        if (IsAsciiAlpha(tld[k])) {
          ++k;
        } else if (const size_t len = LetterAt(tld, k)) {
          k += len;
        } else {
          ok = false;
        }
      }
    }
    if (ok) return labels[n - 1].second;
  }
  return at;
}

// Pass 2: local@domain.tld -> [email].
std::string ScrubEmails(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t copied = 0;  // s[0, copied) is in `out`
  for (size_t at = s.find('@'); at != std::string_view::npos; at = s.find('@', at + 1)) {
    if (at < copied) continue;
    // The local part: ASCII letters, digits, ._%+- and letters of any script.
    size_t begin = at;
    while (begin > copied && at - begin < 128) {
      const char c = s[begin - 1];
      if (IsLocalAscii(c)) {
        --begin;
        continue;
      }
      if (static_cast<unsigned char>(c) < 0x80) break;
      const size_t seq = SequenceStartBefore(s, begin);
      if (seq < copied || LetterAt(s, seq) != begin - seq) break;
      begin = seq;
    }
    while (begin < at && s[begin] == '.') ++begin;
    if (begin == at) continue;
    const size_t end = EmailDomainEnd(s, at);
    if (end == at) continue;
    out.append(s.substr(copied, begin - copied));
    out.append("[email]");
    copied = end;
    at = end - 1;
  }
  out.append(s.substr(copied));
  return out;
}

bool IsPhoneSeparator(char c) { return c == ' ' || c == '-' || c == '(' || c == ')'; }

// s[i] starts "YYYY-MM-DD" (optionally followed by [T ]HH:MM[:SS[.fff]]):
// returns its length, or 0.
size_t DateTimeAt(std::string_view s, size_t i) {
  auto digits = [&](size_t at, size_t n) {
    if (at + n > s.size()) return false;
    for (size_t k = 0; k < n; ++k)
      if (!IsDigit(s[at + k])) return false;
    return true;
  };
  if (!digits(i, 4) || i + 10 > s.size() || s[i + 4] != '-' || !digits(i + 5, 2) ||
      s[i + 7] != '-' || !digits(i + 8, 2))
    return 0;
  size_t end = i + 10;
  if (end + 6 <= s.size() && (s[end] == 'T' || s[end] == ' ') && digits(end + 1, 2) &&
      s[end + 3] == ':' && digits(end + 4, 2)) {
    end += 6;
    if (end + 3 <= s.size() && s[end] == ':' && digits(end + 1, 2)) {
      end += 3;
      if (end + 1 < s.size() && s[end] == '.' && IsDigit(s[end + 1])) {
        ++end;
        while (end < s.size() && IsDigit(s[end])) ++end;
      }
    }
  }
  return end;
}

// A bare Russian mobile number: 11 digits, 79XXXXXXXXX or 89XXXXXXXXX.
bool IsBareMobile(std::string_view digits) {
  return digits.size() == 11 && (digits[0] == '7' || digits[0] == '8') && digits[1] == '9';
}

// Pass 3: phone numbers -> [phone].
std::string ScrubPhones(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (IsAsciiAlpha(c) || c == '_') {  // a word: digits inside it are not numbers
      const size_t start = i;
      while (i < s.size() && IsAsciiWord(s[i])) ++i;
      out.append(s.substr(start, i - start));
      continue;
    }
    const bool next_digit = i + 1 < s.size() && IsDigit(s[i + 1]);
    if (!IsDigit(c) && !((c == '+' || c == '(') && next_digit)) {
      out.push_back(c);
      ++i;
      continue;
    }
    if (const size_t date_end = DateTimeAt(s, i)) {
      out.append(s.substr(i, date_end - i));
      i = date_end;
      continue;
    }
    // The run: [+|(] digits, groups joined by up to three of " -()".
    const size_t start = i;
    const bool plus = c == '+';
    bool only_spaces = c != '(';
    size_t j = IsDigit(c) ? i : i + 1;
    std::vector<std::pair<size_t, size_t>> groups;  // [begin, end) of digit groups
    for (;;) {
      const size_t begin = j;
      while (j < s.size() && IsDigit(s[j])) ++j;
      groups.emplace_back(begin, j);
      size_t k = j;
      while (k < s.size() && k - j < 3 && IsPhoneSeparator(s[k])) ++k;
      if (k == j || k >= s.size() || !IsDigit(s[k])) break;
      for (size_t m = j; m < k; ++m) only_spaces = only_spaces && s[m] == ' ';
      j = k;
    }
    const size_t end = j;
    size_t total = 0, long_groups = 0;
    bool later_groups_ok = true,
         thousands = groups.size() > 1 && groups[0].second - groups[0].first <= 3;
    for (size_t g = 0; g < groups.size(); ++g) {
      const size_t n = groups[g].second - groups[g].first;
      total += n;
      if (n > 4) ++long_groups;
      if (g > 0 && n < 2) later_groups_ok = false;
      if (g > 0 && n != 3) thousands = false;
    }
    // A number glued to a word or a decimal fraction is not a phone.
    const bool right_ok =
        end >= s.size() || (!IsAsciiWord(s[end]) && !((s[end] == '.' || s[end] == ',') &&
                                                      end + 1 < s.size() && IsDigit(s[end + 1])));
    bool phone = false;
    if (right_ok && total >= 10 && total <= 15 && later_groups_ok) {
      if (plus) {
        phone = true;
      } else if (groups.size() == 1) {
        phone = IsBareMobile(s.substr(groups[0].first, total));
      } else {
        phone = groups.size() <= 6 && long_groups <= 1 && !(only_spaces && thousands);
      }
    }
    if (phone) {
      out.append("[phone]");
    } else {
      // Not a phone as a whole; a bare mobile may still sit inside the run.
      size_t copied = start;
      for (const auto& [b, e] : groups) {
        if (!IsBareMobile(s.substr(b, e - b))) continue;
        if (e < end || right_ok) {
          out.append(s.substr(copied, b - copied));
          out.append("[phone]");
          copied = e;
        }
      }
      out.append(s.substr(copied, end - copied));
    }
    i = end;
  }
  return out;
}

}  // namespace

std::string ScrubPii(std::string_view text) {
  return ScrubPhones(ScrubEmails(ScrubUrlUserinfo(text)));
}

}  // namespace bpmc
