#pragma once

#include <string>

namespace bpmc::recorders {

// ASCII case mapping for header names and SMTP verbs.
std::string Lower(std::string s);
std::string Upper(std::string s);

// Standard base64 with or without padding; other characters (line breaks) are skipped.
std::string Base64Decode(const std::string& in);

}  // namespace bpmc::recorders
