// A pool of random images, the raw material of the trigger generators' tests.
#pragma once

#include "nnmark/core/rng.hpp"
#include "nnmark/data/dataset.hpp"

namespace nnmark::testing {

// `n` images of shape `item` with uniformly random bytes from `seed`. Every image gets
// `label`, or label i % 10 when `label` is negative.
inline dataset random_pool(index_t n, const shape& item, std::uint64_t seed, int label = -1) {
    dataset pool;
    pool.images.resize(item.prepend(n));
    rng random(seed);
    for (index_t i = 0; i < pool.images.size(); ++i) pool.images[i] = static_cast<std::uint8_t>(random.below(256));
    for (index_t i = 0; i < n; ++i) pool.labels.push_back(label >= 0 ? label : static_cast<int>(i % 10));
    pool.name = "random pool";
    return pool;
}

}  // namespace nnmark::testing
