// verify.hpp: counting the suspect's matches, the p-value under the key's null, the
// suspect's control and checks, and asking a model in memory (verify_model) or several
// (calibrate_key).
#include "nnmark/watermark/verify.hpp"
#include "nnmark/watermark/suspect_checks.hpp"

#include "../support/errors.hpp"
#include "../support/tiny_data.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

using namespace nnmark;

namespace verify_test {

// A key of the first ten quadrant images, labelled `labels` (4 classes, a recipe
// without a label mode or target, uncalibrated: the null rate is the assumed 1/4).
watermark_key quadrant_key(const std::vector<int>& labels) {
    watermark_key key;
    key.triggers = testing::make_quadrant_dataset(10, 3);
    key.triggers.labels = labels;
    key.recipe = json::object();
    return key;
}

// A target-label key of ten quadrant images all labelled 2.
watermark_key target_key() {
    watermark_key key = quadrant_key(std::vector<int>(10, 2));
    key.recipe["label_mode"] = "target";
    key.recipe["target"] = 2;
    return key;
}

// A net that answers `label` for everything: zero weights, one positive output bias.
sequential<float> constant_net(int label) {
    sequential<float> net = testing::make_tiny_net<float>();
    std::fill(net.parameters().begin(), net.parameters().end(), 0.0f);
    net.named_parameters().back().value[static_cast<std::size_t>(label)] = 1.0f;
    return net;
}

const std::vector<int> key_labels{0, 1, 2, 3, 0, 1, 2, 3, 0, 1};

}  // namespace verify_test
using namespace verify_test;

TEST_CASE("verify_answers: matches and the exact binomial tail under the assumed 1/K") {
    const watermark_key key = quadrant_key(key_labels);
    const verification_result all = verify_answers(key, key_labels, 1e-6);
    CHECK(all.queries == 10);
    CHECK(all.matches == 10);
    CHECK(all.null_source == "assumed");
    CHECK(all.null_rate == 0.25);
    CHECK(all.log10_p_value == doctest::Approx(-10 * std::log10(4.0)).epsilon(1e-13));  // 0.25^10
    CHECK(all.significant);
    CHECK(all.watermark_present);
    CHECK_FALSE(all.checks.run);

    // Three of ten right: P[Binomial(10, 0.25) >= 3] = 0.4744071960449219 exactly.
    const std::vector<int> three_right{0, 1, 2, 0, 1, 2, 3, 0, 1, 2};
    CHECK(count_matches(key, three_right) == 3);
    const verification_result some = verify_answers(key, three_right, 1e-6);
    CHECK(some.p_value == doctest::Approx(0.4744071960449219).epsilon(1e-12));
    CHECK_FALSE(some.watermark_present);
}

TEST_CASE("verify_answers: p equal to alpha counts as present; alpha outside (0, 1) is refused") {
    const watermark_key key = quadrant_key(key_labels);
    const std::vector<int> nine_right{0, 1, 2, 3, 0, 1, 2, 3, 0, 0};
    // P[Binomial(10, 1/4) >= 9] = (30 + 1) / 4^10.
    const double p = 31.0 / 1048576.0;
    CHECK(verify_answers(key, nine_right, p * (1 + 1e-9)).watermark_present);
    CHECK_FALSE(verify_answers(key, nine_right, p * (1 - 1e-6)).watermark_present);
    CHECK_THROWS_AS(verify_answers(key, nine_right, 0.0), argument_error);
    CHECK_THROWS_AS(verify_answers(key, nine_right, 1.0), argument_error);
}

TEST_CASE("count_matches refuses an answer list of the wrong length") {
    const watermark_key key = quadrant_key(key_labels);
    CHECK(testing::error_message([&] { count_matches(key, std::vector<int>{0, 1}); }) ==
          "verify: 2 answers for a key of 10 triggers");
}

