// The evading service: flagged queries get the model's second-best class, unflagged ones
// its own; the union flags what any detector flags; the second opinion flags where two
// models disagree and answers with the second; the verifier's session is assembled from
// the service's answers.
#include "nnmark/attacks/evading_service.hpp"

#include "nnmark/watermark/content_trigger.hpp"

#include "../support/tiny_data.hpp"
#include "../support/tiny_watermark.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <numeric>

using namespace nnmark;

namespace evading_service_test {

// 28x28 grey images of uniform noise in 20..60 (no value repeated much), the second half
// stamped with mid-grey "TEST".
dataset half_stamped(index_t count, std::uint64_t seed) {
    dataset data{tensor<std::uint8_t>(shape{count, 1, 28, 28}), std::vector<int>(static_cast<std::size_t>(count), 0), 10,
                 "half-stamped"};
    rng random(seed);
    for (std::uint8_t& p : data.images.span()) p = static_cast<std::uint8_t>(20 + random.below(41));
    for (index_t n = 0; n < count; ++n) data.labels[static_cast<std::size_t>(n)] = static_cast<int>(n % 10);
    const dataset stamps = content_trigger().make(data.split(count / 2).second, count - count / 2, random);
    for (index_t n = count / 2; n < count; ++n)
        std::ranges::copy(stamps.images.item(n - count / 2), data.images.item(n).begin());
    return data;
}

// The classes of every row of the model's logits, best first.
std::vector<std::vector<int>> ranked_classes(const sequential<float>& model, const dataset& images) {
    std::vector<std::vector<int>> ranked;
    for_each_batch_logits(model, images, 256, [&](index_t, const tensor<float>& logits) {
        for (index_t row = 0; row < logits.shape()[0]; ++row) {
            const float* z = logits.data() + row * 10;
            std::vector<int> order(10);
            std::iota(order.begin(), order.end(), 0);
            std::ranges::stable_sort(order, [&](int a, int b) { return z[a] > z[b]; });
            ranked.push_back(order);
        }
    });
    return ranked;
}

sequential<float> random_net(std::uint64_t seed) {
    auto net = testing::make_small_mnist_net<float>();
    net.initialize(seed);
    return net;
}

}  // namespace evading_service_test

TEST_CASE("evading service: flagged queries get the second-best class, unflagged ones the model's own") {
    using namespace evading_service_test;
    const sequential<float> model = random_net(1);
    const dataset queries = half_stamped(40, 2);
    const std::vector<fitted_detector> detectors{{detector_kind::stamp, 20.0}};
    const service_answers a = answer_through(evasion_policy(detectors), model, queries);
    const auto ranked = ranked_classes(model, queries);
    REQUIRE(a.labels.size() == 40);
    for (std::size_t i = 0; i < 40; ++i) {
        CAPTURE(i);
        CHECK(a.flagged[i] == (i >= 20));  // exactly the stamped half
        CHECK(a.labels[i] == ranked[i][a.flagged[i] ? 1 : 0]);
    }
    CHECK(a.flagged_count() == 20);
    // Without detectors the service is the model.
    const service_answers plain = answer_through(evasion_policy(std::vector<fitted_detector>{}), model, queries);
    CHECK(plain.labels == predict_labels(model, queries));
    CHECK(plain.flagged_count() == 0);
    CHECK(plain.accuracy(queries.labels) == doctest::Approx(evaluate(model, queries).accuracy()));
}

TEST_CASE("evading service: the union flags a query when any detector flags it") {
    using namespace evading_service_test;
    const sequential<float> model = random_net(3);
    const dataset queries = half_stamped(30, 4);
    const fitted_detector stamp{detector_kind::stamp, 20.0}, ood{detector_kind::ood, 0.85};
    const std::vector<fitted_detector> both{stamp, ood};
    const service_answers a = answer_through(evasion_policy(both), model, queries);
    const std::vector<bool> by_stamp = stamp.flag(model, queries), by_ood = ood.flag(model, queries);
    const auto ranked = ranked_classes(model, queries);
    for (std::size_t i = 0; i < 30; ++i) {
        CHECK(a.flagged[i] == (by_stamp[i] || by_ood[i]));
        CHECK(a.labels[i] == ranked[i][a.flagged[i] ? 1 : 0]);
    }
}

TEST_CASE("evading service: a second opinion flags disagreements and answers with its own class") {
    using namespace evading_service_test;
    const sequential<float> model = random_net(5);
    const auto second = std::make_shared<const sequential<float>>(random_net(6));
    const dataset queries = half_stamped(40, 7);
    const evasion_policy ensemble(second);
    const service_answers a = answer_through(ensemble, model, queries);
    const std::vector<int> own = predict_labels(model, queries), other = predict_labels(*second, queries);
    CHECK(a.labels == other);
    for (std::size_t i = 0; i < 40; ++i) CHECK(a.flagged[i] == (own[i] != other[i]));
    const evasion_policy itself(std::make_shared<const sequential<float>>(random_net(5)));
    CHECK(answer_through(itself, model, queries).flagged_count() == 0);
}

