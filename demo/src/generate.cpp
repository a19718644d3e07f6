// GenerateDemoData and BillingEventsJson (demo/demo_data.h): pure. Every random
// choice comes from one std::mt19937_64 through the helpers below, so a seed
// gives the same data with any standard library.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <utility>

#include "common/time_format.h"
#include "demo/demo_data.h"

namespace bpmc::demo {
namespace {

constexpr int64_t kMinute = 60LL * 1000000;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kLocalOffset = 3 * kHour;  // the platform's users live in UTC+3 (Moscow)
constexpr double kEventsPerDay = 6000;       // ~180k events in 30 days

class Rng {
 public:
  explicit Rng(uint64_t seed) : g_(seed) {}
  double U() { return static_cast<double>(g_() >> 11) * 0x1.0p-53; }  // [0, 1)
  uint64_t Below(uint64_t n) { return g_() % n; }
  double Normal() {  // Box-Muller
    const double u1 = 1.0 - U(), u2 = U();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  int64_t Between(int64_t lo, int64_t hi) {  // [lo, hi)
    return lo + static_cast<int64_t>(U() * static_cast<double>(hi - lo));
  }
  std::string Uuid() {  // version 4 layout
    uint64_t a = g_(), b = g_();
    a = (a & ~0xF000ULL) | 0x4000ULL;
    b = (b & ~(3ULL << 62)) | (2ULL << 62);
    char s[37];
    std::snprintf(s, sizeof s, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                  static_cast<unsigned>((a >> 16) & 0xFFFF), static_cast<unsigned>(a & 0xFFFF),
                  static_cast<unsigned>(b >> 48),
                  static_cast<unsigned long long>(b & 0xFFFFFFFFFFFFULL));
    return s;
  }
  // An index by weight.
  size_t Pick(const std::vector<double>& weights) {
    double total = 0;
    for (double w : weights) total += w;
    double x = U() * total;
    for (size_t i = 0; i < weights.size(); ++i) {
      if (x < weights[i]) return i;
      x -= weights[i];
    }
    return weights.size() - 1;
  }

 private:
  std::mt19937_64 g_;
};

struct OpSpec {
  const char* name;
  double weight;
  double median_ms;
};
struct ConnectorSpec {
  const char* id;
  const char* name;
  int64_t price_minor;
  double popularity;
  double error_rate;
  std::vector<OpSpec> ops;
};

const std::vector<ConnectorSpec>& Connectors() {
  static const std::vector<ConnectorSpec> kSpecs = {
      {"crm-connector",
       "CRM Connector",
       149000,
       0.30,
       0.020,
       {{"getContact", 35, 120},
        {"createContact", 15, 240},
        {"updateDeal", 20, 300},
        {"searchContacts", 20, 450},
        {"listPipelines", 10, 180}}},
      {"payment-connector",
       "Payment Connector",
       249000,
       0.20,
       0.025,
       {{"createPayment", 30, 800},
        {"getPaymentStatus", 35, 150},
        {"refundPayment", 5, 900},
        {"listTransactions", 30, 400}}},
      {"email-connector",
       "Email Connector",
       99000,
       0.15,
       0.015,
       {{"sendEmail", 60, 350}, {"getTemplate", 20, 80}, {"listCampaigns", 20, 200}}},
      {"telegram-connector",
       "Telegram Bot Connector",
       79000,
       0.15,
       0.030,
       {{"sendMessage", 55, 180}, {"getUpdates", 30, 90}, {"sendDocument", 15, 600}}},
      {"sheets-connector",
       "Google Sheets Connector",
       59000,
       0.12,
       0.020,
       {{"appendRow", 45, 500}, {"readRange", 40, 300}, {"updateCell", 15, 400}}},
      {"onec-connector",
       "1C:Enterprise Connector",
       299000,
       0.08,
       0.040,
       {{"syncOrders", 30, 2500}, {"getStock", 40, 700}, {"createInvoice", 30, 1200}}},
  };
  return kSpecs;
}

struct ErrorSpec {
  const char* type;
  const char* message;
  double weight;
};
const std::vector<ErrorSpec>& Errors() {
  static const std::vector<ErrorSpec> kErrors = {
      {"validation_error", "400 Bad Request: a required field is missing", 30},
      {"timeout", "the upstream API did not answer within 30 s", 25},
      {"rate_limited", "429 Too Many Requests from the upstream API", 20},
      {"auth_failed", "401 Unauthorized: the connection's token has expired", 15},
      {"upstream_5xx", "502 Bad Gateway from the upstream API", 10},
  };
  return kErrors;
}

const char* const kCustomers[] = {
    "acme",         "globex",      "initech",         "umbrella",       "hooli",
    "stark-ind",    "wayne-ent",   "pied-piper",      "soylent",        "tyrell",
    "cyberdyne",    "vandelay",    "wonka",           "oscorp",         "aperture",
    "black-mesa",   "massive-dyn", "dunder-mifflin",  "sterling-co",    "bluth-co",
    "nakatomi",     "virtucon",    "weyland-yutani",  "planet-express", "romashka",
    "vector-llc",   "tehnostroy",  "severstal-trade", "ural-logistic",  "baikal-soft",
    "volga-retail", "neva-media",  "sibir-agro",      "kama-motors",    "altai-tour",
    "oka-pharma",   "don-bakery",  "amur-fish",       "taiga-wood",     "elbrus-sport",
};

const char* const kFailureReasons[] = {"insufficient_funds", "card_declined", "expired_card",
                                       "processing_error", "fraud_suspected"};
const double kFailureWeights[] = {40, 30, 15, 12, 3};

const char* const kCancelReasons[] = {"too expensive", "switched to another integration",
                                      "project closed", "payment failed"};

// A burst of errors of one type on one connector (what an incident is about).
struct Burst {
  size_t connector;
  int64_t from_us, to_us;
  double error_rate;
  size_t error;  // index into Errors()
};

// Relative activity at `t`: a working-day curve in local time, quieter weekends.
double Rhythm(int64_t t) {
  static const double kHourly[24] = {0.12, 0.08, 0.06, 0.05, 0.05, 0.08, 0.20, 0.45,
                                     0.80, 1.00, 1.00, 0.95, 0.85, 0.95, 1.00, 0.95,
                                     0.90, 0.75, 0.55, 0.45, 0.38, 0.30, 0.22, 0.16};
  const int64_t local = t + kLocalOffset;
  const int64_t day = local >= 0 ? local / kDay : (local - kDay + 1) / kDay;
  const int hour = static_cast<int>((local - day * kDay) / kHour);
  const int dow = static_cast<int>(((day + 3) % 7 + 7) % 7);  // 0 = Monday (1970-01-01: Thu)
  return kHourly[hour] * (dow == 5 ? 0.45 : dow == 6 ? 0.35 : 1.0);
}

void MakeCustomers(Rng& rng, DemoData* d) {
  std::set<std::string> taken;
  for (const char* name : kCustomers) {
    DemoCustomer c;
    c.id = name;
    const double u = rng.U();
    const size_t n = 2 + static_cast<size_t>(std::pow(u, 2.2) * 150);
    while (c.accounts.size() < n) {
      std::string id = std::to_string(100000 + rng.Below(9900000));
      if (taken.insert(id).second) c.accounts.push_back(std::move(id));
    }
    d->customers.push_back(std::move(c));
  }
}

// Payments of one subscription from `from` every `period` until now or its
// cancellation; some fail (then one retry a day or two later).
void MakePayments(Rng& rng, const DemoSubscription& s, size_t sub, int64_t from, int64_t period,
                  int64_t now, DemoData* d) {
  const int64_t end = s.cancelled_us.value_or(now);
  for (int64_t t = from + 5 * 1000000; t <= end && t <= now; t += period) {
    DemoPayment p{"", sub, s.price_minor, t, rng.U() < 0.09, ""};
    if (p.failed) {
      std::vector<double> w(std::begin(kFailureWeights), std::end(kFailureWeights));
      p.reason = kFailureReasons[rng.Pick(w)];
    }
    d->payments.push_back(p);
    if (p.failed) {
      DemoPayment retry{"", sub, s.price_minor, t + rng.Between(kDay, 2 * kDay), false, ""};
      if (retry.at_us <= end && retry.at_us <= now) d->payments.push_back(retry);
    }
  }
  // A churned subscription whose reason is a failed payment: its last charge failed.
  if (s.cancel_reason == "payment failed" && !d->payments.empty() &&
      d->payments.back().subscription == sub) {
    d->payments.back().failed = true;
    d->payments.back().reason = "insufficient_funds";
  }
}

void MakeSubscriptions(Rng& rng, int64_t now, DemoData* d) {
  const auto& specs = Connectors();
  std::vector<double> popularity;
  for (const auto& s : specs) popularity.push_back(s.popularity);
  for (size_t c = 0; c < d->customers.size(); ++c) {
    const size_t count = 1 + (rng.U() < 0.5) + (rng.U() < 0.2);
    std::set<size_t> chosen;
    while (chosen.size() < count) chosen.insert(rng.Pick(popularity));
    for (size_t k : chosen) {
      DemoSubscription s;
      char id[32];
      std::snprintf(id, sizeof id, "demo-sub-%04zu", d->subscriptions.size() + 1);
      s.id = id;
      s.customer = c;
      s.connector = k;
      const bool yearly = rng.U() < 0.12;
      s.plan = std::string(specs[k].id) + (yearly ? "-yearly" : "-monthly");
      s.price_minor = specs[k].price_minor * (yearly ? 10 : 1);
      const int64_t period = yearly ? 365 * kDay : 30 * kDay;
      const double r = rng.U();
      if (r < 0.12) {  // a trial in progress
        s.trial = true;
        s.started_us = now - rng.Between(kHour, 13 * kDay);
      } else if (r < 0.20) {  // a trial that ended in a cancellation
        s.trial = true;
        s.started_us = now - rng.Between(16 * kDay, 56 * kDay);
        s.cancelled_us = s.started_us + rng.Between(7 * kDay, 14 * kDay);
        s.cancel_reason = "trial ended: not needed";
      } else if (r < 0.35) {  // a trial converted to paid
        s.trial = true;
        s.started_us = now - rng.Between(15 * kDay, 165 * kDay);
        s.converted_us = s.started_us + 14 * kDay;
      } else {  // paid from the start; some churned since
        s.started_us = now - rng.Between(3 * kDay, 300 * kDay);
        if (r > 0.86 && now - s.started_us > 40 * kDay) {
          s.cancelled_us = std::max(s.started_us + 30 * kDay, now - rng.Between(kHour, 45 * kDay));
          s.cancel_reason = kCancelReasons[rng.Below(4)];
        }
      }
      const size_t index = d->subscriptions.size();
      d->subscriptions.push_back(s);
      if (!s.trial || s.converted_us)
        MakePayments(rng, s, index, s.converted_us.value_or(s.started_us), period, now, d);
    }
  }
  std::stable_sort(d->payments.begin(), d->payments.end(),
                   [](const DemoPayment& a, const DemoPayment& b) { return a.at_us < b.at_us; });
  for (size_t i = 0; i < d->payments.size(); ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "demo-pay-%05zu", i + 1);
    d->payments[i].id = id;
  }
}

// The subscriptions active during all of [from, to), with their weights.
void ActiveIn(const DemoData& d, const std::vector<double>& weight, int64_t from, int64_t to,
              std::vector<size_t>* subs, std::vector<double>* w) {
  subs->clear();
  w->clear();
  for (size_t i = 0; i < d.subscriptions.size(); ++i) {
    const DemoSubscription& s = d.subscriptions[i];
    if (s.started_us > from || (s.cancelled_us && *s.cancelled_us < to)) continue;
    subs->push_back(i);
    w->push_back(weight[i]);
  }
}

ingestion::UsageEvent MakeEvent(Rng& rng, const DemoData& d, const DemoSubscription& s, int64_t t,
                                const std::vector<Burst>& bursts) {
  const ConnectorSpec& spec = Connectors()[s.connector];
  const DemoCustomer& customer = d.customers[s.customer];
  ingestion::UsageEvent e;
  e.id = rng.Uuid();
  e.connector = spec.id;
  std::vector<double> ow;
  for (const auto& op : spec.ops) ow.push_back(op.weight);
  const OpSpec& op = spec.ops[rng.Pick(ow)];
  e.operation = op.name;
  const size_t n = customer.accounts.size();
  e.make_account_id =
      customer.accounts[std::min(n - 1, static_cast<size_t>(std::pow(rng.U(), 1.7) * n))];
  e.timestamp_us = t;
  double error_rate = spec.error_rate;
  std::optional<size_t> error_kind;
  for (const Burst& b : bursts) {
    if (b.connector == s.connector && t >= b.from_us && t < b.to_us) {
      error_rate = b.error_rate;
      error_kind = b.error;
    }
  }
  const double duration = op.median_ms * std::exp(0.6 * rng.Normal());
  if (rng.U() < error_rate) {
    std::vector<double> ew;
    for (const auto& er : Errors()) ew.push_back(er.weight);
    const ErrorSpec& er = Errors()[error_kind ? *error_kind : rng.Pick(ew)];
    e.status = ingestion::EventStatus::kError;
    e.error_type = er.type;
    e.error_message = er.message;
    e.duration_ms = std::string(er.type) == "timeout" ? 30000 + rng.U() * 500 : 20 + rng.U() * 200;
  } else if (rng.U() < 0.98) {
    e.duration_ms = duration;
  }
  if (e.duration_ms) e.duration_ms = std::round(*e.duration_ms * 10) / 10;  // 0.1 ms
  return e;
}

incidents::TimelineRecord Entry(int64_t at, std::string kind, std::string actor,
                                nlohmann::json detail, std::string channel = "",
                                std::string person = "", std::string result = "") {
  return {0,
          at,
          std::move(kind),
          std::move(actor),
          std::move(channel),
          std::move(person),
          std::move(result),
          detail.dump()};
}

// An Alertmanager incident about `connector`'s error rate, paged to Slack.
incidents::IncidentHistory ErrorRateIncident(const std::string& connector, int64_t created,
                                             const std::string& severity, int percent,
                                             const std::string& dedup_key) {
  incidents::IncidentHistory h;
  const std::string summary =
      "Error rate of " + connector + " is " + std::to_string(percent) + " % (above 5 %)";
  h.group_key = "am:{}:{alertname=\"ConnectorHighErrorRate\", connector=\"" + connector + "\"}";
  h.title = "ConnectorHighErrorRate: " + summary;
  h.severity = severity;
  h.connector = connector;
  h.status = "triggered";
  h.created_us = created;
  h.labels = {
      {"alertname", "ConnectorHighErrorRate"}, {"connector", connector}, {"severity", severity}};
  h.alerts.push_back({"alertmanager", dedup_key, "firing", "ConnectorHighErrorRate",
                      created - 5 * kMinute, h.labels});
  h.pages.push_back({"slack-oncall", "#bpmc-oncall", "anna.petrova", created + 1000000});
  h.timeline = {
      Entry(created, "detected", "alertmanager",
            {{"alert", "ConnectorHighErrorRate"}, {"dedup_key", dedup_key}, {"summary", summary}}),
      Entry(created, "classified", "", {{"severity", severity}, {"policy", ""}}),
      Entry(created + 1000000, "notified", "", {{"destination", "#bpmc-oncall"}, {"step", "route"}},
            "slack-oncall", "anna.petrova", "delivered"),
  };
  return h;
}

void MakeIncidents(const DemoData& d, std::vector<Burst>* bursts, DemoData* out) {
  const auto index = [](const char* id) {
    for (size_t i = 0; i < Connectors().size(); ++i)
      if (std::string(Connectors()[i].id) == id) return i;
    return size_t{0};
  };
  // Resolved: the payment provider's outage, a third of the period (at most 9 days) ago.
  const int64_t back = std::min<int64_t>(9 * kDay, (d.to_us - d.from_us) / 3);
  const int64_t r = (d.to_us - back) / kHour * kHour + 20 * kMinute;
  bursts->push_back({index("payment-connector"), r - 5 * kMinute, r + 44 * kMinute, 0.38, 4});
  incidents::IncidentHistory resolved =
      ErrorRateIncident("payment-connector", r, "critical", 38, "5f2c9a1e7b3d4c60");
  resolved.status = "resolved";
  resolved.acknowledged_us = r + 4 * kMinute;
  resolved.acknowledged_by = "anna.petrova";
  resolved.resolved_us = r + 47 * kMinute;
  resolved.resolved_by = "alertmanager";
  resolved.alerts[0].status = "resolved";
  resolved.timeline.push_back(
      Entry(r + 4 * kMinute, "acknowledged", "anna.petrova", {{"via", "link"}}));
  resolved.timeline.push_back(
      Entry(r + 12 * kMinute, "note", "anna.petrova",
            {{"text",
              "The payment provider answers 502 to every call; they confirmed an outage on "
              "their status page. Nothing to do on our side but wait."}}));
  resolved.timeline.push_back(Entry(r + 47 * kMinute, "alert_resolved", "alertmanager",
                                    {{"alert", "ConnectorHighErrorRate"}}));
  resolved.timeline.push_back(
      Entry(r + 47 * kMinute, "resolved", "alertmanager", {{"by", "alertmanager"}}));
  out->incidents.push_back(std::move(resolved));

  // Open: Telegram throttles the bot connector right now.
  const int64_t o = std::max(d.from_us + kMinute, d.to_us - 35 * kMinute) / kMinute * kMinute;
  bursts->push_back({index("telegram-connector"), o - 5 * kMinute, d.to_us, 0.27, 2});
  out->incidents.push_back(
      ErrorRateIncident("telegram-connector", o, "warning", 27, "9b41e07c2d5a8f13"));
}

void MakeEvents(Rng& rng, const std::vector<Burst>& bursts, DemoData* d) {
  std::vector<double> weight;
  for (const DemoSubscription& s : d->subscriptions) {
    const double accounts = static_cast<double>(d->customers[s.customer].accounts.size());
    weight.push_back(std::pow(accounts, 0.8) * Connectors()[s.connector].popularity *
                     std::exp(0.5 * rng.Normal()) * (s.trial && !s.converted_us ? 0.5 : 1.0));
  }
  const int64_t first_hour = d->from_us / kHour * kHour;
  double total = 0;
  for (int64_t h = first_hour; h < d->to_us; h += kHour) {
    const int64_t a = std::max(h, d->from_us), b = std::min(h + kHour, d->to_us);
    total += Rhythm(h) * static_cast<double>(b - a) / kHour;
  }
  const double days = static_cast<double>(d->to_us - d->from_us) / kDay;
  const double rate = kEventsPerDay * days / total;
  std::vector<size_t> subs;
  std::vector<double> w;
  for (int64_t h = first_hour; h < d->to_us; h += kHour) {
    const int64_t a = std::max(h, d->from_us), b = std::min(h + kHour, d->to_us);
    const double growth = 0.9 + 0.2 * static_cast<double>(a - d->from_us) / (d->to_us - d->from_us);
    const double expected = rate * Rhythm(h) * growth * static_cast<double>(b - a) / kHour;
    const auto count = static_cast<size_t>(expected * (0.92 + 0.16 * rng.U()) + rng.U());
    ActiveIn(*d, weight, h, h + kHour, &subs, &w);
    if (subs.empty()) continue;
    const size_t start = d->events.size();
    for (size_t i = 0; i < count; ++i) {
      const DemoSubscription& s = d->subscriptions[subs[rng.Pick(w)]];
      d->events.push_back({s.customer, MakeEvent(rng, *d, s, rng.Between(a, b), bursts)});
    }
    std::sort(d->events.begin() + static_cast<std::ptrdiff_t>(start), d->events.end(),
              [](const DemoEvent& x, const DemoEvent& y) {
                return x.event.timestamp_us != y.event.timestamp_us
                           ? x.event.timestamp_us < y.event.timestamp_us
                           : x.event.id < y.event.id;
              });
  }
}

}  // namespace

DemoData GenerateDemoData(const DemoOptions& options) {
  Rng rng(options.seed);
  DemoData d;
  d.to_us = options.now_us;
  d.from_us = options.now_us - options.days * kDay;
  for (const ConnectorSpec& s : Connectors()) d.connectors.push_back({s.id, s.name, s.price_minor});
  MakeCustomers(rng, &d);
  MakeSubscriptions(rng, options.now_us, &d);
  std::vector<Burst> bursts;
  MakeIncidents(d, &bursts, &d);
  MakeEvents(rng, bursts, &d);
  return d;
}

std::vector<std::string> BillingEventsJson(const DemoData& d) {
  // (occurred_at, order of making, JSON): sorted by time; a subscription's start
  // comes before its payments at the same instant.
  std::vector<std::pair<std::pair<int64_t, size_t>, nlohmann::json>> events;
  Rng ids(0x5eed0b111ULL);  // event ids: fixed, independent of the data's seed
  const auto add = [&](int64_t at, nlohmann::json j) {
    j["event_id"] = ids.Uuid();
    j["occurred_at"] = FormatRfc3339Micros(at);
    events.push_back({{at, events.size()}, std::move(j)});
  };
  for (const DemoSubscription& s : d.subscriptions) {
    const std::string& customer = d.customers[s.customer].id;
    add(s.started_us, {{"type", "subscription_started"},
                       {"customer", customer},
                       {"subscription_id", s.id},
                       {"connector", d.connectors[s.connector].id},
                       {"plan", s.plan},
                       {"trial", s.trial},
                       {"price", {{"amount_minor", s.price_minor}, {"currency", "RUB"}}}});
    if (s.converted_us)
      add(*s.converted_us,
          {{"type", "trial_converted"}, {"customer", customer}, {"subscription_id", s.id}});
    if (s.cancelled_us)
      add(*s.cancelled_us, {{"type", "subscription_cancelled"},
                            {"customer", customer},
                            {"subscription_id", s.id},
                            {"reason", s.cancel_reason}});
  }
  for (const DemoPayment& p : d.payments) {
    const DemoSubscription& s = d.subscriptions[p.subscription];
    nlohmann::json j = {{"type", p.failed ? "payment_failed" : "payment_succeeded"},
                        {"customer", d.customers[s.customer].id},
                        {"subscription_id", s.id},
                        {"payment_id", p.id},
                        {"connector", d.connectors[s.connector].id},
                        {"amount", {{"amount_minor", p.amount_minor}, {"currency", "RUB"}}}};
    if (p.failed) j["reason"] = p.reason;
    add(p.at_us, std::move(j));
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.second.dump());
  return out;
}

}  // namespace bpmc::demo
