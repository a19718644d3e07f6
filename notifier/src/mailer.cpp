#include "notifier/mailer.h"

#include <curl/curl.h>

#include <cstring>
#include <ctime>
#include <mutex>

#include "common/ids.h"
#include "encoding.h"

namespace bpmc::notifier {
namespace {

bool IsAscii(const std::string& s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}

// Base64 folded at 76 characters per line (RFC 2045).
std::string Base64Lines(const std::string& data) {
  const std::string b64 = Base64Encode(data);
  std::string out;
  for (size_t i = 0; i < b64.size(); i += 76) out += b64.substr(i, 76) + "\r\n";
  return out;
}

// RFC 2047 encoded words for a non-ASCII header value, each under 76 characters
// and never splitting a UTF-8 character.
std::string EncodeHeaderValue(const std::string& value) {
  if (IsAscii(value)) return value;
  std::string out;
  size_t i = 0;
  while (i < value.size()) {
    size_t end = std::min(value.size(), i + 39);
    while (end < value.size() && end > i && (static_cast<unsigned char>(value[end]) & 0xC0) == 0x80)
      --end;
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + Base64Encode(value.substr(i, end - i)) + "?=";
    i = end;
  }
  return out;
}

std::string StripCrLf(std::string s) {
  for (char& c : s) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  return s;
}

// "Name <a@b>" → "<a@b>"; "a@b" → "<a@b>".
std::string AngleAddress(const std::string& from) {
  const auto lt = from.find('<');
  const auto gt = from.find('>', lt == std::string::npos ? 0 : lt);
  if (lt != std::string::npos && gt != std::string::npos) return from.substr(lt, gt - lt + 1);
  return "<" + from + ">";
}

std::string Part(const std::string& type, const std::string& body) {
  return "Content-Type: " + type + "; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
         Base64Lines(body);
}

std::string Rfc5322Now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

struct ReadState {
  const std::string* data;
  size_t offset = 0;
};

size_t OnRead(char* buffer, size_t size, size_t n, void* user) {
  auto* state = static_cast<ReadState*>(user);
  const size_t len = std::min(size * n, state->data->size() - state->offset);
  std::memcpy(buffer, state->data->data() + state->offset, len);
  state->offset += len;
  return len;
}

class CurlMailer final : public Mailer {
 public:
  MailResult Send(const SmtpSettings& relay, const MailMessage& message) override {
    MailResult result;
    CURL* h = curl_easy_init();
    if (h == nullptr) {
      result.transport_error = CURLE_FAILED_INIT;
      result.error = "curl_easy_init failed";
      return result;
    }
    const std::string data = BuildMimeMessage(message, Rfc5322Now());
    ReadState state{&data};
    curl_slist* rcpt = nullptr;
    for (const std::string& to : message.to)
      rcpt = curl_slist_append(rcpt, ("<" + to + ">").c_str());
    const std::string from = AngleAddress(message.from);
    curl_easy_setopt(h, CURLOPT_URL, relay.url.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    if (relay.url.rfind("smtps://", 0) != 0) {
      curl_easy_setopt(h, CURLOPT_USE_SSL,
                       relay.starttls == SmtpSettings::StartTls::kRequired   ? CURLUSESSL_ALL
                       : relay.starttls == SmtpSettings::StartTls::kOptional ? CURLUSESSL_TRY
                                                                             : CURLUSESSL_NONE);
    }
    if (!relay.username.empty()) {
      curl_easy_setopt(h, CURLOPT_USERNAME, relay.username.c_str());
      curl_easy_setopt(h, CURLOPT_PASSWORD, relay.password.c_str());
    }
    if (!relay.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, relay.ca_file.c_str());
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, relay.verify_tls ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, relay.verify_tls ? 2L : 0L);
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, from.c_str());
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, OnRead);
    curl_easy_setopt(h, CURLOPT_READDATA, &state);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(relay.timeout.count()));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(relay.timeout.count()));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    const CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    result.smtp_code = static_cast<int>(code);
    if (rc != CURLE_OK) {
      result.transport_error = rc;
      result.error = curl_easy_strerror(rc);
    }
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(h);
    return result;
  }
};

}  // namespace

std::string BuildMimeMessage(const MailMessage& m, const std::string& date_rfc5322) {
  std::string to;
  for (const std::string& addr : m.to) to += (to.empty() ? "" : ", ") + StripCrLf(addr);
  std::string out = "Date: " + date_rfc5322 + "\r\n";
  out += "From: " + EncodeHeaderValue(StripCrLf(m.from)) + "\r\n";
  out += "To: " + to + "\r\n";
  out += "Subject: " + EncodeHeaderValue(StripCrLf(m.subject)) + "\r\n";
  if (!m.message_id.empty()) out += "Message-ID: <" + StripCrLf(m.message_id) + ">\r\n";
  if (!m.in_reply_to.empty()) {
    const std::string parent = "<" + StripCrLf(m.in_reply_to) + ">";
    out += "In-Reply-To: " + parent + "\r\nReferences: " + parent + "\r\n";
  }
  out += "MIME-Version: 1.0\r\n";
  out += "Auto-Submitted: auto-generated\r\n";
  if (m.html.empty()) return out + Part("text/plain", m.text);
  const std::string boundary = "bpmc-" + HexEncode(Sha256(m.text + m.html)).substr(0, 24);
  out += "Content-Type: multipart/alternative; boundary=\"" + boundary + "\"\r\n\r\n";
  out += "--" + boundary + "\r\n" + Part("text/plain", m.text);
  out += "--" + boundary + "\r\n" + Part("text/html", m.html);
  out += "--" + boundary + "--\r\n";
  return out;
}

std::unique_ptr<Mailer> NewCurlMailer() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  return std::make_unique<CurlMailer>();
}

}  // namespace bpmc::notifier
