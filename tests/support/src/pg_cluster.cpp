#include "testing/pg_cluster.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <pqxx/pqxx>
#include <sstream>
#include <thread>
#include <vector>

#include "testing/process.h"

namespace bpmc::testing {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPgBin = "/usr/lib/postgresql/15/bin";
// sockaddr_un::sun_path is 108 bytes; the socket is "<dir>/.s.PGSQL.<port>".
constexpr size_t kMaxSocketDirLength = 108 - sizeof("/.s.PGSQL.65535");

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The `postgres` system user when we are root (initdb refuses root), else nullptr.
const passwd* PostgresUserIfRoot() {
  if (geteuid() != 0) return nullptr;
  static const passwd* pw = [] {
    const passwd* p = getpwnam("postgres");
    if (p == nullptr) {
      std::cerr << "PgCluster: running as root but there is no `postgres` user "
                   "(install postgresql-15)\n";
      std::abort();
    }
    return p;
  }();
  return pw;
}

// Runs a PostgreSQL tool (through `runuser -u postgres --` when root) in `cwd`, appending its
// stdout and stderr to `log`. Returns the exit code (128+signal when killed).
int RunTool(const std::vector<std::string>& args, const std::string& cwd, const std::string& log) {
  std::vector<std::string> argv;
  if (PostgresUserIfRoot() != nullptr) argv = {"/usr/sbin/runuser", "-u", "postgres", "--"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> c_argv;
  for (std::string& a : argv) c_argv.push_back(a.data());
  c_argv.push_back(nullptr);

  const int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log_fd < 0 || null_fd < 0) {
    std::cerr << "PgCluster: open " << log << ": " << std::strerror(errno) << "\n";
    std::abort();
  }
  const pid_t pid = fork();
  if (pid == 0) {
    // The tool runs as `postgres`, which may not be allowed into our working directory.
    if (chdir(cwd.c_str()) != 0) _exit(126);
    dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    // pg_ctl leaves the postmaster running: it must not inherit the test runner's pipes.
#ifdef SYS_close_range
    syscall(SYS_close_range, 3U, ~0U, 0U);
#endif
    execv(c_argv[0], c_argv.data());
    _exit(127);
  }
  close(log_fd);
  close(null_fd);
  if (pid < 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

std::string Tool(const char* name) { return std::string(kPgBin) + "/" + name; }

// True when `dir` can hold our socket and, as root, the `postgres` user can write into it
// (a $TMPDIR under /root cannot be entered by `postgres`).
bool UsableTempDir(const std::string& dir) {
  if (dir.size() > kMaxSocketDirLength) return false;
  if (const passwd* pw = PostgresUserIfRoot()) {
    if (chown(dir.c_str(), pw->pw_uid, pw->pw_gid) != 0) return false;
    return RunTool({"/usr/bin/test", "-w", dir}, "/", "/dev/null") == 0;
  }
  return true;
}

std::string MakeTempDir() {
  std::vector<std::string> bases;
  if (const char* tmp = getenv("TMPDIR"); tmp != nullptr && *tmp != '\0') bases.emplace_back(tmp);
  bases.emplace_back("/tmp");
  for (const std::string& base : bases) {
    std::string path = base + "/bpmc-pg-XXXXXX";
    if (mkdtemp(path.data()) == nullptr) continue;
    if (UsableTempDir(path)) return path;
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  std::cerr << "PgCluster: no usable temporary directory (tried $TMPDIR and /tmp)\n";
  std::abort();
}

// Quotes a libpq key/value when needed: 'a b' -> "'a b'", with \ and ' escaped.
std::string ConnValue(const std::string& v) {
  if (!v.empty() && v.find_first_of(" '\\") == std::string::npos) return v;
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string PercentEncode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// `pg_ctl stop -m immediate` (harmless when nothing runs) and remove the directory.
void StopImmediatelyAndRemove(const std::string& dir) {
  RunTool({Tool("pg_ctl"), "-D", dir + "/data", "-w", "-m", "immediate", "stop"}, dir,
          dir + "/pg_ctl.log");
  std::error_code ignored;
  fs::remove_all(dir, ignored);
}

}  // namespace

std::unique_ptr<PgCluster> PgCluster::Start() {
  std::unique_ptr<PgCluster> c(new PgCluster());
  c->dir_ = MakeTempDir();
  // Only names the socket file (no TCP); a free TCP port keeps clusters apart in `ps` output.
  c->port_ = FreePort();
  const std::string data = c->dir_ + "/data";
  const std::string log = c->dir_ + "/initdb.log";
  const int rc = RunTool({Tool("initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync",
                          "-E", "UTF8", "--locale=C"},
                         c->dir_, log);
  if (rc != 0) {
    std::cerr << "PgCluster: initdb failed with exit code " << rc << "\n" << ReadFile(log);
    c.reset();
    std::abort();
  }
  c->Restart();
  return c;
}

PgCluster::~PgCluster() {
  if (running_) {
    StopImmediatelyAndRemove(dir_);
  } else {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
}

void PgCluster::Stop() {
  if (!running_) return;
  const std::string data = dir_ + "/data";
  const std::string log = dir_ + "/pg_ctl.log";
  const int rc =
      RunTool({Tool("pg_ctl"), "-D", data, "-w", "-t", "120", "-m", "fast", "stop"}, dir_, log);
  // A test may have killed the server itself (kill -9 of the postmaster): `pg_ctl status`
  // exits with 3 when no server runs, which is what we wanted.
  if (rc != 0 && RunTool({Tool("pg_ctl"), "-D", data, "status"}, dir_, log) != 3) {
    std::cerr << "PgCluster: pg_ctl stop failed with exit code " << rc << "\n"
              << ReadFile(log) << "--- server log:\n"
              << ReadFile(dir_ + "/log");
    StopImmediatelyAndRemove(dir_);
    std::abort();
  }
  running_ = false;
}

void PgCluster::Restart() {
  Stop();
  // pg_ctl hands -o to /bin/sh: the directory is quoted, and listen_addresses='' reaches
  // postgres as an empty value (no TCP listener).
  const std::string options = "-k '" + dir_ + "' -c listen_addresses='' -p " +
                              std::to_string(port_) +
                              " -c max_connections=200 -c shared_buffers=128MB";
  using Clock = std::chrono::steady_clock;
  const auto retry_deadline = Clock::now() + std::chrono::seconds(15);
  int rc = -1;
  while (true) {
    rc = RunTool({Tool("pg_ctl"), "-D", dir_ + "/data", "-l", dir_ + "/log", "-w", "-t", "120",
                  "-o", options, "start"},
                 dir_, dir_ + "/pg_ctl.log");
    // After a kill -9 of the postmaster its backends hold the old shared memory for a
    // moment and the new postmaster refuses to start: try again until the deadline.
    if (rc == 0 || Clock::now() >= retry_deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::string last_error;
  if (rc == 0) {
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (true) {
      try {
        pqxx::connection conn(ConnectionString("postgres"));
        running_ = true;
        return;
      } catch (const std::exception& e) {
        last_error = e.what();
      }
      if (Clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  std::cerr << "PgCluster: server in " << dir_ << " did not start (pg_ctl exit code " << rc << "; "
            << last_error << ")\n"
            << ReadFile(dir_ + "/pg_ctl.log") << "--- server log:\n"
            << ReadFile(dir_ + "/log");
  StopImmediatelyAndRemove(dir_);  // a half-started postmaster must not outlive the test
  std::abort();
}

std::unique_ptr<PgCluster> PgCluster::StartStandby() {
  std::unique_ptr<PgCluster> c(new PgCluster());
  c->dir_ = MakeTempDir();
  c->port_ = FreePort();
  const std::string log = c->dir_ + "/basebackup.log";
  // wal_level=replica and max_wal_senders=10 are PostgreSQL 15's defaults, and
  // initdb -A trust allows local replication connections.
  const int rc = RunTool({Tool("pg_basebackup"), "-D", c->dir_ + "/data", "-R", "-X", "stream",
                          "-c", "fast", "-h", dir_, "-p", std::to_string(port_), "-U", "postgres"},
                         c->dir_, log);
  if (rc != 0) {
    std::cerr << "PgCluster: pg_basebackup failed with exit code " << rc << "\n" << ReadFile(log);
    c.reset();
    std::abort();
  }
  c->Restart();
  return c;
}

std::string PgCluster::CreateDatabase() {
  const std::string name = "t" + std::to_string(++next_db_);
  pqxx::connection conn(ConnectionString("postgres"));
  pqxx::nontransaction tx(conn);  // CREATE DATABASE cannot run inside a transaction block
  tx.exec("CREATE DATABASE " + tx.quote_name(name));
  return name;
}

std::string PgCluster::ConnectionString(const std::string& dbname) const {
  return "host=" + ConnValue(dir_) + " port=" + std::to_string(port_) +
         " user=postgres dbname=" + ConnValue(dbname);
}

std::string PgCluster::Url(const std::string& dbname) const {
  return "postgresql://postgres@/" + PercentEncode(dbname) + "?host=" + PercentEncode(dir_) +
         "&port=" + std::to_string(port_);
}

PgCluster& SharedCluster() {
  // Destroyed with the other statics at exit(): the server is stopped and its files removed.
  static std::unique_ptr<PgCluster> cluster = PgCluster::Start();
  return *cluster;
}

}  // namespace bpmc::testing
