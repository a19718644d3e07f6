# Debian packages (docs/INSTALL.md): install() rules for the two binaries, their systemd units
# (deploy/systemd/), /etc/bpmc configs (conffiles), maintainer scripts and docs, and the
# Prometheus/Alertmanager/Grafana assets; CPack's DEB generator makes three packages:
#   bpmc-exporter    /usr/bin/bpmc-exporter, bpmc-exporter.service, /etc/bpmc/exporter.yaml
#   bpmc-receiver    /usr/bin/bpmc-receiver, bpmc-receiver.service, /etc/bpmc/receiver.yaml
#   bpmc-monitoring  rules, Alertmanager config, dashboards under /usr/share/bpmc and
#                    Grafana's dashboard provider in /etc/grafana/provisioning/dashboards
# Build them from any build tree: `cmake --build build --target package` (or
# `cpack -G DEB --config build/CPackConfig.cmake -B DIR`). Nothing else is installed: no
# tests, fuzzers or benches. Migrations are compiled into the binaries (cmake/Migrations.cmake),
# so no SQL file is shipped. tests/deploy/packaging_test.cpp builds, lints and runs them.

include(GNUInstallDirs)

set(BPMC_DEB_RELEASE 1)
set(BPMC_DEB_VERSION "${PROJECT_VERSION}-${BPMC_DEB_RELEASE}")
set(deb_src ${CMAKE_SOURCE_DIR}/deploy/debian)
set(deb_out ${CMAKE_BINARY_DIR}/deb)
find_program(BPMC_GZIP_FOR_DEB gzip REQUIRED)

# One package's control scripts, conffiles, changelog.Debian.gz, copyright and lintian overrides.
# deploy/debian/<component>.postinst.sh and .purge.sh, when present, are pasted into the
# postinst's "configure" branch and the postrm's "purge" branch.
function(bpmc_deb_files component pkg)
  cmake_parse_arguments(D "NO_SCRIPTS" "" "CONFFILES;SECRETS" ${ARGN})
  set(out ${deb_out}/${component})
  set(PKG ${pkg})
  set(COMPONENT ${component})
  set(DEB_VERSION ${BPMC_DEB_VERSION})
  list(JOIN D_SECRETS " " GENERATED_SECRETS)
  set(POSTINST_EXTRA "")
  set(PURGE_EXTRA "")
  foreach(part postinst purge)
    set(f ${deb_src}/${component}.${part}.sh)
    if(EXISTS ${f})
      string(TOUPPER ${part} up)
      file(READ ${f} ${up}_EXTRA)
      set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${f})
    endif()
  endforeach()
  set(control "")
  if(NOT D_NO_SCRIPTS)
    foreach(script postinst prerm postrm)
      configure_file(${deb_src}/${script}.in ${out}/${script} @ONLY
                     FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
                                      GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
      list(APPEND control ${out}/${script})
    endforeach()
  endif()
  if(D_CONFFILES)
    list(JOIN D_CONFFILES "\n" conffiles)
    file(WRITE ${out}/conffiles.tmp "${conffiles}\n")
    configure_file(${out}/conffiles.tmp ${out}/conffiles COPYONLY)
    list(APPEND control ${out}/conffiles)
  endif()
  string(TOUPPER ${component} up)
  set(CPACK_DEBIAN_${up}_PACKAGE_CONTROL_EXTRA "${control}" PARENT_SCOPE)

  # /usr/share/doc/<pkg>: copyright, changelog.Debian.gz (gzip -n: reproducible).
  configure_file(${deb_src}/changelog.in ${out}/changelog.Debian @ONLY)
  execute_process(COMMAND ${BPMC_GZIP_FOR_DEB} -9nf ${out}/changelog.Debian
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "gzip ${out}/changelog.Debian failed")
  endif()
  set(doc ${CMAKE_INSTALL_DATAROOTDIR}/doc/${pkg})
  install(FILES ${deb_src}/copyright ${out}/changelog.Debian.gz DESTINATION ${doc}
          COMPONENT ${component})
  install(FILES ${CMAKE_SOURCE_DIR}/docs/INSTALL.md DESTINATION ${doc} RENAME debian-12.md
          COMPONENT ${component})
  if(EXISTS ${deb_src}/${pkg}.lintian-overrides)
    install(FILES ${deb_src}/${pkg}.lintian-overrides
            DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides RENAME ${pkg}
            COMPONENT ${component})
  endif()
endfunction()

# Full RELRO for the two shipped binaries (lintian's hardening-no-bindnow): the GOT is
# read-only after start-up.
foreach(binary bpmc-exporter bpmc-receiver)
  target_link_options(${binary} PRIVATE LINKER:-z,relro LINKER:-z,now)
endforeach()

# --- bpmc-exporter ---------------------------------------------------------------------
install(TARGETS bpmc-exporter RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT exporter)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/systemd/bpmc-exporter.service
        DESTINATION /lib/systemd/system COMPONENT exporter)
