#pragma once
// Test-only (bpmc::common_testing): a private temporary directory that lives as long as the object.
//
// TempDir("bpmc-spool") creates a fresh directory with mkdtemp(3) (mode 0700), named
// "<base>/<prefix>-XXXXXX" where <base> is $TMPDIR, or /tmp when TMPDIR is unset or empty. The
// prefix is a short name without '/'. If the directory cannot be created, the constructor throws
// std::runtime_error naming the path it tried and the reason.
//
// The destructor removes the whole tree (std::filesystem::remove_all), ignoring errors. Only the
// process that created the directory removes it: a forked child whose destructors run leaves it
// to the parent. Whatever writes into the directory (a service, a child process) must be stopped
// before the TempDir is destroyed, so declare the TempDir first.
//
// Not copyable, not movable: hold it in a std::unique_ptr to hand it around or to create it later.
// path() and File() are thread-safe; they only read.

#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace bpmc::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix) {
    const char* env = std::getenv("TMPDIR");
    const std::string base = (env != nullptr && *env != '\0') ? env : "/tmp";
    const std::string pattern = base + "/" + prefix + "-XXXXXX";
    std::vector<char> tmpl(pattern.begin(), pattern.end());
    tmpl.push_back('\0');
    if (::mkdtemp(tmpl.data()) == nullptr) {
      const int err = errno;
      throw std::runtime_error("TempDir: mkdtemp " + pattern + ": " + std::strerror(err));
    }
    path_ = tmpl.data();
  }
  ~TempDir() {
    if (::getpid() != owner_) return;
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // "<base>/<prefix>-XXXXXX" with the Xs filled in.
  const std::string& path() const { return path_; }
  // path() + "/" + name; creates nothing.
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
  pid_t owner_ = ::getpid();
};

}  // namespace bpmc::testing
