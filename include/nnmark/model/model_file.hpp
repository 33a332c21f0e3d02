// model_file: save a sequential model to a safetensors file and load it back.
//
// A model file is a safetensors file (model/safetensors.hpp) holding
// - every parameter under its sequential name ("0.weight", "1.running_mean"), in
//   PyTorch's layout, as F32 for float models and F64 for double models;
// - metadata {"format": "pt", "nnmark.architecture": <architecture JSON, see
//   model/layer_factory.hpp>, "nnmark.version": "1"}.
// "format": "pt" and the names make the file a PyTorch state_dict for
// safetensors.torch.load_file(), and a state_dict saved with
// safetensors.torch.save_file() loads with load_weights().
//
// Loading checks the file against the model completely before changing anything:
// every parameter must be present with exactly its shape (else a shape_error or
// format_error naming the file, the tensor and both shapes), and the file may hold no
// other tensors, except PyTorch's "<i>.num_batches_tracked" (I64) next to a batch norm
// layer's running statistics, which nnmark does not use; every value must be finite
// (a NaN or infinity is a format_error naming the tensor). F32 and F64 convert into each
// other, so a double model loads a float file and vice versa.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/model/layer_factory.hpp"
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

template <class T>
void save_model(const sequential<T>& model, const std::filesystem::path& path) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "save_model: T must be float or double");
    safetensors_writer writer;
    for (const auto& p : model.named_parameters()) writer.add_tensor<T>(p.name, dims_of(p.spec.shape), p.value);
    writer.set_metadata("format", "pt");
    writer.set_metadata("nnmark.architecture", architecture_json(model));
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
            const std::string mine = layer_json(model.at(static_cast<int>(i))).dump();
            const std::string theirs = layer_json(*plan.layers[i]).dump();
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

// The index of the first element of an F32 or F64 tensor that is NaN or infinite, or -1.
template <class Stored>
std::int64_t first_non_finite(const safetensors_entry& e) {
    for (std::int64_t i = 0; i < e.count(); ++i) {
        Stored v;
        std::memcpy(&v, e.bytes.data() + static_cast<std::size_t>(i) * sizeof(Stored), sizeof(Stored));
        if (!std::isfinite(v)) return i;
    }
    return -1;
}

// Checks every tensor of `file` against `params` (name and shape of each parameter):
// present, F32 or F64, exactly that shape, finite; and no other tensors. `what` names the
// file in messages. Nothing is allocated for the model before this passes.
inline void check_parameters(const safetensors_file& file, const std::vector<std::pair<std::string, shape>>& params,
                             const std::string& what) {
    for (const auto& [name, expected] : params) {
        const safetensors_entry* e = file.find(name);
        if (!e) throw format_error(what + ": tensor " + name + " (shape " + expected.str() + ") is missing");
        if (e->dtype != "F32" && e->dtype != "F64")
            throw format_error(what + ": tensor " + name + " has dtype " + e->dtype + ", expected F32 or F64");
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
        const std::int64_t bad = e.dtype == "F32" ? first_non_finite<float>(e) : first_non_finite<double>(e);
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

// Copies every parameter of `model` from `file`, which check_parameters() accepted.
template <class T>
void copy_parameters(const safetensors_file& file, sequential<T>& model) {
    for (const auto& p : model.named_parameters()) file.find(p.name)->copy_to(p.value);
}

}  // namespace detail

// Rebuild the model a file was saved from (architecture and parameters). The
// architecture's parameter shapes are compared with the file's tensors before the model
// is allocated: a small file whose metadata claims a huge layer fails at once.
template <class T>
sequential<T> load_model(const std::filesystem::path& path) {
    const safetensors_file file = safetensors_file::load(path);
    const std::string* version = file.find_metadata("nnmark.version");
    if (version && *version != model_file_version)
        throw format_error("model file " + file.source() + " has nnmark.version \"" + *version +
                           "\"; this build reads version " + std::string(model_file_version));
    const std::string* architecture = file.find_metadata("nnmark.architecture");
    if (!architecture)
        throw format_error("model file " + file.source() +
                           " has no \"nnmark.architecture\" metadata, so the network cannot be rebuilt from it; "
                           "build the model in code and use load_weights()");
    const std::string source = file.source() + ": metadata nnmark.architecture";
    architecture_plan<T> plan = parse_architecture<T>(*architecture, source);
    detail::check_parameters(file, plan.parameters(), "model file " + file.source());
    sequential<T> model = build_model(std::move(plan), source);
    detail::copy_parameters(file, model);
    return model;
}

// Fill the parameters of an existing model from a file, e.g. a PyTorch state_dict
// saved with safetensors; the model is left unchanged if the file does not fit it.
template <class T>
void load_weights(sequential<T>& model, const std::filesystem::path& path) {
    const safetensors_file file = safetensors_file::load(path);
    detail::check_parameters(file, detail::parameter_shapes(model), detail::describe_model_file(file, model));
    detail::copy_parameters(file, model);
}

}  // namespace nnmark
