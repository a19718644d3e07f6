// libFuzzer harness for one webhook intake (BPMC_FUZZ_SOURCE picks which): any
// byte string goes the way a request body goes — ParseWebhook (depth check,
// parser, limits), then PlanAlert over a routing tree with regex routes
// (classification, routing, expansion into destinations) — everything before
// the database. Refusals must be 400/413 with a message; accepted webhooks must
// be within every documented limit.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "webhook_receiver/config.h"
#include "webhook_receiver/intake.h"
#include "webhook_receiver/store.h"

namespace {

using namespace bpmc::webhook_receiver;

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "receiver_intake_fuzz: %s\n", what);
  std::abort();
}

// The example config's kind of tree: equality, regex and negative regex
// matchers, nested routes, continue, and channels that expand per recipient.
const ReceiverConfig& Config() {
  static const ReceiverConfig config = [] {
    setenv("BPMC_FUZZ_TOKEN", "fuzz-token", 1);
    ReceiverConfig c;
    auto error = LoadConfigYaml(R"(
auth:
  bearer_tokens:
    - token_env: BPMC_FUZZ_TOKEN
channels:
  ops-slack: {type: slack, url: "http://127.0.0.1:9/slack", rate_limit: none}
  oncall-sms: {type: sms, url: "http://127.0.0.1:9/sms", to: ["+70000000001", "+70000000002"]}
routes:
  - name: critical
    match: {severity: critical}
    notify: [ops-slack]
    continue: true
    routes:
      - match_re: {alertname: "Payment.*|Billing.*"}
        notify: [ops-slack, oncall-sms]
  - matchers: ['severity=~"critical|warning"', 'env!~"staging|dev.*"', 'connector=~"[a-z]+(-[a-z0-9]+)*"']
    notify: [oncall-sms]
  - matchers: ['source=~".+"']
    notify: [ops-slack]
)",
                                &c);
    if (error) {
      std::fprintf(stderr, "%s\n", error->ToString().c_str());
      Die("the harness config does not load");
    }
    return c;
  }();
  return config;
}

void CheckAccepted(const Webhook& w) {
  if (w.alerts.size() > kMaxAlertsPerWebhook) Die("more alerts than the limit");
  for (const IncomingAlert& a : w.alerts) {
    const auto& v = a.view;
    if (v.dedup_key.empty() || v.dedup_key.size() > 255) Die("bad dedup key");
    if (v.status != "firing" && v.status != "resolved") Die("bad status");
    if (v.labels.size() > kMaxLabelsPerAlert || v.annotations.size() > kMaxLabelsPerAlert)
      Die("more labels than the limit");
    for (const auto& [k, val] : v.labels)
      if (k.size() > kMaxLabelNameBytes || val.size() > kMaxLabelValueBytes) Die("label too long");
    const PlannedAlert p =
        PlanAlert(a, Config().routes, Config().notifier, Config().default_severity);
    if (p.alert.view.severity.empty()) Die("no severity after classification");
    if (p.alert.view.status == "firing" && p.routing.matched() && p.recipients.empty())
      Die("a routed firing has no recipient");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const IntakeResult r = ParseWebhook(Source::BPMC_FUZZ_SOURCE, body);
  if (const auto* e = std::get_if<IntakeError>(&r)) {
    if (e->status != 400 && e->status != 413) Die("unexpected HTTP status");
    if (e->message.empty()) Die("empty error message");
  } else {
    CheckAccepted(std::get<Webhook>(r));
  }
  return 0;
}
