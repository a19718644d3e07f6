#!/usr/bin/env bash
# Installs the Debian 12 packages that BPM Centr needs to build, test and run.
# Only what is missing is installed, after a single `apt-get update`; nothing is
# downloaded from anywhere else. Safe to run again: it does nothing when all is there.
# Non-interactive (CI has no stdin); uses sudo only when not already root.
set -euo pipefail

packages=(
  # Compilers and build tools (clang + compiler-rt for the sanitizer and fuzzer build).
  build-essential cmake ninja-build pkg-config git clang libclang-rt-14-dev
  # The formatter ./test.sh checks every C++ file with (scripts/check-format.sh).
  clang-format
  # Libraries the C++ code links.
  libssl-dev prometheus-cpp-dev libcivetweb-dev libpqxx-dev libyaml-cpp-dev
  libcpp-httplib-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libsimdjson-dev
  libcurl4-openssl-dev libhowardhinnant-date-dev libkainjow-mustache-dev
  # RE2: linear-time regular expressions wherever a pattern meets request data.
  libre2-dev
  # argon2id password hashes of the console logins.
  libsodium-dev
  # Report exports: XLSX and PDF writers, and a font with Cyrillic glyphs for the PDFs.
  libxlsxwriter-dev libcairo2-dev fonts-dejavu-core
  # Unit-test framework.
  googletest libgtest-dev libgmock-dev
  # Readers the export tests check the files with: pdftotext, openpyxl (for /usr/bin/python3).
  poppler-utils python3-openpyxl
  # PostgreSQL server (private clusters in tests and run.sh) with the sketch extensions.
  postgresql-15 postgresql-client-15 postgresql-15-hll postgresql-15-tdigest
  # Connection pooler both binaries are tested through in transaction mode
  # (tests/scaling/pgbouncer_test.cpp, docs/SCALING.md "PgBouncer").
  pgbouncer
  # Monitoring stack: prometheus + promtool, prometheus-alertmanager + amtool.
  prometheus prometheus-alertmanager
  # Only for `--config.check` of prometheus/blackbox.yml in the tests (never started here).
  prometheus-blackbox-exporter
  # Benchmarks and everyday tools used by the scripts.
  wrk hyperfine curl python3 ca-certificates procps
  # The reverse-proxy front (deploy/nginx/) started for real by nginx_front_test, and openssl
  # for its self-signed test certificate.
  nginx openssl
  # The console's real-browser test (tests/console/browser_test.py): headless Chromium driven
  # by selenium through chromedriver (Debian's, run by /usr/bin/python3).
  chromium chromium-driver python3-selenium
  # The calendar client the on-call feed test reads the .ics with (tests/receiver/oncall_feed_test.cpp).
  python3-icalendar
  # The Debian packages (cmake/Packaging.cmake, tests/deploy/packaging_test.cpp): dpkg-shlibdeps
  # (dpkg-dev) for CPack's Depends, lintian to check them, systemd-analyze (systemd; verify and
  # security work offline, no systemd as PID 1 needed) for the units. CPack writes the .deb
  # itself: no fakeroot.
  dpkg-dev lintian systemd
)
# The console's bundler (console/CMakeLists.txt runs npm ci and esbuild). Node may come from
# elsewhere (NodeSource, nvm); only without a `node` on the PATH are Debian's packages added.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for pkg in "${packages[@]}"; do
  # `dpkg -s` exits 0 also for removed-but-configured packages: check the status line.
  # (Not `| grep -q`: with pipefail, grep quitting early makes dpkg die of SIGPIPE.)
  status=$(dpkg -s "$pkg" 2>/dev/null || true)
  if [[ $status != *$'\nStatus: install ok installed'* ]]; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "deps.sh: all ${#packages[@]} packages are installed"
  exit 0
fi
echo "deps.sh: installing ${missing[*]}"

sudo=()
if ((EUID != 0)); then
  sudo=(sudo)
fi

# Without systemd (containers, CI) the postinst scripts of postgresql-15, prometheus and
# prometheus-alertmanager start their system services through /etc/init.d, and a failing
# start fails the whole install. We use private instances only, so while installing we
# deny service starts with a policy-rc.d (exit 101 = "action forbidden"), the usual
# container practice, unless the machine already has one. With systemd we change nothing.
policy=/usr/sbin/policy-rc.d
if [[ ! -d /run/systemd/system && ! -e $policy ]]; then
  printf '#!/bin/sh\n# Temporary, from BPM Centr scripts/deps.sh\nexit 101\n' |
    "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod 755 "$policy"
  trap '"${sudo[@]}" rm -f "$policy"' EXIT
fi

"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update </dev/null
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
