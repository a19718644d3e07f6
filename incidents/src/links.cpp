#include "incidents/links.h"

#include <vector>

#include "common/ids.h"
#include "parse.h"

namespace bpmc::incidents {
namespace {

constexpr size_t kSigChars = 22;

std::string Signature(std::string_view secret, int64_t id, int64_t expires,
                      std::string_view person) {
  std::string data = "bpmc-ack\n" + std::to_string(id) + "\n" + std::to_string(expires) + "\n";
  data.append(person);
  return Base64UrlEncode(HmacSha256(secret, data)).substr(0, kSigChars);
}

}  // namespace

bool ParseDecimal(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 18) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

std::string AckToken(std::string_view secret, const AckClaim& claim) {
  const std::string person = claim.person.empty() ? "_" : claim.person;
  return std::to_string(claim.incident_id) + "/" + std::to_string(claim.expires_unix) + "/" +
         person + "/" + Signature(secret, claim.incident_id, claim.expires_unix, claim.person);
}

const char* LinkCheckName(LinkCheck check) {
  switch (check) {
    case LinkCheck::kOk:
      return "ok";
    case LinkCheck::kMalformed:
      return "malformed";
    case LinkCheck::kBadSignature:
      return "bad_signature";
    case LinkCheck::kExpired:
      return "expired";
  }
  return "malformed";
}

LinkCheck VerifyAckToken(std::string_view secret, std::string_view token, int64_t now_unix,
                         AckClaim* out) {
  std::vector<std::string_view> parts;
  while (parts.size() < 5) {
    const size_t slash = token.find('/');
    parts.push_back(token.substr(0, slash));
    if (slash == std::string_view::npos) break;
    token.remove_prefix(slash + 1);
  }
  if (parts.size() != 4 || parts[2].empty() || parts[3].size() != kSigChars)
    return LinkCheck::kMalformed;
  AckClaim claim;
  if (!ParseDecimal(parts[0], &claim.incident_id) || !ParseDecimal(parts[1], &claim.expires_unix))
    return LinkCheck::kMalformed;
  claim.person = parts[2] == "_" ? "" : std::string(parts[2]);
  if (secret.empty() || !ConstantTimeEquals(parts[3], Signature(secret, claim.incident_id,
                                                                claim.expires_unix, claim.person)))
    return LinkCheck::kBadSignature;
  if (now_unix >= claim.expires_unix) return LinkCheck::kExpired;
  *out = std::move(claim);
  return LinkCheck::kOk;
}

std::string AckUrl(std::string_view public_url, std::string_view secret, const AckClaim& claim) {
  return std::string(public_url) + "/ack/" + AckToken(secret, claim);
}

std::string IncidentPageUrl(std::string_view public_url, int64_t id) {
  return std::string(public_url) + "/console/#/incidents/" + std::to_string(id);
}

}  // namespace bpmc::incidents
