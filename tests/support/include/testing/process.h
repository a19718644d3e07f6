#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace bpmc::testing {

// A child process started with fork/exec; stdout and stderr go to files in a
// temporary directory. The destructor SIGKILLs it if still running.
class Process {
 public:
  // `argv[0]` is the executable path. `env` entries ("K=V") are added to the
  // current environment.
  Process(std::vector<std::string> argv, std::vector<std::string> env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  void Signal(int sig);
  // Waits for exit up to `timeout`; returns the exit code, 128+signal if
  // killed by a signal, or -1 on timeout.
  int Wait(std::chrono::milliseconds timeout);
  bool Running();
  std::string Stdout() const;
  std::string Stderr() const;

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
  bool exited_ = false;
  std::string out_path_;
  std::string err_path_;
};

// Polls `condition` every 20 ms until it returns true or `timeout` passes.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read, close).
int FreePort();

// Path of a built executable: $BPMC_BIN_DIR/<name>.
std::string BinPath(const std::string& name);

// Runs a command line through /bin/sh, returns its exit code and fills *output
// with stdout+stderr when non-null.
int RunCommand(const std::string& command, std::string* output = nullptr);

}  // namespace bpmc::testing
