#include "common/json_depth.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace bpmc {
namespace {

struct Case {
  const char* name;
  std::string text;
  int max_depth;
  std::optional<std::string> want;
};

std::string Nested(int depth, const std::string& open, const std::string& close) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += open;
  for (int i = 0; i < depth; ++i) s += close;
  return s;
}

TEST(FindTooDeep, Table) {
  const Case cases[] = {
      {"scalar", "42", 0, std::nullopt},
      {"empty object at limit", "{}", 1, std::nullopt},
      {"body itself too deep", "{}", 0, ""},
      {"object in object", R"({"a":{"b":1}})", 1, "a"},
      {"at the limit", R"({"a":{"b":1}})", 2, std::nullopt},
      {"key path", R"({"x":1,"details":{"a":{"b":{}}}})", 3, "details.a.b"},
      {"array index", R"({"alerts":[{},{"labels":{"k":{}}}]})", 3, "alerts[1].labels"},
      {"top-level array", R"([1,2,[3]])", 1, "[2]"},
      {"brackets inside strings do not count", R"({"a":"[[[[{{{{","b":"\"[["})", 1, std::nullopt},
      {"escaped quote in a key", R"({"a\"b":{"c":{}}})", 2, R"(a\"b.c)"},
      {"string values do not become keys", R"({"a":"v","b":[{}]})", 2, "b[0]"},
      {"2,000 deep arrays", Nested(2000, "[", "]"), kMaxJsonDepth,
       std::string() +
           [] {
             std::string p;
             for (int i = 0; i < kMaxJsonDepth; ++i) p += "[0]";
             return p;
           }()},
      {"unterminated string is not an error here", R"({"a":"[[[)", 1, std::nullopt},
      {"unbalanced closers are ignored", "]]]}}}[[", 1, "[0]"},
      {"long keys are cut to 64 bytes", "{\"" + std::string(100, 'k') + "\":{}}", 1,
       std::string(64, 'k')},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(FindTooDeep(c.text, c.max_depth), c.want) << c.name;
  }
}

TEST(FindTooDeep, DeepObjectsAnswerTheOutermostPathWithinTheLimit) {
  std::string body = "{\"details\":";
  for (int i = 0; i < 5000; ++i) body += "{\"a\":";
  body += "1";
  for (int i = 0; i < 5000; ++i) body += "}";
  body += "}";
  const auto path = FindTooDeep(body);
  ASSERT_TRUE(path.has_value());
  EXPECT_EQ(path->rfind("details.a.a", 0), 0u) << *path;
  // kMaxJsonDepth levels: "details" and 31 ".a".
  EXPECT_EQ(path->size(), std::string("details").size() + 2 * (kMaxJsonDepth - 1));
}

}  // namespace
}  // namespace bpmc
