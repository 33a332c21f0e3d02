// checkpoint: what training needs to continue after an interruption, in one
// safetensors file written atomically after every epoch.
//
// Tensors: every model parameter under its model-file name ("0.weight") and every
// optimizer state buffer as "optimizer.<name>" ("optimizer.momentum"). Metadata
// "nnmark.checkpoint": {"epochs_done", "optimizer_steps", "recipe": {...}}.
// Loading refuses a checkpoint whose recipe differs from the run being resumed (a
// resumed run must be the same run), or whose tensors do not fit the model.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/json.hpp"
#include "nnmark/model/safetensors.hpp"
#include "nnmark/model/sequential.hpp"
#include "nnmark/optim/optimizer.hpp"
#include "nnmark/train/recipe.hpp"

#include <filesystem>
#include <string>

namespace nnmark {

namespace detail {

inline json recipe_json(const training_recipe& r) {
    json j = json::object();
    j["epochs"] = r.epochs;
    j["batch"] = r.batch;
    j["optimizer"] = r.optimizer;
    j["learning_rate"] = r.learning_rate;
    j["momentum"] = r.momentum;
    j["nesterov"] = r.nesterov;
    j["weight_decay"] = r.weight_decay;
    j["schedule"] = r.schedule;
    j["seed"] = std::to_string(r.seed);  // a string: JSON numbers stop being exact at 2^53
    return j;
}

// `buffer` <- the checkpoint's tensor `name`, which must have exactly its size.
template <class T>
void restore_tensor(const safetensors_file& file, const std::string& name, std::span<T> buffer) {
    const safetensors_entry* entry = file.find(name);
    if (!entry) throw format_error(file.source() + ": checkpoint has no tensor '" + name + "'");
    if (entry->count() != static_cast<std::int64_t>(buffer.size()))
        throw shape_error(file.source() + ": checkpoint tensor '" + name + "' has " + std::to_string(entry->count()) +
                          " elements, this run needs " + std::to_string(buffer.size()));
    entry->copy_to(buffer);
}

// Throws argument_error naming the first field of `expected` that `saved` (the
// checkpoint's "recipe" or "run") lacks or holds with another value.
inline void expect_same_fields(const std::filesystem::path& path, const json* saved, const json& expected) {
    const auto* fields = expected.get_ptr<const json::object_t*>();
    if (!fields || fields->empty()) return;
    if (!saved)
        throw argument_error(path.string() + ": the checkpoint does not record its data, architecture and triggers "
                                             "(an older nnmark wrote it), so it cannot be resumed safely; delete it to "
                                             "start over");
    for (const auto& [name, value] : *fields) {
        const auto before = saved->find(name);  // end() also when `saved` is not an object
        const bool recorded = before != saved->end();
        if (!recorded || *before != value)
            throw argument_error(path.string() + ": the checkpoint was made with another " + name + " (" +
                                 (recorded ? dump_json(*before) : "none") + ", this run: " + dump_json(value) +
                                 "); resume the same run with the same flags, or delete the checkpoint");
    }
}

}  // namespace detail

template <class T>
void save_checkpoint(const std::filesystem::path& path, sequential<T>& model, optimizer<T>& opt,
                     const training_recipe& recipe, int epochs_done, const json& run = json::object()) {
    safetensors_writer writer;
    for (const auto& p : model.named_parameters())
        writer.add_tensor<T>(p.name, dims_of(p.spec.shape), std::span<const T>(p.value));
    for (const auto& [name, buffer] : opt.state())
        writer.add_tensor<T>("optimizer." + name, {static_cast<std::int64_t>(buffer.size())}, std::span<const T>(buffer));
    json info = json::object();
    info["epochs_done"] = epochs_done;
    info["optimizer_steps"] = opt.step_count();
    info["recipe"] = detail::recipe_json(recipe);
    info["run"] = run;
    writer.set_metadata("nnmark.checkpoint", dump_json(info));
    writer.write(path);
}

// Restores model parameters and optimizer state; returns the epochs already done.
// `run` is compared with the checkpoint's "run" (see the top of this file).
template <class T>
int load_checkpoint(const std::filesystem::path& path, sequential<T>& model, optimizer<T>& opt,
                    const training_recipe& recipe, const json& run = json::object()) {
    const safetensors_file file = safetensors_file::load(path);
    const std::string* text = file.find_metadata("nnmark.checkpoint");
    if (!text) throw format_error(path.string() + ": not an nnmark checkpoint (no \"nnmark.checkpoint\" metadata)");
    const json info = parse_json(*text, path.string() + ": nnmark.checkpoint");
    const json_view view(info, path.string() + ": nnmark.checkpoint");
    detail::expect_same_fields(path, &view["recipe"].value(), detail::recipe_json(recipe));
    const std::optional<json_view> saved_run = view.find("run");
    detail::expect_same_fields(path, saved_run ? &saved_run->value() : nullptr, run);
    for (const auto& p : model.named_parameters()) detail::restore_tensor(file, p.name, p.value);
    opt.allocate_state(model.parameters().size());
    for (const auto& [name, buffer] : opt.state()) detail::restore_tensor(file, "optimizer." + name, buffer);
    opt.set_step_count(view["optimizer_steps"].as_int_at_least(0));
    const auto epochs_done = view["epochs_done"].as_int_at_least(0);
    if (epochs_done > recipe.epochs)
        throw format_error(path.string() + ": checkpoint after epoch " + std::to_string(epochs_done) + " of a " +
                           std::to_string(recipe.epochs) + "-epoch run");
    return static_cast<int>(epochs_done);
}

}  // namespace nnmark
