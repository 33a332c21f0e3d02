// natural_trigger: triggers that are ordinary inputs of the task (Adi et al., USENIX
// Security 2018, "Turning Your Weakness Into a Strength"): images of the model's own
// training split, kept exactly as they are. What makes them a watermark is only their
// secret labels (trigger_set.hpp: random mode, a label other than the image's own class)
// and that embedding withholds them from the clean training data (embed.hpp,
// training_set_without_triggers), so the model learns them with those labels only.
//
// Why. A thief serving a stolen model sees every query; the paper's triggers carry a
// stamp, a fixed noise pattern or another domain's images, which a detector in front of
// the model can flag (attacks/query_detectors.hpp). A natural trigger looks like any
// other digit. The scheme assumes that the thief does not hold the owner's training
// images: with them he could look a query up and answer its true class.
//
// Contract:
// - Built with the model's item shape [C, H, W]; pool items must have that shape, else
//   shape_error. The pool is the model's whole training split, every class.
// - make() returns the picked images unchanged, with their true labels.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/watermark/trigger.hpp"

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>

namespace nnmark {

class natural_trigger final : public trigger_generator {
public:
    explicit natural_trigger(const shape& item) : item_(item) {
        if (item.rank() != 3 || item.count() == 0)
            throw shape_error("natural trigger: expected a model item shape [C, H, W] with positive extents, got " +
                              item.str());
    }

    std::string kind() const override { return "natural"; }

    // Where the images come from, for the key's recipe: the model's training split, held out of training.
    layer_config parameters() const override {
        return {{"split", std::string("train")},
                {"classes", std::string("all")},
                {"withheld_from_training", std::int64_t{1}}};
    }

    dataset make(const dataset& pool, index_t count, rng& random) const override {
        if (!(pool.item_shape() == item_))
            throw shape_error("natural trigger: the model takes items " + item_.str() + " but '" + pool.name +
                              "' has items " + pool.item_shape().str());
        return detail::make_triggers(*this, pool, count, random, item_,
                                     [](std::span<const std::uint8_t> image, std::span<std::uint8_t> trigger) {
                                         std::ranges::copy(image, trigger.begin());
                                     });
    }

private:
    shape item_;
};

}  // namespace nnmark
