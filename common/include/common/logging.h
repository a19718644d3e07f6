#pragma once
// Log output of both binaries (docs/OPERATIONS.md, "Logs"): `log_format`
// text|json and `log_level` trace|debug|info|warn|error|off, on stderr through
// spdlog's default logger.
//
// A JSON line is one object, keys in this order:
//   {"time":"2026-12-08T00:10:00.123456Z","level":"info","logger":"bpmc-exporter",
//    "message":"...","fields":{"component":"ingestion-writer"}}
// `time` is UTC (RFC 3339, microseconds); `level` is trace, debug, info, warn,
// error or critical; `logger` names the binary; `message` is the text the code
// logged, as a JSON string (control characters escaped, invalid UTF-8 replaced
// by U+FFFD); `fields` is an object of strings (maybe empty): the logging
// thread's context (LogFields below), e.g. the component or the HTTP route.
// In the text format the fields follow the message as ` key=value`.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spdlog {
class formatter;
}

namespace bpmc {

// The text format's spdlog pattern (the format of every release before
// log_format existed).
inline constexpr const char* kTextLogPattern = "%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v";

// True for "text" and "json".
bool IsLogFormat(std::string_view format);
// True for trace, debug, info, warn, error and off.
bool IsLogLevel(std::string_view level);
// The message of a config error for a bad value of `log_format` / `log_level`.
std::string LogFormatError(std::string_view got);
std::string LogLevelError(std::string_view got);

using LogFieldList = std::vector<std::pair<std::string, std::string>>;

// One JSON log line (without the newline). `level` is spdlog's level name
// ("warning" is written as "warn"). Pure.
std::string JsonLogLine(int64_t time_micros, std::string_view level, std::string_view logger,
                        std::string_view message, const LogFieldList& fields = {});

// The fields every line this thread logs carries. Values are names of things
// (a component, a route), never request data or personal data.
//   SetThreadLogFields: for a thread's whole life (a writer, a poller);
//   ScopedLogFields: while the scope lives (an HTTP handler), appended after
//   the thread's own and removed at its end.
void SetThreadLogFields(LogFieldList fields);
class ScopedLogFields {
 public:
  explicit ScopedLogFields(LogFieldList fields);
  ~ScopedLogFields();
  ScopedLogFields(const ScopedLogFields&) = delete;
  ScopedLogFields& operator=(const ScopedLogFields&) = delete;

 private:
  size_t restore_size_;
};
// This thread's fields now.
const LogFieldList& ThreadLogFields();

// An spdlog formatter writing JsonLogLine + '\n'.
std::unique_ptr<spdlog::formatter> NewJsonLogFormatter();
// The text format: kTextLogPattern, then the thread's fields as " key=value".
std::unique_ptr<spdlog::formatter> NewTextLogFormatter();

// Sets the default logger's format and level; both must have passed IsLogFormat
// / IsLogLevel (anything else: text, info). Safe to call while other threads
// log (a reload calls it).
void ConfigureLogging(std::string_view format, std::string_view level);

}  // namespace bpmc
