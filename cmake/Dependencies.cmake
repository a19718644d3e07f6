# Every dependency is a Debian package (scripts/deps.sh installs them).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(prometheus-cpp CONFIG REQUIRED)
find_package(civetweb CONFIG REQUIRED)
find_package(yaml-cpp CONFIG REQUIRED)
find_package(spdlog CONFIG REQUIRED)
find_package(nlohmann_json CONFIG REQUIRED)
find_package(simdjson CONFIG REQUIRED)
find_package(CURL REQUIRED)
# libpqxx 6.4 ships no CMake config. PQXX_HAVE_OPTIONAL makes NULL -> std::optional safe.
pkg_check_modules(PQXX REQUIRED IMPORTED_TARGET libpqxx)
# cpp-httplib is a compiled library built with OpenSSL/zlib/brotli: link it only this way.
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
# Report exports: XLSX (libxlsxwriter 1.1.4) and PDF (cairo 1.16).
pkg_check_modules(XLSXWRITER REQUIRED IMPORTED_TARGET xlsxwriter)
pkg_check_modules(CAIRO REQUIRED IMPORTED_TARGET cairo)
pkg_check_modules(RE2 REQUIRED IMPORTED_TARGET re2)  # linear-time regexes for request data
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)  # argon2id password hashes
