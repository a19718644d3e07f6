#pragma once
// Helpers shared by the on-call tests.

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <string>

#include "common/time_format.h"
#include "oncall/config.h"

namespace bpmc::oncall::test {

// An RFC 3339 time as microseconds; fails the test on a typo.
inline int64_t T(const std::string& rfc3339) {
  auto micros = ParseRfc3339Micros(rfc3339);
  EXPECT_TRUE(micros.has_value()) << rfc3339;
  return micros.value_or(0);
}

constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;

// Parses YAML that must be a valid on-call config.
inline OnCallConfig MustParse(const std::string& yaml) {
  OnCallConfig config;
  std::string error;
  EXPECT_TRUE(ParseOnCallConfig(YAML::Load(yaml), &config, &error)) << error;
  return config;
}

}  // namespace bpmc::oncall::test
