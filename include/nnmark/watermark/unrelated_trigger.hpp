// unrelated_trigger: the paper's "unrelated" watermark (Sec. 4.1, Fig. 8): images of
// another domain, used as they are, only converted to the model's input shape. nnmark
// defaults: Fashion-MNIST "bag" images for MNIST models, MNIST digit 1 for CIFAR-10
// models (trigger_set.hpp).
//
// Contract:
// - Built with the model's item shape [C, H, W]. The pool is the other domain's images,
//   already filtered to the chosen class, items [c, h, w] with c == C or c == 1.
// - Each plane is resized to H x W with resize_bilinear below; a single-channel source
//   is then copied into all C channels (grey stays grey in RGB). Same-shape images come
//   out unchanged, e.g. Fashion-MNIST [1, 28, 28] for an MNIST model.
// - Any other channel count throws shape_error naming both shapes.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/watermark/trigger.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace nnmark {

namespace detail {

// Where output row (or column) `dst` samples the input: between `lo` and `hi` at `frac`.
struct bilinear_tap {
    index_t lo, hi;
    double frac;
};

inline std::vector<bilinear_tap> bilinear_taps(index_t in, index_t out) {
    std::vector<bilinear_tap> taps(static_cast<std::size_t>(out));
    const double step = static_cast<double>(in) / static_cast<double>(out);
    for (index_t d = 0; d < out; ++d) {
        const double source = std::clamp((static_cast<double>(d) + 0.5) * step - 0.5, 0.0, static_cast<double>(in - 1));
        const auto lo = static_cast<index_t>(source);
        taps[static_cast<std::size_t>(d)] = {lo, std::min(lo + 1, in - 1), source - static_cast<double>(lo)};
    }
    return taps;
}

}  // namespace detail

// Resizes one uint8 plane in_h x in_w (row-major) to out_h x out_w by bilinear
// interpolation with half-pixel centres: output pixel d samples the input at
// (d + 0.5) * in / out - 0.5, clamped to the edge pixels. That is the convention of
// PyTorch's interpolate(mode="bilinear", align_corners=False) and OpenCV's INTER_LINEAR,
// so a 28 -> 32 upscale matches what a Python reimplementation would feed its model.
// Results are rounded to the nearest integer. There is no anti-aliasing, so large
// downscales skip pixels; the triggers only ever upscale or keep the size.
inline void resize_bilinear(std::span<const std::uint8_t> in, index_t in_h, index_t in_w, std::span<std::uint8_t> out,
                            index_t out_h, index_t out_w) {
    if (in_h < 1 || in_w < 1 || out_h < 1 || out_w < 1 || static_cast<index_t>(in.size()) != in_h * in_w ||
        static_cast<index_t>(out.size()) != out_h * out_w)
        throw shape_error("resize_bilinear: cannot resize " + std::to_string(in.size()) + " pixels as " +
                          std::to_string(in_h) + "x" + std::to_string(in_w) + " into " + std::to_string(out.size()) +
                          " pixels as " + std::to_string(out_h) + "x" + std::to_string(out_w));
    const std::vector<detail::bilinear_tap> rows = detail::bilinear_taps(in_h, out_h);
    const std::vector<detail::bilinear_tap> cols = detail::bilinear_taps(in_w, out_w);
    auto pixel = [&](index_t r, index_t c) { return static_cast<double>(in[static_cast<std::size_t>(r * in_w + c)]); };
    for (index_t r = 0; r < out_h; ++r) {
        const detail::bilinear_tap& y = rows[static_cast<std::size_t>(r)];
        for (index_t c = 0; c < out_w; ++c) {
            const detail::bilinear_tap& x = cols[static_cast<std::size_t>(c)];
            const double top = pixel(y.lo, x.lo) + x.frac * (pixel(y.lo, x.hi) - pixel(y.lo, x.lo));
            const double bottom = pixel(y.hi, x.lo) + x.frac * (pixel(y.hi, x.hi) - pixel(y.hi, x.lo));
            const double value = top + y.frac * (bottom - top);
            out[static_cast<std::size_t>(r * out_w + c)] =
                static_cast<std::uint8_t>(std::clamp(std::floor(value + 0.5), 0.0, 255.0));
        }
    }
}

class unrelated_trigger final : public trigger_generator {
public:
    // `item`: the model's input item shape [C, H, W].
    explicit unrelated_trigger(const shape& item) : item_(item) {
        if (item.rank() != 3 || item.count() == 0)
            throw shape_error("unrelated trigger: expected a model item shape [C, H, W] with positive extents, got " +
                              item.str());
    }

    std::string kind() const override { return "unrelated"; }

    layer_config parameters() const override {
        return {{"channels", std::int64_t{item_[0]}},
                {"height", std::int64_t{item_[1]}},
                {"width", std::int64_t{item_[2]}},
                {"resize", std::string("bilinear")}};
    }

    const shape& item_shape() const { return item_; }

    dataset make(const dataset& pool, index_t count, rng& random) const override {
        const shape source = pool.item_shape();
        if (source.rank() != 3 || (source[0] != 1 && source[0] != item_[0]))
            throw shape_error("unrelated trigger: cannot turn images " + source.str() + " of '" + pool.name +
                              "' into model inputs " + item_.str() + ": they need 1 or " + std::to_string(item_[0]) +
                              " channels");
        return detail::make_triggers(*this, pool, count, random, item_,
                                     [&](std::span<const std::uint8_t> image, std::span<std::uint8_t> trigger) {
                                         convert(image, source, trigger);
                                     });
    }

private:
    // One image of shape `source` (1 or C channels) into one model input of shape item_.
    void convert(std::span<const std::uint8_t> image, const shape& source, std::span<std::uint8_t> trigger) const {
        const auto in_plane = static_cast<std::size_t>(source[1] * source[2]);
        const auto out_plane = static_cast<std::size_t>(item_[1] * item_[2]);
        for (index_t c = 0; c < item_[0]; ++c) {
            const auto from = static_cast<std::size_t>(source[0] == 1 ? 0 : c);
            resize_bilinear(image.subspan(from * in_plane, in_plane), source[1], source[2],
                            trigger.subspan(static_cast<std::size_t>(c) * out_plane, out_plane), item_[1], item_[2]);
        }
    }

    shape item_;
};

}  // namespace nnmark
