// Table tests of the pure parts of bpmc::http: route matching, methods,
// content type, body limits, CIDRs and X-Forwarded-For, the error shape.
#include "http/route.h"

#include <gtest/gtest.h>

#include "http/types.h"

namespace bpmc::http {
namespace {

Route R(std::string name, std::string path, bool prefix) {
  Route r;
  r.name = std::move(name);
  r.path = std::move(path);
  r.prefix = prefix;
  r.methods = {"GET", "POST"};
  return r;
}

TEST(RouteTest, MatchesExactThenLongestPrefix) {
  const std::vector<Route> routes = {
      R("incidents_list", "/api/v1/incidents", false), R("incidents", "/api/v1/incidents/", true),
      R("api", "/api/", true), R("ack", "/ack/", true), R("metrics", "/metrics", false)};
  struct Case {
    const char* path;
    const char* route;  // nullptr: none
  } cases[] = {
      {"/api/v1/incidents", "incidents_list"},
      {"/api/v1/incidents/", "incidents"},
      {"/api/v1/incidents/7/notes", "incidents"},
      {"/api/v1/incidentsx", "api"},
      {"/api/v2", "api"},
      {"/ack/abc", "ack"},
      {"/ack", nullptr},
      {"/metrics", "metrics"},
      {"/metrics/", nullptr},
      {"/METRICS", nullptr},
      {"", nullptr},
      {"/", nullptr},
  };
  for (const Case& c : cases) {
    const Route* r = MatchRoute(routes, c.path);
    if (c.route == nullptr) {
      EXPECT_EQ(r, nullptr) << c.path;
    } else {
      ASSERT_NE(r, nullptr) << c.path;
      EXPECT_EQ(r->name, c.route) << c.path;
    }
  }
}

TEST(RouteTest, MethodsAndAllowHeader) {
  Route r = R("x", "/x", false);
  EXPECT_TRUE(MethodAllowed(r, "GET"));
  EXPECT_TRUE(MethodAllowed(r, "POST"));
  EXPECT_FALSE(MethodAllowed(r, "get"));
  EXPECT_FALSE(MethodAllowed(r, "PUT"));
  EXPECT_EQ(AllowHeader(r), "GET, POST");
  r.methods = {"POST"};
  EXPECT_EQ(AllowHeader(r), "POST");
}

TEST(RouteTest, JsonContentType) {
  struct Case {
    const char* ct;
    bool json;
  } cases[] = {
      {"application/json", true},
      {"Application/JSON", true},
      {"application/json; charset=utf-8", true},
      {"application/json;charset=utf-8", true},
      {" application/json ", true},
      {"application/jsonx", false},
      {"application/json-patch+json", false},
      {"text/plain", false},
      {"text/json", false},
      {"", false},
      {"application/", false},
  };
  for (const Case& c : cases) EXPECT_EQ(IsJsonContentType(c.ct), c.json) << c.ct;
}

TEST(RouteTest, BodyAllowedBeforeReading) {
  struct Case {
    int64_t content_length;
    bool chunked;
    uint64_t limit;
    bool allowed;
  } cases[] = {
      {0, false, 0, true},
      {-1, false, 0, true},
      {1, false, 0, false},
      {0, true, 0, false},
      {100, false, 100, true},
      {101, false, 100, false},
      {31000000, false, 65536, false},
      {-1, true, 100, true},
      {0, false, 100, true},
  };
  for (const Case& c : cases)
    EXPECT_EQ(BodyAllowed(c.content_length, c.chunked, c.limit), c.allowed)
        << c.content_length << " " << c.chunked << " " << c.limit;
}

TEST(RouteTest, ParsesIpv4AndCidrs) {
  EXPECT_EQ(ParseIpv4("127.0.0.1"), 0x7f000001u);
  EXPECT_EQ(ParseIpv4("255.255.255.255"), 0xffffffffu);
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.-1", "01.2.3.4", "1.2.3.4 ",
                          "a.b.c.d", "1..2.3", "1.2.3.4/8", "::1", "1234.1.1.1"})
    EXPECT_FALSE(ParseIpv4(bad)) << bad;