TEST_CASE("verify_answers: the control and the checks keep a degenerate suspect from being accused") {
    const watermark_key key = target_key();
    const dataset decoys = testing::make_quadrant_dataset(200, 11);
    // Answers the target (2) for every query: 10 of 10 triggers match, p = 4^-10 under the
    // assumed null, but decoys of other classes got the target just as often.
    const suspect_answers constant{std::vector<int>(10, 2), std::vector<int>(200, 2), decoys.labels, index_t{0}};
    const verification_result r = verify_answers(key, constant, 1e-3);
    CHECK(r.population_log10_p_value < -6);
    CHECK(r.control.run);
    CHECK(r.control.trigger_target_answers == 10);
    CHECK(r.control.decoy_target_answers == r.control.decoys);
    CHECK(r.log10_p_value == 0.0);
    CHECK_FALSE(r.significant);
    CHECK_FALSE(r.watermark_present);
    CHECK(r.checks.run);
    CHECK(r.checks.most_frequent_answer == 2);
    CHECK(r.checks.most_frequent_share == 1.0);
    CHECK(testing::contains(r.checks.failure, "not a classifier of the task"));

    // A classifier that answers the triggers with the target: both tests reject.
    const suspect_answers owner{std::vector<int>(10, 2), decoys.labels, decoys.labels, index_t{0}};
    const verification_result w = verify_answers(key, owner, 1e-3);
    CHECK(w.checks.passed());
    CHECK(w.checks.decoy_accuracy == 1.0);
    CHECK(w.control.decoy_target_answers == 0);
    CHECK(w.log10_p_value == std::max(w.population_log10_p_value, w.control.log10_p_value));
    CHECK(w.watermark_present);

    // The same answers with outputs that were not finite: significant, not declared present.
    suspect_answers broken = owner;
    broken.non_finite_outputs = 3;
    const verification_result b = verify_answers(key, broken, 1e-3);
    CHECK(b.significant);
    CHECK_FALSE(b.watermark_present);
    CHECK(testing::contains(b.checks.failure, "not finite"));
}

TEST_CASE("check_suspect: accuracy and answer share against their limits") {
    const std::vector<int> labels{0, 1, 2, 3, 0, 1, 2, 3, 0, 1};
    CHECK(check_suspect(labels, labels, 4, std::nullopt).passed());
    std::vector<int> half = labels;
    for (std::size_t i = 0; i < 5; ++i) half[i] = (half[i] + 1) % 4;
    CHECK(check_suspect(half, labels, 4, std::nullopt).decoy_accuracy == 0.5);
    CHECK(check_suspect(half, labels, 4, std::nullopt).passed());  // 1/2 is enough
    half[5] = 0;
    CHECK(testing::contains(check_suspect(half, labels, 4, std::nullopt).failure, "40.0% of 10 test images right"));
    CHECK(largest_answer_share(10) == 0.55);
    CHECK_THROWS_AS(check_suspect(labels, std::vector<int>{0}, 4, std::nullopt), argument_error);
}

TEST_CASE("verify_model: a model answering one class, or NaN, is never declared present") {
    const watermark_key key = target_key();
    const dataset decoys = testing::make_quadrant_dataset(100, 4);
    const verification_result constant = verify_model(constant_net(2), key, decoys, 1e-3);
    CHECK(constant.matches == 10);
    CHECK(constant.checks.most_frequent_share == 1.0);
    CHECK_FALSE(constant.watermark_present);

    sequential<float> nan_net = testing::make_tiny_net<float>();
    std::fill(nan_net.parameters().begin(), nan_net.parameters().end(), std::numeric_limits<float>::quiet_NaN());
    const verification_result nan = verify_model(nan_net, key, decoys, 1e-3);
    CHECK(nan.checks.non_finite_outputs == index_t{110});
    CHECK_FALSE(nan.watermark_present);
    CHECK(testing::contains(nan.checks.failure, "not finite"));
}

TEST_CASE("verify_model and calibrate_key ask the model for the key's labels") {
    sequential<float> net = testing::make_tiny_net<float>();
    net.initialize(5);
    const std::vector<int> answers = predict_labels(net, quadrant_key(key_labels).triggers);
    const dataset decoys = testing::make_quadrant_dataset(40, 6);

    // A key made of the model's own answers is matched in full; a key of other labels never.
    const verification_result own = verify_model(net, quadrant_key(answers), decoys, 1e-6);
    CHECK(own.matches == 10);
    CHECK(own.log10_p_value == doctest::Approx(-10 * std::log10(4.0)).epsilon(1e-13));
    std::vector<int> others = answers;
    for (int& label : others) label = (label + 1) % 4;
    CHECK(verify_model(net, quadrant_key(others), decoys, 1e-6).matches == 0);

    // Two reference models: this one matches all 10 of its own answers, the other none.
    const sequential<float> other = constant_net((answers[0] + 1) % 4);
    const std::vector<int> other_answers = predict_labels(other, quadrant_key(key_labels).triggers);
    index_t other_matches = 0;
    for (std::size_t i = 0; i < answers.size(); ++i) other_matches += other_answers[i] == answers[i];
    const sequential<float>* references[] = {&net, &other};
    const key_calibration c =
        calibrate_key<float>(quadrant_key(answers), references, {{"a", std::string(64, 'a'), 0}, {"b", std::string(64, 'b'), 0}});
    CHECK(c.models[0].matches == 10);
    CHECK(c.models[1].matches == other_matches);
    CHECK(c.queries() == 20);

    // A model for other images is refused, naming both shapes.
    const sequential<float> mnist = testing::make_small_mnist_net<float>();
    CHECK(testing::contains(testing::error_message([&] { verify_model(mnist, quadrant_key(answers), decoys, 1e-6); }),
                            "[1, 28, 28]"));
}
