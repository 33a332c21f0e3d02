// false_accusation: a key accuses its own model and no innocent one; each suspect's
// verdict leaves the reference it derives from out of the calibration; degenerate
// suspects are refused as classifiers, never accused.
#include "nnmark/train/trainer.hpp"
#include "nnmark/watermark/false_accusation.hpp"

#include "../support/tiny_watermark.hpp"

#include <doctest/doctest.h>

#include <cstdio>

using namespace nnmark;
using namespace nnmark::testing;

namespace {

// Three tiny nets trained on the clean quadrants: the key's reference models.
std::vector<sequential<float>> clean_models(const quadrant_watermark& w) {
    progress_line quiet(stderr, 5.0, true);
    std::vector<sequential<float>> models;
    for (std::uint64_t seed : {21, 22, 23}) {
        sequential<float> m = make_tiny_net<float>();
        m.initialize(seed);
        trainer<float>(m, quadrant_training(seed)).fit(w.train, &w.test, quiet);
        models.push_back(std::move(m));
    }
    return models;
}

std::vector<reference_model> references_of(const std::vector<sequential<float>>& models, const watermark_key& key) {
    std::vector<reference_model> references;
    for (std::size_t i = 0; i < models.size(); ++i)
        references.push_back({"clean-" + std::to_string(i), "", count_matches(key, predict_labels(models[i], key.triggers))});
    return references;
}

// Zero weights and one positive output bias: `label` for every input.
sequential<float> constant_network(int label) {
    sequential<float> net = make_tiny_net<float>();
    std::fill(net.parameters().begin(), net.parameters().end(), 0.0f);
    net.named_parameters().back().value[static_cast<std::size_t>(label)] = 1.0f;
    return net;
}

}  // namespace

TEST_CASE("false accusation: the key finds its model, accuses no innocent, and leaves each suspect's origin out") {
    quadrant_watermark w(5);
    const watermark_key& key = w.embedded.setup.key;
    REQUIRE_FALSE(has_random_labels(key));
    std::vector<sequential<float>> clean = clean_models(w);
    const std::vector<reference_model> references = references_of(clean, key);

    // Leave-one-out: the calibration a suspect of origin 1 gets is the one of references 0 and 2.
    const watermark_key without_1 = calibrated_without(key, references, 1);
    REQUIRE(without_1.calibration);
    CHECK(without_1.calibration->models.size() == 2);
    CHECK(without_1.calibration->models[0].name == "clean-0");
    CHECK(without_1.calibration->models[1].name == "clean-2");
    CHECK(calibrated_without(key, references, -1).calibration->models.size() == 3);
    CHECK_THROWS_AS(calibrated_without(key, {references[0], references[1]}, 0), argument_error);  // 1 left

    // What the clean suspect of origin 1 must get: the null fitted without it.
    const verification_result expected = verify_answers(without_1, ask_model(clean[1], without_1, w.test), 1e-3);

    std::vector<study_suspect> innocents;
    for (int i = 0; i < 3; ++i)
        innocents.push_back(model_suspect("clean-" + std::to_string(i), "clean", i, std::move(clean[i]), w.test));
    for (int label = 0; label < 4; ++label)
        innocents.push_back(model_suspect("constant-" + std::to_string(label), "degenerate", -1, constant_network(label), w.test));
    innocents.push_back(guessing_suspect("guesses", 7, w.test));

    std::vector<accusation> verdicts;
    for (const study_suspect& s : innocents) verdicts.push_back(verdict_on("noise", key, references, s, 1e-3));
    for (const accusation& a : verdicts) {
        CAPTURE(a.model);
        CHECK_FALSE(a.result.watermark_present);
        CHECK(a.key == "noise");
    }
    // The clean suspect of origin 1 was verified against the null fitted without it.
    CHECK(verdicts[1].result.log10_p_value == expected.log10_p_value);
    CHECK(verdicts[1].result.null_rate == expected.null_rate);
    // A constant answer or a guess is not a classifier of the task: refused, not accused.
    for (std::size_t i = 3; i < verdicts.size(); ++i) CHECK_FALSE(verdicts[i].result.checks.passed());

    const accusation_summary summary = summarize(verdicts);
    CHECK(summary.pairs == verdicts.size());
    CHECK(summary.accusations == 0);
    CHECK(summary.share_p_at_most_0_01 <= summary.share_p_at_most_0_05);

    // Power: the watermarked model itself is accused.
    const accusation own =
        verdict_on("noise", key, references, model_suspect("noise", "own", -1, std::move(w.model), w.test), 1e-3);
    CHECK(own.result.watermark_present);
    CHECK(summarize({own}).accusations == 1);
    CHECK(summarize({own}).share_p_at_most_0_01 == 1.0);
}
