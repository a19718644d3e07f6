#include "common/process.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace {

TEST(ValidListenAddressTest, Table) {
  struct Case {
    const char* listen;
    bool valid;
  } cases[] = {
      {"127.0.0.1:9470", true},
      {"0.0.0.0:0", true},
      {"[::1]:80", true},
      {"localhost:65535", true},
      {"127.0.0.1:65536", false},
      {":9470", false},
      {"127.0.0.1", false},
      {"127.0.0.1:", false},
      {"127.0.0.1:9x", false},
      {"127.0.0.1:123456", false},
      {"", false},
  };
  for (const Case& c : cases) EXPECT_EQ(bpmc::ValidListenAddress(c.listen), c.valid) << c.listen;
}

TEST(ReadTrimmedFileTest, TrimsTrailingNewlinesAndSpacesOnly) {
  const std::string path = ::testing::TempDir() + "/bpmc-secret-test";
  std::ofstream(path) << "  s3cret \r\n\n";
  EXPECT_EQ(bpmc::ReadTrimmedFile(path), std::optional<std::string>("  s3cret"));
  std::remove(path.c_str());
  EXPECT_EQ(bpmc::ReadTrimmedFile(path), std::nullopt);
}

}  // namespace
