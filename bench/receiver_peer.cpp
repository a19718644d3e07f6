// bpmc-bench-peer: a loopback HTTP peer for bench/receiver_bench.sh. Answers
// every request 200 "ok" (like a Slack hook or a webhook receiver) and counts
// them; prints "listening on 127.0.0.1:<port>" and, on SIGTERM/SIGINT, the
// number of requests. Not for production.
#include <CivetServer.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

namespace {

std::atomic<long> g_requests{0};

class OkHandler : public CivetHandler {
 public:
  bool handlePost(CivetServer*, mg_connection* c) override { return Answer(c); }
  bool handlePut(CivetServer*, mg_connection* c) override { return Answer(c); }
  bool handleGet(CivetServer*, mg_connection* c) override {
    const std::string body = std::to_string(g_requests.load()) + "\n";
    const std::string out = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body;
    mg_write(c, out.data(), out.size());
    return true;
  }

 private:
  static bool Answer(mg_connection* c) {
    char buf[16384];
    while (mg_read(c, buf, sizeof buf) > 0) {
    }
    g_requests.fetch_add(1);
    static const char kOk[] =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
    mg_write(c, kOk, sizeof kOk - 1);
    return true;
  }
};

}  // namespace

int main() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::vector<std::string> options = {"listening_ports", "127.0.0.1:0", "num_threads", "32",
                                      "tcp_nodelay", "1", "enable_keep_alive", "yes"};
  CivetServer server(options);
  OkHandler handler;
  server.addHandler("/", handler);
  std::printf("listening on 127.0.0.1:%d\n", server.getListeningPorts().at(0));
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  std::printf("requests %ld\n", g_requests.load());
  return 0;
}
