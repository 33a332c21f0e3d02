// Query detectors: each scores what it looks for higher than what it does not, on
// synthetic images where the answer is known, and a threshold fitted at rate r flags at
// most r of its fitting data, close to r, whatever the ties.
#include "nnmark/attacks/query_detectors.hpp"

#include "nnmark/layers/softmax_cross_entropy.hpp"
#include "nnmark/watermark/bitmap_font.hpp"
#include "nnmark/watermark/content_trigger.hpp"

#include "../support/errors.hpp"
#include "../support/tiny_data.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

using namespace nnmark;

namespace query_detectors_test {

// Handwriting-like images [count, C, 28, 28]: a ring of random centre and radius whose
// intensity falls off smoothly from a saturated core (antialiased strokes: many
// distinct mid-tones, none repeated much), on a black background, the same in every
// channel (grey) unless `tinted`.
dataset digit_like(index_t count, std::uint64_t seed, index_t channels = 1, bool tinted = false) {
    dataset data{tensor<std::uint8_t>(shape{count, channels, 28, 28}), std::vector<int>(static_cast<std::size_t>(count), 0),
                 10, "digit-like"};
    rng random(seed);
    for (index_t n = 0; n < count; ++n) {
        const double cy = 10 + 8 * random.uniform(), cx = 10 + 8 * random.uniform(), radius = 4 + 5 * random.uniform();
        for (index_t y = 0; y < 28; ++y)
            for (index_t x = 0; x < 28; ++x) {
                const double d = std::hypot(y - cy, x - cx) - radius;
                const double ink = 300 * std::exp(-d * d / 3.0);
                for (index_t c = 0; c < channels; ++c) {
                    const double v = ink * (tinted ? 1.0 - 0.2 * static_cast<double>(c) : 1.0);
                    data.images.at(n, c, y, x) = static_cast<std::uint8_t>(std::clamp(std::lround(v), 0L, 255L));
                }
            }
    }
    return data;
}

dataset stamped(const dataset& plain, const content_options& options) {
    rng random(1);
    return content_trigger(options).make(plain, plain.size(), random);
}

index_t inked_pixels(const content_options& options) {
    const text_bitmap b = render_text(options.text, options.scale);
    return static_cast<index_t>(std::ranges::count(b.ink, std::uint8_t{1}));
}

std::vector<double> scores_of(detector_kind kind, const dataset& images) {
    const auto net = testing::make_small_mnist_net<float>();  // unused by the image statistics
    return detector_scores(kind, net, images);
}

index_t above(const std::vector<double>& scores, double threshold) {
    return static_cast<index_t>(std::ranges::count_if(scores, [&](double s) { return s > threshold; }));
}

}  // namespace query_detectors_test

TEST_CASE("query detectors: stamp scores a constant-value text stamp high and handwriting low, anywhere") {
    using namespace query_detectors_test;
    const dataset plain = digit_like(30, 1);
    const std::vector<double> plain_scores = scores_of(detector_kind::stamp, plain);
    const double plain_max = *std::ranges::max_element(plain_scores);
    CHECK(plain_max < 15);
    // The paper's stamp, and others the detector was never told about: another grey,
    // another place, a bigger text.
    for (const content_options& options :
         {content_options{}, content_options{"TEST", 3, 12, 77, 1}, content_options{"AB", 2, 2, 200, 2}}) {
        CAPTURE(options.intensity);
        const std::vector<double> scores = scores_of(detector_kind::stamp, stamped(plain, options));
        CHECK(*std::ranges::min_element(scores) >= 30);
        CHECK(*std::ranges::min_element(scores) > 2 * plain_max);
    }
    // A 7-row text lies inside one band: every inked pixel counts, plus the image's own
    // pixels of that value at most.
    const dataset paper = stamped(plain, content_options{});
    for (index_t n = 0; n < paper.size(); ++n)
        CHECK(stamp_score(paper.images.item(n), paper.item_shape()) >= static_cast<double>(inked_pixels(content_options{})));
}

TEST_CASE("query detectors: stamp counts only values all channels share, and ignores the extremes") {
    using namespace query_detectors_test;
    // A uniform mid-grey image is all one value; black or white images are background.
    for (const auto& [value, expected] :
         {std::pair{100, 9.0 * 28}, std::pair{0, 0.0}, std::pair{255, 0.0}, std::pair{250, 0.0}}) {
        CAPTURE(value);
        tensor<std::uint8_t> image(shape{1, 1, 28, 28});
        std::ranges::fill(image.span(), static_cast<std::uint8_t>(value));
        CHECK(stamp_score(image.item(0), shape{1, 28, 28}) == expected);
    }
    // Colour: a grey stamp on a tinted image counts; the tinted strokes, whose channels
    // differ, do not.
    const dataset tinted = digit_like(10, 2, 3, true);
    const dataset marked = stamped(tinted, content_options{"TEST", 1, 1, 192, 1});
    for (index_t n = 0; n < tinted.size(); ++n) {
        CHECK(stamp_score(tinted.images.item(n), tinted.item_shape()) == 0);
        CHECK(stamp_score(marked.images.item(n), marked.item_shape()) >=
              static_cast<double>(inked_pixels(content_options{})));
    }
    tensor<std::uint8_t> not_an_image(shape{1, 28, 28});
    CHECK_THROWS_AS(stamp_score(not_an_image.item(0), shape{28, 28}), shape_error);
}

