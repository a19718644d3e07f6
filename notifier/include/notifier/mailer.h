#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace bpmc::notifier {

// How to reach one SMTP relay.
struct SmtpSettings {
  // "smtp://host:port" (plain, upgraded with STARTTLS per `starttls`) or
  // "smtps://host:port" (TLS from the first byte).
  std::string url;
  enum class StartTls { kRequired, kOptional, kNone };
  StartTls starttls = StartTls::kRequired;  // ignored for smtps://
  std::string username;                     // empty: no AUTH
  std::string password;                     // a secret: never logged
  std::string ca_file;  // PEM bundle to verify the relay; empty: the system store
  bool verify_tls = true;
  std::chrono::milliseconds timeout{15000};
};

// One message with a plain-text part and, when `html` is non-empty, an HTML
// alternative (multipart/alternative). Texts are UTF-8.
struct MailMessage {
  std::string from;             // "Name <addr@host>" or "addr@host"
  std::vector<std::string> to;  // bare addresses
  std::string subject;
  std::string text;
  std::string html;
  std::string message_id;  // without <>; empty: none set
  // The message this one follows in a thread (In-Reply-To and References), without
  // <>; empty: none.
  std::string in_reply_to;
};

// `smtp_code` is the relay's last reply code (0 if none); `transport_error`
// the libcurl CURLcode (0 = the relay accepted the message).
struct MailResult {
  int smtp_code = 0;
  int transport_error = 0;
  std::string error;
  bool ok() const { return transport_error == 0; }
};

// Sends mail. Never throws for network or SMTP errors (they come back in
// MailResult). Thread-safe.
class Mailer {
 public:
  virtual ~Mailer() = default;
  virtual MailResult Send(const SmtpSettings& relay, const MailMessage& message) = 0;
};

// libcurl SMTP: STARTTLS or SMTPS, AUTH (PLAIN/LOGIN as the relay offers).
std::unique_ptr<Mailer> NewCurlMailer();

// The RFC 5322 message (headers + MIME body, CRLF line ends) that the curl
// mailer sends. `date_rfc5322` goes into the Date header. Pure.
std::string BuildMimeMessage(const MailMessage& message, const std::string& date_rfc5322);

}  // namespace bpmc::notifier
