// Helpers for tests that expect an exception: the message of what an action throws,
// and a substring test to check parts of that message.
#pragma once

#include "nnmark/core/error.hpp"

#include <doctest/doctest.h>

#include <string>

namespace nnmark::testing {

// The message of the `Error` that `action` throws, or "" if it throws nothing: for
// checks that expect either outcome (a parser accepting or rejecting an input).
// Any other exception escapes and fails the test case.
template <class Error = nnmark::error, class Action>
std::string thrown_message(Action action) {
    try {
        action();
    } catch (const Error& e) {
        return e.what();
    }
    return {};
}

// The message of the `Error` that `action` throws; fails the test if it throws nothing.
template <class Error = nnmark::error, class Action>
std::string error_message(Action action) {
    bool returned = false;
    std::string message = thrown_message<Error>([&] {
        action();
        returned = true;
    });
    if (returned) FAIL_CHECK("expected an nnmark::error, nothing was thrown");
    return message;
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace nnmark::testing
