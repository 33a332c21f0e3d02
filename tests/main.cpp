// The doctest entry point shared by every test program of the suite. A run in which no
// check failed but some test skipped (support/skips.hpp) exits with 77, which CTest
// (SKIP_RETURN_CODE) and Meson report as skipped rather than passed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "support/skips.hpp"

#include <iostream>

int main(int argc, char** argv) {
    doctest::Context context(argc, argv);
    const int result = context.run();
    if (context.shouldExit() || result != 0) return result;
    const int skipped = nnmark::testing::skipped_tests();
    if (skipped == 0) return 0;
    std::cout << "[nnmark] " << skipped << " test case(s) skipped: exit code 77 (reported as SKIP)\n";
    return 77;
}
