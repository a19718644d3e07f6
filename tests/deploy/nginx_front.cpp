#include "nginx_front.h"

#include <sys/stat.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace bpmc::testing {
namespace {

using namespace std::chrono_literals;

// Replaces every `from` in *text; false when there is none (the shipped file
// changed under the test).
bool ReplaceAll(std::string* text, const std::string& from, const std::string& to) {
  size_t n = 0;
  for (size_t pos = 0; (pos = text->find(from, pos)) != std::string::npos; pos += to.size(), ++n)
    text->replace(pos, from.size(), to);
  return n > 0;
}

// "server 127.0.0.1:A;\n    server 127.0.0.1:B;": an upstream's servers.
std::string ServerList(const std::vector<int>& ports) {
  std::string out;
  for (size_t i = 0; i < ports.size(); ++i) {
    if (i > 0) out += "\n    ";
    out += "server 127.0.0.1:" + std::to_string(ports[i]) + ";";
  }
  return out;
}

}  // namespace

std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::unique_ptr<NginxFront> NginxFront::Start(const std::string& dir,
                                              const std::vector<int>& exporter_ports,
                                              const std::vector<int>& receiver_ports,
                                              std::string* error) {
  std::unique_ptr<NginxFront> front(new NginxFront());
  front->dir_ = dir;
  front->ca_file_ = dir + "/bpmc.crt";
  std::string out;
  if (RunCommand("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1"
                 " -addext subjectAltName=IP:127.0.0.1 -keyout '" +
                     dir + "/bpmc.key' -out '" + dir + "/bpmc.crt' 2>&1",
                 &out) != 0) {
    *error = "openssl: " + out;
    return nullptr;
  }
  // The shipped file with this test's ports and paths.
  const char* source = getenv("BPMC_SOURCE_DIR");
  std::string conf = ReadTextFile(std::string(source ? source : ".") + "/deploy/nginx/bpmc.conf");
  front->tls_exporter_ = FreePort();
  front->tls_receiver_ = FreePort();
  const std::vector<std::pair<std::string, std::string>> edits = {
      {"server 127.0.0.1:9470;", ServerList(exporter_ports)},
      {"server 127.0.0.1:9471;", ServerList(receiver_ports)},
      {"listen 8443 ssl", "listen 127.0.0.1:" + std::to_string(front->tls_exporter_) + " ssl"},
      {"listen 9443 ssl", "listen 127.0.0.1:" + std::to_string(front->tls_receiver_) + " ssl"},
      {"/etc/ssl/bpmc/", dir + "/"},
  };
  for (const auto& [from, to] : edits) {
    if (!ReplaceAll(&conf, from, to)) {
      *error = "deploy/nginx/bpmc.conf no longer contains " + from;
      return nullptr;
    }
  }
  std::ofstream(dir + "/bpmc.conf") << conf;
  std::filesystem::create_directories(dir + "/tmp");
  chmod((dir + "/tmp").c_str(), 0777);  // nginx workers run as nobody under root
  std::ofstream(dir + "/nginx.conf")
      << "daemon off;\nworker_processes 1;\npid " + dir + "/nginx.pid;\nerror_log " + dir +
             "/error.log info;\n"
             "events { worker_connections 1024; }\n"
             "http {\n  access_log " +
             dir +
             "/access.log;\n"
             "  client_body_temp_path " +
             dir + "/tmp/body;\n  proxy_temp_path " + dir + "/tmp/proxy;\n  fastcgi_temp_path " +
             dir + "/tmp/fcgi;\n  uwsgi_temp_path " + dir + "/tmp/uwsgi;\n  scgi_temp_path " + dir +
             "/tmp/scgi;\n  include " + dir + "/bpmc.conf;\n}\n";
  const std::string base = std::string(kNginxBinary) + " -p '" + dir + "' -e '" + dir +
                           "/error.log' -c '" + dir + "/nginx.conf'";
  if (RunCommand(base + " -t 2>&1", &out) != 0) {
    *error = "nginx -t: " + out;
    return nullptr;
  }
  front->process_ = std::make_unique<Process>(std::vector<std::string>{
      kNginxBinary, "-p", dir, "-e", dir + "/error.log", "-c", dir + "/nginx.conf"});
  NginxFront* raw = front.get();
  if (!WaitFor(
          [raw] {
            return raw->Curl("https://127.0.0.1:" + std::to_string(raw->tls_exporter_) +
                             "/healthz") == "200 ok\n";
          },
          10s)) {
    *error = "nginx does not answer: " + ReadTextFile(dir + "/error.log");
    return nullptr;
  }
  return front;
}

NginxFront::~NginxFront() {
  if (!process_) return;
  process_->Signal(SIGQUIT);
  process_->Wait(10s);
}

std::string NginxFront::Curl(const std::string& url, const std::string& args) const {
  std::string out;
  RunCommand("curl -sS --max-time 20 --cacert '" + ca_file_ + "' -o '" + dir_ +
                 "/curl.out' -w '%{http_code}' " + args + " '" + url + "' 2>&1",
             &out);
  return out + " " + ReadTextFile(dir_ + "/curl.out");
}

}  // namespace bpmc::testing
