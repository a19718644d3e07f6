#pragma once
// Personal data in free text (docs/ACCESS.md "Personal data in free text").

#include <string>
#include <string_view>

namespace bpmc {

// Replaces e-mail addresses and the user part of URLs with "[email]" and phone
// numbers with "[phone]"; everything else is kept (dates, ids, amounts, IPs).
// For error messages in reports and for log lines that quote payloads or
// database errors. Pure, linear in the input, idempotent, safe on any bytes.
std::string ScrubPii(std::string_view text);

}  // namespace bpmc
