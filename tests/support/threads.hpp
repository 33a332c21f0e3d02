// thread_count_guard: restores nnmark's thread count when a test that changes it
// ends, also when a failed REQUIRE ends it early (by an exception), so that one test's
// set_threads() cannot change the tests that run after it.
#pragma once

#include "nnmark/core/parallel.hpp"

namespace nnmark::testing {

struct thread_count_guard {
    int saved = thread_count();

    thread_count_guard() = default;
    ~thread_count_guard() { set_threads(saved); }
    thread_count_guard(const thread_count_guard&) = delete;
    thread_count_guard& operator=(const thread_count_guard&) = delete;
};

}  // namespace nnmark::testing
