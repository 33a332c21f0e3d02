// transform: input transformations a thief serving a stolen model applies to every query
// before the model sees it, hoping to break the trigger patterns while clean images
// still come through. They leave the model unchanged: the attack is on the queries.
// Zhang et al. (ASIACCS 2018, Sec. 6) name query filtering as a limit of the scheme;
// the transformations are the input-preprocessing defences against backdoors and
// adversarial examples that the Watermark Robustness Toolbox (Lukas et al., IEEE S&P
// 2022) runs as removal attacks:
//
//   jpeg Q    JPEG compression at quality Q in [1, 100] and back (Dziugaite et al. 2016;
//             Das et al. 2017): stb_image_write encodes to memory, stb_image decodes.
//   blur S    Gaussian blur with standard deviation S pixels in [0, 10], separable,
//             kernel radius ceil(3 S), edges replicated (so a constant image stays
//             constant); S = 0 is the identity.
//   noise S   additive Gaussian noise of standard deviation S on the [0, 1] pixel scale
//             (S x 255 grey levels), rounded and clamped; image n draws from
//             rng(seed).derive(n), so the same seed gives the same noise.
//   bits B    bit-depth reduction to B bits in [1, 8] (feature squeezing, Xu et al.,
//             NDSS 2018): x -> round(round(x (2^B - 1) / 255) 255 / (2^B - 1)), 2^B grey
//             levels; B = 8 is the identity, B = 1 leaves 0 and 255.
//
// Every transformation works on uint8 images [N, C, H, W] (C = 1 or 3 for JPEG), one
// plane or image at a time. evaluate_through and verify_through score a model as the
// thief's service would answer: each query transformed, then classified.
// Budget: the strength (Q, S or B); the attacker needs no data.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/rng.hpp"
#include "nnmark/core/stb.hpp"
#include "nnmark/data/dataset.hpp"
#include "nnmark/model/sequential.hpp"
#include "nnmark/train/evaluate.hpp"
#include "nnmark/watermark/key.hpp"
#include "nnmark/watermark/verify.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace nnmark {

enum class transform_kind { jpeg, blur, noise, bits };

struct input_transform {
    transform_kind kind = transform_kind::jpeg;
    double strength = 90;    // quality Q, sigma S (pixels or [0, 1] scale) or bits B
    std::uint64_t seed = 1;  // noise only

    // "jpeg 50", "blur 1", "noise 0.1", "bits 3".
    std::string describe() const {
        constexpr const char* names[] = {"jpeg", "blur", "noise", "bits"};
        std::ostringstream text;
        text << names[static_cast<int>(kind)] << ' ' << strength;
        return text.str();
    }

    // Throws argument_error unless the strength is in the range of the kind.
    void validate() const {
        const bool whole = strength == std::floor(strength);
        const bool ok = kind == transform_kind::jpeg    ? whole && strength >= 1 && strength <= 100
                        : kind == transform_kind::bits  ? whole && strength >= 1 && strength <= 8
                        : kind == transform_kind::blur  ? strength >= 0 && strength <= 10
                                                        : strength >= 0 && strength <= 1;
        if (!ok)
            throw argument_error("input transform '" + describe() +
                                 "': expected jpeg 1..100, blur 0..10, noise 0..1 or bits 1..8 (whole numbers for "
                                 "jpeg and bits)");
    }
};

