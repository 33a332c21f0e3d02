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
// layer's running statistics, which nnmark does not use. F32 and F64 convert into each
// other, so a double model loads a float file and vice versa.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/model/layer_factory.hpp"
#include "nnmark/model/safetensors.hpp"
#include "nnmark/model/sequential.hpp"

#include <algorithm>
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
// "model file X was saved for architecture {...}": a shape mismatch then reads as
// what it most likely is, a file for another network.
template <class T>
std::string describe_model_file(const safetensors_file& file, const sequential<T>& model) {
    std::string what = "model file " + file.source();
    const std::string* saved = file.find_metadata("nnmark.architecture");
    if (saved && *saved != architecture_json(model)) what += " was saved for architecture " + *saved;
    return what;
}

// PyTorch's batch norm counter, stored beside running statistics nnmark does keep.
template <class T>
bool is_ignored_pytorch_tensor(const safetensors_entry& e, const std::vector<named_parameter<T>>& params) {
    constexpr std::string_view suffix = ".num_batches_tracked";
    const std::string& n = e.name;
    if (e.dtype != "I64" || n.size() <= suffix.size() || n.compare(n.size() - suffix.size(), suffix.size(), suffix) != 0)
        return false;
    const std::string running_mean = n.substr(0, n.size() - suffix.size()) + ".running_mean";
    for (const auto& p : params)
        if (p.name == running_mean) return true;
    return false;
}

// Check every tensor of `file` against the parameters of `model`, then copy them in.
template <class T>
void copy_parameters(const safetensors_file& file, sequential<T>& model) {
    const std::vector<named_parameter<T>> params = model.named_parameters();
    for (const auto& p : params) {
        const safetensors_entry* e = file.find(p.name);
        if (!e)
            throw format_error(describe_model_file(file, model) + ": tensor " + p.name + " (shape " + p.spec.shape.str() +
                               ") is missing");
        if (e->dtype != "F32" && e->dtype != "F64")
            throw format_error(describe_model_file(file, model) + ": tensor " + p.name + " has dtype " + e->dtype +
                               ", expected F32 or F64");
        if (e->dims != dims_of(p.spec.shape))
            throw shape_error(describe_model_file(file, model) + ": tensor " + p.name + " has shape " + dims_str(e->dims) +
                              ", this model expects " + p.spec.shape.str());
    }
    for (const safetensors_entry& e : file.entries()) {
        const bool known = std::any_of(params.begin(), params.end(), [&](const auto& p) { return p.name == e.name; });
        if (!known && !is_ignored_pytorch_tensor(e, params))
            throw format_error(describe_model_file(file, model) + ": tensor " + e.name + " (" + e.dtype + ", shape " +
                               dims_str(e.dims) + ") matches no parameter of this model");
    }
    for (const auto& p : params) file.find(p.name)->copy_to(p.value);
}

}  // namespace detail

// Rebuild the model a file was saved from (architecture and parameters).
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
    sequential<T> model = build_from_architecture<T>(*architecture, file.source() + ": metadata nnmark.architecture");
    detail::copy_parameters(file, model);
    return model;
}

// Fill the parameters of an existing model from a file, e.g. a PyTorch state_dict
// saved with safetensors; the model is left unchanged if the file does not fit it.
template <class T>
void load_weights(sequential<T>& model, const std::filesystem::path& path) {
    detail::copy_parameters(safetensors_file::load(path), model);
}

}  // namespace nnmark