TEST_CASE("evading service: a served batch of x / 255 floats is answered as the dataset, scores swapped to agree") {
    using namespace evading_service_test;
    const sequential<float> model = random_net(11);
    const dataset queries = half_stamped(24, 12);
    const evasion_policy policy(std::vector<fitted_detector>{{detector_kind::stamp, 20.0}});
    const service_answers expected = answer_through(policy, model, queries);
    std::vector<index_t> all(24);
    std::iota(all.begin(), all.end(), 0);
    tensor<float> images, logits, scores;
    to_float(queries, all, images);
    inference_buffers<float> inference;
    model.infer(images, logits, inference);
    softmax(logits, scores);
    const tensor<float> model_scores = scores;
    std::vector<int> labels = argmax_rows(logits);
    evasion_buffers buffers;
    const std::vector<bool> flagged = policy.answer_batch(images, logits, labels, &scores, buffers);
    CHECK(labels == expected.labels);
    CHECK(flagged == expected.flagged);
    CHECK(argmax_rows(scores) == labels);  // what the scores say is what the label says
    for (index_t n = 0; n < 24; ++n) {
        std::vector<float> before(model_scores.item(n).begin(), model_scores.item(n).end()),
            after(scores.item(n).begin(), scores.item(n).end());
        std::ranges::sort(before);
        std::ranges::sort(after);
        CHECK(before == after);  // the same probabilities, two of them traded
    }
    progress_line quiet(stderr, 5.0, true);
    CHECK_THROWS_AS(make_evasion_policy("stamps", model, queries, 0.05, training_recipe{}, quiet), argument_error);
}

TEST_CASE("evading service: the second opinion is a fresh model of the architecture trained on the attacker's data") {
    const dataset attacker = testing::make_quadrant_dataset(240, 8), held_out = testing::make_quadrant_dataset(100, 9);
    auto stolen = testing::make_tiny_net<float>();
    stolen.initialize(1);
    training_recipe recipe;
    recipe.epochs = 8;
    recipe.batch = 16;
    recipe.seed = 2;
    progress_line quiet(stderr, 5.0, true);
    const sequential<float> second = train_second_opinion(stolen, attacker, recipe, quiet);
    CHECK(architecture_json(second) == architecture_json(stolen));
    CHECK(evaluate(second, held_out).accuracy() > 0.8);
}

TEST_CASE("evading service: the verifier's session holds the trigger and decoy answers with the decoys' labels") {
    using namespace evading_service_test;
    const dataset decoys = half_stamped(6, 10);
    const service_answers triggers{{7, 7, 3}, {true, false, true}}, decoy_answers{{0, 1, 2, 3, 4, 9}, std::vector<bool>(6)};
    const suspect_answers s = as_suspect_answers(triggers, decoy_answers, decoys);
    CHECK(s.triggers == std::vector<int>{7, 7, 3});
    CHECK(s.decoys == decoy_answers.labels);
    CHECK(s.decoy_labels == decoys.labels);
    CHECK_FALSE(s.non_finite_outputs.has_value());
    CHECK(decoy_answers.accuracy(decoys.labels) == doctest::Approx(5.0 / 6));
    CHECK_THROWS_AS(as_suspect_answers(triggers, triggers, decoys), argument_error);
}

TEST_CASE("score_evasion: a service flagging nothing keeps the watermark; a clean second opinion removes it") {
    testing::quadrant_watermark w(4);
    const watermark_key& key = w.embedded.setup.key;
    const double original = evaluate(w.model, w.test).accuracy();

    const evasion_score none = score_evasion(evasion_policy(std::vector<fitted_detector>{}), w.model, key, w.test,
                                             w.test, original, 1e-6);
    CHECK(none.triggers_flagged == 0);
    CHECK(none.evaluation_flagged == 0);
    CHECK(none.accuracy == original);
    CHECK(none.verification.watermark_present);
    CHECK(none.verdict == attack_verdict::survived);

    // A model of the thief's own, trained without the triggers, answers them with their true class.
    auto clean = std::make_shared<sequential<float>>(testing::make_tiny_net<float>());
    clean->initialize(5);
    progress_line quiet(stderr, 5.0, true);
    trainer<float>(*clean, testing::quadrant_training(5)).fit(w.train, &w.test, quiet);
    const evasion_score second = score_evasion(evasion_policy(std::shared_ptr<const sequential<float>>(clean)), w.model,
                                               key, w.test, w.test, original, 1e-6);
    CHECK(second.triggers_flagged >= key.triggers.size() * 9 / 10);
    CHECK(second.evaluation_flagged < w.test.size() / 10);
    CHECK_FALSE(second.verification.watermark_present);
    CHECK(second.verdict == attack_verdict::removed);
}
