// The access policy (every role x kind x customer x reason), PII scrubbing and
// pseudonyms: pure functions, table-tested.
#include "analytics/access.h"

#include <gtest/gtest.h>

#include <set>

#include "common/pg_pool.h"

namespace bpmc::analytics {
namespace {

// ------------------------------------------------------------- Decide ----

enum class Cust { kNone, kOwn, kOther };  // which customer the request names
enum Out { kDeny, kAllow, kAllowPseudo, kAllowForced };

struct PolicyCase {
  Role role;
  DataKind kind;
  Cust customer;
  bool reason;
  Out expected;
};

// The whole matrix: 4 roles x 5 kinds x 3 customer scopes x reason or not.
// "Own" for non-user roles is just some customer ("acme").
std::vector<PolicyCase> Matrix() {
  std::vector<PolicyCase> cases;
  const DataKind kinds[] = {DataKind::kAggregate, DataKind::kCustomerUsage, DataKind::kFinancial,
                            DataKind::kUserStats, DataKind::kAudit};
  for (Role role : {Role::kAdmin, Role::kManager, Role::kSupport, Role::kUser}) {
    for (DataKind kind : kinds) {
      for (Cust cust : {Cust::kNone, Cust::kOwn, Cust::kOther}) {
        for (bool reason : {false, true}) {
          Out out = kDeny;
          switch (role) {
            case Role::kAdmin:
              out = kAllow;
              break;
            case Role::kManager:
              if (kind != DataKind::kAudit && kind != DataKind::kCustomerUsage &&
                  cust == Cust::kNone)
                out = kAllowPseudo;
              break;
            case Role::kSupport:
              if (kind == DataKind::kAggregate && cust == Cust::kNone) out = kAllowPseudo;
              if ((kind == DataKind::kAggregate || kind == DataKind::kCustomerUsage) &&
                  cust != Cust::kNone && reason)
                out = kAllow;
              break;
            case Role::kUser:
              if (kind != DataKind::kAudit && cust != Cust::kOther) out = kAllowForced;
              break;
          }
          cases.push_back({role, kind, cust, reason, out});
        }
      }
    }
  }
  return cases;
}

TEST(DecideTest, EveryRoleKindCustomerAndReason) {
  const auto cases = Matrix();
  ASSERT_EQ(cases.size(), 4u * 5u * 3u * 2u);
  for (const PolicyCase& c : cases) {
    Principal p{"id", "someone", c.role, c.role == Role::kUser ? "acme" : ""};
    AccessRequest r;
    r.kind = c.kind;
    r.customer_id = c.customer == Cust::kNone ? "" : c.customer == Cust::kOwn ? "acme" : "globex";
    r.has_reason = c.reason;
    const AccessDecision d = Decide(p, r);
    const std::string where = std::string(RoleName(c.role)) + " " + DataKindName(c.kind) +
                              " customer=" + r.customer_id + " reason=" + (c.reason ? "1" : "0");
    EXPECT_EQ(d.allowed, c.expected != kDeny) << where << ": " << d.denial;
    if (!d.allowed) {
      EXPECT_FALSE(d.denial.empty()) << where;
      continue;
    }
    EXPECT_TRUE(d.denial.empty()) << where;
    EXPECT_TRUE(d.scrub_pii) << where;  // error messages are scrubbed for everyone
    EXPECT_EQ(d.pseudonymise_ids, c.expected == kAllowPseudo) << where;
    EXPECT_EQ(d.forced_customer, c.expected == kAllowForced ? "acme" : "") << where;
  }
}

TEST(DecideTest, DenialMessagesSayWhy) {
  Principal support{"id", "sam", Role::kSupport, ""};
  AccessDecision d = Decide(support, {DataKind::kCustomerUsage, "acme", false});
  EXPECT_EQ(d.denial, kReasonRequired);
  EXPECT_NE(d.denial.find("X-Access-Reason"), std::string::npos);
  EXPECT_NE(Decide(support, {DataKind::kFinancial, "", true}).denial.find("financial"),
            std::string::npos);
  EXPECT_NE(Decide(support, {DataKind::kCustomerUsage, "", true}).denial.find("customer"),
            std::string::npos);
  Principal manager{"id", "meg", Role::kManager, ""};
  EXPECT_NE(Decide(manager, {DataKind::kCustomerUsage, "acme", true}).denial.find("aggregated"),
            std::string::npos);
  EXPECT_NE(Decide(manager, {DataKind::kAudit, "", false}).denial.find("admins"),
            std::string::npos);
  Principal user{"id", "ann", Role::kUser, "acme"};
  EXPECT_NE(Decide(user, {DataKind::kAggregate, "globex", false}).denial.find("own"),
            std::string::npos);
}

TEST(DecideTest, UserWithoutCustomerIsRefusedEverything) {
  // The schema forbids it; the policy must not fall back to "everything".
  Principal user{"id", "ghost", Role::kUser, ""};
  for (DataKind k : {DataKind::kAggregate, DataKind::kCustomerUsage, DataKind::kFinancial,
                     DataKind::kUserStats, DataKind::kAudit}) {
    EXPECT_FALSE(Decide(user, {k, "", false}).allowed) << DataKindName(k);
    EXPECT_FALSE(Decide(user, {k, "x", true}).allowed) << DataKindName(k);
  }
}

TEST(DecideTest, UserCustomerComparisonIsExact) {
  Principal user{"id", "ann", Role::kUser, "acme"};
  EXPECT_FALSE(Decide(user, {DataKind::kCustomerUsage, "ACME", false}).allowed);
  EXPECT_FALSE(Decide(user, {DataKind::kCustomerUsage, "acme ", false}).allowed);
  EXPECT_FALSE(Decide(user, {DataKind::kCustomerUsage, "acm", false}).allowed);
  EXPECT_TRUE(Decide(user, {DataKind::kCustomerUsage, "acme", false}).allowed);
}

TEST(RoleTest, NamesRoundTrip) {
  for (Role r : {Role::kAdmin, Role::kManager, Role::kSupport, Role::kUser})
    EXPECT_EQ(ParseRole(RoleName(r)), r);
  EXPECT_FALSE(ParseRole("Admin"));
  EXPECT_FALSE(ParseRole(""));
  EXPECT_FALSE(ParseRole("root"));
}

TEST(PseudonymTest, StableKeyDependentAndShaped) {
  PgPool pool("postgresql:///unused", 1);  // never connected by Pseudonym
  AccessControl a(pool, "key-one-0123456789abcdef");
  AccessControl a2(pool, "key-one-0123456789abcdef");
  AccessControl b(pool, "key-two-0123456789abcdef");
  const std::string p = a.Pseudonym("acme");
  EXPECT_EQ(p.size(), 18u);
  EXPECT_EQ(p.substr(0, 2), "c_");
  EXPECT_EQ(p.find_first_not_of("0123456789abcdef", 2), std::string::npos) << p;
  EXPECT_EQ(a.Pseudonym("acme"), p);
  EXPECT_EQ(a2.Pseudonym("acme"), p);  // another process with the same key
  EXPECT_NE(b.Pseudonym("acme"), p);
  EXPECT_NE(a.Pseudonym("acme2"), p);
  EXPECT_EQ(p.find("acme"), std::string::npos);
  // Make accounts live in their own domain.
  const std::string m = a.AccountPseudonym("acme");
  EXPECT_EQ(m.substr(0, 2), "m_");
  EXPECT_NE(m.substr(2), p.substr(2));
  EXPECT_EQ(a.AccountPseudonym("acme"), m);
  // 10,000 ids, no collision in 64 bits.
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) seen.insert(a.Pseudonym("customer-" + std::to_string(i)));
  EXPECT_EQ(seen.size(), 10000u);
}

TEST(PseudonymTest, KnownValue) {
  // "c_" + the first 16 hex digits of HMAC-SHA256("key", "The quick brown fox
  // jumps over the lazy dog") (the Wikipedia HMAC example).
  PgPool pool("postgresql:///unused", 1);
  AccessControl a(pool, "key");
  EXPECT_EQ(a.Pseudonym("The quick brown fox jumps over the lazy dog"), "c_f7bc83f430538424");
}

TEST(PseudonymTest, WithoutKeyNeverShowsTheId) {
  PgPool pool("postgresql:///unused", 1);
  AccessControl a(pool, "");
  EXPECT_FALSE(a.has_pseudonym_key());
  EXPECT_EQ(a.Pseudonym("acme"), "c_unavailable");
  EXPECT_EQ(a.AccountPseudonym("12345"), "m_unavailable");
}

// ------------------------------------------------ AuditEndpointPattern ----

TEST(AuditEndpointPatternTest, ExactOrPrefixWithPatternCharactersEscaped) {
  struct Case {
    std::string in;
    std::optional<std::string> want;
  };
  const Case cases[] = {
      {"/api/v1/audit", "/api/v1/audit"},
      {"/api/v1/analytics/*", "/api/v1/analytics/%"},
      {"*", "%"},
      {"/a_b", "/a\\_b"},
      {"/a%b*", "/a\\%b%"},
      {"/a\\b", "/a\\\\b"},
      {"/a*b", "/a*b"},
      {"/a**", "/a*%"},
      {"", std::nullopt},
      {std::string(256, 'x'), std::string(256, 'x')},
      {std::string(257, 'x'), std::nullopt},
  };
  for (const Case& c : cases) EXPECT_EQ(AuditEndpointPattern(c.in), c.want) << c.in;
}

}  // namespace
}  // namespace bpmc::analytics
