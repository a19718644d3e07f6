#pragma once
// What each channel sends, as pure functions from (channel config, alerts) to
// requests: tested for their shape without a network.

#include <string>
#include <vector>

#include "common/http_client.h"
#include "notifier/config.h"
#include "notifier/mailer.h"
#include "notifier/notification.h"

namespace bpmc::notifier {

// One outgoing message: one alert, or a bundle of alerts for one destination.
struct Message {
  std::string channel;
  std::string destination;
  std::vector<AlertView> alerts;  // oldest first, at least one
  std::string message_id;         // stable for the same rows: the idempotency key
};

// Whether the channel may carry several alerts in one message.
bool CanBundle(const ChannelConfig& channel);

// The HTTP requests of a Slack, SMS, webhook or PagerDuty message, sent in order
// (several only for a multi-part SMS). Every request carries the
// "Idempotency-Key: <message_id>" header.
std::vector<HttpRequest> BuildHttpRequests(const ChannelConfig& channel, const Message& message);

// The mail of an email message (to = the destination address).
MailMessage BuildMail(const ChannelConfig& channel, const Message& message);

// Slack's control characters in text: & < > become &amp; &lt; &gt; (Slack's rule:
// nothing else is escaped). A webhook sender cannot then write <!channel> or a link. Pure.
std::string SlackEscape(const std::string& text);

// Whether a URL taken from a webhook may become a link: http:// or https:// (any case)
// followed by something, and no '<', '>', '|', space or control character. Pure.
bool IsSafeLinkUrl(const std::string& url);

// Slack's "<url|text>" with '&' of the URL and the text escaped; "" when the URL is
// empty or not IsSafeLinkUrl (the link is dropped, the rest of the message stays). Pure.
std::string SlackLink(const std::string& url, const std::string& text);

// How many generator/runbook links BuildHttpRequests drops as unsafe for this message
// (Slack and PagerDuty; 0 for other channels). The Deliverer counts them in
// bpmc_receiver_links_dropped_total{channel}. Pure.
int DroppedLinks(const ChannelConfig& channel, const Message& message);

// Slack colour per severity (critical red, warning orange, info blue; resolved green).
std::string SlackColor(const AlertView& alert);

// Our severity → PagerDuty's (critical|error|warning|info) through the channel's map.
std::string PagerDutySeverity(const PagerDutyChannel& channel, const std::string& severity);

}  // namespace bpmc::notifier
