// extraction_pool: the images a thief sends to a prediction API to steal its model
// (nnmark attack extract; Tramer et al., USENIX Security 2016, "Stealing machine
// learning models via prediction APIs").
//
// Contract:
// - extraction_pool(attacker, extras) is the thief's unlabeled images: the attacker's
//   data (attacks/attacker_data.hpp) followed by the images of each extra set, their
//   labels dropped. Extra sets are natural images of another task of the same shape,
//   the Knockoff Nets pool (Orekondy et al., CVPR 2019): a thief without in-distribution
//   data still learns the victim's decision function from them. Images of another
//   shape throw shape_error naming both sets.
// - draw_queries(pool, count, seed) is `count` images of the pool drawn without
//   replacement in a seeded random order: no image is paid for twice. A count above
//   the pool's size (or below 1) throws argument_error naming both numbers.
// - The answers to the queries are learnt with train_on_answers (attacks/distill.hpp);
//   DAWN (Szyller et al., ACM MM 2021; serve/dawn_*.hpp) is what the owner answers with.
#pragma once

#include "nnmark/attacks/attacker_data.hpp"
#include "nnmark/core/error.hpp"
#include "nnmark/core/rng.hpp"
#include "nnmark/data/dataset.hpp"

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

namespace nnmark {

inline unlabeled_images extraction_pool(const dataset& attacker, const std::vector<const dataset*>& extras = {}) {
    index_t total = attacker.size();
    std::string name = attacker.name;
    for (const dataset* extra : extras) {
        if (!(extra->item_shape() == attacker.item_shape()))
            throw shape_error("extraction pool: the images of '" + extra->name + "' are " + extra->item_shape().str() +
                              ", those of '" + attacker.name + "' " + attacker.item_shape().str());
        total += extra->size();
        name += " + " + extra->name;
    }
    unlabeled_images pool{tensor<std::uint8_t>(attacker.item_shape().prepend(total)), name + "[labels stripped]"};
    auto next = pool.images.span().begin();
    next = std::ranges::copy(attacker.images.span(), next).out;
    for (const dataset* extra : extras) next = std::ranges::copy(extra->images.span(), next).out;
    return pool;
}

inline unlabeled_images draw_queries(const unlabeled_images& pool, index_t count, std::uint64_t seed) {
    if (count < 1 || count > pool.size())
        throw argument_error("extraction: expected 1 to " + std::to_string(pool.size()) + " queries (the images of " +
                             pool.name + "), asked for " + std::to_string(count));
    std::vector<index_t> order(static_cast<std::size_t>(pool.size()));
    std::iota(order.begin(), order.end(), index_t{0});
    rng(seed).shuffle(order);
    unlabeled_images drawn{tensor<std::uint8_t>(pool.images.shape().drop_front().prepend(count)),
                           pool.name + "[random " + std::to_string(count) + ", seed " + std::to_string(seed) + "]"};
    for (index_t k = 0; k < count; ++k)
        std::ranges::copy(pool.images.item(order[static_cast<std::size_t>(k)]), drawn.images.item(k).begin());
    return drawn;
}

}  // namespace nnmark