install(FILES ${deb_src}/etc/exporter.yaml DESTINATION /etc/bpmc COMPONENT exporter)
install(FILES ${CMAKE_SOURCE_DIR}/exporter/exporter.example.yaml
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/bpmc-exporter COMPONENT exporter)
bpmc_deb_files(exporter bpmc-exporter
  CONFFILES /etc/bpmc/exporter.yaml
  SECRETS pseudonym_key)

# --- bpmc-receiver ---------------------------------------------------------------------
install(TARGETS bpmc-receiver RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT receiver)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/systemd/bpmc-receiver.service
        DESTINATION /lib/systemd/system COMPONENT receiver)
install(FILES ${deb_src}/etc/receiver.yaml DESTINATION /etc/bpmc COMPONENT receiver)
install(FILES ${CMAKE_SOURCE_DIR}/webhook_receiver/receiver.example.yaml
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/bpmc-receiver COMPONENT receiver)
bpmc_deb_files(receiver bpmc-receiver
  CONFFILES /etc/bpmc/receiver.yaml
  SECRETS webhook_token watchdog_token ack_link_secret)

# --- bpmc-monitoring -------------------------------------------------------------------
# Debian's prometheus and prometheus-alertmanager own /etc/prometheus/*.yml: the rules are
# shipped read-only under /usr/share/bpmc for prometheus.yml's rule_files, the configs as
# examples (docs/INSTALL.md). Grafana finds the dashboards through the provider file.
set(share ${CMAKE_INSTALL_DATAROOTDIR}/bpmc)
install(FILES ${CMAKE_SOURCE_DIR}/prometheus/rules/recording.yml
              ${CMAKE_SOURCE_DIR}/prometheus/rules/alerts.yml
        DESTINATION ${share}/prometheus/rules COMPONENT monitoring)
install(FILES ${CMAKE_SOURCE_DIR}/prometheus/prometheus.yml ${CMAKE_SOURCE_DIR}/prometheus/blackbox.yml
        DESTINATION ${share}/prometheus COMPONENT monitoring)
install(FILES ${CMAKE_SOURCE_DIR}/alertmanager/alertmanager.yml
        DESTINATION ${share}/alertmanager COMPONENT monitoring)
