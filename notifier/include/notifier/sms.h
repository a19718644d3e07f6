#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace bpmc::notifier {

// SMS length rules (3GPP TS 23.038): a text made only of GSM 03.38 characters
// is sent in the 7-bit alphabet (160 units in one SMS, 153 per part of a long
// one; the extension characters ^{}\[~]|€ take 2 units); anything else (e.g.
// Cyrillic) goes as UCS-2 (70 UTF-16 units, 67 per part).
struct SmsLength {
  bool gsm7 = true;
  int units = 0;  // septets (GSM-7) or UTF-16 code units (UCS-2)
};
SmsLength MeasureSms(std::string_view utf8);

// Cuts `utf8` into at most `max_parts` (>= 1) texts that each fit one SMS:
// one part when the whole fits a single SMS; otherwise parts of 153/67 units
// (the concatenation header takes the rest), the last one truncated with "..."
// (GSM-7) or "…" (UCS-2) when the text does not fit. Never splits a character.
// Empty input gives {""}. Pure.
std::vector<std::string> SplitSms(std::string_view utf8, int max_parts);

}  // namespace bpmc::notifier
