#include "recorders/smtp_recorder.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "text_codec.h"

namespace bpmc::recorders {
namespace {

// "MAIL FROM:<a@b> SIZE=1" → "a@b".
std::string AngleArg(const std::string& line) {
  const auto lt = line.find('<');
  const auto gt = line.find('>', lt == std::string::npos ? 0 : lt);
  if (lt == std::string::npos || gt == std::string::npos) return "";
  return line.substr(lt + 1, gt - lt - 1);
}

// Line reader over a socket, plain or TLS, with a stop flag (poll every 100 ms).
class Conn {
 public:
  Conn(int fd, const std::atomic<bool>& stopping) : fd_(fd), stopping_(stopping) {}
  ~Conn() {
    if (ssl_) {
      SSL_shutdown(ssl_);
      SSL_free(ssl_);
    }
  }
  // Handshake as the server; false on failure.
  bool StartTls(SSL_CTX* ctx) {
    ssl_ = SSL_new(ctx);
    SSL_set_fd(ssl_, fd_);
    buf_.clear();  // nothing read before the handshake may count after it
    return SSL_accept(ssl_) == 1;
  }
  bool tls() const { return ssl_ != nullptr; }
  bool ReadLine(std::string* line) {
    for (;;) {
      const auto nl = buf_.find("\r\n");
      if (nl != std::string::npos) {
        *line = buf_.substr(0, nl);
        buf_.erase(0, nl + 2);
        return true;
      }
      if (stopping_) return false;
      if (!(ssl_ && SSL_pending(ssl_) > 0)) {
        pollfd p{fd_, POLLIN, 0};
        const int ready = poll(&p, 1, 100);
        if (ready < 0) return false;
        if (ready == 0) continue;
      }
      char chunk[4096];
      const int n = ssl_ ? SSL_read(ssl_, chunk, sizeof chunk)
                         : static_cast<int>(read(fd_, chunk, sizeof chunk));
      if (n <= 0) return false;
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }
  void Write(const std::string& s) {
    if (ssl_) {
      SSL_write(ssl_, s.data(), static_cast<int>(s.size()));
      return;
    }
    size_t off = 0;
    while (off < s.size()) {
      const ssize_t n = send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }

 private:
  int fd_;
  const std::atomic<bool>& stopping_;
  SSL* ssl_ = nullptr;
  std::string buf_;
};

// A TLS server context with a fresh self-signed P-256 certificate for 127.0.0.1;
// the certificate's PEM goes to `cert_path`.
SSL_CTX* SelfSignedContext(const std::string& cert_path) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
  for (const auto& [nid, value] :
       {std::pair<int, const char*>{NID_subject_alt_name, "IP:127.0.0.1"},
        {NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(cert, key, EVP_sha256());
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_use_certificate(ctx, cert);
  SSL_CTX_use_PrivateKey(ctx, key);
  if (FILE* f = std::fopen(cert_path.c_str(), "w")) {
    PEM_write_X509(f, cert);
    std::fclose(f);
  }
  X509_free(cert);
  EVP_PKEY_free(key);
  return ctx;
}

}  // namespace

SmtpRecorder::SmtpRecorder(Tls tls) : tls_(tls) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  const int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listen_fd_, 64) != 0) {
    throw std::runtime_error("SmtpRecorder: cannot listen on 127.0.0.1");
  }
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  if (tls_ != Tls::kNone) {
    cert_file_ = "/tmp/bpmc-smtp-recorder-" + std::to_string(getpid()) + "-" +
                 std::to_string(port_) + ".pem";
    ssl_ctx_ = SelfSignedContext(cert_file_);
  }
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

SmtpRecorder::~SmtpRecorder() {
  stopping_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
  close(listen_fd_);
  if (ssl_ctx_) SSL_CTX_free(static_cast<SSL_CTX*>(ssl_ctx_));
  if (!cert_file_.empty()) std::remove(cert_file_.c_str());
}

std::string SmtpRecorder::Url() const {
  return (tls_ == Tls::kImplicit ? "smtps://127.0.0.1:" : "smtp://127.0.0.1:") +
         std::to_string(port_);
}

void SmtpRecorder::RequireAuth(std::string user, std::string password) {
  std::lock_guard<std::mutex> lock(mu_);
  user_ = std::move(user);
  password_ = std::move(password);
}

void SmtpRecorder::Script(std::vector<int> data_replies) {
  std::lock_guard<std::mutex> lock(mu_);
  script_.insert(script_.end(), data_replies.begin(), data_replies.end());
}

std::vector<RecordedMail> SmtpRecorder::Mails() const {
  std::lock_guard<std::mutex> lock(mu_);
  return mails_;
}

std::vector<RecordedMail> SmtpRecorder::Accepted() const {
  std::vector<RecordedMail> out;
  for (auto& m : Mails()) {
    if (m.reply == 250) out.push_back(m);
  }
  return out;
}

bool SmtpRecorder::WaitAccepted(size_t n, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (Accepted().size() < n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

void SmtpRecorder::AcceptLoop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard<std::mutex> lock(mu_);
    workers_.emplace_back([this, fd] {
      Serve(fd);
      close(fd);
    });
  }
}

void SmtpRecorder::Serve(int fd) {
  Conn c(fd, stopping_);
  auto* ctx = static_cast<SSL_CTX*>(ssl_ctx_);
  if (tls_ == Tls::kImplicit && !c.StartTls(ctx)) return;
  c.Write("220 127.0.0.1 ESMTP bpmc-smtp-recorder\r\n");
  RecordedMail mail;
  std::string user, password;
  std::string line;
  auto check_auth = [&](const std::string& u, const std::string& p) {
    std::lock_guard<std::mutex> lock(mu_);
    const bool ok = user_.empty() || (u == user_ && p == password_);
    if (ok) {
      user = u;
      password = p;
    }
    return ok;
  };
  while (c.ReadLine(&line)) {
    const std::string cmd = Upper(line.substr(0, line.find(' ')));
    if (cmd == "EHLO") {
      const bool offer_tls = tls_ == Tls::kStartTls && !c.tls();
      c.Write(std::string("250-127.0.0.1\r\n") + (offer_tls ? "250-STARTTLS\r\n" : "") +
              "250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n");
    } else if (cmd == "STARTTLS" && tls_ == Tls::kStartTls && !c.tls()) {
      c.Write("220 2.0.0 Ready to start TLS\r\n");
      if (!c.StartTls(ctx)) return;
      mail = RecordedMail{};  // RFC 3207: forget everything said before
      user.clear();
      password.clear();
    } else if (cmd == "HELO") {
      c.Write("250 127.0.0.1\r\n");
    } else if (cmd == "AUTH") {
      const std::string rest = line.size() > 5 ? line.substr(5) : "";
      const std::string mech = Upper(rest.substr(0, rest.find(' ')));
      if (mech == "PLAIN") {
        std::string b64 =
            rest.find(' ') != std::string::npos ? rest.substr(rest.find(' ') + 1) : "";
        if (b64.empty()) {
          c.Write("334 \r\n");
          if (!c.ReadLine(&b64)) return;
        }
        const std::string plain = Base64Decode(b64);  // authzid \0 authcid \0 password
        const auto a = plain.find('\0');
        const auto b = plain.find('\0', a + 1);
        const bool ok = a != std::string::npos && b != std::string::npos &&
                        check_auth(plain.substr(a + 1, b - a - 1), plain.substr(b + 1));
        c.Write(ok ? "235 2.7.0 Authentication successful\r\n"
                   : "535 5.7.8 Authentication failed\r\n");
      } else if (mech == "LOGIN") {
        std::string u, p;
        if (rest.find(' ') != std::string::npos) {
          u = rest.substr(rest.find(' ') + 1);
        } else {
          c.Write("334 VXNlcm5hbWU6\r\n");
          if (!c.ReadLine(&u)) return;
        }
        c.Write("334 UGFzc3dvcmQ6\r\n");
        if (!c.ReadLine(&p)) return;
        const bool ok = check_auth(Base64Decode(u), Base64Decode(p));
        c.Write(ok ? "235 2.7.0 Authentication successful\r\n"
                   : "535 5.7.8 Authentication failed\r\n");
      } else {
        c.Write("504 5.5.4 Unrecognized authentication type\r\n");
      }
    } else if (cmd == "MAIL") {
      mail = RecordedMail{};
      mail.from = AngleArg(line);
      c.Write("250 2.1.0 Ok\r\n");
    } else if (cmd == "RCPT") {
      mail.to.push_back(AngleArg(line));
      c.Write("250 2.1.5 Ok\r\n");
    } else if (cmd == "DATA") {
      c.Write("354 End data with <CR><LF>.<CR><LF>\r\n");
      std::string data;
      while (c.ReadLine(&line) && line != ".") {
        if (!line.empty() && line[0] == '.') line.erase(0, 1);  // dot-unstuffing
        data += line + "\r\n";
      }
      if (line != ".") return;
      mail.data = data;
      mail.auth_user = user;
      mail.auth_password = password;
      mail.tls = c.tls();
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!script_.empty()) {
          mail.reply = script_.front();
          script_.pop_front();
        }
        mails_.push_back(mail);
      }
      c.Write(mail.reply == 250 ? "250 2.0.0 Ok: queued\r\n"
                                : std::to_string(mail.reply) + " scripted failure\r\n");
    } else if (cmd == "RSET") {
      mail = RecordedMail{};
      c.Write("250 2.0.0 Ok\r\n");
    } else if (cmd == "NOOP") {
      c.Write("250 2.0.0 Ok\r\n");
    } else if (cmd == "QUIT") {
      c.Write("221 2.0.0 Bye\r\n");
      return;
    } else {
      c.Write("502 5.5.2 Command not recognized\r\n");
    }
  }
}

}  // namespace bpmc::recorders
