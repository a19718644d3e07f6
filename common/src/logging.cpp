#include "common/logging.h"

#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "common/time_format.h"

namespace bpmc {
namespace {

thread_local LogFieldList thread_fields;

constexpr std::string_view kLevels[] = {"trace", "debug", "info", "warn", "error", "off"};

spdlog::level::level_enum LevelOf(std::string_view level) {
  if (level == "trace") return spdlog::level::trace;
  if (level == "debug") return spdlog::level::debug;
  if (level == "warn") return spdlog::level::warn;
  if (level == "error") return spdlog::level::err;
  if (level == "off") return spdlog::level::off;
  return spdlog::level::info;
}

// `%*` of the text pattern: the thread's fields as " key=value".
class TextFieldsFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    for (const auto& [key, value] : thread_fields) {
      dest.push_back(' ');
      dest.append(key.data(), key.data() + key.size());
      dest.push_back('=');
      dest.append(value.data(), value.data() + value.size());
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<TextFieldsFlag>();
  }
};

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const int64_t us =
        std::chrono::duration_cast<std::chrono::microseconds>(msg.time.time_since_epoch()).count();
    const auto level = spdlog::level::to_string_view(msg.level);
    const std::string line =
        JsonLogLine(us, std::string_view(level.data(), level.size()),
                    std::string_view(msg.logger_name.data(), msg.logger_name.size()),
                    std::string_view(msg.payload.data(), msg.payload.size()), thread_fields);
    dest.append(line.data(), line.data() + line.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

bool IsLogFormat(std::string_view format) { return format == "text" || format == "json"; }

bool IsLogLevel(std::string_view level) {
  for (std::string_view l : kLevels)
    if (l == level) return true;
  return false;
}

std::string LogFormatError(std::string_view got) {
  return "must be text or json, got '" + std::string(got.substr(0, 64)) + "'";
}

std::string LogLevelError(std::string_view got) {
  return "must be trace, debug, info, warn, error or off, got '" + std::string(got.substr(0, 64)) +
         "'";
}

std::string JsonLogLine(int64_t time_micros, std::string_view level, std::string_view logger,
                        std::string_view message, const LogFieldList& fields) {
  // Built by hand to keep the key order; each string through nlohmann's
  // serializer, which escapes control characters and (with `replace`) turns
  // invalid UTF-8 into U+FFFD.
  auto str = [](std::string_view s) {
    return nlohmann::json(std::string(s))
        .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  std::string out = "{\"time\":\"" + FormatRfc3339Micros(time_micros) + "\",\"level\":";
  out += str(level == "warning" ? std::string_view("warn") : level);
  out += ",\"logger\":" + str(logger);
  out += ",\"message\":" + str(message);
  out += ",\"fields\":{";
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out += ',';
    out += str(fields[i].first) + ':' + str(fields[i].second);
  }
  out += "}}";
  return out;
}

void SetThreadLogFields(LogFieldList fields) { thread_fields = std::move(fields); }

ScopedLogFields::ScopedLogFields(LogFieldList fields) : restore_size_(thread_fields.size()) {
  for (auto& f : fields) thread_fields.push_back(std::move(f));
}

ScopedLogFields::~ScopedLogFields() { thread_fields.resize(restore_size_); }

const LogFieldList& ThreadLogFields() { return thread_fields; }

std::unique_ptr<spdlog::formatter> NewJsonLogFormatter() {
  return std::make_unique<JsonFormatter>();
}

std::unique_ptr<spdlog::formatter> NewTextLogFormatter() {
  auto f = std::make_unique<spdlog::pattern_formatter>();
  f->add_flag<TextFieldsFlag>('*').set_pattern(std::string(kTextLogPattern) + "%*");
  return f;
}

void ConfigureLogging(std::string_view format, std::string_view level) {
  const std::shared_ptr<spdlog::logger> logger = spdlog::default_logger();
  if (format == "json")
    logger->set_formatter(NewJsonLogFormatter());
  else
    logger->set_formatter(NewTextLogFormatter());
  logger->set_level(LevelOf(level));
}

}  // namespace bpmc
