// bpmc-bench-readers: concurrent analytics readers for bench/analytics_bench.sh.
// One thread per token (each its own user), each on one keep-alive connection,
// cycling over the endpoints (reader r starts at endpoint r) with
// `granularity=day` for SECONDS; closed loop (a reader asks again when answered).
// MODE:
//   shared     every reader asks the same questions (dashboards watched by several
//              people); the exporter's answer cache may serve them
//   no-cache   the same, each request sent with `Cache-Control: no-cache` (always
//              computed: the cost of an answer under load)
// Prints one line per request, "ENDPOINT STATUS MILLISECONDS" (status 0: no answer).
// It replaced a loop of curl processes whose forks took a share of the two
// cores the exporter was measured on.
// Usage: bpmc-bench-readers URL SECONDS MODE TOKEN... -- ENDPOINT...
#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Sample {
  size_t endpoint;
  int status;
  double ms;
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> tokens, endpoints;
  bool after_sep = false;
  for (int i = 4; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") {
      after_sep = true;
      continue;
    }
    (after_sep ? endpoints : tokens).push_back(a);
  }
  const std::string mode = argc > 3 ? argv[3] : "";
  if (argc < 6 || tokens.empty() || endpoints.empty() || (mode != "shared" && mode != "no-cache")) {
    std::fprintf(stderr, "usage: %s URL SECONDS shared|no-cache TOKEN... -- ENDPOINT...\n",
                 argv[0]);
    return 2;
  }
  const std::string url = argv[1];
  const auto deadline = Clock::now() + std::chrono::seconds(std::atol(argv[2]));

  std::vector<std::vector<Sample>> samples(tokens.size());
  std::vector<std::thread> readers;
  for (size_t r = 0; r < tokens.size(); ++r) {
    readers.emplace_back([&, r] {
      httplib::Client client(url);
      client.set_keep_alive(true);
      client.set_read_timeout(60, 0);
      httplib::Headers headers = {{"Authorization", "Bearer " + tokens[r]}};
      if (mode == "no-cache") headers.emplace("Cache-Control", "no-cache");
      for (size_t i = r; Clock::now() < deadline; ++i) {
        const size_t ep = i % endpoints.size();
        const std::string path = "/api/v1/analytics/" + endpoints[ep] + "?granularity=day";
        const auto started = Clock::now();
        auto res = client.Get(path.c_str(), headers);
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
        samples[r].push_back({ep, res ? res->status : 0, ms});
      }
    });
  }
  for (auto& t : readers) t.join();
  for (const auto& reader : samples)
    for (const Sample& s : reader)
      std::printf("%s %d %.3f\n", endpoints[s.endpoint].c_str(), s.status, s.ms);
  return 0;
}
