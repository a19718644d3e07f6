#pragma once
// Signed, expiring acknowledgement links put into every page. Pure functions.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace bpmc::incidents {

// What a link allows: acknowledging `incident_id` until `expires_unix`
// (seconds), as `person` (an on-call person id; "" for a page to a channel).
struct AckClaim {
  int64_t incident_id = 0;
  int64_t expires_unix = 0;
  std::string person;
};

// "<id>/<expires>/<person or _>/<sig>": sig is the first 22 base64url
// characters (132 bits) of HMAC-SHA256(secret, "bpmc-ack\n<id>\n<expires>\n<person>").
// Person ids never contain '/'.
std::string AckToken(std::string_view secret, const AckClaim& claim);

enum class LinkCheck { kOk, kMalformed, kBadSignature, kExpired };
const char* LinkCheckName(LinkCheck check);  // "ok", "malformed", "bad_signature", "expired"

// Verifies a token made by AckToken (constant-time signature comparison;
// expired when now_unix >= expires_unix). Fills *out only with kOk.
LinkCheck VerifyAckToken(std::string_view secret, std::string_view token, int64_t now_unix,
                         AckClaim* out);

// The extra response headers of every acknowledgement page: not indexed, no
// Referer (the link is a credential), never framed (clickjacking of the
// Acknowledge button), no MIME sniffing, and a CSP that allows nothing but
// posting the page's own form (the page has no script, style or image).
inline constexpr std::pair<const char*, const char*> kAckPageHeaders[] = {
    {"X-Robots-Tag", "noindex"},
    {"Referrer-Policy", "no-referrer"},
    {"X-Frame-Options", "DENY"},
    {"X-Content-Type-Options", "nosniff"},
    {"Content-Security-Policy",
     "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"},
    {"Cache-Control", "no-store"},
};

// public_url + "/ack/" + AckToken(...).
std::string AckUrl(std::string_view public_url, std::string_view secret, const AckClaim& claim);

// The console's page of incident `id`: public_url + "/console/#/incidents/<id>". Pure.
std::string IncidentPageUrl(std::string_view public_url, int64_t id);

}  // namespace bpmc::incidents
