#pragma once

#include <string>
#include <string_view>

namespace bpmc::notifier {

// Standard base64 (RFC 4648 section 4) with padding. Pure.
std::string Base64Encode(std::string_view bytes);

}  // namespace bpmc::notifier
