#include "notifier/sms.h"

#include <algorithm>
#include <cstdint>
#include <string>

namespace bpmc::notifier {
namespace {

// GSM 03.38 basic character set (one septet each), besides ASCII letters and digits.
constexpr char32_t kGsmBasic[] = {
    U'@',  U'£', U'$', U'¥', U'è', U'é', U'ù', U'ì', U'ò', U'Ç', U'\n', U'Ø', U'ø',
    U'\r', U'Å', U'å', U'Δ', U'_', U'Φ', U'Γ', U'Λ', U'Ω', U'Π', U'Ψ',  U'Σ', U'Θ',
    U'Ξ',  U'Æ', U'æ', U'ß', U'É', U' ', U'!', U'"', U'#', U'¤', U'%',  U'&', U'\'',
    U'(',  U')', U'*', U'+', U',', U'-', U'.', U'/', U':', U';', U'<',  U'=', U'>',
    U'?',  U'¡', U'Ä', U'Ö', U'Ñ', U'Ü', U'§', U'¿', U'ä', U'ö', U'ñ',  U'ü', U'à'};
// The extension table: an escape septet plus one.
constexpr char32_t kGsmExtension[] = {U'\f', U'^', U'{', U'}', U'\\', U'[', U'~', U']', U'|', U'€'};

struct CodePoint {
  char32_t value;
  size_t begin, end;  // byte range in the UTF-8 text
};

// Decodes UTF-8; an invalid byte becomes U+FFFD covering that byte.
std::vector<CodePoint> Decode(std::string_view s) {
  std::vector<CodePoint> out;
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    int len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    char32_t cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
    bool ok = len > 0 && i + static_cast<size_t>(len) <= s.size();
    for (int k = 1; ok && k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      ok = (c >> 6) == 2;
      cp = (cp << 6) | (c & 0x3F);
    }
    if (!ok) {
      len = 1;
      cp = 0xFFFD;
    }
    out.push_back({cp, i, i + static_cast<size_t>(len)});
    i += static_cast<size_t>(len);
  }
  return out;
}

int GsmUnits(char32_t c) {
  if ((c >= U'A' && c <= U'Z') || (c >= U'a' && c <= U'z') || (c >= U'0' && c <= U'9')) return 1;
  if (std::find(std::begin(kGsmBasic), std::end(kGsmBasic), c) != std::end(kGsmBasic)) return 1;
  if (std::find(std::begin(kGsmExtension), std::end(kGsmExtension), c) != std::end(kGsmExtension)) {
    return 2;
  }
  return 0;  // not in GSM-7
}

int Ucs2Units(char32_t c) { return c > 0xFFFF ? 2 : 1; }

}  // namespace

SmsLength MeasureSms(std::string_view utf8) {
  SmsLength len;
  int gsm = 0, ucs2 = 0;
  for (const CodePoint& cp : Decode(utf8)) {
    const int g = GsmUnits(cp.value);
    if (g == 0) len.gsm7 = false;
    gsm += g;
    ucs2 += Ucs2Units(cp.value);
  }
  len.units = len.gsm7 ? gsm : ucs2;
  return len;
}

std::vector<std::string> SplitSms(std::string_view utf8, int max_parts) {
  max_parts = std::max(1, max_parts);
  const SmsLength total = MeasureSms(utf8);
  const int single = total.gsm7 ? 160 : 70;
  if (total.units <= single) return {std::string(utf8)};
  const int part_units = max_parts == 1 ? single : (total.gsm7 ? 153 : 67);
  const std::string ellipsis = total.gsm7 ? "..." : "\u2026";
  const int ellipsis_units = total.gsm7 ? 3 : 1;
  auto units = [&](char32_t c) { return total.gsm7 ? GsmUnits(c) : Ucs2Units(c); };

  const std::vector<CodePoint> cps = Decode(utf8);
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < cps.size()) {
    const bool last_allowed = static_cast<int>(parts.size()) == max_parts - 1;
    // Does the rest fit in this part?
    int rest = 0;
    for (size_t k = i; k < cps.size(); ++k) rest += units(cps[k].value);
    const int budget =
        (last_allowed && rest > part_units) ? part_units - ellipsis_units : part_units;
    int used = 0;
    size_t j = i;
    while (j < cps.size() && used + units(cps[j].value) <= budget) used += units(cps[j++].value);
    std::string part(utf8.substr(cps[i].begin, cps[j - 1].end - cps[i].begin));
    if (last_allowed && j < cps.size()) {
      parts.push_back(part + ellipsis);
      break;
    }
    parts.push_back(std::move(part));
    i = j;
  }
  return parts;
}

}  // namespace bpmc::notifier
