// bpmc-bench-pacer: an open-loop paced load for bench/receiver_bench.sh and
// bench/analytics_bench.sh. Request i is due at start + i / RATE, whatever the answers'
// latency (open loop, unlike wrk's closed loop), over keep-alive connections. KIND:
//   alertmanager (default)  an Alertmanager v4 webhook with one new alert, to
//                           /v1/alertmanager, 200 expected;
//   usage-batch=N           a batch of N new usage events (timestamp: now) to
//                           /v1/connector/usage/batch, 201 expected (RATE is requests/s:
//                           events/s = RATE * N).
// Prints one line:
//   PACERESULT sent=.. ok=.. failed=.. seconds=.. p50_us=.. p99_us=..
// Usage: bpmc-bench-pacer URL TOKEN RATE SECONDS CONNECTIONS PREFIX [KIND]
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

std::string Payload(const std::string& prefix, long i, const std::string& starts_at) {
  const std::string fp = prefix + "-" + std::to_string(i);
  return R"({"version":"4","groupKey":"{}:{alertname=\"BenchAlert\"}","truncatedAlerts":0,)"
         R"("status":"firing","receiver":"bench","groupLabels":{},"commonLabels":{},)"
         R"("commonAnnotations":{},"externalURL":"http://127.0.0.1:9093","alerts":[)"
         R"({"status":"firing","labels":{"alertname":"BenchAlert","severity":"critical","n":")" +
         fp + R"("},"annotations":{"summary":"bench alert )" + fp + R"("},"startsAt":")" +
         starts_at +
         R"(","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://127.0.0.1:9090/graph",)"
         R"("fingerprint":")" +
         fp + R"("}]})";
}

// N usage events of account PREFIX-i (operation and account vary, ids are new).
std::string UsageBatch(const std::string& prefix, long i, int n, const std::string& ts) {
  std::string out = "[";
  for (int k = 0; k < n; ++k) {
    if (k) out += ',';
    out += R"({"connector":"conn-1","operation":"op-)" + std::to_string(1 + k % 20) +
           R"(","make_account_id":")" + prefix + "-" + std::to_string((i * n + k) % 5000) +
           R"(","status":")" + (k % 20 == 0 ? "error\",\"error_type\":\"timeout" : "success") +
           R"(","duration_ms":)" + std::to_string(20 + k % 300) + R"(,"timestamp":")" + ts + "\"}";
  }
  return out + "]";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7 && argc != 8) {
    std::fprintf(stderr, "usage: %s URL TOKEN RATE SECONDS CONNECTIONS PREFIX [KIND]\n", argv[0]);
    return 2;
  }
  const std::string url = argv[1], token = argv[2], prefix = argv[6];
  const std::string kind = argc == 8 ? argv[7] : "alertmanager";
  int batch = 0;  // 0: Alertmanager webhooks
  if (kind.rfind("usage-batch=", 0) == 0) {
    batch = std::atoi(kind.c_str() + 12);
    if (batch < 1 || batch > 10000) {
      std::fprintf(stderr, "KIND usage-batch=N needs 1 <= N <= 10000\n");
      return 2;
    }
  } else if (kind != "alertmanager") {
    std::fprintf(stderr, "KIND must be alertmanager or usage-batch=N\n");
    return 2;
  }
  const double rate = std::atof(argv[3]), seconds = std::atof(argv[4]);
  const int connections = std::atoi(argv[5]);
  const long total = static_cast<long>(rate * seconds);
  const std::string host_port = url.substr(url.find("//") + 2);
  const std::string host = host_port.substr(0, host_port.find(':'));
  const int port = std::atoi(host_port.substr(host_port.find(':') + 1).c_str());
  char starts_at[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(starts_at, sizeof starts_at, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  const char* path = batch ? "/v1/connector/usage/batch" : "/v1/alertmanager";
  const int ok_status = batch ? 201 : 200;

  std::atomic<long> next{0}, ok{0}, failed{0};
  std::mutex mu;
  std::vector<long> latencies_us;
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < connections; ++t) {
    threads.emplace_back([&] {
      httplib::Client client(host, port);
      client.set_keep_alive(true);
      client.set_read_timeout(30, 0);
      const httplib::Headers headers = {{"Authorization", "Bearer " + token}};
      std::vector<long> mine;
      for (long i = next++; i < total; i = next++) {
        const auto due = start + std::chrono::microseconds(static_cast<long>(i * 1e6 / rate));
        std::this_thread::sleep_until(due);
        const auto r = client.Post(
            path, headers,
            batch ? UsageBatch(prefix, i, batch, starts_at) : Payload(prefix, i, starts_at),
            "application/json");
        const auto done = Clock::now();
        (r && r->status == ok_status ? ok : failed)++;
        // Latency from when it was due: a late start counts (no coordinated omission).
        mine.push_back(std::chrono::duration_cast<std::chrono::microseconds>(done - due).count());
      }
      std::lock_guard<std::mutex> lock(mu);
      latencies_us.insert(latencies_us.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(latencies_us.begin(), latencies_us.end());
  auto pct = [&](double p) {
    return latencies_us.empty()
               ? 0L
               : latencies_us[std::min(latencies_us.size() - 1,
                                       static_cast<size_t>(p * latencies_us.size()))];
  };
  std::printf("PACERESULT sent=%ld ok=%ld failed=%ld seconds=%.3f p50_us=%ld p99_us=%ld\n", total,
              ok.load(), failed.load(), elapsed, pct(0.5), pct(0.99));
  return failed.load() == 0 ? 0 : 1;
}
