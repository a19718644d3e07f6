// Table tests of the delivery decisions (notifier/policy.h).
#include "notifier/policy.h"

#include <gtest/gtest.h>

#include <climits>

namespace bpmc::notifier {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(ClassifyHttpTest, Table) {
  struct Case {
    int status, curl;
    Outcome outcome;
    const char* reason;
  };
  const Case cases[] = {
      {200, 0, Outcome::kDelivered, "ok"},       {202, 0, Outcome::kDelivered, "ok"},
      {204, 0, Outcome::kDelivered, "ok"},       {429, 0, Outcome::kRetry, "http_429"},
      {500, 0, Outcome::kRetry, "http_5xx"},     {502, 0, Outcome::kRetry, "http_5xx"},
      {503, 0, Outcome::kRetry, "http_5xx"},     {408, 0, Outcome::kRetry, "http_5xx"},
      {400, 0, Outcome::kPermanent, "http_4xx"}, {401, 0, Outcome::kPermanent, "http_4xx"},
      {403, 0, Outcome::kPermanent, "http_4xx"}, {404, 0, Outcome::kPermanent, "http_4xx"},
      {410, 0, Outcome::kPermanent, "http_4xx"}, {301, 0, Outcome::kPermanent, "http_4xx"},
      {0, 7, Outcome::kRetry, "network"},     // CURLE_COULDNT_CONNECT
      {0, 28, Outcome::kRetry, "network"},    // CURLE_OPERATION_TIMEDOUT
      {0, 52, Outcome::kRetry, "network"},    // CURLE_GOT_NOTHING
      {0, 56, Outcome::kRetry, "network"},    // CURLE_RECV_ERROR
      {0, 6, Outcome::kRetry, "network"},     // CURLE_COULDNT_RESOLVE_HOST
      {0, 3, Outcome::kPermanent, "config"},  // CURLE_URL_MALFORMAT
      {0, 1, Outcome::kPermanent, "config"},  // CURLE_UNSUPPORTED_PROTOCOL
  };
  for (const Case& c : cases) {
    const Classification got = ClassifyHttp(c.status, c.curl);
    EXPECT_EQ(got.outcome, c.outcome) << c.status << " " << c.curl;
    EXPECT_EQ(got.reason, c.reason) << c.status << " " << c.curl;
  }
}

TEST(ClassifySmtpTest, Table) {
  struct Case {
    int code, curl;
    Outcome outcome;
  };
  const Case cases[] = {
      {250, 0, Outcome::kDelivered},  {451, 55, Outcome::kRetry},      // 4xx after DATA
      {421, 56, Outcome::kRetry},     {554, 55, Outcome::kPermanent},  // 5xx
      {550, 55, Outcome::kPermanent}, {535, 67, Outcome::kPermanent},  // CURLE_LOGIN_DENIED
      {0, 7, Outcome::kRetry},        {0, 28, Outcome::kRetry},        // network
      {0, 3, Outcome::kPermanent},                                     // malformed URL
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ClassifySmtp(c.code, c.curl).outcome, c.outcome) << c.code << " " << c.curl;
  }
}

TEST(BackoffTest, DoublesUpToTheCapWithJitterBelow) {
  DeliveryPolicy p;
  p.initial_backoff = seconds(1);
  p.max_backoff = seconds(60);
  p.jitter = 0.5;
  struct Case {
    int failures;
    double random;
    int64_t micros;
  };
  const Case cases[] =
      {
          {1, 0.0, 1'000'000},      {2, 0.0, 2'000'000},  {3, 0.0, 4'000'000},
          {6, 0.0, 32'000'000},     {7, 0.0, 60'000'000}, {50, 0.0, 60'000'000},
          {1000, 0.0, 60'000'000},  {1, 0.5, 750'000},    {1, 1.0, 500'000},
          {3, 0.999999, 2'000'002}, {0, 0.0, 1'000'000},  // defensive: treated as the first
      };
  for (const Case& c : cases) {
    EXPECT_NEAR(static_cast<double>(Backoff(p, c.failures, c.random).count()),
                static_cast<double>(c.micros), 2.0)
        << c.failures << " " << c.random;
  }
  p.jitter = 0.0;
  EXPECT_EQ(Backoff(p, 2, 0.9), seconds(2));
  p.jitter = 1.0;  // "full jitter"
  EXPECT_EQ(Backoff(p, 2, 0.5), seconds(1));
}

