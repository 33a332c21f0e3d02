// rng: the only source of randomness in nnmark, always built from an explicit seed.
//
// xoshiro256** (Blackman & Vigna) seeded through splitmix64. The standard library's
// distributions are implementation-defined, so uniform, normal and integer draws are
// written here: the same seed gives the same numbers with any compiler or library,
// which is what makes "same seed + same thread count = bit-identical weights" hold.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>

namespace nnmark {

class rng {
public:
    explicit rng(std::uint64_t seed = 0) { reseed(seed); }

    void reseed(std::uint64_t seed) {
        std::uint64_t x = seed;
        for (auto& word : state_) word = splitmix64(x);
        has_spare_normal_ = false;
    }

    // An independent stream for sub-task `stream` (a layer, an epoch, a sample):
    // draws from it do not depend on how many draws the parent made.
    rng derive(std::uint64_t stream) const {
        std::uint64_t x = state_[0] ^ (stream * 0x9E3779B97F4A7C15ULL) ^ state_[3];
        return rng(splitmix64(x));
    }

    std::uint64_t next_u64() {
        const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
        const std::uint64_t t = state_[1] << 17;
        state_[2] ^= state_[0];
        state_[3] ^= state_[1];
        state_[1] ^= state_[2];
        state_[0] ^= state_[3];
        state_[2] ^= t;
        state_[3] = rotl(state_[3], 45);
        return result;
    }

    // Uniform in [0, 1), 53 random bits.
    double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

    // Uniform in [lo, hi).
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

    // Uniform integer in [0, n), without modulo bias: draws at or above the largest
    // multiple of n are rejected.
    std::uint64_t below(std::uint64_t n) {
        if (n == 0) return 0;
        const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
        for (;;) {
            const std::uint64_t x = next_u64();
            if (x < limit) return x % n;
        }
    }

    // Standard normal, Box-Muller; the second value of each pair is kept for the next call.
    double normal() {
        if (has_spare_normal_) {
            has_spare_normal_ = false;
            return spare_normal_;
        }
        double u1 = uniform();
        while (u1 <= 0.0) u1 = uniform();
        const double u2 = uniform();
        const double radius = std::sqrt(-2.0 * std::log(u1));
        const double angle = 2.0 * std::numbers::pi * u2;
        spare_normal_ = radius * std::sin(angle);
        has_spare_normal_ = true;
        return radius * std::cos(angle);
    }

    double normal(double mean, double stddev) { return mean + stddev * normal(); }

    // Fisher-Yates shuffle of a random-access range.
    template <class Range>
    void shuffle(Range& range) {
        const auto n = static_cast<std::uint64_t>(range.size());
        for (std::uint64_t i = n; i > 1; --i) {
            const std::uint64_t j = below(i);
            std::swap(range[i - 1], range[j]);
        }
    }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    static std::uint64_t splitmix64(std::uint64_t& x) {
        std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }

    std::uint64_t state_[4]{};
    double spare_normal_ = 0.0;
    bool has_spare_normal_ = false;
};

}  // namespace nnmark
