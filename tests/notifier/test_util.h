#pragma once
// Shared helpers of the notifier tests.

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <string>

#include "notifier/config.h"
#include "notifier/notification.h"

namespace bpmc::notifier::test {

// The secrets the test configs name with *_env keys.
inline constexpr const char* kPagerDutyKey = "0123456789abcdef0123456789abcdef";
inline void SetTestSecrets() {
  setenv("BPMC_TEST_PD_KEY", kPagerDutyKey, 1);
  setenv("BPMC_TEST_HOOK_SECRET", "s3cret", 1);
  setenv("BPMC_TEST_SMS_TOKEN", "tok", 1);
  setenv("BPMC_TEST_SMS_USER_PASSWORD", "pw", 1);
  setenv("BPMC_TEST_SMTP_PASSWORD", "mailpw", 1);
}

inline AlertView MakeAlert(const std::string& name, const std::string& status = "firing",
                           const std::string& severity = "critical") {
  AlertView a;
  a.status = status;
  a.severity = severity;
  a.alertname = name;
  a.summary = name + " summary";
  a.description = name + " description";
  a.runbook_url = "https://runbooks.example/" + name;
  a.generator_url = "http://prometheus.example/graph?g0.expr=" + name;
  a.source = "alertmanager";
  a.dedup_key = "fp-" + name;
  a.starts_at = "2026-11-25T10:00:00Z";
  if (status == "resolved") a.ends_at = "2026-11-25T10:30:00Z";
  a.labels = {{"alertname", name}, {"severity", severity}, {"instance", "crm-1:9100"}};
  a.annotations = {{"summary", a.summary}};
  return a;
}

// Parses `channels_yaml` (the value of `channels:`) and `delivery_yaml`; aborts the test on error.
inline NotifierConfig MustParse(const std::string& channels_yaml,
                                const std::string& delivery_yaml = "") {
  NotifierConfig config;
  std::string error;
  const YAML::Node channels = YAML::Load(channels_yaml);
  const YAML::Node delivery = delivery_yaml.empty() ? YAML::Node() : YAML::Load(delivery_yaml);
  if (!ParseNotifierConfig(channels, delivery, &config, &error)) {
    std::fprintf(stderr, "bad test config: %s\n", error.c_str());
    std::abort();
  }
  return config;
}

}  // namespace bpmc::notifier::test
