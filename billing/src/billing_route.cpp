// The route of POST /v1/billing/events (NewBillingRoute): the platform token
// check, then parse (billing_parser.cpp), apply every event in one transaction
// (billing_store.cpp) and count them (billing_metrics.cpp).

#include <chrono>
#include <exception>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "billing/billing.h"
#include "billing_metrics.h"
#include "billing_store.h"
#include "common/pg_pool.h"
#include "event_failure.h"
#include "identity/platform_tokens.h"
#include "identity/users.h"  // BearerToken

namespace bpmc::billing {
namespace {

constexpr const char* kPath = "/v1/billing/events";

class BillingRoute final : public http::Endpoint {
 public:
  explicit BillingRoute(BillingRouteOptions options)
      : options_(std::move(options)),
        tokens_(*options_.pool, std::chrono::milliseconds(options_.token_refresh_ms),
                options_.count_failure),
        metrics_(*options_.registry) {}

  bool Matches(const std::string& path) const override { return path == kPath; }
  std::string Name() const override { return "billing"; }

  // The platform token, before the body is read (the HTTP layer's step 3).
  http::AuthResult Authenticate(const http::Request& req) override {
    const std::string auth = req.Header("authorization");
    const std::string_view token = identity::BearerToken(auth);
    if (token.empty()) return http::AuthResult::Unauthorized("missing bearer platform token");
    switch (tokens_.Find(token)) {
      case identity::TokenLookup::kFound:
        return http::AuthResult::Ok("platform");
      case identity::TokenLookup::kError:
        return http::AuthResult::Unavailable("cannot verify platform tokens now; retry later");
      case identity::TokenLookup::kUnknown:
        break;
    }
    return http::AuthResult::Unauthorized("unknown or revoked platform token",
                                          "Bearer error=\"invalid_token\"");
  }
  // 415 and 413 from the HTTP layer are rejected billing requests too.
  void OnRefusal(const http::Request&, const http::Response& response) override {
    if (response.status == 415 || response.status == 413) metrics_.Rejected(std::nullopt);
  }

  http::Response Handle(const http::Request& req) override {
    try {
      return Serve(req);
    } catch (const std::exception&) {  // std::bad_alloc; nothing else is expected
      CountFailure("billing_internal");
      return http::Error(500, "internal error", "");
    }
  }

 private:
  // The HTTP layer checked the method, the platform token (Authenticate), the
  // Content-Type and the body limit before this runs (http/route.h).
  http::Response Serve(const http::Request& req) {
    // 400, 413
    BillingParseOptions popts;
    popts.now_us = options_.clock->NowMicros();
    auto parsed = ParseBillingEvents(req.body, popts);
    if (auto* err = std::get_if<RequestError>(&parsed)) {
      metrics_.Rejected(std::nullopt);
      return http::Error(err->http_status, err->message, err->field);
    }
    return Apply(std::get<BillingRequest>(parsed));
  }

  void CountFailure(const std::string& reason) {
    if (options_.count_failure) options_.count_failure(reason);
  }

  // Applies every event in one transaction: all or nothing. Deadlocks
  // between concurrent batches are retried.
  http::Response Apply(const BillingRequest& request) {
    constexpr int kAttempts = 4;
    for (int attempt = 1;; ++attempt) {
      std::optional<PgPool::Lease> lease;
      try {
        lease.emplace(options_.pool->Acquire());
      } catch (const std::exception&) {
        CountFailure("billing_store");
        return Unavailable();
      }
      try {
        std::vector<Effect> effects;
        effects.reserve(request.events.size());
        pqxx::work txn(**lease);
        for (size_t i = 0; i < request.events.size(); ++i) {
          effects.emplace_back();
          if (std::optional<Failure> f = ApplyEvent(txn, request.events[i], &effects.back())) {
            metrics_.Rejected(request.events[i].type);
            return http::Error(f->http_status, f->message,
                               FieldPath(request.batch ? static_cast<int64_t>(i) : -1, f->field));
          }
        }
        txn.commit();
        metrics_.Record(effects);
        return Success(request, effects);
      } catch (const pqxx::in_doubt_error&) {
        lease->MarkBroken();
        CountFailure("billing_commit_unknown");
        return Unavailable();
      } catch (const pqxx::broken_connection&) {
        lease->MarkBroken();
        CountFailure("billing_store");
        return Unavailable();
      } catch (const pqxx::sql_error& e) {
        const std::string& state = e.sqlstate();
        if ((state == "40P01" || state == "40001") && attempt < kAttempts) {
          CountFailure("billing_retry");
          continue;
        }
        if (state == "23503") {  // a connector or subscription vanished meanwhile
          metrics_.Rejected(std::nullopt);
          return http::Error(422, "unknown connector or subscription", "");
        }
        lease->MarkBroken();
        CountFailure("billing_rejected");
        return http::Error(500, "the database refused the billing events", "");
      } catch (const std::exception&) {
        lease->MarkBroken();
        CountFailure("billing_store");
        return Unavailable();
      }
    }
  }

  static http::Response Unavailable() {
    http::Response r = http::Error(503, "cannot store billing events now; retry later", "");
    r.headers.emplace_back("Retry-After", "5");
    return r;
  }

  static http::Response Success(const BillingRequest& request, const std::vector<Effect>& effects) {
    size_t applied = 0;
    for (const Effect& e : effects) applied += !e.duplicate;
    http::Response r;
    r.status = applied > 0 ? 201 : 200;
    if (!request.batch) {
      r.body = "{\"event_id\":\"" + request.events[0].event_id + "\",\"result\":\"" +
               (applied ? "applied" : "duplicate") + "\"}";
      return r;
    }
    r.body = "{\"applied\":" + std::to_string(applied) +
             ",\"duplicates\":" + std::to_string(effects.size() - applied) + ",\"results\":[";
    for (size_t i = 0; i < effects.size(); ++i) {
      r.body += i ? "," : "";
      r.body += effects[i].duplicate ? "\"duplicate\"" : "\"applied\"";
    }
    r.body += "]}";
    return r;
  }

  const BillingRouteOptions options_;
  identity::PlatformTokens tokens_;
  BillingMetrics metrics_;
};

}  // namespace

std::unique_ptr<http::Endpoint> NewBillingRoute(BillingRouteOptions options) {
  return std::make_unique<BillingRoute>(std::move(options));
}

}  // namespace bpmc::billing
