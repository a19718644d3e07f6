#pragma once

#include <memory>
#include <string>

namespace bpmc::testing {

// A throwaway PostgreSQL 15 cluster (binaries from /usr/lib/postgresql/15/bin)
// in a fresh temporary directory, listening only on a Unix socket in that
// directory (no TCP). When the test runs as root, initdb and postgres run as
// the `postgres` system user. fsync stays on: durability tests need it.
// Not thread-safe; one object per cluster.
class PgCluster {
 public:
  // initdb + start; waits until it accepts connections. Aborts the test
  // program (with the server log) when that fails.
  static std::unique_ptr<PgCluster> Start();

  // Stops the server immediately and removes the directory.
  ~PgCluster();

  // `pg_ctl stop -m fast` / start again on the same data and socket.
  void Stop();
  void Restart();
  bool running() const { return running_; }

  // A hot standby of this cluster (which must be running): `pg_basebackup -R
  // -X stream` into a new temporary directory (standby.signal and
  // primary_conninfo over this cluster's socket), started on a socket of its
  // own. It streams from this cluster until stopped; stop it before this one.
  // CreateDatabase is not for standbys (read-only). Aborts on failure.
  std::unique_ptr<PgCluster> StartStandby();

  // A fresh, empty database with a unique name; returns its name.
  std::string CreateDatabase();

  // libpq key/value connection string for `dbname`, e.g.
  // "host=/tmp/pg-XXXX port=5432 user=postgres dbname=t1".
  std::string ConnectionString(const std::string& dbname) const;
  // The same as a postgresql:// URL (socket dir percent-encoded in `host=`).
  std::string Url(const std::string& dbname) const;

  const std::string& dir() const { return dir_; }  // also the socket directory
  int port() const { return port_; }               // names the socket file only

 private:
  PgCluster() = default;
  std::string dir_;
  int port_ = 0;
  bool running_ = false;
  int next_db_ = 0;
};

// One cluster shared by all tests of this binary, started on first use and
// stopped at exit.
PgCluster& SharedCluster();

}  // namespace bpmc::testing
