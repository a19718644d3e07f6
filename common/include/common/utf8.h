#pragma once
// UTF-8 checks shared by the PII scrubber and the audit log.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace bpmc {

// Decodes the UTF-8 sequence at s[i] (RFC 3629: no overlongs, surrogates or
// code points past U+10FFFF). Returns its length and sets *cp, or returns 0.
size_t DecodeUtf8(std::string_view s, size_t i, uint32_t* cp);

// `s` as valid UTF-8 of at most `max_bytes` bytes: invalid bytes and NUL become
// U+FFFD (PostgreSQL refuses both in text and jsonb), cut at a character
// boundary. Pure.
std::string CleanText(std::string_view s, size_t max_bytes);

}  // namespace bpmc
