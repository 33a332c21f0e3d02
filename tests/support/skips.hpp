// A test that cannot run here (it needs torch, or data outside the repository) says so
// with skip_test() and returns. The suite's main (tests/main.cpp) then exits with 77,
// the code CTest (SKIP_RETURN_CODE) and Meson report as SKIP, unless a check failed:
// failures always win. Such tests belong to the doctest suite "external", which CMake
// and Meson run as a test entry of its own (<room>_external), so that a skip there
// never hides the passes of the room's other tests.
#pragma once

#include <doctest/doctest.h>

#include <string>

namespace nnmark::testing {

// The doctest decorator of a test case that may skip: TEST_CASE("..." * external_test).
inline constexpr const char* external_suite = "external";
#define NNMARK_EXTERNAL_TEST doctest::test_suite(nnmark::testing::external_suite)

// Test cases that skipped in this run of the program.
inline int& skipped_tests() {
    static int count = 0;
    return count;
}

// Records that the current test case skipped, and why (shown in doctest's output).
inline void skip_test(const std::string& reason) {
    ++skipped_tests();
    MESSAGE("SKIPPED: " << reason);
}

}  // namespace nnmark::testing
