// trigger_generator: the interface of the three ways the paper makes watermark triggers
// (Sec. 4.1): "content" (text drawn on source-class images), "unrelated" (images of
// another domain) and "noise" (a fixed Gaussian pattern added to source-class images);
// and "natural" (training images as they are, Adi et al. 2018; natural_trigger.hpp).
//
// Contract of make(pool, count, random):
// - Picks `count` distinct items of `pool` with pick_indices(pool, count, random), the
//   same draws for the same rng state, and returns them turned into triggers, in pick
//   order: images [count, C, H, W] in the generator's output item shape, uint8.
// - Labels and classes are the pool's: trigger_set.hpp assigns the watermark labels.
// - `random` only chooses images. Whatever else defines a trigger (text, noise pattern,
//   output shape) is fixed at construction, so new triggers made later from other
//   images (test-set images) get exactly the same treatment.
// - An empty pool or count > pool size throws argument_error naming both counts; a pool
//   whose items the generator cannot take throws shape_error naming the shapes.
// parameters() lists what the generator was built with, as key/value pairs a key file
// can store (the same layer_config type layers use for the architecture JSON).
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/rng.hpp"
#include "nnmark/core/shape.hpp"
#include "nnmark/data/dataset.hpp"
#include "nnmark/layers/layer.hpp"

#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nnmark {

class trigger_generator {
public:
    virtual ~trigger_generator() = default;

    // "content", "unrelated", "noise" or "natural".
    virtual std::string kind() const = 0;
    virtual layer_config parameters() const = 0;
    virtual dataset make(const dataset& pool, index_t count, rng& random) const = 0;
};

// `count` distinct indices into `pool`, in random order: the first `count` steps of a
// Fisher-Yates shuffle of 0..size-1 driven by `random`. `who` names the caller in errors.
inline std::vector<index_t> pick_indices(const dataset& pool, index_t count, rng& random, std::string_view who) {
    const index_t n = pool.size();
    if (n == 0 || count < 0 || count > n)
        throw argument_error(std::string(who) + ": cannot pick " + std::to_string(count) + " distinct images from '" +
                             pool.name + "', which holds " + std::to_string(n));
    std::vector<index_t> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), index_t{0});
    for (index_t i = 0; i < count; ++i) {
        const auto j = i + static_cast<index_t>(random.below(static_cast<std::uint64_t>(n - i)));
        std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
    }
    order.resize(static_cast<std::size_t>(count));
    return order;
}

namespace detail {

// What every generator's make() does around its own pixel rule: pick the pool items,
// then let transform(source item, trigger item) write each trigger of shape `out_item`.
template <class Transform>
dataset make_triggers(const trigger_generator& generator, const dataset& pool, index_t count, rng& random,
                      const shape& out_item, Transform transform) {
    const std::string who = generator.kind() + " trigger";
    pool.validate(who);
    const std::vector<index_t> picked = pick_indices(pool, count, random, who);
    dataset out;
    out.images.resize(out_item.prepend(count));
    out.classes = pool.classes;
    out.name = pool.name + "[" + who + "s]";
    out.labels.reserve(picked.size());
    for (std::size_t k = 0; k < picked.size(); ++k) {
        transform(pool.images.item(picked[k]), out.images.item(static_cast<index_t>(k)));
        out.labels.push_back(pool.labels[static_cast<std::size_t>(picked[k])]);
    }
    return out;
}

}  // namespace detail

}  // namespace nnmark
