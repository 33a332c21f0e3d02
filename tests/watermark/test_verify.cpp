// verify.hpp: counting the suspect's matches, the p-value under the key's null rate, and
// asking a model in memory (verify_model) or several (calibrate_key).
#include "nnmark/watermark/verify.hpp"

#include "../support/errors.hpp"
#include "../support/tiny_data.hpp"

#include <doctest/doctest.h>

#include <vector>

using namespace nnmark;

namespace verify_test {

// A key of the first ten quadrant images, labelled `labels` (4 classes, target-label
// recipe, uncalibrated: the null rate is the assumed 1/4).
watermark_key quadrant_key(const std::vector<int>& labels) {
    watermark_key key;
    key.triggers = testing::make_quadrant_dataset(10, 3);
    key.triggers.labels = labels;
    key.recipe = json::object();
    return key;
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
    CHECK(all.null_rate == doctest::Approx(0.25));
    CHECK(all.p_value == doctest::Approx(9.5367431640625e-07));  // 0.25^10
    CHECK(all.watermark_present);

    // Three of ten right: P[Binomial(10, 0.25) >= 3] = 0.474407..., far above alpha.
    const std::vector<int> three_right{0, 1, 2, 0, 1, 2, 3, 0, 1, 2};
    CHECK(count_matches(key, three_right) == 3);
    const verification_result some = verify_answers(key, three_right, 1e-6);
    CHECK(some.p_value == doctest::Approx(0.4744071960449219));
    CHECK_FALSE(some.watermark_present);
}

TEST_CASE("count_matches refuses an answer list of the wrong length") {
    const watermark_key key = quadrant_key(key_labels);
    CHECK(testing::error_message([&] { count_matches(key, std::vector<int>{0, 1}); }) ==
          "verify: 2 answers for a key of 10 triggers");
}

TEST_CASE("verify_model and calibrate_key ask the model for the key's labels") {
    sequential<float> net = testing::make_tiny_net<float>();
    net.initialize(5);
    const std::vector<int> answers = predict_labels(net, quadrant_key(key_labels).triggers);

    // A key made of the model's own answers is matched in full; a key of other labels never.
    const verification_result own = verify_model(net, quadrant_key(answers), 1e-6);
    CHECK(own.matches == 10);
    CHECK(own.p_value == doctest::Approx(9.5367431640625e-07));
    std::vector<int> others = answers;
    for (int& label : others) label = (label + 1) % 4;
    CHECK(verify_model(net, quadrant_key(others), 1e-6).matches == 0);

    // Two reference models that both answer every trigger: 20 of 20 queries match.
    const sequential<float>* references[] = {&net, &net};
    const key_calibration c = calibrate_key<float>(quadrant_key(answers), references, {"a", "b"});
    CHECK(c.queries == 20);
    CHECK(c.matches == 20);
    CHECK(c.null_rate == doctest::Approx(1.0));

    // A model for other images is refused, naming both shapes.
    const sequential<float> mnist = testing::make_small_mnist_net<float>();
    CHECK(testing::contains(testing::error_message([&] { verify_model(mnist, quadrant_key(answers), 1e-6); }),
                            "[1, 28, 28]"));
}
