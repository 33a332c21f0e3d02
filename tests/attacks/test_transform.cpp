// Input transformations: each does what its name says, and a model scored through the
// identity transformation scores as without it.
#include "nnmark/attacks/transform.hpp"

#include "../support/errors.hpp"
#include "../support/tiny_data.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>

using namespace nnmark;

namespace transform_test {

// Smooth gradients plus some noise, like a photo: `count` images [C, h, w].
tensor<std::uint8_t> textured(index_t count, index_t channels, index_t h, index_t w, std::uint64_t seed) {
    tensor<std::uint8_t> images(shape{count, channels, h, w});
    rng random(seed);
    for (index_t n = 0; n < count; ++n)
        for (index_t c = 0; c < channels; ++c)
            for (index_t y = 0; y < h; ++y)
                for (index_t x = 0; x < w; ++x) {
                    const double v = 128 + 80 * std::sin(0.3 * x + 0.2 * y + static_cast<double>(c + n)) + random.normal(0, 20);
                    images.at(n, c, y, x) = static_cast<std::uint8_t>(std::clamp(std::lround(v), 0L, 255L));
                }
    return images;
}

tensor<std::uint8_t> filled(shape s, std::uint8_t value) {
    tensor<std::uint8_t> t(s);
    std::ranges::fill(t.span(), value);
    return t;
}

bool same(const tensor<std::uint8_t>& a, const tensor<std::uint8_t>& b) { return std::ranges::equal(a.span(), b.span()); }

double mean_abs_difference(const tensor<std::uint8_t>& a, const tensor<std::uint8_t>& b) {
    double sum = 0;
    for (index_t i = 0; i < a.size(); ++i) sum += std::abs(int(a[i]) - int(b[i]));
    return sum / static_cast<double>(a.size());
}

tensor<std::uint8_t> apply(const input_transform& t, tensor<std::uint8_t> images) {
    apply_transform(t, images);
    return images;
}

}  // namespace transform_test

TEST_CASE("transform: JPEG round-trip error grows as the quality drops, grey and colour") {
    using namespace transform_test;
    for (index_t channels : {1, 3}) {
        CAPTURE(channels);
        const auto images = textured(2, channels, 28, 32, 1);
        double previous = 0;
        for (double quality : {95.0, 50.0, 10.0}) {
            CAPTURE(quality);
            const double error = mean_abs_difference(images, apply({transform_kind::jpeg, quality}, images));
            CHECK(error > previous);
            previous = error;
        }
        CHECK(mean_abs_difference(images, apply({transform_kind::jpeg, 95}, images)) < 8);
    }
    CHECK_THROWS_AS(apply({transform_kind::jpeg, 50}, tensor<std::uint8_t>(shape{1, 2, 8, 8})), shape_error);
}

TEST_CASE("transform: blur keeps a constant image, smooths edges, and sigma 0 is the identity") {
    using namespace transform_test;
    const auto constant = filled(shape{2, 3, 9, 11}, 123);
    CHECK(same(apply({transform_kind::blur, 1.5}, constant), constant));
    const auto images = textured(2, 1, 16, 16, 2);
    CHECK(same(apply({transform_kind::blur, 0}, images), images));
    // A step edge becomes a ramp: the pixels beside it move toward each other.
    tensor<std::uint8_t> edge(shape{1, 1, 8, 8});
    for (index_t y = 0; y < 8; ++y)
        for (index_t x = 0; x < 8; ++x) edge.at(0, 0, y, x) = x < 4 ? 0 : 200;
    const auto blurred = apply({transform_kind::blur, 1.0}, edge);
    CHECK(blurred.at(0, 0, 3, 3) > 0);
    CHECK(blurred.at(0, 0, 3, 4) < 200);
    CHECK(blurred.at(0, 0, 3, 0) == 0);  // three sigmas away: untouched
    CHECK(blurred.at(0, 0, 3, 3) + blurred.at(0, 0, 3, 4) == doctest::Approx(200).epsilon(0.01));  // symmetric
}

TEST_CASE("transform: bit depth 8 is the identity, 1 leaves two levels, 3 at most eight") {
    using namespace transform_test;
    tensor<std::uint8_t> ramp(shape{1, 1, 16, 16});
    for (index_t i = 0; i < 256; ++i) ramp.data()[i] = static_cast<std::uint8_t>(i);
    CHECK(same(apply({transform_kind::bits, 8}, ramp), ramp));
    const auto one = apply({transform_kind::bits, 1}, ramp);
    CHECK(std::set<int>(one.span().begin(), one.span().end()) == std::set<int>{0, 255});
    CHECK(one[127] == 0);
    CHECK(one[128] == 255);
    const auto three = apply({transform_kind::bits, 3}, ramp);
    CHECK(std::set<int>(three.span().begin(), three.span().end()).size() == 8);
}

TEST_CASE("transform: noise is seeded, has the asked spread, and 0 is the identity") {
    using namespace transform_test;
    const auto grey = filled(shape{4, 1, 28, 28}, 128);
    const input_transform noise{transform_kind::noise, 0.05, 7};
    const auto a = apply(noise, grey), b = apply(noise, grey);
    CHECK(same(a, b));
    CHECK_FALSE(same(apply({transform_kind::noise, 0.05, 8}, grey), a));
    CHECK(same(apply({transform_kind::noise, 0.0, 7}, grey), grey));
    double sum_squares = 0;
    for (index_t i = 0; i < a.size(); ++i) sum_squares += (a[i] - 128.0) * (a[i] - 128.0);
    CHECK(std::sqrt(sum_squares / static_cast<double>(a.size())) == doctest::Approx(0.05 * 255).epsilon(0.1));
}

TEST_CASE("transform: strengths outside their range are refused") {
    using namespace transform_test;
    const auto images = filled(shape{1, 1, 4, 4}, 9);
    for (const input_transform& bad : {input_transform{transform_kind::jpeg, 0}, input_transform{transform_kind::jpeg, 50.5},
                                       input_transform{transform_kind::bits, 9}, input_transform{transform_kind::blur, -1},
                                       input_transform{transform_kind::noise, 2}}) {
        CAPTURE(bad.describe());
        CHECK(testing::contains(testing::error_message<argument_error>([&] { apply(bad, images); }), bad.describe()));
    }
}

TEST_CASE("transform: a model scored through the identity scores as without it") {
    using namespace transform_test;
    auto net = testing::make_tiny_net<float>();
    net.initialize(3);
    const dataset data = testing::make_quadrant_dataset(50, 4);
    const input_transform identity{transform_kind::bits, 8};
    CHECK(evaluate_through(net, data, identity).correct == evaluate(net, data).correct);
    watermark_key key;
    key.triggers = data;
    key.recipe = json::object();
    key.recipe["label_mode"] = "random";
    const dataset decoys = testing::make_quadrant_dataset(40, 5);
    const verification_result direct = verify_model(net, key, decoys, 1e-3),
                              through = verify_through(net, key, decoys, identity, 1e-3);
    CHECK(through.matches == direct.matches);
    CHECK(through.p_value == direct.p_value);
    // The decoys pass through the transformation too and the suspect checks run on them.
    CHECK(through.checks.run);
    CHECK(through.checks.decoys == 40);
    CHECK(through.checks.decoy_accuracy == doctest::Approx(evaluate(net, decoys).accuracy()));
    // A strong blur changes what the model is shown.
    CHECK_FALSE(same(transformed(data, {transform_kind::blur, 3}).images, data.images));
}
