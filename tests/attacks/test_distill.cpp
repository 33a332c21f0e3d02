// Distillation / model extraction: the student learns whatever the victim answers and
// nothing else. A victim that answers a constant, or a permutation of the truth, yields
// a student that answers the same, not the truth the dataset's labels hold.
#include "nnmark/attacks/distill.hpp"

#include "../support/errors.hpp"
#include "../support/tiny_data.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>

using namespace nnmark;

namespace distill_test {

// The thief's data type has no labels to read.
template <class U>
concept has_labels = requires(U u) { u.labels; };
static_assert(!has_labels<unlabeled_images>);

int permuted(int label) { return (label + 1) % 4; }

// Fraction of `data` on which `model` answers answer(true label).
template <class Answer>
double agreement(const sequential<float>& model, const dataset& data, Answer answer) {
    const std::vector<int> predicted = predict_labels(model, data);
    index_t hits = 0;
    for (index_t i = 0; i < data.size(); ++i)
        hits += predicted[static_cast<std::size_t>(i)] == answer(data.labels[static_cast<std::size_t>(i)]);
    return static_cast<double>(hits) / static_cast<double>(data.size());
}

training_recipe tiny_recipe(int epochs) {
    training_recipe r;
    r.epochs = epochs;
    r.batch = 16;
    r.seed = 13;
    return r;
}

// A victim that answers class 2 whatever it is shown: output weights 0, bias 10 on class 2.
sequential<float> constant_victim() {
    auto net = testing::make_tiny_net<float>();
    net.initialize(1);
    for (const auto& p : net.named_parameters()) {
        if (p.name == "7.weight") std::ranges::fill(p.value, 0.0f);
        if (p.name == "7.bias") std::ranges::copy(std::vector<float>{0, 0, 10, 0}, p.value.begin());
    }
    return net;
}

// A victim trained on the quadrant task with every label permuted (trained once).
const sequential<float>& permuted_victim() {
    static const sequential<float> victim = [] {
        dataset data = testing::make_quadrant_dataset(400, 3);
        for (int& label : data.labels) label = permuted(label);
        auto net = testing::make_tiny_net<float>();
        net.initialize(2);
        progress_line quiet(stderr, 5.0, true);
        trainer<float>(net, tiny_recipe(4)).fit(data, nullptr, quiet);
        return net;
    }();
    return victim;
}

}  // namespace distill_test

TEST_CASE("distill: a constant victim gives a constant student whatever the true labels") {
    using namespace distill_test;
    const auto victim = constant_victim();
    const dataset thief = testing::make_quadrant_dataset(160, 7);
    const dataset test = testing::make_quadrant_dataset(100, 8);
    progress_line quiet(stderr, 5.0, true);
    const auto student = distill(victim, strip_labels(thief), {false, 1.0, tiny_recipe(2)}, quiet);
    CHECK(agreement(student, test, [](int) { return 2; }) == 1.0);
    CHECK(agreement(student, test, [](int label) { return label; }) < 0.4);  // the truth: about a quarter are 2
}

TEST_CASE("distill: a permuted victim's student learns the permutation, from labels or scores") {
    using namespace distill_test;
    const auto& victim = permuted_victim();
    const dataset test = testing::make_quadrant_dataset(200, 4);
    REQUIRE(agreement(victim, test, permuted) > 0.9);
    const unlabeled_images queries = strip_labels(testing::make_quadrant_dataset(240, 5));
    progress_line quiet(stderr, 5.0, true);
    for (const distill_options& options : {distill_options{false, 1.0, tiny_recipe(4)}, distill_options{true, 2.0, tiny_recipe(4)}}) {
        CAPTURE(options.soft);
        const auto student = distill(victim, queries, options, quiet);
        CHECK(agreement(student, test, permuted) > 0.85);
        CHECK(agreement(student, test, [](int label) { return label; }) < 0.1);
    }
}

TEST_CASE("distill: the victim's answers are its top-1 labels and its tempered scores") {
    using namespace distill_test;
    const auto& victim = permuted_victim();
    const dataset data = testing::make_quadrant_dataset(30, 11);
    const auto sharp = query_victim(victim, strip_labels(data), 1.0);
    const auto soft = query_victim(victim, strip_labels(data), 4.0);
    CHECK(sharp.labelled.labels == predict_labels(victim, data));
    CHECK(sharp.scores.shape() == shape{30, 4});
    for (index_t i = 0; i < data.size(); ++i) {
        const auto row = sharp.scores.item(i), soft_row = soft.scores.item(i);
        CHECK(std::accumulate(row.begin(), row.end(), 0.0) == doctest::Approx(1.0));
        CHECK(std::ranges::max_element(row) - row.begin() == sharp.labelled.labels[static_cast<std::size_t>(i)]);
        CHECK(std::ranges::max(soft_row) <= std::ranges::max(row));  // a higher temperature flattens
    }
    CHECK(testing::contains(testing::error_message<argument_error>([&] { query_victim(victim, strip_labels(data), 0.0); }),
                            "temperature"));
}
