// query_plan: triggers hidden among decoys, every query asked once, answers back in key order.
#include "nnmark/serve/query_plan.hpp"

#include "../support/errors.hpp"
#include "../support/tiny_data.hpp"

#include <doctest/doctest.h>

#include <set>

namespace nnmark::testing::query_plan_tests {

TEST_CASE("serve query plan: triggers are shuffled among decoys and answers come back in key order") {
    const dataset triggers = make_quadrant_dataset(6, 1);
    rng random(7);
    const dataset decoys = pick_decoys(make_quadrant_dataset(40, 2), 10, random);
    CHECK(decoys.size() == 10);
    query_plan plan(triggers, decoys, random);
    REQUIRE(plan.size() == 16);

    // Answer each query by reading its image back from the request: the bright
    // quadrant is the label, so triggers get their own labels and decoys theirs.
    const shape item = triggers.item_shape();
    std::vector<int> answered;
    for (index_t first = 0; first < plan.size(); first += 5) {
        const index_t count = std::min<index_t>(5, plan.size() - first);
        const predict_request request = parse_predict_request(plan.request_body(first, count, image_layout::hwc), item);
        std::vector<int> labels;
        for (index_t i = 0; i < count; ++i) {
            const auto image = request.images.item(i);
            int best = 0;
            float best_sum = -1;
            for (int q = 0; q < 4; ++q) {
                float sum = 0;
                for (index_t y = q / 2 * 4; y < q / 2 * 4 + 4; ++y)
                    for (index_t x = q % 2 * 4; x < q % 2 * 4 + 4; ++x)
                        sum += image[static_cast<std::size_t>(y * 8 + x)];
                if (sum > best_sum) best = q, best_sum = sum;
            }
            labels.push_back(best);
        }
        plan.record(first, labels);
        answered.insert(answered.end(), labels.begin(), labels.end());
    }
    CHECK(plan.trigger_answers() == triggers.labels);
    CHECK(plan.decoy_answers() == decoys.labels);
    CHECK(plan.decoy_accuracy() == 1.0);
    // Shuffled: the triggers are not simply the first six queries.
    CHECK(std::vector<int>(answered.begin(), answered.begin() + 6) != triggers.labels);
}

TEST_CASE("serve query plan: too few decoys, unanswered queries and decoys beyond the test set are refused") {
    const dataset triggers = make_quadrant_dataset(6, 1);
    rng random(7);
    const dataset few = make_quadrant_dataset(5, 2);
    CHECK(contains(error_message<argument_error>([&] { query_plan(triggers, few, random); }),
                   "5 decoys for 6 triggers; at least as many decoys are needed"));
    CHECK(contains(error_message<argument_error>([&] { pick_decoys(few, 6, random); }), "6 decoys asked for"));
    const dataset decoys = make_quadrant_dataset(6, 2);
    query_plan plan(triggers, decoys, random);
    CHECK(contains(error_message([&] { plan.trigger_answers(); }), "has no answer"));
    CHECK(contains(error_message<argument_error>([&] { plan.request_body(10, 3, image_layout::chw); }),
                   "outside the plan's 12"));
}

}  // namespace nnmark::testing::query_plan_tests
