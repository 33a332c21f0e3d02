// noise_trigger: the paper's "noise" watermark (Sec. 4.1, Fig. 4): Gaussian noise added
// to source-class images. The paper states neither the noise's parameters nor whether it
// is fixed; nnmark uses ONE pattern, so that the model can learn it and new triggers made
// later (from test-set images) carry the same one.
//
// Contract:
// - Built with the item shape [C, H, W], the standard deviation sigma on the [0, 1] pixel
//   scale (mean 0; defaults in trigger_set.hpp: 0.1 MNIST, 0.4 CIFAR-10) and the seed.
//   pattern() is item.count() draws of N(0, sigma^2), in NCHW order, from a stream of
//   rng(seed) reserved for the pattern: it depends on the seed and the shape only,
//   never on the rng make() is given (which only picks pool images).
// - trigger = clamp(pixel / 255 + noise, 0, 1), stored back as uint8 rounded to the
//   nearest level. It is computed as clamp(pixel + offset, 0, 255) with
//   offset = round(255 * noise) (offsets()), which is the same value for integer pixels,
//   and makes the change of every unclamped pixel exactly the same in every trigger.
// - Pool items must have the shape given at construction, else shape_error.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/rng.hpp"
#include "nnmark/watermark/trigger.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace nnmark {

class noise_trigger final : public trigger_generator {
public:
    // The rng stream of rng(seed) the pattern is drawn from ("noise" in ASCII): distinct
    // from the streams trigger_set.hpp derives from the same seed to pick images and labels.
    static constexpr std::uint64_t pattern_stream = 0x6E6F697365;

    noise_trigger(const shape& item, double sigma, std::uint64_t seed) : item_(item), sigma_(sigma), seed_(seed) {
        if (item.rank() != 3 || item.count() == 0)
            throw shape_error("noise trigger: expected an item shape [C, H, W] with positive extents, got " +
                              item.str());
        if (!(sigma > 0) || !std::isfinite(sigma))
            throw argument_error("noise trigger: sigma must be positive and finite, got " + std::to_string(sigma));
        rng random = rng(seed).derive(pattern_stream);
        pattern_.resize(static_cast<std::size_t>(item.count()));
        offsets_.resize(pattern_.size());
        for (std::size_t i = 0; i < pattern_.size(); ++i) {
            pattern_[i] = random.normal(0.0, sigma);
            offsets_[i] = static_cast<int>(std::lround(255.0 * pattern_[i]));
        }
    }

    std::string kind() const override { return "noise"; }

    // The seed is stored as the int64 with the same bits (seeds above 2^63 come out negative).
    layer_config parameters() const override {
        return {{"sigma", sigma_}, {"seed", static_cast<std::int64_t>(seed_)}};
    }

    // The noise on the [0, 1] scale, item.count() values in NCHW order.
    const std::vector<double>& pattern() const { return pattern_; }
    // The same noise in uint8 levels, round(255 * noise): what each pixel gains before clamping.
    const std::vector<int>& offsets() const { return offsets_; }
    const shape& item_shape() const { return item_; }

    dataset make(const dataset& pool, index_t count, rng& random) const override {
        if (!(pool.item_shape() == item_))
            throw shape_error("noise trigger: the pattern was made for items " + item_.str() + " but '" + pool.name +
                              "' has items " + pool.item_shape().str());
        return detail::make_triggers(*this, pool, count, random, item_,
                                     [&](std::span<const std::uint8_t> image, std::span<std::uint8_t> trigger) {
                                         for (std::size_t i = 0; i < image.size(); ++i)
                                             trigger[i] = static_cast<std::uint8_t>(
                                                 std::clamp(int{image[i]} + offsets_[i], 0, 255));
                                     });
    }

private:
    shape item_;
    double sigma_;
    std::uint64_t seed_;
    std::vector<double> pattern_;
    std::vector<int> offsets_;
};

}  // namespace nnmark
