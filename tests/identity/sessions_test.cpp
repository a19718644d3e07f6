// The pure parts of identity/sessions.h: the cookie parser, the CSRF token,
// the delay after failed logins, and argon2id hashing.
#include "identity/sessions.h"

#include <gtest/gtest.h>

#include "common/ids.h"

namespace bpmc::identity {
namespace {

const std::string kId(43, 'A');  // shaped like a session id

TEST(SessionCookieTest, Table) {
  struct Case {
    std::string header;
    std::string want;
  };
  const Case cases[] = {
      {"bpmc_session=" + kId, kId},
      {"a=1; bpmc_session=" + kId + "; b=2", kId},
      {"a=1;bpmc_session=" + kId, kId},
      {"  bpmc_session=" + kId + "  ", kId},
      {"xbpmc_session=" + kId, ""},                 // another cookie's name
      {"bpmc_session=" + kId + "B", ""},            // too long
      {"bpmc_session=" + kId.substr(1), ""},        // too short
      {"bpmc_session=" + kId.substr(1) + "!", ""},  // not base64url
      {"bpmc_session=" + kId.substr(1) + "=", ""},  // padding is not ours
      {"bpmc_session", ""},
      {"", ""},
      {"bpmc_session=; bpmc_session=" + kId, ""},  // the first one counts
  };
  for (const Case& c : cases) EXPECT_EQ(SessionIdFromCookie(c.header), c.want) << c.header;
}

TEST(CsrfTokenTest, BoundToTheSession) {
  const std::string a = CsrfToken(kId), b = CsrfToken(std::string(43, 'B'));
  EXPECT_EQ(a, CsrfToken(kId));
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 43u);
  EXPECT_EQ(a.find(kId), std::string::npos);
  EXPECT_TRUE(ConstantTimeEquals(a, CsrfToken(kId)));
  EXPECT_FALSE(ConstantTimeEquals(a, b));
  EXPECT_FALSE(ConstantTimeEquals(a, ""));
}

TEST(LoginDelayTest, Table) {
  struct Case {
    int failures;
    int64_t want_s;
  };
  const Case cases[] = {{-1, 0}, {0, 0},  {1, 0},    {2, 0},    {3, 1},    {4, 2},
                        {5, 4},  {8, 32}, {12, 512}, {13, 900}, {14, 900}, {1000000, 900}};
  for (const Case& c : cases) EXPECT_EQ(LoginDelay(c.failures).count(), c.want_s) << c.failures;
}

TEST(PasswordTest, Argon2idRoundTrip) {
  const std::string hash = HashPassword("correct horse");
  EXPECT_EQ(hash.rfind("$argon2id$", 0), 0u) << hash;
  EXPECT_NE(hash, HashPassword("correct horse"));  // salted
  EXPECT_TRUE(VerifyPassword(hash, "correct horse"));
  EXPECT_FALSE(VerifyPassword(hash, "correct horsE"));
  EXPECT_FALSE(VerifyPassword(hash, ""));
  EXPECT_FALSE(VerifyPassword("", "correct horse"));
  EXPECT_FALSE(VerifyPassword("$argon2id$garbage", "correct horse"));
  EXPECT_FALSE(VerifyPassword(std::string(500, 'x'), "correct horse"));
}

}  // namespace
}  // namespace bpmc::identity
