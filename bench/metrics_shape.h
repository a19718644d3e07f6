#pragma once
// The label sets of bench/metrics_bench.sh, shared by bpmc-bench-metrics and
// its prometheus-cpp baseline so that both expose the same series.

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace bpmc::bench {

// Label set i of n: 20 connectors, n/20 operations each; every 4th label set
// also has an error (error_type="timeout"); durations in three buckets.
struct LabelSet {
  std::string connector;
  std::string operation;
  bool error;
};

inline LabelSet Shape(int i) {
  char c[32];
  char o[48];
  std::snprintf(c, sizeof c, "connector-%02d", i % 20);
  std::snprintf(o, sizeof o, "operation-name-%06d", i / 20);
  return {c, o, i % 4 == 0};
}

// Durations (seconds) observed for every label set.
inline constexpr double kDurations[] = {0.012, 0.3, 4.2};

// Resident and peak resident set size of this process, in kB.
inline long StatusKb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string k = std::string(key) + ":";
  while (std::getline(in, line))
    if (line.compare(0, k.size(), k) == 0) return std::atol(line.c_str() + k.size());
  return -1;
}

}  // namespace bpmc::bench
