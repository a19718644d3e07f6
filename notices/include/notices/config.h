#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>

#include "notices/texts.h"
#include "notifier/config.h"

namespace bpmc::notices {

// The `notices:` section of the receiver's YAML (docs/NOTICES.md). Durations are
// microseconds, written in the YAML like "15m", "24h", "500ms".
struct NoticesConfig {
  // True when the section is present: the notice engine runs and the
  // /api/v1/maintenance and /api/v1/notices endpoints answer.
  bool enabled = false;
  // An email channel of `channels:` that carries notices, through the outbox, to
  // each customer's contact addresses. "" = feed only.
  std::string email_channel;
  // A telegram channel of `channels:` that carries notices, through the outbox, to
  // each customer's telegram contacts (chats linked with a customer's link code). "" = none.
  std::string telegram_channel;
  int64_t maintenance_notice_before_us = 24LL * 3600 * 1000000;  // advance notice lead time
  // An incident of a connector still unresolved (acknowledged or not) this long
  // after it was created notifies the connector's subscribers (DecideIncidentNotice).
  int64_t connector_problem_after_us = 15LL * 60 * 1000000;
  // Failed payments that occurred longer ago than this are never noticed.
  int64_t payment_lookback_us = 24LL * 3600 * 1000000;
  int64_t poll_interval_us = 10LL * 1000000;  // the engine's longest sleep
  // At most `email_limit` e-mailed notices per customer per `email_limit_per_us`;
  // beyond that a notice still goes to the feed, but not by e-mail.
  int email_limit = 10;
  int64_t email_limit_per_us = 3600LL * 1000000;
  // At most `api_limit` requests to the notices endpoints per user per `api_limit_per_us`.
  int api_limit = 60;
  int64_t api_limit_per_us = 60LL * 1000000;
  int database_connections = 2;  // for the API handlers
  // Title and body per (kind, locale): the built-in texts, with `templates:`
  // overrides checked at load (CheckNoticeTemplate).
  NoticeTemplates templates = DefaultNoticeTemplates();
};

// Parses the `notices:` mapping (`node` may be undefined: the section is off).
// `channels` checks `email_channel` (it must be an email channel). On error
// returns false and sets *error to "notices.<key>: message". Pure.
bool ParseNoticesConfig(const YAML::Node& node, const notifier::NotifierConfig& channels,
                        NoticesConfig* out, std::string* error);

}  // namespace bpmc::notices
