// low_precision: a trained float model made over for inference in bf16 or int8.
//
// at_precision(model, p, calibration) returns a new sequential<float> with the same
// layers, except that every dense layer and every conv2d with a window of 32 values or
// more is a lowp_linear (layers/lowp_linear.hpp) of that precision; the other layers (relu, maxpool2d,
// flatten, dropout, batchnorm, residual blocks whole) keep their float code and
// parameters. The result is a model like any other for inference (predict, infer,
// evaluate, verify, serve), not for training or saving: its lower-precision layers
// have no parameters to save and throw in backward.
//
// int8 needs each replaced layer's input range: post-training calibration (Jacob et
// al. 2018, section 3; Krishnamoorthi 2018, section 3.1) runs the float model over
// `calibration` (a few hundred to a thousand of the owner's own training images: data
// the owner holds and an attacker has not touched) and takes the smallest and largest
// value each of those layers received. The whole observed range rather than a
// percentile: inputs here are pixels and ReLU outputs, whose largest values are the
// informative ones (a confident logit's evidence), and clipping them is the error that
// flips a prediction; with 256 codes over [0, max] the rounding step stays below 0.4% of
// the range. A value beyond the range at inference saturates to the end code.
// bf16 needs no calibration (values are rounded one by one); fp32 returns a plain copy.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/precision.hpp"
#include "nnmark/layers/lowp_linear.hpp"
#include "nnmark/model/layer_factory.hpp"
#include "nnmark/model/sequential.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace nnmark {

// The smallest and largest value one layer's input took.
struct value_range {
    float lo = std::numeric_limits<float>::infinity();
    float hi = -std::numeric_limits<float>::infinity();
};

namespace detail {

// Whether layer l, taking items `input`, runs in lower precision: every dense layer, and
// every conv2d but one whose window holds fewer than 32 values (a first layer on one or
// three channels: 9 or 27). Its products are too short for the dot instructions to pay
// for encoding the image, with its channels padded to the group, and the first layer
// is the one low-bit networks keep in float anyway (Zhou et al., DoReFa-Net, 2016), as
// its input is the only one a quantization step is large against.
inline bool runs_in_low_precision(const layer<float>& l, const shape& input) {
    if (l.kind() == "dense") return true;
    if (l.kind() != "conv2d") return false;
    for (const auto& [name, value] : l.config())
        if (name == "kernel") {
            const auto k = static_cast<index_t>(std::get<std::int64_t>(value));
            return input[0] * k * k >= 32;
        }
    return false;
}

}  // namespace detail

// The range of every layer's input over `images` (a batch of the model's input items),
// run in the float model `batch` images at a time.
inline std::vector<value_range> observe_input_ranges(const sequential<float>& model, const tensor<float>& images,
                                                     index_t batch = 256) {
    model.expect_batch(images);
    std::vector<value_range> ranges(static_cast<std::size_t>(model.size()));
    workspace<float> scratch;
    tensor<float> current, next;
    for (index_t first = 0; first < images.batch(); first += batch) {
        const index_t count = std::min(batch, images.batch() - first);
        current.resize(images.shape().drop_front().prepend(count));
        std::copy_n(images.item(first).data(), static_cast<std::size_t>(current.size()), current.data());
        for (int i = 0; i < model.size(); ++i) {
            auto& range = ranges[static_cast<std::size_t>(i)];
            const auto [lo, hi] = std::minmax_element(current.data(), current.data() + current.size());
            range.lo = std::min(range.lo, *lo);
            range.hi = std::max(range.hi, *hi);
            model.at(i).infer(current, next, scratch);
            std::swap(current, next);
        }
    }
    return ranges;
}

// `model` in precision `p` (see above); `calibration` is used by int8 only, which
// refuses an empty one.
inline sequential<float> at_precision(const sequential<float>& model, precision p, const tensor<float>& calibration) {
    if (p == precision::int8 && calibration.size() == 0)
        throw argument_error("int8 inference: expected calibration images, got none");
    const std::vector<value_range> ranges =
        p == precision::int8 ? observe_input_ranges(model, calibration) : std::vector<value_range>{};
    std::map<std::string, std::span<const float>> values;
    for (const auto& parameter : model.named_parameters()) values[parameter.name] = parameter.value;
    const auto param = [&](int layer, const char* name) { return values.at(std::to_string(layer) + "." + name); };

    sequential<float> out(model.input_item());
    for (int i = 0; i < model.size(); ++i) {
        const layer<float>& l = model.at(i);
        const shape input = out.output_item();
        if (p == precision::fp32 || !detail::runs_in_low_precision(l, input)) {
            out.add(make_layer<float>(l.kind(), l.config()));
            continue;
        }
        lowp_geometry geometry;
        if (l.kind() == "conv2d") {
            const layer_config config = l.config();
            const auto integer = [&](const char* key) {
                for (const auto& [name, value] : config)
                    if (name == key) return static_cast<index_t>(std::get<std::int64_t>(value));
                throw error("at_precision: conv2d without \"" + std::string(key) + "\"");
            };
            geometry = {true, integer("kernel"), integer("stride")};
        }
        // The float layer's output shape, from a copy configured for this input.
        const shape output = make_layer<float>(l.kind(), l.config())->configure(input);
        if (p == precision::int8) {
            const value_range r = ranges[static_cast<std::size_t>(i)];
            out.add(std::make_unique<lowp_linear<int8_dot>>(l.kind(), l.config(), geometry, input, output,
                                                              param(i, "weight"), param(i, "bias"),
                                                              affine_u8::of_range(r.lo, r.hi)));
        } else {
            out.add(std::make_unique<lowp_linear<bf16_dot>>(l.kind(), l.config(), geometry, input, output,
                                                              param(i, "weight"), param(i, "bias"), bf16_code{}));
        }
    }
    // The float layers' parameters, by name: a lower-precision layer has none, so the
    // others keep their names ("<layer>.<name>").
    for (auto& parameter : out.named_parameters()) {
        const auto from = values.at(parameter.name);
        std::copy(from.begin(), from.end(), parameter.value.begin());
    }
    return out;
}

}  // namespace nnmark
