#include "common/yaml_keys.h"

#include <gtest/gtest.h>

namespace {

TEST(CheckOnlyKeysTest, Table) {
  struct Case {
    const char* yaml;
    const char* key;
    const char* root_name;
    const char* want_key;  // nullptr: no error
    const char* want_message;
  } cases[] = {
      {"{a: 1, b: 2}", "x", "", nullptr, nullptr},
      {"{}", "x", "", nullptr, nullptr},
      {"{a: 1, c: 2}", "x", "", "x.c", "unknown key"},
      {"{c: 2}", "(root)", "(root)", "c", "unknown key"},  // top level: the key alone
      {"{c: 2}", "x.(root)", "(root)", "x.(root).c", "unknown key"},
      {"[1, 2]", "x.y", "", "x.y", "must be a mapping"},
      {"3", "x", "", "x", "must be a mapping"},
  };
  for (const Case& c : cases) {
    const auto err = bpmc::CheckOnlyKeys(YAML::Load(c.yaml), c.key, {"a", "b"}, c.root_name);
    if (!c.want_key) {
      EXPECT_FALSE(err) << c.yaml;
      continue;
    }
    ASSERT_TRUE(err) << c.yaml;
    EXPECT_EQ(err->key, c.want_key) << c.yaml;
    EXPECT_EQ(err->message, c.want_message) << c.yaml;
  }
}

}  // namespace