namespace detail {

inline std::uint8_t to_pixel(double value) { return static_cast<std::uint8_t>(std::clamp(std::round(value), 0.0, 255.0)); }

// JPEG at `quality` and back, for one image of `channels` planes of h x w (1 or 3).
inline void jpeg_round_trip(std::span<std::uint8_t> image, index_t channels, index_t h, index_t w, int quality) {
    if (channels != 1 && channels != 3)
        throw shape_error("jpeg transform: expected 1 or 3 channels, got " + std::to_string(channels));
    const index_t plane = h * w;
    std::vector<unsigned char> interleaved(image.size()), encoded;  // JPEG rows are RGBRGB..., the image planes
    for (index_t c = 0; c < channels; ++c)
        for (index_t p = 0; p < plane; ++p) interleaved[static_cast<std::size_t>(p * channels + c)] = image[static_cast<std::size_t>(c * plane + p)];
    if (stbi_write_jpg_to_func(append_bytes, &encoded, static_cast<int>(w), static_cast<int>(h),
                               static_cast<int>(channels), interleaved.data(), quality) == 0)
        throw io_error("jpeg transform: encoding a " + std::to_string(w) + "x" + std::to_string(h) + " image failed");
    int dw = 0, dh = 0, stored = 0;
    unsigned char* decoded = stbi_load_from_memory(encoded.data(), static_cast<int>(encoded.size()), &dw, &dh, &stored,
                                                   static_cast<int>(channels));
    if (!decoded || dw != w || dh != h) {
        stbi_image_free(decoded);
        throw io_error("jpeg transform: decoding the encoded image failed");
    }
    for (index_t c = 0; c < channels; ++c)
        for (index_t p = 0; p < plane; ++p) image[static_cast<std::size_t>(c * plane + p)] = decoded[p * channels + c];
    stbi_image_free(decoded);
}

// Normalised 1-D Gaussian weights for offsets -radius..radius.
inline std::vector<double> gaussian_kernel(double sigma) {
    const auto radius = static_cast<index_t>(std::ceil(3 * sigma));
    std::vector<double> weights(static_cast<std::size_t>(2 * radius + 1));
    for (index_t k = -radius; k <= radius; ++k)
        weights[static_cast<std::size_t>(k + radius)] = sigma > 0 ? std::exp(-0.5 * (k * k) / (sigma * sigma)) : 1.0;
    double total = 0;
    for (double v : weights) total += v;
    for (double& v : weights) v /= total;
    return weights;
}

// out[i] = sum_k weights[k] x in[clamp(i + k - radius)] along one line of n values,
// `stride` apart: the separable pass along rows (stride 1) or columns (stride w).
inline void convolve_line(const double* in, double* out, index_t n, index_t stride, const std::vector<double>& weights) {
    const auto radius = static_cast<index_t>(weights.size() / 2);
    for (index_t i = 0; i < n; ++i) {
        double sum = 0;
        for (index_t k = -radius; k <= radius; ++k)
            sum += weights[static_cast<std::size_t>(k + radius)] * in[std::clamp<index_t>(i + k, 0, n - 1) * stride];
        out[i * stride] = sum;
    }
}

// Gaussian blur of one h x w plane, rows then columns, edges replicated.
inline void blur_plane(std::span<std::uint8_t> plane, index_t h, index_t w, double sigma) {
    const std::vector<double> weights = gaussian_kernel(sigma);
    std::vector<double> a(plane.begin(), plane.end()), b(plane.size());
    for (index_t y = 0; y < h; ++y) convolve_line(a.data() + y * w, b.data() + y * w, w, 1, weights);
    for (index_t x = 0; x < w; ++x) convolve_line(b.data() + x, a.data() + x, h, w, weights);
    std::ranges::transform(a, plane.begin(), to_pixel);
}

inline void reduce_bits(std::span<std::uint8_t> pixels, int bits) {
    const double levels = std::ldexp(1.0, bits) - 1;
    for (std::uint8_t& p : pixels) p = to_pixel(std::round(p * levels / 255.0) * 255.0 / levels);
}

inline void add_noise(std::span<std::uint8_t> pixels, double stddev, rng& random) {
    for (std::uint8_t& p : pixels) p = to_pixel(p + 255.0 * random.normal(0.0, stddev));
}

}  // namespace detail

// Apply `t` to every image of `images` [N, C, H, W], in place.
inline void apply_transform(const input_transform& t, tensor<std::uint8_t>& images) {
    t.validate();
    const shape& s = images.shape();
    if (s.rank() != 4) throw shape_error("input transform '" + t.describe() + "': expected images [N, C, H, W], got " + s.str());
    const index_t channels = s[1], h = s[2], w = s[3];
    const rng root(t.seed);
    for (index_t n = 0; n < s[0]; ++n) {
        const std::span<std::uint8_t> image = images.item(n);
        switch (t.kind) {
        case transform_kind::jpeg: detail::jpeg_round_trip(image, channels, h, w, static_cast<int>(t.strength)); break;
        case transform_kind::blur:
            for (index_t c = 0; c < channels; ++c)
                detail::blur_plane(image.subspan(static_cast<std::size_t>(c * h * w), static_cast<std::size_t>(h * w)), h,
                                   w, t.strength);
            break;
        case transform_kind::noise: {
            rng random = root.derive(static_cast<std::uint64_t>(n));
            detail::add_noise(image, t.strength, random);
            break;
        }
        case transform_kind::bits: detail::reduce_bits(image, static_cast<int>(t.strength)); break;
        }
    }
}

// A copy of `data` with every image transformed (labels kept).
inline dataset transformed(const dataset& data, const input_transform& t) {
    dataset out = data;
    apply_transform(t, out.images);
    out.name = data.name + "[" + t.describe() + "]";
    return out;
}

// Accuracy of `model` on `data` when every image passes through `t` first.
template <class T>
evaluation evaluate_through(const sequential<T>& model, const dataset& data, const input_transform& t) {
    return evaluate(model, transformed(data, t));
}

// Verification of `model` when every query, trigger or decoy, passes through `t` first:
// as verify_model with decoys, so a copy the transformation breaks is checked as a
// classifier of the task like any suspect.
template <class T>
verification_result verify_through(const sequential<T>& model, const watermark_key& key, const dataset& decoys,
                                   const input_transform& t, double alpha) {
    watermark_key shown = key;
    shown.triggers = transformed(key.triggers, t);
    return verify_answers(key, ask_model(model, shown, transformed(decoys, t)), alpha);
}

}  // namespace nnmark
