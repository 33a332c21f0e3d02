// attacker_data: what data a removal attack may use, and where its damage is measured.
//
// The owner trains on the whole training set. The attacker holds data of the same task
// but, in the default setting, none of the owner's training images:
//
//   test-half (default; Zhang et al., ASIACCS 2018, Table 5): the test set is cut in
//     two halves in file order. The attacker holds the first half (MNIST: 5,000 images)
//     and fine-tunes on it; test accuracy is measured on the second half, which no one
//     trained on.
//   train-fraction: the attacker holds a seeded random fraction of the training set
//     (a thief who collected data like the owner's, as the Watermark Robustness Toolbox
//     of Lukas et al., IEEE S&P 2022, assumes for extraction). Not disjoint from the
//     owner's data: the stronger attacker, meant for distillation, which needs more data
//     than half a test set. Accuracy is still measured on the second test half, so the
//     two settings are comparable.
//
// A thief who extracts a model through its API has images but no labels: those come
// from the victim's answers (attacks/distill.hpp). unlabeled_images is that attacker's
// data, a type without a labels member, so a distilled model provably never saw the
// owner's labels.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/rng.hpp"
#include "nnmark/data/dataset.hpp"

#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

namespace nnmark {

enum class attacker_source { test_half, train_fraction };

inline attacker_source parse_attacker_source(std::string_view name) {
    if (name == "test-half") return attacker_source::test_half;
    if (name == "train-fraction") return attacker_source::train_fraction;
    throw argument_error("attacker data: expected test-half or train-fraction, got '" + std::string(name) + "'");
}

inline std::string to_string(attacker_source source) {
    return source == attacker_source::test_half ? "test-half" : "train-fraction";
}

struct attacker_split {
    attacker_source source = attacker_source::test_half;
    double train_fraction = 0.1;  // train-fraction only: the share of the training set held
    std::uint64_t seed = 1;       // train-fraction only: which images
};

struct attack_data {
    dataset attacker;    // what the attack may train on
    dataset evaluation;  // the second half of the test set: test accuracy before and after
};

// The second half of the test set, where every attack's test accuracy is measured.
inline dataset evaluation_half(const dataset& test) { return test.split(test.size() / 2).second; }

// The attacker's data and the evaluation half under `split`. `train` is read only for
// train-fraction (pass an empty dataset otherwise).
inline attack_data make_attack_data(const dataset& train, const dataset& test, const attacker_split& split) {
    if (test.size() < 2)
        throw argument_error("attacker data: the test set '" + test.name + "' needs at least 2 images to be halved, has " +
                             std::to_string(test.size()));
    auto [first_half, second_half] = test.split(test.size() / 2);
    if (split.source == attacker_source::test_half) return {std::move(first_half), std::move(second_half)};

    if (!(split.train_fraction > 0.0 && split.train_fraction <= 1.0))
        throw argument_error("attacker data: the training fraction must be in (0, 1], got " +
                             std::to_string(split.train_fraction));
    const auto count = static_cast<index_t>(std::llround(split.train_fraction * static_cast<double>(train.size())));
    if (count < 1)
        throw argument_error("attacker data: a fraction " + std::to_string(split.train_fraction) + " of the " +
                             std::to_string(train.size()) + " training images of '" + train.name + "' is no image");
    std::vector<index_t> order(static_cast<std::size_t>(train.size()));
    std::iota(order.begin(), order.end(), index_t{0});
    rng(split.seed).shuffle(order);
    order.resize(static_cast<std::size_t>(count));
    dataset held = train.subset(order);
    held.name = train.name + "[random " + std::to_string(count) + ", seed " + std::to_string(split.seed) + "]";
    return {std::move(held), std::move(second_half)};
}

// Images a thief holds without their labels.
struct unlabeled_images {
    tensor<std::uint8_t> images;  // [N, C, H, W]
    std::string name;

    index_t size() const { return images.shape().rank() ? images.shape()[0] : 0; }
};

// The images of `data`, its labels dropped.
inline unlabeled_images strip_labels(const dataset& data) {
    return {data.images, data.name + "[labels stripped]"};
}

}  // namespace nnmark