TEST_CASE("query detectors: noise-residual scores an image plus a fixed Gaussian pattern above the smooth image") {
    using namespace query_detectors_test;
    const dataset smooth = digit_like(20, 3);
    dataset noisy = smooth;
    rng random(4);
    std::vector<double> pattern(28 * 28);
    for (double& p : pattern) p = random.normal(0, 0.1 * 255);  // the MNIST noise trigger's sigma
    for (index_t n = 0; n < noisy.size(); ++n)
        for (index_t p = 0; p < 28 * 28; ++p) {
            std::uint8_t& v = noisy.images.item(n)[static_cast<std::size_t>(p)];
            v = static_cast<std::uint8_t>(std::clamp(std::lround(v + pattern[static_cast<std::size_t>(p)]), 0L, 255L));
        }
    const std::vector<double> clean = scores_of(detector_kind::noise_residual, smooth);
    const std::vector<double> dirty = scores_of(detector_kind::noise_residual, noisy);
    CHECK(*std::ranges::min_element(dirty) > 2 * *std::ranges::max_element(clean));
    // A constant image has no residual, and an edge or a few odd pixels, a minority,
    // leave the median at 0; Gaussian noise at every pixel does not.
    tensor<std::uint8_t> flat(shape{1, 1, 5, 5});
    std::ranges::fill(flat.span(), std::uint8_t{90});
    CHECK(noise_residual_score(flat.item(0), shape{1, 5, 5}) == 0);
    flat.at(0, 0, 2, 2) = 100;
    flat.at(0, 0, 0, 4) = 0;
    CHECK(noise_residual_score(flat.item(0), shape{1, 5, 5}) == 0);
    tensor<std::uint8_t> grain(shape{1, 1, 28, 28});
    rng grains(9);
    for (std::uint8_t& v : grain.span()) v = static_cast<std::uint8_t>(std::lround(90 + grains.normal(0, 10)));
    // |x - median of 9| for sigma 10 is about |N(0, 10.8)|, whose median is about 7.
    CHECK(noise_residual_score(grain.item(0), shape{1, 28, 28}) >= 4);
    CHECK(noise_residual_score(grain.item(0), shape{1, 28, 28}) <= 11);
}

TEST_CASE("query detectors: ood is 1 - the maximum softmax probability of the model") {
    using namespace query_detectors_test;
    auto net = testing::make_small_mnist_net<float>();
    net.initialize(5);
    const dataset images = digit_like(12, 5);
    const std::vector<double> scores = detector_scores(detector_kind::ood, net, images);
    REQUIRE(scores.size() == 12);
    std::size_t row = 0;
    tensor<float> probabilities;
    for_each_batch_logits(net, images, 256, [&](index_t, const tensor<float>& logits) {
        softmax(logits, probabilities);
        for (index_t i = 0; i < logits.shape()[0]; ++i, ++row) {
            const float* p = probabilities.data() + i * 10;
            CHECK(scores[row] == doctest::Approx(1.0 - *std::max_element(p, p + 10)).epsilon(1e-5));
            CHECK(scores[row] >= 0.0);
            CHECK(scores[row] <= 0.9 + 1e-9);  // at most 1 - 1/K
        }
    });
}

TEST_CASE("query detectors: a threshold fitted at rate r flags at most r of its data, close to r, with ties") {
    using namespace query_detectors_test;
    std::vector<double> distinct(200);
    std::iota(distinct.begin(), distinct.end(), 0.0);
    rng(6).shuffle(distinct);
    for (double rate : {0.0, 0.01, 0.05, 0.1, 0.333}) {
        CAPTURE(rate);
        const double t = threshold_at_rate(distinct, rate);
        CHECK(above(distinct, t) == static_cast<index_t>(std::floor(rate * 200)));
    }
    // Integer scores with heavy ties: never more than the rate, as close as ties allow.
    std::vector<double> tied;
    for (int v = 0; v < 10; ++v) tied.insert(tied.end(), static_cast<std::size_t>(10 + 3 * v), double(v));  // 235 scores
    for (double rate : {0.05, 0.1, 0.2, 0.5}) {
        CAPTURE(rate);
        const index_t flagged = above(tied, threshold_at_rate(tied, rate));
        CHECK(flagged <= static_cast<index_t>(std::floor(rate * static_cast<double>(tied.size()))));
        CHECK(flagged >= static_cast<index_t>(std::floor(rate * static_cast<double>(tied.size()))) - 39);  // one tie group
    }
    const std::vector<double> same(50, 3.0);
    CHECK(above(same, threshold_at_rate(same, 0.2)) == 0);
    CHECK_THROWS_AS(threshold_at_rate(distinct, 1.0), argument_error);
    CHECK_THROWS_AS(threshold_at_rate(distinct, -0.1), argument_error);
    CHECK_THROWS_AS(threshold_at_rate({}, 0.05), argument_error);
    CHECK(parse_detector_kind("noise-residual") == detector_kind::noise_residual);
    CHECK(to_string(detector_kind::ood) == "ood");
    CHECK_THROWS_AS(parse_detector_kind("stamps"), argument_error);
}

TEST_CASE("query detectors: the stamp detector fitted on plain images flags stamped ones, few plain ones") {
    using namespace query_detectors_test;
    auto net = testing::make_small_mnist_net<float>();
    const dataset fitting = digit_like(100, 7), fresh = digit_like(100, 8);
    const fitted_detector d = fit_detector(detector_kind::stamp, net, fitting, 0.05);
    CHECK(d.kind == detector_kind::stamp);
    const std::vector<bool> on_fitting = d.flag(net, fitting);
    CHECK(std::ranges::count(on_fitting, true) <= 5);
    const std::vector<bool> on_stamped = d.flag(net, stamped(fresh, content_options{}));
    CHECK(std::ranges::count(on_stamped, true) == 100);
    CHECK(std::ranges::count(d.flag(net, fresh), true) <= 15);
}
