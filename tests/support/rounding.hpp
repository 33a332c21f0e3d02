// Helpers for tests that compare a fast kernel on plain arrays with its definition
// computed in double: random arrays, and the rounding a sum may carry.
#pragma once

#include "nnmark/core/rng.hpp"
#include "nnmark/core/shape.hpp"

#include <cmath>
#include <type_traits>
#include <vector>

namespace nnmark::testing {

template <class T>
std::vector<T> normal_values(index_t count, rng& random) {
    std::vector<T> v(static_cast<std::size_t>(count));
    for (auto& x : v) x = static_cast<T>(random.normal());
    return v;
}

template <class T>
std::vector<double> as_double(const std::vector<T>& v) {
    return {v.begin(), v.end()};
}

inline std::vector<double> magnitudes(std::vector<double> v) {
    for (auto& x : v) x = std::abs(x);
    return v;
}

// fast[i] == exact[i] up to float (or double) rounding of a sum whose terms add up to
// bound[i] in magnitude, `slack` times the rounding of a plain sum (an algorithm that
// reassociates the terms through larger intermediates, like Winograd's, needs more).
template <class T>
bool within_rounding(const std::vector<T>& fast, const std::vector<double>& exact, const std::vector<double>& bound,
                     double slack = 1) {
    const double eps = slack * (std::is_same_v<T, float> ? 1e-5 : 1e-13);
    for (std::size_t i = 0; i < fast.size(); ++i)
        if (!(std::abs(static_cast<double>(fast[i]) - exact[i]) <= eps * (bound[i] + 1))) return false;
    return true;
}

}  // namespace nnmark::testing
