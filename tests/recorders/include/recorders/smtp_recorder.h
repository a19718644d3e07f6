#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace bpmc::recorders {

struct RecordedMail {
  std::string from;                      // MAIL FROM address, without <>
  std::vector<std::string> to;           // RCPT TO addresses
  std::string data;                      // the message as sent (CRLF, dot-unstuffed)
  std::string auth_user, auth_password;  // from AUTH PLAIN / LOGIN; empty without AUTH
  int reply = 250;                       // what the recorder answered after DATA
  bool tls = false;                      // the session was encrypted (STARTTLS or SMTPS)
};

// A minimal ESMTP relay on 127.0.0.1 (kernel-chosen port) that records mail:
// EHLO/HELO, STARTTLS, AUTH PLAIN and LOGIN (any credentials unless set), MAIL,
// RCPT, DATA, RSET, NOOP, QUIT. With TLS it presents a self-signed certificate
// for 127.0.0.1 made at start (CertFile() for the client's CA file). Thread-safe.
class SmtpRecorder {
 public:
  enum class Tls {
    kNone,      // plain only: clients must use starttls none
    kStartTls,  // offers STARTTLS after EHLO
    kImplicit,  // SMTPS: TLS from the first byte
  };
  explicit SmtpRecorder(Tls tls = Tls::kNone);
  ~SmtpRecorder();
  SmtpRecorder(const SmtpRecorder&) = delete;
  SmtpRecorder& operator=(const SmtpRecorder&) = delete;

  int port() const { return port_; }
  std::string Url() const;  // "smtp://127.0.0.1:<port>" ("smtps://" for kImplicit)
  // PEM file of the certificate (empty without TLS).
  const std::string& CertFile() const { return cert_file_; }

  // Only these credentials pass AUTH (535 otherwise). Default: any.
  void RequireAuth(std::string user, std::string password);
  // The next messages are answered with these codes after DATA (e.g. 451, 554).
  void Script(std::vector<int> data_replies);

  std::vector<RecordedMail> Mails() const;     // everything that reached the end of DATA
  std::vector<RecordedMail> Accepted() const;  // those answered 250
  bool WaitAccepted(size_t n, std::chrono::milliseconds timeout) const;

 private:
  void AcceptLoop();
  void Serve(int fd);

  Tls tls_;
  void* ssl_ctx_ = nullptr;  // SSL_CTX*
  std::string cert_file_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::string user_, password_;
  std::deque<int> script_;
  std::vector<RecordedMail> mails_;
  std::vector<int> client_fds_;
  std::vector<std::thread> workers_;
  std::thread acceptor_;
};

// A parsed RFC 5322 message: headers (names lower-cased, RFC 2047 UTF-8
// encoded words decoded) and the decoded text/plain and text/html parts.
struct ParsedMail {
  std::vector<std::pair<std::string, std::string>> headers;
  std::string text, html;
  std::string Header(const std::string& name) const;
};
ParsedMail ParseMail(const std::string& data);

}  // namespace bpmc::recorders
