// The pure parts of identity/users.h: bearer token parsing (the one parser of
// both binaries) and role names. UserDirectory runs against PostgreSQL in
// analytics_access_test and the receiver's audit and incidents tests.
#include "identity/users.h"

#include <gtest/gtest.h>

namespace bpmc::identity {
namespace {

TEST(BearerTokenTest, Table) {
  struct Case {
    const char* header;
    const char* want;
  };
  const Case cases[] = {
      {"Bearer abc", "abc"},   {"bearer  abc ", "abc"}, {"BEARER\tabc\r", "abc"},
      {"  Bearer abc", "abc"}, {"Bearer", ""},          {"Bearer ", ""},
      {"Bearerabc", ""},       {"Basic abc", ""},       {"", ""},
  };
  for (const Case& c : cases) EXPECT_EQ(BearerToken(c.header), c.want) << c.header;
}

TEST(RoleTest, NamesRoundTrip) {
  for (Role r : {Role::kAdmin, Role::kManager, Role::kSupport, Role::kUser})
    EXPECT_EQ(ParseRole(RoleName(r)), r);
  EXPECT_EQ(ParseRole("Admin"), std::nullopt);
  EXPECT_EQ(ParseRole(""), std::nullopt);
}

TEST(PseudonymsTest, StableKeyedAndDomainSeparated) {
  const Pseudonyms a("key-one-0123456789abcdef"), b("key-two-0123456789abcdef"), none("");
  EXPECT_EQ(a.Customer("acme"), a.Customer("acme"));
  EXPECT_NE(a.Customer("acme"), b.Customer("acme"));
  EXPECT_NE(a.Customer("42").substr(2), a.Account("42").substr(2));
  EXPECT_EQ(none.Customer("acme"), "c_unavailable");
  EXPECT_EQ(none.Account("acme"), "m_unavailable");
}

}  // namespace
}  // namespace bpmc::identity
