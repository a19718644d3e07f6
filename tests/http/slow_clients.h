#pragma once
// `n` connections from 127.0.0.2 that each send `request` one byte a second
// and reconnect when the server closes them, so that `n` slow clients are
// always there (a slowloris). Stops by itself after `max_seconds`.

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "raw_client.h"

namespace bpmc::testing {

class SlowClients {
 public:
  SlowClients(int port, int n, std::string request, int max_seconds = 60)
      : port_(port), request_(std::move(request)) {
    for (int i = 0; i < n; ++i)
      conns_.push_back({std::make_unique<RawConnection>(port_, "127.0.0.2"), 0});
    thread_ = std::thread([this, max_seconds] {
      for (int second = 0; second < max_seconds && !stop_; ++second) {
        for (auto& c : conns_) {
          if (c.offset >= request_.size() || !c.conn->Send(request_.substr(c.offset, 1))) {
            c.conn = std::make_unique<RawConnection>(port_, "127.0.0.2");
            c.offset = 0;
            reconnects_++;
            if (!c.conn->Send(request_.substr(0, 1))) continue;
          }
          ++c.offset;
        }
        for (int k = 0; k < 10 && !stop_; ++k)
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }
  ~SlowClients() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    conns_.clear();
  }
  int reconnects() const { return reconnects_; }

 private:
  struct Slow {
    std::unique_ptr<RawConnection> conn;
    size_t offset;
  };
  const int port_;
  const std::string request_;
  std::vector<Slow> conns_;
  std::atomic<bool> stop_{false};
  std::atomic<int> reconnects_{0};
  std::thread thread_;
};

}  // namespace bpmc::testing
