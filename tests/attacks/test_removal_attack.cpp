#include "nnmark/attacks/removal_attack.hpp"

#include "../support/tiny_watermark.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>

using namespace nnmark;
using namespace nnmark::testing;

namespace {

training_recipe one_epoch() {
    training_recipe r = quadrant_training(7);
    r.epochs = 1;
    return r;
}

bool same_parameters(const sequential<float>& a, const sequential<float>& b) {
    return std::ranges::equal(a.parameters(), b.parameters());
}

}  // namespace

TEST_CASE("run_removal: each attack does what it says to the model, and only that") {
    quadrant_watermark w(8);
    const dataset& attacker = w.test;
    progress_line quiet(stderr, 5.0, true);
    const auto copy = [&] {
        sequential<float> m = make_tiny_net<float>();
        std::ranges::copy(w.model.parameters(), m.parameters().begin());
        return m;
    };

    const removal_outcome pruned = run_removal(prune_attack{1.0, prune_scope::global}, copy(), attacker, quiet);
    REQUIRE(pruned.pruned);
    CHECK(pruned.pruned->pruned == pruned.pruned->weights);
    CHECK_FALSE(pruned.service.transform);

    const removal_outcome tuned = run_removal(finetune_attack{finetune_mode::ftal, one_epoch()}, copy(), attacker, quiet);
    CHECK_FALSE(same_parameters(tuned.service.model, w.model));

    const removal_outcome fine_pruned = run_removal(fineprune_attack{0.5, one_epoch()}, copy(), attacker, quiet);
    REQUIRE(fine_pruned.fine_pruned);
    CHECK(fine_pruned.fine_pruned->channels.size() == 2);  // half of the tiny net's 4 filters

    distill_attack distillation;
    distillation.options.recipe = one_epoch();
    const removal_outcome student = run_removal(distillation, copy(), attacker, quiet);
    CHECK(architecture_json(student.service.model) == architecture_json(w.model));
    CHECK_FALSE(same_parameters(student.service.model, w.model));

    const input_transform jpeg{transform_kind::jpeg, 50};
    const removal_outcome transformed = run_removal(transform_attack{jpeg}, copy(), attacker, quiet);
    REQUIRE(transformed.service.transform);
    CHECK(transformed.service.transform->describe() == jpeg.describe());
    CHECK(same_parameters(transformed.service.model, w.model));  // the queries change, not the model

    for (precision p : {precision::bf16, precision::int8}) {
        CAPTURE(precision_name(p));
        const removal_outcome quantized = run_removal(quantize_attack{p, 200}, copy(), attacker, quiet);
        CHECK_FALSE(quantized.service.transform);
        int lower = 0;  // layers in the lower precision
        for (int i = 0; i < quantized.service.model.size(); ++i)
            lower += quantized.service.model.at(i).kind().ends_with("_" + precision_name(p));
        CHECK(lower > 0);
        // Rounding, not removal: the quantized copy labels the test images as the model does.
        const std::vector<int> before = predict_labels(w.model, w.test), after = predict_labels(quantized.service.model, w.test);
        double same = 0;
        for (std::size_t i = 0; i < before.size(); ++i) same += before[i] == after[i];
        CHECK(same / static_cast<double>(before.size()) >= 0.95);
    }
    CHECK(uses_attacker_data(quantize_attack{precision::int8}));
    CHECK_FALSE(uses_attacker_data(quantize_attack{precision::bf16}));
    CHECK(uses_attacker_data(distill_attack{}));
    CHECK_FALSE(uses_attacker_data(prune_attack{}));

    CHECK(trains_on_attacker_data(finetune_attack{}));
    CHECK(trains_on_attacker_data(fineprune_attack{}));
    CHECK(trains_on_attacker_data(distill_attack{}));
    CHECK_FALSE(trains_on_attacker_data(prune_attack{}));
    CHECK_FALSE(trains_on_attacker_data(transform_attack{jpeg}));
}
