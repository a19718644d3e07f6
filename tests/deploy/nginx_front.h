// The shipped reverse-proxy front (deploy/nginx/bpmc.conf) started for a test:
// Debian's nginx with a self-signed certificate for 127.0.0.1, the file's
// upstreams pointed at the given backend ports (several: one upstream server
// each), its TLS listeners on free loopback ports. Used by nginx_front_test and
// two_nodes_test.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "testing/process.h"

namespace bpmc::testing {

inline constexpr const char* kNginxBinary = "/usr/sbin/nginx";

class NginxFront {
 public:
  // Starts nginx in `dir` (which must be world-readable: its workers run as
  // nobody under root) and waits until it answers /healthz over TLS. On
  // failure returns nullptr and says why in *error.
  static std::unique_ptr<NginxFront> Start(const std::string& dir,
                                           const std::vector<int>& exporter_ports,
                                           const std::vector<int>& receiver_ports,
                                           std::string* error);
  ~NginxFront();  // SIGQUIT: graceful stop

  int exporter_port() const { return tls_exporter_; }  // TLS, in front of the exporters
  int receiver_port() const { return tls_receiver_; }  // TLS, in front of the receivers
  const std::string& ca_file() const { return ca_file_; }

  // "<status> <body>" of `url` fetched with curl over TLS (verifying the test
  // certificate), with extra curl arguments.
  std::string Curl(const std::string& url, const std::string& args = "") const;

 private:
  NginxFront() = default;
  std::string dir_, ca_file_;
  int tls_exporter_ = 0, tls_receiver_ = 0;
  std::unique_ptr<Process> process_;
};

std::string ReadTextFile(const std::string& path);

}  // namespace bpmc::testing
