// Templates: rendering, escaping, and the checks made at config load.
#include "notifier/templates.h"

#include <gtest/gtest.h>

namespace bpmc::notifier {
namespace {

AlertView Alert(const std::string& name, const std::string& status = "firing") {
  AlertView a;
  a.status = status;
  a.severity = "critical";
  a.alertname = name;
  a.summary = "Error rate 7% > 5%";
  a.description = "<b>5xx</b> & \"timeouts\"";
  a.runbook_url = "https://runbooks/high-error-rate";
  a.source = "alertmanager";
  a.dedup_key = "fp-" + name;
  a.starts_at = "2026-11-25T10:00:00Z";
  a.labels = {{"service", "crm"}, {"severity", "critical"}};
  a.annotations = {{"dashboard", "https://grafana/d/1"}};
  return a;
}

TEST(CheckTemplateTest, Table) {
  struct Case {
    std::string source;
    std::string error_contains;  // "" = valid
  };
  const Case cases[] = {
      {"{{alertname}}: {{summary}}", ""},
      {"{{labels.service}} {{annotations.dashboard}} {{labels.any_label}}", ""},
      {"{{#alerts}}{{alertname}} {{labels.service}}{{/alerts}}", ""},
      {"{{#firing}}F{{/firing}}{{^resolved}}!{{/resolved}}{{#bundled}}{{count}}{{/bundled}}", ""},
      {"{{{description}}} {{&summary}} {{! a comment }}", ""},
      {"{{#runbook_url}}<{{runbook_url}}>{{/runbook_url}}", ""},
      {"{{ alertname }}", ""},
      {"{{sumary}}", "unknown name 'sumary'"},
      {"{{#alerts}}{{alertnme}}{{/alerts}}", "unknown name 'alertnme'"},
      {"{{summary.text}}", "'summary' has no fields"},
      {"{{#alerts}}{{alertname}}", "Unclosed section"},
      {"{{#alerts}}{{/firing}}", "section"},
      {"{{alertname", "nclosed"},
      {"{{> partial}}", "partials are not supported"},
      {"{{=<% %>=}}", "delimiter changes are not supported"},
  };
  for (const Case& c : cases) {
    const std::string error = CheckTemplate(c.source);
    if (c.error_contains.empty()) {
      EXPECT_EQ(error, "") << c.source;
    } else {
      EXPECT_NE(error.find(c.error_contains), std::string::npos) << c.source << " -> " << error;
    }
  }
  EXPECT_NE(CheckTemplate("{{to}}"), "");
  EXPECT_EQ(CheckTemplate("{{to}}", {"to"}), "");
}

TEST(RenderTest, SingleAlertFieldsAndSections) {
  const auto ctx = TemplateContext({Alert("HighErrorRate")}, "ops", "");
  Template t{
      "{{#firing}}FIRING{{/firing}}{{#resolved}}RESOLVED{{/resolved}} {{alertname}} "
      "[{{labels.service}}] {{#bundled}}bundle{{/bundled}}{{^bundled}}single{{/bundled}} "
      "{{#generator_url}}src={{generator_url}}{{/generator_url}}"
      "{{#runbook_url}}rb={{runbook_url}}{{/runbook_url}}",
      Escape::kNone};
  EXPECT_EQ(Render(t, ctx),
            "FIRING HighErrorRate [crm] single rb=https://runbooks/high-error-rate");
}

TEST(RenderTest, BundleListsEveryAlert) {
  const auto ctx = TemplateContext({Alert("A"), Alert("B", "resolved"), Alert("C")}, "ops", "x");
  Template t{
      "{{count}}: {{firing_count}}/{{resolved_count}}:{{#alerts}} {{alertname}}"
      "{{#resolved}}(ok){{/resolved}}{{/alerts}} to {{destination}} via {{channel}}",
      Escape::kNone};
  EXPECT_EQ(Render(t, ctx), "3: 2/1: A B(ok) C to x via ops");
}

TEST(RenderTest, EscapingFollowsTheTarget) {
  const auto ctx = TemplateContext({Alert("A")}, "ops", "");
  const std::string src = "{{description}}";
  EXPECT_EQ(Render({src, Escape::kNone}, ctx), "<b>5xx</b> & \"timeouts\"");
  EXPECT_EQ(Render({src, Escape::kHtml}, ctx), "&lt;b&gt;5xx&lt;/b&gt; &amp; &quot;timeouts&quot;");
  EXPECT_EQ(Render({src, Escape::kSlack}, ctx), "&lt;b&gt;5xx&lt;/b&gt; &amp; \"timeouts\"");
  EXPECT_EQ(Render({src, Escape::kJson}, ctx), "<b>5xx</b> & \\\"timeouts\\\"");
  EXPECT_EQ(Render({"{{summary}}", Escape::kForm}, ctx), "Error+rate+7%25+%3E+5%25");
  // Triple braces opt out of escaping.
  EXPECT_EQ(Render({"{{{description}}}", Escape::kHtml}, ctx), "<b>5xx</b> & \"timeouts\"");
}

TEST(RenderTest, JsonBodyStaysValidJson) {
  AlertView a = Alert("A");
  a.summary = "line1\nline2 \"quoted\" \\ tab\t";
  const auto ctx = TemplateContext({a}, "ops", "");
  const std::string body = Render({"{\"text\":\"{{summary}}\"}", Escape::kJson}, ctx);
  const auto parsed = nlohmann::json::parse(body);
  EXPECT_EQ(parsed["text"], a.summary);
}

}  // namespace
}  // namespace bpmc::notifier
