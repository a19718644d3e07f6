// The JSON log format (common/logging.h): escaping, levels, and the spdlog
// formatter writing one parseable line per message.
#include "common/logging.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <sstream>

namespace bpmc {
namespace {

TEST(JsonLogLine, EscapesTheMessage) {
  struct Case {
    std::string message;
    std::string want;  // the "message" member as written
  };
  const Case cases[] = {
      {"plain", R"("plain")"},
      {"quote \" and backslash \\", R"("quote \" and backslash \\")"},
      {"new\nline\rtab\t", R"("new\nline\rtab\t")"},
      {std::string("nul\0x", 5), R"("nul\u0000x")"},
      {"\x01\x1f\x7f", "\"\\u0001\\u001f\x7f\""},
      {"{\"level\":\"error\"}", R"("{\"level\":\"error\"}")"},
      {"кириллица ✓", "\"кириллица ✓\""},
      {"bad \xff utf8", "\"bad \xEF\xBF\xBD utf8\""},
      {"cut \xd0", "\"cut \xEF\xBF\xBD\""},
      {"overlong \xc0\xaf", "\"overlong \xEF\xBF\xBD\xEF\xBF\xBD\""},
      {"", R"("")"},
  };
  for (const Case& c : cases) {
    const std::string line = JsonLogLine(0, "info", "bpmc-exporter", c.message);
    EXPECT_EQ(line, R"({"time":"1970-01-01T00:00:00.000000Z","level":"info",)"
                    R"("logger":"bpmc-exporter","message":)" +
                        c.want + R"(,"fields":{}})")
        << c.message;
    const auto parsed = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(parsed.is_object()) << line;
    EXPECT_EQ(parsed.size(), 5u);
  }
}

// Fields are strings in an object, escaped like the message, in their order.
TEST(JsonLogLine, Fields) {
  EXPECT_EQ(JsonLogLine(0, "info", "b", "m", {{"component", "writer"}, {"route", "usage"}}),
            R"({"time":"1970-01-01T00:00:00.000000Z","level":"info","logger":"b","message":"m",)"
            R"("fields":{"component":"writer","route":"usage"}})");
  EXPECT_EQ(JsonLogLine(0, "info", "b", "m", {{"k\"", "v\n\xff"}}),
            "{\"time\":\"1970-01-01T00:00:00.000000Z\",\"level\":\"info\",\"logger\":\"b\","
            "\"message\":\"m\",\"fields\":{\"k\\\"\":\"v\\n\xEF\xBF\xBD\"}}");
}

// The thread's fields reach both formats; a scope adds and removes its own.
TEST(ConfigureLogging, ThreadFieldsInBothFormats) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("bpmc-test", sink));
  ConfigureLogging("json", "info");
  SetThreadLogFields({{"component", "writer"}});
  {
    ScopedLogFields scope({{"route", "usage"}});
    spdlog::info("in");
  }
  spdlog::info("out");
  std::istringstream lines(out.str());
  std::string in_line, out_line;
  std::getline(lines, in_line);
  std::getline(lines, out_line);
  EXPECT_EQ(nlohmann::json::parse(in_line)["fields"],
            (nlohmann::json{{"component", "writer"}, {"route", "usage"}}));
  EXPECT_EQ(nlohmann::json::parse(out_line)["fields"], (nlohmann::json{{"component", "writer"}}));
  out.str("");
  ConfigureLogging("text", "info");
  spdlog::info("plain");
  EXPECT_NE(out.str().find(" info plain component=writer\n"), std::string::npos) << out.str();
  SetThreadLogFields({});
  out.str("");
  spdlog::info("bare");
  EXPECT_NE(out.str().find(" info bare\n"), std::string::npos) << out.str();
  spdlog::set_default_logger(previous);
}

TEST(JsonLogLine, TimeAndLevelNames) {
  EXPECT_EQ(
      JsonLogLine(1796688000123456, "warning", "r", "m"),
      R"({"time":"2026-12-08T00:00:00.123456Z","level":"warn","logger":"r","message":"m","fields":{}})");
  EXPECT_EQ(
      JsonLogLine(0, "critical", "a\"b", "m"),
      R"({"time":"1970-01-01T00:00:00.000000Z","level":"critical","logger":"a\"b","message":"m","fields":{}})");
}

TEST(LogSettings, AcceptsOnlyTheDocumentedValues) {
  for (const char* ok : {"trace", "debug", "info", "warn", "error", "off"})
    EXPECT_TRUE(IsLogLevel(ok)) << ok;
  for (const char* bad : {"", "INFO", "warning", "critical", "err", "info ", "verbose"})
    EXPECT_FALSE(IsLogLevel(bad)) << bad;
  EXPECT_TRUE(IsLogFormat("text"));
  EXPECT_TRUE(IsLogFormat("json"));
  for (const char* bad : {"", "JSON", "logfmt", "json "}) EXPECT_FALSE(IsLogFormat(bad)) << bad;
  EXPECT_EQ(LogLevelError("loud"), "must be trace, debug, info, warn, error or off, got 'loud'");
  EXPECT_EQ(LogFormatError("xml"), "must be text or json, got 'xml'");
}

// ConfigureLogging on the default logger: format and level, switched back and forth.
TEST(ConfigureLogging, SwitchesFormatAndLevel) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("bpmc-test", sink));

  struct Case {
    const char* format;
    const char* level;
    std::vector<std::string> want_levels;  // of the lines written by the five calls below
  };
  const Case cases[] = {
      {"json", "trace", {"trace", "debug", "info", "warn", "error"}},
      {"json", "debug", {"debug", "info", "warn", "error"}},
      {"json", "info", {"info", "warn", "error"}},
      {"json", "warn", {"warn", "error"}},
      {"json", "error", {"error"}},
      {"json", "off", {}},
  };
  for (const Case& c : cases) {
    out.str("");
    ConfigureLogging(c.format, c.level);
    spdlog::trace("t {}", 1);
    spdlog::debug("d");
    spdlog::info("i");
    spdlog::warn("w");
    spdlog::error("e \"quoted\"\n");
    std::istringstream lines(out.str());
    std::vector<std::string> levels;
    for (std::string line; std::getline(lines, line);) {
      const auto j = nlohmann::json::parse(line, nullptr, false);
      ASSERT_TRUE(j.is_object()) << line;
      EXPECT_EQ(j["logger"], "bpmc-test");
      levels.push_back(j["level"]);
      if (j["level"] == "error") EXPECT_EQ(j["message"], "e \"quoted\"\n");
    }
    EXPECT_EQ(levels, c.want_levels) << c.level;
  }
  out.str("");
  ConfigureLogging("text", "info");
  spdlog::debug("hidden");
  spdlog::info("shown");
  EXPECT_EQ(out.str().find("hidden"), std::string::npos);
  EXPECT_NE(out.str().find(" info shown\n"), std::string::npos) << out.str();
  EXPECT_NE(out.str()[0], '{');
  spdlog::set_default_logger(previous);
}

}  // namespace
}  // namespace bpmc