file(GLOB dashboards CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/grafana/dashboards/*.json)
install(FILES ${dashboards} DESTINATION ${share}/grafana/dashboards COMPONENT monitoring)
install(FILES ${CMAKE_SOURCE_DIR}/grafana/provisioning/datasources/bpmc.yaml
        DESTINATION ${share}/grafana/provisioning/datasources COMPONENT monitoring)
# grafana/provisioning/dashboards/bpmc.yaml with the packaged dashboards' path.
file(READ ${CMAKE_SOURCE_DIR}/grafana/provisioning/dashboards/bpmc.yaml provider)
string(REPLACE "/var/lib/grafana/dashboards/bpmc" "/usr/share/bpmc/grafana/dashboards"
       packaged_provider "${provider}")
if(packaged_provider STREQUAL provider)
  message(FATAL_ERROR "grafana/provisioning/dashboards/bpmc.yaml no longer names "
                      "/var/lib/grafana/dashboards/bpmc: update cmake/Packaging.cmake")
endif()
file(WRITE ${deb_out}/monitoring/bpmc.yaml.tmp "${packaged_provider}")
configure_file(${deb_out}/monitoring/bpmc.yaml.tmp ${deb_out}/monitoring/bpmc.yaml COPYONLY)
install(FILES ${deb_out}/monitoring/bpmc.yaml
        DESTINATION /etc/grafana/provisioning/dashboards COMPONENT monitoring)
bpmc_deb_files(monitoring bpmc-monitoring NO_SCRIPTS
  CONFFILES /etc/grafana/provisioning/dashboards/bpmc.yaml)

# --- CPack -----------------------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME bpmc)
set(CPACK_PACKAGE_VENDOR "BPM Centr")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "BPM Centr maintainers <maintainers@users.noreply.r-seed-58cedbd3.example>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_COMPONENTS_ALL exporter receiver monitoring)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${BPMC_DEB_RELEASE})
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
# dpkg-shlibdeps (dpkg-dev) computes the shared libraries' Depends.
set(CPACK_DEBIAN_EXPORTER_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_RECEIVER_PACKAGE_SHLIBDEPS ON)

set(CPACK_DEBIAN_EXPORTER_PACKAGE_NAME bpmc-exporter)
set(CPACK_DEBIAN_EXPORTER_PACKAGE_DEPENDS "adduser, init-system-helpers (>= 1.54~)")
set(CPACK_DEBIAN_EXPORTER_PACKAGE_SUGGESTS
    "postgresql-15, postgresql-15-hll, postgresql-15-tdigest, nginx, bpmc-monitoring")
set(CPACK_DEBIAN_EXPORTER_DESCRIPTION
    "BPM Centr usage exporter\n\
bpmc-exporter takes the usage events of the BPM Centr connectors, stores\n\
them in PostgreSQL (with a local spool while the database is away), keeps\n\
the analytics aggregates, and serves the analytics API, the console and\n\
Prometheus metrics. It runs as bpmc-exporter.service (user bpmc,\n\
configuration in /etc/bpmc/exporter.yaml).")

set(CPACK_DEBIAN_RECEIVER_PACKAGE_NAME bpmc-receiver)
set(CPACK_DEBIAN_RECEIVER_PACKAGE_DEPENDS "adduser, init-system-helpers (>= 1.54~)")
set(CPACK_DEBIAN_RECEIVER_PACKAGE_SUGGESTS "postgresql-15, prometheus-alertmanager, bpmc-monitoring")
set(CPACK_DEBIAN_RECEIVER_DESCRIPTION
    "BPM Centr alert receiver\n\
bpmc-receiver takes alert webhooks (Alertmanager, Sentry, Datadog, New\n\
Relic, generic JSON), routes them to e-mail, Slack, SMS, Telegram,\n\
PagerDuty and webhooks, and runs incidents, on-call schedules, escalation,\n\
heartbeats and customer notices. It runs as bpmc-receiver.service (user\n\
bpmc, configuration in /etc/bpmc/receiver.yaml).")

set(CPACK_DEBIAN_MONITORING_PACKAGE_NAME bpmc-monitoring)
set(CPACK_DEBIAN_MONITORING_PACKAGE_ARCHITECTURE all)
set(CPACK_DEBIAN_MONITORING_PACKAGE_SUGGESTS "prometheus, prometheus-alertmanager")
set(CPACK_DEBIAN_MONITORING_DESCRIPTION
    "BPM Centr Prometheus rules, Alertmanager routes and Grafana dashboards\n\
Recording and alerting rules for Prometheus, an Alertmanager configuration that\n\
sends alerts to bpmc-receiver, and the Grafana dashboards (overview, connector,\n\
errors, users, business) with a provisioning file that loads them.")

include(CPack)
