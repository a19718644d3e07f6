#pragma once
// Small pieces every bpmc binary needs: secrets read from files, the
// listen-address check, and waiting for a stop signal in main.

#include <signal.h>

#include <optional>
#include <string>
#include <string_view>

namespace bpmc {

// The contents of a file with trailing newlines, carriage returns and spaces
// removed (secret files are usually written with `echo`). nullopt when the
// file cannot be read. The contents are never logged by callers.
std::optional<std::string> ReadTrimmedFile(const std::string& path);

// "HOST:PORT" with a non-empty host part and a decimal port 0..65535 ("[::1]:80"
// is accepted: the last colon separates the port). Port 0 asks for any free port.
bool ValidListenAddress(std::string_view listen);

// SIGINT and SIGTERM, blocked in the constructing thread and every thread it
// starts afterwards, so that only Wait() sees them; SIGPIPE is ignored (a
// peer closing a socket must not kill the process). Construct it at the top of
// main's serve path, before any thread starts.
class StopSignals {
 public:
  // With `and_hangup`, SIGHUP too (a reload request: Wait() returns SIGHUP).
  explicit StopSignals(bool and_hangup = false);
  // Blocks until SIGINT or SIGTERM (or SIGHUP) arrives; returns its number.
  int Wait();

 private:
  sigset_t set_;
};

}  // namespace bpmc
