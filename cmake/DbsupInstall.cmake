# What `cmake --install` puts in place: the executable (component runtime, the
# Debian package's content) and the library for programs with C++ handlers of
# their own (component development): libdbsupervisor.so, its headers under
# include/dbsup/, the CMake package dbsupervisor::dbsupervisor and dbsupervisor.pc.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(DBSUP_LIBRARIES dbsup_config dbsup_shared dbsup_worker dbsup_supervisor)
foreach(lib IN LISTS DBSUP_LIBRARIES)
  # The shared library is linked from these objects. -fno-semantic-interposition
  # keeps PIC from costing the executable its inlining across functions.
  set_target_properties(${lib} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_compile_options(${lib} PRIVATE -fno-semantic-interposition)
endforeach()

add_library(dbsupervisor_library SHARED supervisor/entry_point.cpp
  $<TARGET_OBJECTS:dbsup_config> $<TARGET_OBJECTS:dbsup_shared>
  $<TARGET_OBJECTS:dbsup_worker> $<TARGET_OBJECTS:dbsup_supervisor>)
add_library(dbsupervisor::dbsupervisor ALIAS dbsupervisor_library)
set_target_properties(dbsupervisor_library PROPERTIES
  OUTPUT_NAME dbsupervisor EXPORT_NAME dbsupervisor
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
target_include_directories(dbsupervisor_library PUBLIC
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/dbsup>)
find_package(Boost 1.81 REQUIRED COMPONENTS filesystem)
target_link_libraries(dbsupervisor_library
  PUBLIC nlohmann_json::nlohmann_json Threads::Threads Boost::headers
  PRIVATE PkgConfig::PQXX PkgConfig::PQ SQLite::SQLite3 tomlplusplus::tomlplusplus date::date-tz
          spdlog::spdlog CLI11::CLI11 Boost::filesystem)
target_compile_definitions(dbsupervisor_library PRIVATE DBSUP_VERSION="${PROJECT_VERSION}")
dbsup_our_target(dbsupervisor_library)

install(TARGETS dbsupervisor RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
install(TARGETS dbsupervisor_library EXPORT dbsupervisorTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development)
install(DIRECTORY config shared worker supervisor
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/dbsup COMPONENT development
  FILES_MATCHING PATTERN "*.hpp" PATTERN "examples" EXCLUDE)
install(FILES include/dbsup/dbsupervisor.hpp
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/dbsup COMPONENT development)

set(DBSUP_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/dbsupervisor)
install(EXPORT dbsupervisorTargets NAMESPACE dbsupervisor::
  DESTINATION ${DBSUP_CMAKE_DIR} COMPONENT development)
configure_package_config_file(cmake/dbsupervisorConfig.cmake.in
  ${PROJECT_BINARY_DIR}/dbsupervisorConfig.cmake INSTALL_DESTINATION ${DBSUP_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/dbsupervisorConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/dbsupervisorConfig.cmake
              ${PROJECT_BINARY_DIR}/dbsupervisorConfigVersion.cmake
  DESTINATION ${DBSUP_CMAKE_DIR} COMPONENT development)
# Relocatable: the prefix is found from the .pc file's own directory.
file(RELATIVE_PATH DBSUP_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(cmake/dbsupervisor.pc.in ${PROJECT_BINARY_DIR}/dbsupervisor.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/dbsupervisor.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT development)