TEST(ParseRetryAfterTest, Table) {
  // 2015-10-21T07:28:00Z
  const int64_t now = 1445412480LL * 1000000;
  struct Case {
    const char* value;
    std::optional<int64_t> micros;
  };
  const Case cases[] = {
      {"120", 120'000'000},
      {" 5 ", 5'000'000},
      {"0", 0},
      {"Wed, 21 Oct 2015 07:28:30 GMT", 30'000'000},
      {"Wed, 21 Oct 2015 07:27:00 GMT", 0},  // in the past
      {"Thu, 22 Oct 2015 07:28:00 GMT", 86'400'000'000},
      {"", std::nullopt},
      {"soon", std::nullopt},
      {"-5", std::nullopt},
      {"1.5", std::nullopt},
      {"Wed, 21 Oct 2015 07:28:30 UTC", std::nullopt},
      {"Wed, 21 Foo 2015 07:28:30 GMT", std::nullopt},
      {"Wed, 21 Oct 2015 25:28:30 GMT", std::nullopt},
  };
  for (const Case& c : cases) {
    const auto got = ParseRetryAfter(c.value, now);
    ASSERT_EQ(got.has_value(), c.micros.has_value()) << c.value;
    if (got) {
      EXPECT_EQ(got->count(), *c.micros) << c.value;
    }
  }
  EXPECT_GT(ParseRetryAfter("99999999999999999999", now)->count(), 0);  // no overflow
}

TEST(AfterFailureTest, Table) {
  DeliveryPolicy p;
  p.max_attempts = 3;
  p.initial_backoff = seconds(1);
  p.max_backoff = seconds(10);
  p.jitter = 0;
  p.max_retry_after = seconds(30);
  struct Case {
    Outcome outcome;
    int attempts;
    std::optional<microseconds> retry_after;
    bool give_up;
    microseconds delay;
  };
  const Case cases[] = {
      {Outcome::kRetry, 1, std::nullopt, false, seconds(1)},
      {Outcome::kRetry, 2, std::nullopt, false, seconds(2)},
      {Outcome::kRetry, 3, std::nullopt, true, seconds(0)},        // last attempt used
      {Outcome::kPermanent, 1, std::nullopt, true, seconds(0)},    // 4xx: no retry
      {Outcome::kRetry, 1, seconds(7), false, seconds(7)},         // Retry-After beats backoff
      {Outcome::kRetry, 2, milliseconds(100), false, seconds(2)},  // backoff beats a short one
      {Outcome::kRetry, 1, seconds(3600), false, seconds(30)},     // capped
  };
  for (const Case& c : cases) {
    const RetryDecision d = AfterFailure(p, c.outcome, c.attempts, c.retry_after, 0.0);
    EXPECT_EQ(d.give_up, c.give_up) << c.attempts;
    if (!c.give_up) {
      EXPECT_EQ(d.delay, c.delay) << c.attempts;
    }
  }
}

TEST(RateLimitTest, CapacityAndNextSlot) {
  const RateLimit one_per_minute{1, seconds(60)};
  const RateLimit five_per_second{5, seconds(1)};
  const RateLimit none{};
  const int64_t t = 1'000'000'000'000;
  struct Case {
    RateLimit limit;
    int64_t tat;
    int capacity;
    int64_t next_free;
  };
  const Case cases[] = {
      {one_per_minute, 0, 1, t},                            // never sent
      {one_per_minute, t + 30'000'000, 0, t + 30'000'000},  // sent 30 s ago
      {one_per_minute, t, 1, t},                            // sent exactly a minute ago
      {one_per_minute, t - 5'000'000, 1, t},
      {five_per_second, 0, 5, t},                        // full burst
      {five_per_second, t + 400'000, 3, t},              // two sent just now
      {five_per_second, t + 1'000'000, 0, t + 200'000},  // burst spent: one per 200 ms
      {five_per_second, t + 1'100'000, 0, t + 300'000},
      {five_per_second, t + 900'000, 0, t + 100'000},  // 100 ms to the next token
      {none, t + 99'000'000, INT_MAX, t},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(RateCapacity(c.tat, t, c.limit), c.capacity) << c.tat - t;
    EXPECT_EQ(NextFreeSlot(c.tat, t, c.limit), c.next_free) << c.tat - t;
  }
}

TEST(RateLimitTest, RecordSendAdvancesTheSchedule) {
  const RateLimit five_per_second{5, seconds(1)};
  const int64_t t = 5'000'000;
  EXPECT_EQ(RecordSend(0, t, five_per_second), t + 200'000);            // idle: from now
  EXPECT_EQ(RecordSend(t + 600'000, t, five_per_second), t + 800'000);  // busy: from the schedule
  EXPECT_EQ(RecordSend(t + 600'000, t, RateLimit{}), 0);
  // Five back to back fill the burst; the sixth must wait 200 ms.
  int64_t tat = 0;
  for (int i = 0; i < 5; ++i) {
    EXPECT_GT(RateCapacity(tat, t, five_per_second), 0) << i;
    tat = RecordSend(tat, t, five_per_second);
  }
  EXPECT_EQ(RateCapacity(tat, t, five_per_second), 0);
  EXPECT_EQ(NextFreeSlot(tat, t, five_per_second), t + 200'000);
}

TEST(PlanSendTest, Table) {
  using K = SendPlan::Kind;
  struct Case {
    int due, capacity;
    bool can_bundle;
    int max_bundle;
    K kind;
    int alerts;
  };
  const Case cases[] = {
      {0, 5, true, 50, K::kWait, 0},          // nothing due
      {3, 0, true, 50, K::kWait, 0},          // window full: wait, bundle later
      {1, 1, true, 50, K::kSend, 1},          // fits: alone
      {3, 5, true, 50, K::kSend, 1},          // fits: the oldest alone
      {3, INT_MAX, true, 50, K::kSend, 1},    // unlimited
      {3, 2, true, 50, K::kSend, 2},          // two messages left for three: 2 now, 1 next
      {4, 2, true, 50, K::kSend, 2},          // exactly two each
      {3, 1, true, 50, K::kSend, 3},          // last message of the window: bundle all
      {200, 1, true, 50, K::kSend, 50},       // bundle capped
      {1000, 100, true, 50, K::kSend, 10},    // a 100/s window and 1,000 due: bundles of 10
      {1001, 100, true, 50, K::kSend, 11},    // rounded up: the backlog fits the window
      {100000, 100, true, 50, K::kSend, 50},  // more than the window can carry: capped
      {3, 1, false, 50, K::kSend, 1},         // PagerDuty: never bundles
      {3, 0, false, 50, K::kWait, 0},
  };
  for (const Case& c : cases) {
    const SendPlan p = PlanSend(c.due, c.capacity, c.can_bundle, c.max_bundle);
    EXPECT_EQ(p.kind, c.kind) << c.due << " " << c.capacity;
    EXPECT_EQ(p.alerts, c.alerts) << c.due << " " << c.capacity;
  }
}

}  // namespace
}  // namespace bpmc::notifier
