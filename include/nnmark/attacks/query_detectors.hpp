// query_detectors: how a thief serving a stolen model tells the verifier's trigger
// queries from ordinary ones (Hitaj & Mancini 2018, "Have you stolen my model? Evasion
// attacks against deep neural network watermarking techniques"; Namba & Sakuma 2019
// name query modification as the threat to trigger-set schemes). The thief knows the
// scheme (Kerckhoffs) but not the key, so each detector looks for what a kind of
// trigger must carry, never for the key's own values:
//
//   stamp           a text-like constant-intensity region (content triggers): over
//                   every band of stamp_band_rows consecutive rows (a line of text, the
//                   full width, so any corner and position is covered), the largest
//                   number of pixels holding one identical value, all channels equal,
//                   among the values strictly inside (saturation_margin, 255 -
//                   saturation_margin). Antialiased handwriting and photos rarely repeat
//                   one mid-tone value; a stamp repeats its ink value for every stroke.
//   noise-residual  high-frequency energy spread over the whole image (noise triggers):
//                   the median, over all pixels and channels, of |pixel - the median of
//                   its 3x3 neighbourhood| (edges replicated), in grey levels. A fixed
//                   noise pattern leaves a residual at almost every pixel; an image's
//                   own edges, where the residual is large, are a minority of its pixels,
//                   so the median ignores them. The mean squared residual does not: on
//                   MNIST the strokes' edges give plain digits a mean squared residual up
//                   to 1,137, above the 290-500 of digits carrying the noise trigger
//                   (sigma 0.1), and at a 5% false-positive rate it flagged 33 of 100
//                   noise triggers; the median is 0 for every one of 500 plain test
//                   digits and 3-5 for the same digits with the noise (measured).
//   ood             the stolen model's own doubt (unrelated triggers are out of
//                   distribution; Hendrycks & Gimpel 2017): 1 - the maximum softmax
//                   probability.
//
// Each score is higher for a more suspicious image. A detector is fitted on the
// attacker's data (attacks/attacker_data.hpp: images of the task, never the key):
// threshold_at_rate picks the threshold t so that at most a share `rate` of those images
// score above t, and a fitted_detector flags an image whose score is above t. Ties at t
// are never flagged, so the share flagged on the fitting data is at most `rate`, and
// equal to floor(rate N) / N when the scores are distinct.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/data/dataset.hpp"
#include "nnmark/model/sequential.hpp"
#include "nnmark/train/evaluate.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nnmark {

enum class detector_kind { stamp, noise_residual, ood };

inline constexpr std::array<detector_kind, 3> all_detector_kinds{detector_kind::stamp, detector_kind::noise_residual,
                                                                 detector_kind::ood};

// "stamp", "noise-residual", "ood".
inline std::string to_string(detector_kind kind) {
    constexpr const char* names[] = {"stamp", "noise-residual", "ood"};
    return names[static_cast<int>(kind)];
}

inline detector_kind parse_detector_kind(std::string_view name) {
    for (detector_kind kind : all_detector_kinds)
        if (name == to_string(kind)) return kind;
    throw argument_error("query detector: expected stamp, noise-residual or ood, got '" + std::string(name) + "'");
}

// Rows of a text line: the paper's 7-row font with a row of slack either side.
inline constexpr index_t stamp_band_rows = 9;
// Values this close to 0 or 255 are background or saturated ink, not a stamp: MNIST
// strokes saturate at 252-254, and excluding only 0 and 255 lets a digit's band hold up
// to 108 pixels of 253 (measured on the first test half), more than a stamp's 53-55.
inline constexpr int saturation_margin = 15;

namespace detail {

// The pixel's value when all channels agree on one value that is not near an extreme;
// -1 otherwise. `image` is [C, H, W] flattened, `plane` = H x W.
inline int stamp_candidate(std::span<const std::uint8_t> image, index_t channels, index_t plane, index_t pixel) {
    const int value = image[static_cast<std::size_t>(pixel)];
    for (index_t c = 1; c < channels; ++c)
        if (image[static_cast<std::size_t>(c * plane + pixel)] != value) return -1;
    return value > saturation_margin && value < 255 - saturation_margin ? value : -1;
}

inline void expect_item(const shape& item, const char* what) {
    if (item.rank() != 3 || item.count() == 0)
        throw shape_error(std::string("query detector ") + what + ": expected image items [C, H, W], got " + item.str());
}

}  // namespace detail

// The stamp score of one image [C, H, W]: the largest count of one candidate value in a
// band of stamp_band_rows rows (the whole image when it is shorter). The histogram
// slides down the image, one row in and one row out.
inline double stamp_score(std::span<const std::uint8_t> image, const shape& item) {
    detail::expect_item(item, "stamp");
    const index_t channels = item[0], h = item[1], w = item[2], band = std::min(h, stamp_band_rows);
    std::array<int, 256> counts{};
    int best = 0;
    const auto add_row = [&](index_t y, int step) {
        for (index_t x = 0; x < w; ++x) {
            const int v = detail::stamp_candidate(image, channels, h * w, y * w + x);
            if (v >= 0) counts[static_cast<std::size_t>(v)] += step;
        }
    };
    for (index_t y = 0; y < h; ++y) {
        add_row(y, 1);
        if (y >= band) add_row(y - band, -1);
        if (y + 1 >= band) best = std::max(best, *std::max_element(counts.begin(), counts.end()));
    }
    return best;
}

