# The Debian package: `cmake --build build --target package` -> build/dbsupervisor_<v>_<arch>.deb.
# It holds the runtime component: the binary, the man page, the systemd unit,
# bash completion and /etc/dbsupervisor/dbsupervisor.toml as a conffile; the
# maintainer scripts add the service's user. The library (component
# development) is for `cmake --install`, not in this package.
include(GNUInstallDirs)

set(DBSUP_PACKAGING ${PROJECT_SOURCE_DIR}/packaging)
configure_file(${DBSUP_PACKAGING}/dbsupervisor.1.in ${PROJECT_BINARY_DIR}/dbsupervisor.1 @ONLY)
add_custom_command(OUTPUT ${PROJECT_BINARY_DIR}/dbsupervisor.1.gz
  COMMAND gzip -9nf -k ${PROJECT_BINARY_DIR}/dbsupervisor.1
  DEPENDS ${PROJECT_BINARY_DIR}/dbsupervisor.1)
add_custom_target(dbsupervisor_man ALL DEPENDS ${PROJECT_BINARY_DIR}/dbsupervisor.1.gz)

install(FILES ${PROJECT_BINARY_DIR}/dbsupervisor.1.gz
  DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT runtime)
install(FILES ${DBSUP_PACKAGING}/dbsupervisor.service
  DESTINATION lib/systemd/system COMPONENT runtime)
install(FILES ${DBSUP_PACKAGING}/dbsupervisor.bash-completion
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME dbsupervisor
  COMPONENT runtime)
# /etc when installed under /usr (the package), else PREFIX/etc: decided at
# install time, since CPack installs with its own prefix.
install(CODE "
  if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\")
    set(dbsup_etc \"/etc\")
  else()
    set(dbsup_etc \"\${CMAKE_INSTALL_PREFIX}/etc\")
  endif()
  file(INSTALL \"${DBSUP_PACKAGING}/dbsupervisor.toml\"
       DESTINATION \"\${dbsup_etc}/dbsupervisor\")  # file(INSTALL) adds DESTDIR
" COMPONENT runtime)

file(WRITE ${PROJECT_BINARY_DIR}/deb/conffiles "/etc/dbsupervisor/dbsupervisor.toml\n")
foreach(script postinst prerm postrm)
  file(COPY ${DBSUP_PACKAGING}/${script} DESTINATION ${PROJECT_BINARY_DIR}/deb
       FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                        WORLD_READ WORLD_EXECUTE)
endforeach()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME dbsupervisor)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "dbsupervisor maintainers <maintainers@dbsupervisor.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "pre-fork supervisor for database workers and a durable job queue")
set(CPACK_PACKAGE_DESCRIPTION
  "Runs worker processes that take jobs from a durable queue in PostgreSQL or SQLite,\
 with exactly-once job effects, schedules, metrics (JSON, Prometheus) and a systemd\
 service that notifies readiness and feeds the watchdog.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_CMAKE_PROJECTS "${PROJECT_BINARY_DIR};${PROJECT_NAME};runtime;/")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION database)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  "${PROJECT_BINARY_DIR}/deb/conffiles;${PROJECT_BINARY_DIR}/deb/postinst;${PROJECT_BINARY_DIR}/deb/prerm;${PROJECT_BINARY_DIR}/deb/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
