#include "common/auth_header.h"

#include <gtest/gtest.h>

namespace bpmc {
namespace {

TEST(AuthCredentialsTest, Table) {
  struct Case {
    std::string_view header;
    std::string_view scheme;
    std::optional<std::string_view> want;
  };
  const Case cases[] = {
      {"Bearer abc", "bearer", "abc"},
      {"bearer abc", "bearer", "abc"},
      {"BEARER\tabc", "bearer", "abc"},
      {"  Bearer   abc  ", "bearer", "abc"},
      {"Bearer abc def", "bearer", "abc def"},  // the caller decides what a token may hold
      {"Bearer", "bearer", ""},
      {"Bearer   ", "bearer", ""},
      {"Bearerabc", "bearer", std::nullopt},
      {"Basic dTpw", "bearer", std::nullopt},
      {"Basic dTpw", "basic", "dTpw"},
      {"", "bearer", std::nullopt},
      {"   ", "bearer", std::nullopt},
      {"Bear", "bearer", std::nullopt},
      {"Bearer\xff", "bearer", std::nullopt},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(AuthCredentials(c.header, c.scheme), c.want) << "header '" << c.header << "'";
  }
}

}  // namespace
}  // namespace bpmc
