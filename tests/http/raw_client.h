#pragma once
// A byte-level HTTP/1.1 client for the HTTP layer's tests: it can bind a local
// address (127.0.0.2 for "another client"), send a request in pieces, slowly,
// or announce a body it never sends, and time the answer. Loopback only.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace bpmc::testing {

class RawConnection {
 public:
  // Connects to 127.0.0.1:port from `local_address` (any 127.x works on Linux).
  RawConnection(int port, const std::string& local_address = "127.0.0.1") {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    inet_pton(AF_INET, local_address.c_str(), &local.sin_addr);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) Close();
    if (fd_ < 0) return;
    const int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) Close();
  }
  ~RawConnection() { Close(); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool ok() const { return fd_ >= 0; }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  bool Send(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t n = send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  // Reads one response (headers + Content-Length body) within `timeout`.
  // Returns the status (0: none: timeout or closed) and fills headers/body.
  int ReadResponse(std::chrono::milliseconds timeout, std::string* head = nullptr,
                   std::string* body = nullptr) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    std::string buf;
    size_t header_end = std::string::npos;
    size_t need = 0;
    while (true) {
      if (header_end == std::string::npos) {
        header_end = buf.find("\r\n\r\n");
        if (header_end != std::string::npos) {
          std::string h = buf.substr(0, header_end);
          std::string lower = h;
          for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          const size_t cl = lower.find("content-length:");
          need = cl == std::string::npos ? 0 : std::strtoull(h.c_str() + cl + 15, nullptr, 10);
        }
      }
      if (header_end != std::string::npos && buf.size() >= header_end + 4 + need) break;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return 0;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return 0;
      char tmp[65536];
      const ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) {
        if (header_end == std::string::npos) return 0;
        break;
      }
      buf.append(tmp, static_cast<size_t>(n));
    }
    if (head) *head = buf.substr(0, header_end);
    if (body) *body = buf.substr(header_end + 4, need);
    if (buf.size() < 12 || buf.compare(0, 5, "HTTP/") != 0) return 0;
    return std::atoi(buf.c_str() + 9);
  }

  // True when the peer closed the connection within `timeout` (reads and drops data).
  bool WaitClosed(std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char tmp[4096];
      const ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) return true;
    }
  }

 private:
  int fd_ = -1;
};

// Value of "Name:" in a response head (case-sensitive name as written), or "".
inline std::string HeaderValue(const std::string& head, const std::string& name) {
  const size_t p = head.find("\r\n" + name + ": ");
  if (p == std::string::npos) return "";
  const size_t start = p + 4 + name.size();
  return head.substr(start, head.find("\r\n", start) - start);
}

// VmHWM (peak RSS) or VmRSS of /proc/<pid>/status in kB ("self" for this process).
inline long ProcStatusKb(const std::string& pid, const std::string& key) {
  std::ifstream in("/proc/" + pid + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return std::atol(line.c_str() + key.size() + 1);
  return -1;
}

// p-th percentile (0..100) of `values` (copied).
inline double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t i = std::min(values.size() - 1, static_cast<size_t>(p / 100.0 * values.size()));
  return values[i];
}

}  // namespace bpmc::testing
