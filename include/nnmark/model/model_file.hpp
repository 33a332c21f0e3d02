// model_file: save a sequential model to a safetensors file and load it back.
//
// A model file is a safetensors file (model/safetensors.hpp) holding
// - every parameter under its sequential name ("0.weight", "1.running_mean"), in
//   PyTorch's layout, as F32 for float models and F64 for double models;
// - metadata {"format": "pt", "nnmark.architecture": <architecture JSON, see
//   model/layer_factory.hpp>, "nnmark.preprocessing": <what the input is, see
//   model/model_preprocessing.hpp>, "nnmark.version": "1"}.
// "format": "pt" and the names make the file a PyTorch state_dict for
// safetensors.torch.load_file(), and a state_dict saved with
// safetensors.torch.save_file() loads with load_weights().
//
// Loading checks the file against the model completely before changing anything:
// every parameter must be present with exactly its shape (else a shape_error or
// format_error naming the file, the tensor and both shapes), and the file may hold no
// other tensors, except PyTorch's "<i>.num_batches_tracked" (I64) next to a batch norm
// layer's running statistics, which nnmark does not use; every value must be finite
// (a NaN or infinity is a format_error naming the tensor). F32, F64, F16 and BF16 files
// all load into float and double models (converted to the compute type: a half-precision
// export of PyTorch reads as it is). A file recording normalised inputs is folded into
// the model's first layer on loading, so that every command can feed it pixel / 255.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/model/layer_factory.hpp"
#include "nnmark/model/model_preprocessing.hpp"
#include "nnmark/model/safetensors.hpp"
#include "nnmark/model/sequential.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace nnmark {

inline constexpr std::string_view model_file_version = "1";

// `class_names` names the outputs in the file (the dataset's, data/load.hpp); empty:
// none recorded.
template <class T>
void save_model(const sequential<T>& model, const std::filesystem::path& path,
                std::vector<std::string> class_names = {}) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "save_model: T must be float or double");
    if (!class_names.empty() && class_names.size() != static_cast<std::size_t>(model.output_item().count()))
        throw argument_error("save_model: " + std::to_string(class_names.size()) + " class names for a model of " +
                             std::to_string(model.output_item().count()) + " outputs");
    safetensors_writer writer;
    for (const auto& p : model.named_parameters()) writer.add_tensor<T>(p.name, dims_of(p.spec.shape), p.value);
    writer.set_metadata("format", "pt");
    writer.set_metadata("nnmark.architecture", architecture_json(model));
    writer.set_metadata("nnmark.preprocessing",
                        preprocessing_json(model_preprocessing::nnmark_input(model.input_item()[0], std::move(class_names))));
    writer.set_metadata("nnmark.version", std::string(model_file_version));
    writer.write(path);
}

