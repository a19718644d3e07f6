#pragma once

// The one parser of the HTTP Authorization header, for every credential check of both
// binaries (identity's bearer tokens, the receiver's webhook Bearer/Basic auth).

#include <optional>
#include <string_view>

namespace bpmc {

// The credentials of an Authorization header of `scheme` (lowercase, e.g. "bearer").
// RFC 9110 §11.6.2: the scheme is case-insensitive and separated from its credentials by
// whitespace. "Bearer abc" -> "abc"; "bearer" alone -> "" (the scheme, no credentials);
// nullopt when the header is empty or of another scheme ("Bearerabc", "Basic abc").
// Whitespace (space, tab, CR, LF) around the header and the credentials is ignored.
std::optional<std::string_view> AuthCredentials(std::string_view header, std::string_view scheme);

}  // namespace bpmc