// The noise-residual score of one image [C, H, W]: the median over pixels and channels
// (the upper one of an even count) of |pixel - median of its 3x3 neighbourhood|,
// neighbours outside the image replaced by the nearest edge pixel.
inline double noise_residual_score(std::span<const std::uint8_t> image, const shape& item) {
    detail::expect_item(item, "noise-residual");
    const index_t channels = item[0], h = item[1], w = item[2];
    std::vector<int> residuals;
    residuals.reserve(static_cast<std::size_t>(item.count()));
    std::array<std::uint8_t, 9> window{};
    for (index_t c = 0; c < channels; ++c) {
        const std::uint8_t* plane = image.data() + c * h * w;
        for (index_t y = 0; y < h; ++y)
            for (index_t x = 0; x < w; ++x) {
                std::size_t k = 0;
                for (index_t dy = -1; dy <= 1; ++dy)
                    for (index_t dx = -1; dx <= 1; ++dx)
                        window[k++] = plane[std::clamp<index_t>(y + dy, 0, h - 1) * w +
                                            std::clamp<index_t>(x + dx, 0, w - 1)];
                std::nth_element(window.begin(), window.begin() + 4, window.end());
                residuals.push_back(std::abs(int{plane[y * w + x]} - int{window[4]}));
            }
    }
    const auto middle = residuals.begin() + static_cast<std::ptrdiff_t>(residuals.size() / 2);
    std::nth_element(residuals.begin(), middle, residuals.end());
    return *middle;
}

// 1 - the maximum softmax probability of one row of logits, computed as r / (1 + r)
// with r = the sum over the other classes of exp(z_k - z_max), in double: a confident
// model's 1 - p underflows to 0 in float, and ties at 0 blind the threshold.
template <class T>
double ood_score(std::span<const T> logits) {
    const auto top = std::ranges::max_element(logits);
    double rest = 0;
    for (auto k = logits.begin(); k != logits.end(); ++k)
        if (k != top) rest += std::exp(static_cast<double>(*k) - static_cast<double>(*top));
    return rest / (1.0 + rest);
}

// The ood score of `model` for every image of `images`.
template <class T>
std::vector<double> ood_scores(const sequential<T>& model, const dataset& images) {
    std::vector<double> scores;
    scores.reserve(static_cast<std::size_t>(images.size()));
    for_each_batch_logits(model, images, 256, [&](index_t, const tensor<T>& logits) {
        for (index_t row = 0; row < logits.shape()[0]; ++row) scores.push_back(ood_score(logits.item(row)));
    });
    return scores;
}

// The score of `kind` for one image [C, H, W] of bytes, which the stolen model scored
// `logits` (only ood reads them).
template <class T>
double detector_score(detector_kind kind, std::span<const std::uint8_t> image, const shape& item,
                      std::span<const T> logits) {
    switch (kind) {
        case detector_kind::stamp: return stamp_score(image, item);
        case detector_kind::noise_residual: return noise_residual_score(image, item);
        case detector_kind::ood: return ood_score(logits);
    }
    throw argument_error("query detector: unknown detector kind");
}

// The score of `kind` for every image of `images`; `model` is the stolen model (only
// ood asks it).
template <class T>
std::vector<double> detector_scores(detector_kind kind, const sequential<T>& model, const dataset& images) {
    if (kind == detector_kind::ood) return ood_scores(model, images);
    const auto score = kind == detector_kind::stamp ? stamp_score : noise_residual_score;
    std::vector<double> scores;
    scores.reserve(static_cast<std::size_t>(images.size()));
    for (index_t n = 0; n < images.size(); ++n) scores.push_back(score(images.images.item(n), images.item_shape()));
    return scores;
}

// The threshold above which at most a share `rate` of `scores` lies: the
// (floor(rate N) + 1)-th largest score. rate 0 gives the largest score (nothing above).
inline double threshold_at_rate(std::vector<double> scores, double rate) {
    if (!(rate >= 0.0 && rate < 1.0))
        throw argument_error("query detector: the false-positive rate must be in [0, 1), got " + std::to_string(rate));
    if (scores.empty()) throw argument_error("query detector: no images to fit the threshold on");
    const auto allowed = static_cast<std::size_t>(std::floor(rate * static_cast<double>(scores.size())));
    const auto at = scores.begin() + static_cast<std::ptrdiff_t>(allowed);
    std::nth_element(scores.begin(), at, scores.end(), std::greater<>());
    return *at;
}

// A detector and its threshold: an image is flagged when its score is above it.
struct fitted_detector {
    detector_kind kind = detector_kind::stamp;
    double threshold = 0;

    bool flags(double score) const { return score > threshold; }

    // Which images of `images` the detector flags, in order.
    template <class T>
    std::vector<bool> flag(const sequential<T>& model, const dataset& images) const {
        std::vector<bool> flagged;
        flagged.reserve(static_cast<std::size_t>(images.size()));
        for (double score : detector_scores(kind, model, images)) flagged.push_back(flags(score));
        return flagged;
    }
};

// `kind` fitted on the attacker's images so that a share `rate` of them is flagged at most.
template <class T>
fitted_detector fit_detector(detector_kind kind, const sequential<T>& model, const dataset& fitting, double rate) {
    return {kind, threshold_at_rate(detector_scores(kind, model, fitting), rate)};
}

}  // namespace nnmark