  struct Case {
    const char* text;
    bool ok;
    uint32_t network, mask;
  } cases[] = {
      {"10.0.0.0/8", true, 0x0a000000u, 0xff000000u},
      {"10.1.2.3/8", true, 0x0a000000u, 0xff000000u},  // host bits dropped
      {"127.0.0.1", true, 0x7f000001u, 0xffffffffu},
      {"0.0.0.0/0", true, 0, 0},
      {"192.168.1.0/24", true, 0xc0a80100u, 0xffffff00u},
      {"10.0.0.0/33", false, 0, 0},
      {"10.0.0.0/", false, 0, 0},
      {"10.0.0.0/x", false, 0, 0},
      {"10.0.0/8", false, 0, 0},
      {"fe80::/10", false, 0, 0},
      {"", false, 0, 0},
  };
  for (const Case& c : cases) {
    const auto cidr = ParseCidr(c.text);
    ASSERT_EQ(cidr.has_value(), c.ok) << c.text;
    if (!c.ok) continue;
    EXPECT_EQ(cidr->network, c.network) << c.text;
    EXPECT_EQ(cidr->mask, c.mask) << c.text;
  }
}

TEST(RouteTest, ClientAddressBelievesForwardedForOnlyFromTrustedProxies) {
  const std::vector<Cidr> trusted = {*ParseCidr("10.0.0.0/8"), *ParseCidr("127.0.0.1")};
  struct Case {
    const char* peer;
    const char* xff;
    const char* client;
  } cases[] = {
      // Untrusted peer: the header is ignored, whatever it says.
      {"203.0.113.9", "1.2.3.4", "203.0.113.9"},
      {"127.0.0.2", "1.2.3.4", "127.0.0.2"},
      // Trusted peer: the rightmost untrusted address.
      {"10.0.0.5", "198.51.100.7", "198.51.100.7"},
      {"10.0.0.5", "1.1.1.1, 198.51.100.7", "198.51.100.7"},   // 1.1.1.1 may be forged
      {"10.0.0.5", "198.51.100.7, 10.0.0.9", "198.51.100.7"},  // a second proxy of ours
      {"127.0.0.1", "198.51.100.7,10.1.1.1 , 127.0.0.1", "198.51.100.7"},
      // Every hop trusted: the leftmost one.
      {"10.0.0.5", "10.0.0.7, 10.0.0.9", "10.0.0.7"},
      // Missing, empty or malformed: the peer.
      {"10.0.0.5", "", "10.0.0.5"},
      {"10.0.0.5", "  ", "10.0.0.5"},
      {"10.0.0.5", "unknown", "10.0.0.5"},
      {"10.0.0.5", "198.51.100.7, garbage", "10.0.0.5"},
      {"10.0.0.5", "2001:db8::1", "10.0.0.5"},
      {"10.0.0.5", ",", "10.0.0.5"},
  };
  for (const Case& c : cases)
    EXPECT_EQ(ClientAddress(c.peer, c.xff, trusted), c.client) << c.peer << " / " << c.xff;
  // No trusted proxies configured: always the peer.
  EXPECT_EQ(ClientAddress("10.0.0.5", "198.51.100.7", {}), "10.0.0.5");
}

TEST(TypesTest, OneErrorShape) {
  const Response r = Error(401, "bad \"token\"", "Authorization", {{"WWW-Authenticate", "Bearer"}});
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body,
            R"({"error":"bad \"token\"","message":"bad \"token\"","field":"Authorization"})");
  EXPECT_EQ(r.Header("WWW-Authenticate"), "Bearer");
  EXPECT_EQ(r.Header("Retry-After"), "");
  EXPECT_EQ(ErrorBody("a\nb\x01", ""),
            "{\"error\":\"a\\nb\\u0001\",\"message\":\"a\\nb\\u0001\",\"field\":\"\"}");
}

TEST(TypesTest, ParseQuery) {
  const auto q = ParseQuery("a=1&b=x%20y+z&c&a=2&%41=%4");
  EXPECT_EQ(q.at("a"), "2");
  EXPECT_EQ(q.at("b"), "x y z");
  EXPECT_EQ(q.at("c"), "");
  EXPECT_EQ(q.at("A"), "%4");
  EXPECT_TRUE(ParseQuery("").empty());
}

}  // namespace
}  // namespace bpmc::http
