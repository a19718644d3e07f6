#include "common/testing/temp_dir.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace bpmc::testing {
namespace {

namespace fs = std::filesystem;

// Sets TMPDIR (or unsets it for nullopt) for the scope, then restores it.
class ScopedTmpdir {
 public:
  explicit ScopedTmpdir(const std::optional<std::string>& value) {
    if (const char* old = std::getenv("TMPDIR")) old_ = old;
    if (value) {
      ::setenv("TMPDIR", value->c_str(), 1);
    } else {
      ::unsetenv("TMPDIR");
    }
  }
  ~ScopedTmpdir() {
    if (old_) {
      ::setenv("TMPDIR", old_->c_str(), 1);
    } else {
      ::unsetenv("TMPDIR");
    }
  }

 private:
  std::optional<std::string> old_;
};

TEST(TempDirTest, PrivateFreshDirectoryRemovedWithItsTree) {
  std::string path;
  {
    TempDir dir("bpmc-tempdir-test");
    path = dir.path();
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    EXPECT_EQ(dir.File("a.txt"), path + "/a.txt");
    TempDir other("bpmc-tempdir-test");
    EXPECT_NE(other.path(), path);
    fs::create_directories(dir.File("x/y"));
    std::ofstream(dir.File("x/y/z.txt")) << "z";
    std::ofstream(dir.File("a.txt")) << "a";
  }
  EXPECT_FALSE(fs::exists(path));
}

TEST(TempDirTest, UnderTmpdirOrTmp) {
  TempDir base("bpmc-tempdir-base");
  {
    ScopedTmpdir env(base.path());
    TempDir dir("bpmc-x");
    EXPECT_EQ(fs::path(dir.path()).parent_path(), fs::path(base.path()));
    EXPECT_EQ(fs::path(dir.path()).filename().string().rfind("bpmc-x-", 0), 0u) << dir.path();
  }
  for (const std::optional<std::string>& value : {std::optional<std::string>(), {""}}) {
    ScopedTmpdir env(value);
    TempDir dir("bpmc-tempdir-test");
    EXPECT_EQ(fs::path(dir.path()).parent_path(), fs::path("/tmp"));
  }
}

TEST(TempDirTest, FailureThrowsNamingThePath) {
  TempDir base("bpmc-tempdir-base");
  ScopedTmpdir env(base.File("missing"));
  try {
    TempDir dir("bpmc-x");
    FAIL() << "created " << dir.path();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(base.File("missing/bpmc-x-XXXXXX")), std::string::npos)
        << e.what();
  }
}

TEST(TempDirTest, AForkedChildLeavesTheDirectoryToTheParent) {
  auto child_copy = std::make_unique<TempDir>("bpmc-tempdir-test");
  const std::string path = child_copy->path();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    child_copy.reset();  // the child's destructor: not the owner
    ::_exit(fs::exists(path) ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_TRUE(fs::exists(path));
  child_copy.reset();
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace bpmc::testing
