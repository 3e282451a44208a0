# Warnings and sanitizers are set per target, never through global CMAKE_CXX_FLAGS,
# so dependencies are compiled as their authors intended.
function(dbsup_enable_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow)
  if(DBSUP_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# GCC 12 reports false maybe-uninitialized warnings inside libstdc++ (std::regex,
# std::function) when instrumenting, so that one warning is off in sanitizer builds.
function(dbsup_enable_sanitizers target)
  if(NOT DBSUP_SANITIZE STREQUAL "")
    target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized)
  endif()
  if(DBSUP_SANITIZE STREQUAL "address")
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer
                                             -fno-sanitize-recover=undefined)
    target_link_options(${target} PUBLIC -fsanitize=address,undefined)
  elseif(DBSUP_SANITIZE STREQUAL "thread")
    # -Wno-tsan: Boost.Asio's atomic_thread_fence, inlined into our code, is
    # reported as unsupported by TSan; it is the dependency's, not ours.
    target_compile_options(${target} PRIVATE -fsanitize=thread -fno-omit-frame-pointer -Wno-tsan)
    target_link_options(${target} PUBLIC -fsanitize=thread)
  endif()
endfunction()

# Every target of ours: warnings as errors and the chosen sanitizers.
function(dbsup_our_target target)
  dbsup_enable_warnings(${target})
  dbsup_enable_sanitizers(${target})
endfunction()

# dbsup_add_test(name SOURCES a.cpp ... [LABELS unit|integration|e2e])
function(dbsup_add_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  dbsup_our_target(${name})
  target_link_libraries(${name} PRIVATE dbsup::test_support GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE DBSUP_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  gtest_discover_tests(${name} PROPERTIES LABELS "${T_LABELS}" DISCOVERY_TIMEOUT 30)
endfunction()
