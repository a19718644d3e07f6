#pragma once

#include <cstdint>
#include <string_view>

namespace bpmc::incidents {

// A non-negative decimal of 1 to 18 digits (no sign, no spaces), or false. Pure.
bool ParseDecimal(std::string_view s, int64_t* out);

}  // namespace bpmc::incidents
