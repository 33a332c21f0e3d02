// The sample mean and standard deviation of drawn values, for tests of random
// initializers: enough draws make both close to the distribution's own.
#pragma once

#include <cmath>
#include <span>

namespace nnmark::testing {

struct moments {
    double mean, stddev;
};

inline moments sample_moments(std::span<const double> values) {
    double sum = 0, sum_sq = 0;
    for (double x : values) {
        sum += x;
        sum_sq += x * x;
    }
    const double n = static_cast<double>(values.size());
    const double mean = sum / n;
    return {mean, std::sqrt(sum_sq / n - mean * mean)};
}

}  // namespace nnmark::testing
