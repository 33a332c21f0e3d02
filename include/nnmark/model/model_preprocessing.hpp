// model_preprocessing: what a model expects as its input, written into its file so that
// whoever reads the file (PyTorch, ONNX, another nnmark command) feeds it the same.
//
// nnmark's loaders (data/) give every model the stored pixel bytes divided by 255, in
// [0, 1], channels first ([N, C, H, W]), with no mean subtracted and no standard
// deviation divided. A user who guesses otherwise (torchvision's customary
// Normalize((0.1307,), (0.3081,)) for MNIST) loses a fraction of a point of accuracy,
// nearly invisibly. So save_model (model_file.hpp) records the truth in the metadata:
//
//   "nnmark.preprocessing": {"scale": 0.00392156862745098, "mean": [0], "std": [1],
//                            "layout": "NCHW", "class_names": ["0", ..., "9"]}
//
// meaning: the input element of channel c is (pixel * scale - mean[c]) / std[c], with
// pixel the stored byte 0..255, laid out channels first; output k is class_names[k].
//
// Every nnmark command feeds pixel / 255. A file recording another scale, mean or std
// (written by a converter for a network trained on normalised inputs) is honoured when
// it is loaded, by folding the per-channel affine map into the first layer
// (fold_preprocessing): with x = pixel / 255 the expected input is x * g[c] + h[c],
// g[c] = 255 * scale / std[c], h[c] = -mean[c] / std[c], and a dense layer or an
// unpadded convolution computes w . (g x + h) + b = (w g) . x + (b + w . h) exactly, up
// to float rounding. A padded convolution would need its zero border to become h, so
// such a file is refused, as is any layout but NCHW: never a silently wrong input.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/json.hpp"
#include "nnmark/model/sequential.hpp"

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nnmark {

struct model_preprocessing {
    double scale = 1.0 / 255;
    std::vector<double> mean, std;  // one per input channel
    std::string layout = "NCHW";
    std::vector<std::string> class_names;  // one per output; empty: not recorded

    // What nnmark's loaders feed a model of `channels` input channels.
    static model_preprocessing nnmark_input(index_t channels, std::vector<std::string> class_names = {}) {
        model_preprocessing p;
        p.mean.assign(static_cast<std::size_t>(channels), 0.0);
        p.std.assign(static_cast<std::size_t>(channels), 1.0);
        p.class_names = std::move(class_names);
        return p;
    }

    // The per-channel map from nnmark's input x = pixel / 255 to this input: x * gain + offset.
    double gain(std::size_t c) const { return 255 * scale / std[c]; }
    double offset(std::size_t c) const { return -mean[c] / std[c]; }
    // True when the map is the identity, i.e. the model takes nnmark's input as it is.
    bool is_nnmark_input() const {
        for (std::size_t c = 0; c < mean.size(); ++c)
            if (gain(c) != 1.0 || offset(c) != 0.0) return false;
        return true;
    }
};

// The metadata text of `p` (the form shown at the top of this file).
inline std::string preprocessing_json(const model_preprocessing& p) {
    json mean = json::array(), deviation = json::array(), names = json::array();
    for (double m : p.mean) mean.push_back(m);
    for (double s : p.std) deviation.push_back(s);
    for (const std::string& n : p.class_names) names.push_back(n);
    json doc = json::object();
    doc["scale"] = p.scale;
    doc["mean"] = std::move(mean);
    doc["std"] = std::move(deviation);
    doc["layout"] = p.layout;
    if (!p.class_names.empty()) doc["class_names"] = std::move(names);
    return dump_json(doc);
}

namespace detail {

// The per-channel numbers of `list` (mean or std): one per channel, finite, and > 0 if
// `positive`.
inline std::vector<double> channel_values(const json_view& list, index_t channels, bool positive) {
    const std::vector<json_view> items = list.elements();
    if (items.size() != static_cast<std::size_t>(channels))
        list.fail("expected one value per input channel (" + std::to_string(channels) + "), found " +
                  std::to_string(items.size()));
    std::vector<double> values;
    for (const json_view& v : items) {
        const double x = v.as_double();
        if (!std::isfinite(x) || (positive && !(x > 0))) v.fail(positive ? "expected a finite number > 0" : "expected a finite number");
        values.push_back(x);
    }
    return values;
}

}  // namespace detail

// The preprocessing a model file records (`text`, its "nnmark.preprocessing" metadata),
// for a model of `channels` input channels and `classes` outputs; format_error, naming
// `source` and the member, for anything malformed, a layout other than NCHW, or a count
// that does not fit the model.
inline model_preprocessing parse_preprocessing(std::string_view text, std::string_view source, index_t channels,
                                               index_t classes) {
    const json doc = parse_json(text, source);
    const json_view root(doc, std::string(source));
    root.expect_only_keys({"scale", "mean", "std", "layout", "class_names"});
    model_preprocessing p;
    p.scale = root["scale"].as_double();
    if (!std::isfinite(p.scale) || !(p.scale > 0)) root["scale"].fail("expected a finite number > 0");
    p.mean = detail::channel_values(root["mean"], channels, false);
    p.std = detail::channel_values(root["std"], channels, true);
    p.layout = root["layout"].as_string();
    if (p.layout != "NCHW")
        root["layout"].fail("expected \"NCHW\" (nnmark models take channels first), found \"" + p.layout + "\"");
    if (const auto names = root.find("class_names")) {
        for (const json_view& n : names->elements()) p.class_names.push_back(n.as_string());
        if (p.class_names.size() != static_cast<std::size_t>(classes))
            names->fail("expected one name per output of the model (" + std::to_string(classes) + "), found " +
                        std::to_string(p.class_names.size()));
    }
    return p;
}

namespace detail {

// The layer fold_preprocessing changes: the first one, after leading flatten layers, that
// must be dense or an unpadded convolution. format_error naming `source` otherwise.
template <class T>
int folding_layer(const sequential<T>& model, std::string_view source) {
    const auto refuse = [&](const std::string& why) {
        throw format_error(std::string(source) + ": its inputs are normalised (nnmark.preprocessing) and " + why +
                           ", so the normalisation cannot be folded into it; nnmark feeds pixel / 255");
    };
    int first = 0;
    while (first < model.size() && model.at(first).kind() == "flatten") ++first;
    if (first == model.size()) refuse("the model has no layer with weights");
    const layer<T>& l = model.at(first);
    if (l.kind() == "conv2d") {
        for (const auto& [key, value] : l.config())
            if (key == "padding" && std::get<std::string>(value) != "valid") refuse("its first convolution is padded");
    } else if (l.kind() != "dense") {
        refuse("its first layer is a " + l.kind() + ", not a dense or convolution layer");
    }
    return first;
}

}  // namespace detail

// Throws what fold_preprocessing(model, p, source) would throw, changing nothing: a
// caller checks before it fills the model.
template <class T>
void check_foldable(const sequential<T>& model, const model_preprocessing& p, std::string_view source) {
    if (!p.is_nnmark_input()) detail::folding_layer(model, source);
}

// Makes `model` take nnmark's input (pixel / 255) where it was trained on `p`'s, by
// folding p's per-channel affine map into the first layer (see the top of this file).
// Only leading flatten layers may precede that layer: anything else (a ReLU, a pooling
// layer) does not commute with the map. format_error naming `source` otherwise, before
// anything is changed.
template <class T>
void fold_preprocessing(sequential<T>& model, const model_preprocessing& p, std::string_view source) {
    if (p.is_nnmark_input()) return;
    const int first = detail::folding_layer(model, source);
    std::span<T> weight, bias;
    for (auto& param : model.named_parameters()) {
        if (param.layer != first) continue;
        if (param.spec.name == "weight") weight = param.value;
        if (param.spec.name == "bias") bias = param.value;
    }
    // Both layouts (conv [O, C, kh, kw], dense [O, C * H * W] after a flatten of
    // [C, H, W]) keep each output's weights of one input channel contiguous, in
    // channel order: one output row is `channels` runs of `run` weights.
    const std::size_t outputs = bias.size(), channels = p.mean.size();
    const std::size_t run = weight.size() / outputs / channels;
    for (std::size_t o = 0; o < outputs; ++o)
        for (std::size_t c = 0; c < channels; ++c) {
            T* w = weight.data() + (o * channels + c) * run;
            double shift = 0;
            for (std::size_t i = 0; i < run; ++i) {
                shift += static_cast<double>(w[i]) * p.offset(c);
                w[i] = static_cast<T>(w[i] * p.gain(c));
            }
            bias[o] = static_cast<T>(bias[o] + shift);
        }
}

}  // namespace nnmark
