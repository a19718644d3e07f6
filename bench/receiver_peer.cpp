// bpmc-bench-peer: a loopback HTTP peer for bench/receiver_bench.sh. Answers
// every request 200 "ok" (like a Slack hook or a webhook receiver) and counts
// them; prints "listening on 127.0.0.1:<port>" and, on SIGTERM/SIGINT, the
// number of requests. Not for production. Served by bpmc::http (the only code
// that touches CivetWeb).
#include <prometheus/registry.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include "http/server.h"

namespace {

std::atomic<long> g_requests{0};

bpmc::http::Response Text(std::string body) {
  bpmc::http::Response r;
  r.content_type = "text/plain";
  r.body = std::move(body);
  return r;
}

}  // namespace

int main() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  bpmc::http::Route route;
  route.name = "peer";
  route.path = "/";
  route.prefix = true;
  route.methods = {"GET", "POST", "PUT"};
  route.authenticate = bpmc::http::Public();
  route.max_body_bytes = 64 << 20;
  route.handler = [](const bpmc::http::Request& r) {
    if (r.method == "GET") return Text(std::to_string(g_requests.load()) + "\n");
    g_requests.fetch_add(1);
    return Text("ok");
  };
  bpmc::http::ServerOptions options;
  options.threads = 32;
  options.max_requests_per_client = 0;  // every sender is 127.0.0.1
  prometheus::Registry registry;
  std::string error;
  auto server = bpmc::http::Server::Start(options, {route}, {}, registry, &error);
  if (!server) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  std::printf("listening on 127.0.0.1:%d\n", server->port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  std::printf("requests %ld\n", g_requests.load());
  return 0;
}
