#include "nnmark/attacks/attacked_service.hpp"
#include "nnmark/watermark/embed.hpp"

#include "../support/tiny_watermark.hpp"

#include <doctest/doctest.h>

#include <cstdio>

using namespace nnmark;
using namespace nnmark::testing;

TEST_CASE("score_attack: the WRT verdicts, for a service kept, broken and replaced by a clean model") {
    quadrant_watermark w(5);
    const dataset& train = w.train;
    const dataset& test = w.test;
    const watermark_key& key = w.embedded.setup.key;
    progress_line quiet(stderr, 5.0, true);
    sequential<float> marked = std::move(w.model);
    const double original = evaluate(marked, test).accuracy();
    REQUIRE(original > 0.9);

    // Kept as it is: the watermark survives.
    attacked_service kept{std::move(marked), std::nullopt};
    const attack_score survived = score_attack(kept, test, original, &key, test, 1e-6);
    CHECK(survived.accuracy == original);
    REQUIRE(survived.verdict);
    CHECK(*survived.verdict == attack_verdict::survived);
    CHECK(survived.verification->matches >= 18);

    // Behind a transformation, accuracy and verification both see the transformed queries.
    const input_transform blur{transform_kind::blur, 0.5};
    attacked_service blurred{std::move(kept.model), blur};
    CHECK(service_accuracy(blurred, test) == evaluate_through(blurred.model, test, blur).accuracy());
    CHECK(score_attack(blurred, test, original, &key, test, 1e-6).verification->matches ==
          verify_through(blurred.model, key, test, blur, 1e-6).matches);

    // Every weight zeroed: a constant model, far below the original: destroyed.
    for (float& w : blurred.model.parameters()) w = 0;
    const attack_score broken = score_attack({std::move(blurred.model), std::nullopt}, test, original, &key, test, 1e-6);
    CHECK(*broken.verdict == attack_verdict::destroyed_model);

    // A clean model as good as the original: the watermark is gone, the model useful: removed.
    sequential<float> clean = make_tiny_net<float>();
    clean.initialize(6);
    trainer<float>(clean, quadrant_training(5)).fit(train, &test, quiet);
    const attack_score removed = score_attack({std::move(clean), std::nullopt}, test, original, &key, test, 1e-6);
    CHECK(removed.accuracy > original - 0.05);
    CHECK(*removed.verdict == attack_verdict::removed);

    // Without a key, accuracies only.
    sequential<float> plain = make_tiny_net<float>();
    plain.initialize(7);
    const attack_score unjudged = score_attack({std::move(plain), std::nullopt}, test, original, nullptr, test, 1e-6);
    CHECK_FALSE(unjudged.verification);
    CHECK_FALSE(unjudged.verdict);
}