namespace detail {

// "model file X" or, when X records another architecture than the model's,
// "model file X was saved for another architecture (layer 3: {...}, this model: {...})":
// a shape mismatch then reads as what it most likely is, a file for another network.
// Only the first difference is named: whole architectures are too long for one line.
template <class T>
std::string describe_model_file(const safetensors_file& file, const sequential<T>& model) {
    std::string what = "model file " + file.source();
    const std::string* saved = file.find_metadata("nnmark.architecture");
    if (!saved || *saved == architecture_json(model)) return what;
    what += " was saved for another architecture";
    try {
        const architecture_plan<T> plan = parse_architecture<T>(*saved, file.source());
        if (!(plan.input == model.input_item()))
            return what + " (input " + plan.input.str() + ", this model: " + model.input_item().str() + ")";
        const auto cut = [](const std::string& text) { return text.size() > 80 ? text.substr(0, 77) + "..." : text; };
        for (std::size_t i = 0; i < plan.layers.size() && i < static_cast<std::size_t>(model.size()); ++i) {
            const std::string mine = dump_json(layer_json(model.at(static_cast<int>(i))));
            const std::string theirs = dump_json(layer_json(*plan.layers[i]));
            if (mine != theirs)
                return what + " (layer " + std::to_string(i) + ": " + cut(theirs) + ", this model: " + cut(mine) + ")";
        }
        return what + " (" + std::to_string(plan.layers.size()) + " layers, this model: " + std::to_string(model.size()) + ")";
    } catch (const error&) {
        return what;
    }
}

// PyTorch's batch norm counter, stored beside running statistics nnmark does keep.
inline bool is_ignored_pytorch_tensor(const safetensors_entry& e, const std::vector<std::pair<std::string, shape>>& params) {
    constexpr std::string_view suffix = ".num_batches_tracked";
    const std::string& n = e.name;
    if (e.dtype != "I64" || n.size() <= suffix.size() || n.compare(n.size() - suffix.size(), suffix.size(), suffix) != 0)
        return false;
    const std::string running_mean = n.substr(0, n.size() - suffix.size()) + ".running_mean";
    for (const auto& p : params)
        if (p.first == running_mean) return true;
    return false;
}

// The index of the first element of a floating-point tensor that is NaN or infinite, or -1.
inline std::int64_t first_non_finite(const safetensors_entry& e) {
    const std::vector<double> values = e.values<double>();
    const auto bad = std::find_if(values.begin(), values.end(), [](double v) { return !std::isfinite(v); });
    return bad == values.end() ? -1 : bad - values.begin();
}

inline bool is_parameter_dtype(std::string_view dtype) {
    return dtype == "F32" || dtype == "F64" || dtype == "F16" || dtype == "BF16";
}

// Checks every tensor of `file` against `params` (name and shape of each parameter):
// present, F32, F64, F16 or BF16, exactly that shape, finite; and no other tensors. `what`
// names the file in messages. Nothing is allocated for the model before this passes.
inline void check_parameters(const safetensors_file& file, const std::vector<std::pair<std::string, shape>>& params,
                             const std::string& what) {
    for (const auto& [name, expected] : params) {
        const safetensors_entry* e = file.find(name);
        if (!e) throw format_error(what + ": tensor " + name + " (shape " + expected.str() + ") is missing");
        if (!is_parameter_dtype(e->dtype))
            throw format_error(what + ": tensor " + name + " has dtype " + e->dtype + ", expected F32, F64, F16 or BF16");
        if (e->dims != dims_of(expected))
            throw shape_error(what + ": tensor " + name + " has shape " + dims_str(e->dims) + ", this model expects " +
                              expected.str());
    }
    for (const safetensors_entry& e : file.entries()) {
        const bool known = std::any_of(params.begin(), params.end(), [&](const auto& p) { return p.first == e.name; });
        if (!known && !is_ignored_pytorch_tensor(e, params))
            throw format_error(what + ": tensor " + e.name + " (" + e.dtype + ", shape " + dims_str(e.dims) +
                               ") matches no parameter of this model");
    }
    // A NaN or infinite weight makes every answer of the model meaningless (and NaN
    // logits compare false with everything): such a file is damaged, not a model.
    for (const auto& p : params) {
        const safetensors_entry& e = *file.find(p.first);
        const std::int64_t bad = first_non_finite(e);
        if (bad >= 0)
            throw format_error(what + ": tensor " + e.name + " holds a non-finite value (NaN or infinity) at element " +
                               std::to_string(bad));
    }
}

template <class T>
std::vector<std::pair<std::string, shape>> parameter_shapes(const sequential<T>& model) {
    std::vector<std::pair<std::string, shape>> out;
    for (const auto& p : model.named_parameters()) out.emplace_back(p.name, p.spec.shape);
    return out;
}

// Copies every parameter of `model` from `file`, which check_parameters() accepted, and
// folds the input normalisation the file records, if any, into the first layer.
template <class T>
void copy_parameters(const safetensors_file& file, sequential<T>& model, const std::string& what) {
    const std::string* text = file.find_metadata("nnmark.preprocessing");
    const model_preprocessing preprocessing =
        text ? parse_preprocessing(*text, what + ": metadata nnmark.preprocessing", model.input_item()[0],
                                   model.output_item().count())
             : model_preprocessing::nnmark_input(model.input_item()[0]);
    check_foldable(model, preprocessing, what);  // load_weights leaves the model unchanged on failure
    for (const auto& p : model.named_parameters()) file.find(p.name)->copy_to(p.value);
    fold_preprocessing(model, preprocessing, what);
}

inline void check_version(const safetensors_file& file) {
    const std::string* version = file.find_metadata("nnmark.version");
    if (version && *version != model_file_version)
        throw format_error("model file " + file.source() + " has nnmark.version \"" + *version +
                           "\"; this build reads version " + std::string(model_file_version));
}

}  // namespace detail

// Rebuild the model a file was saved from (architecture and parameters). The
// architecture's parameter shapes are compared with the file's tensors before the model
// is allocated: a small file whose metadata claims a huge layer fails at once.
template <class T>
sequential<T> load_model(const std::filesystem::path& path) {
    const safetensors_file file = safetensors_file::load(path);
    detail::check_version(file);
    const std::string* architecture = file.find_metadata("nnmark.architecture");
    if (!architecture)
        throw format_error("model file " + file.source() +
                           " has no \"nnmark.architecture\" metadata (a weights-only file), so the network cannot be "
                           "rebuilt from it; name the network (nnmark: --arch; C++: load_model(path, network))");
    const std::string source = file.source() + ": metadata nnmark.architecture";
    architecture_plan<T> plan = parse_architecture<T>(*architecture, source);
    const std::string what = "model file " + file.source();
    detail::check_parameters(file, plan.parameters(), what);
    sequential<T> model = build_model(std::move(plan), source);
    detail::copy_parameters(file, model, what);
    return model;
}

// The model of `path` in `network`, an architecture the caller built (nnmark's --arch):
// for weights-only files, such as a PyTorch state_dict saved with safetensors, that
// record no architecture. A file that does record one must record this one: a file
// saved for another network is refused, even where the parameter shapes happen to agree.
template <class T>
sequential<T> load_model(const std::filesystem::path& path, sequential<T> network) {
    const safetensors_file file = safetensors_file::load(path);
    detail::check_version(file);
    const std::string what = detail::describe_model_file(file, network);
    const std::string* architecture = file.find_metadata("nnmark.architecture");
    if (architecture && *architecture != architecture_json(network)) throw format_error(what);
    detail::check_parameters(file, detail::parameter_shapes(network), what);
    detail::copy_parameters(file, network, what);
    return network;
}

// Fill the parameters of an existing model from a file, e.g. a PyTorch state_dict
// saved with safetensors; the model is left unchanged if the file does not fit it.
template <class T>
void load_weights(sequential<T>& model, const std::filesystem::path& path) {
    const safetensors_file file = safetensors_file::load(path);
    const std::string what = detail::describe_model_file(file, model);
    detail::check_parameters(file, detail::parameter_shapes(model), what);
    detail::copy_parameters(file, model, what);
}

}  // namespace nnmark
