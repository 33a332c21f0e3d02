// The training flags shared by `nnmark train` and (later) `nnmark embed`, and the
// one function both use to train a model with them.
#pragma once

#include "cli.hpp"

#include "nnmark/data/dataset.hpp"
#include "nnmark/model/sequential.hpp"
#include "nnmark/train/recipe.hpp"
#include "nnmark/train/trainer.hpp"

#include <optional>
#include <string>

namespace nnmark::cli {

struct training_options {
    std::string arch;  // empty: the paper's network for the dataset
    training_recipe recipe;
    bool resume = false;
    bool quiet = false;

    // The training flags; --resume too unless the command resumes by itself.
    void add_to(CLI::App& app, bool with_resume_flag = true);
    // The architecture to build for `dataset_name`: a network's name or a JSON file's path.
    std::string architecture_for(const std::string& dataset_name) const;
    // That network, untrained; argument_error when --arch is neither a name nor a file.
    sequential<float> build_network(const std::string& dataset_name) const;
};

// The network `name_or_file` names: one of architecture_names() or an architecture JSON
// file (the format of a model file's nnmark.architecture); argument_error otherwise.
sequential<float> network_named(const std::string& name_or_file);

// --arch beside a command's --model: the network of a weights-only model file (a PyTorch
// state_dict saved with safetensors records none).
void add_model_arch_option(CLI::App& app, std::string& arch);
// The model in `path`, rebuilt from its own metadata when `arch` is empty, else loaded
// into network_named(arch) (a file recording another network is refused).
sequential<float> read_model(const std::string& path, const std::string& arch);

struct training_data {
    dataset train, test;
};
training_data load_training_data(const dataset_options& options);

struct training_outcome {
    std::string architecture;
    std::vector<epoch_summary> epochs;
    double test_accuracy = 0;
    double seconds = 0;
    double images_per_second = 0;
};

// Build the network, train it (resuming from `<out>.checkpoint` with --resume, writing
// that checkpoint after every epoch) and return the model and what happened.
// `extra` mixes another set into every epoch (the watermark's triggers).
std::pair<sequential<float>, training_outcome> train_network(const training_options& options,
                                                             const dataset_options& data_options,
                                                             const training_data& data, const std::string& out,
                                                             std::optional<extra_training_set> extra = std::nullopt);

// The JSON fields every training command prints.
nlohmann::json describe(const training_outcome& outcome, const training_options& options);

// train_network, then the model saved to `out` and its checkpoint removed: the cached
// training steps of reproduce and study. Returns describe()'s fields.
nlohmann::json train_to_file(const training_options& options, const dataset_options& data_options,
                             const training_data& data, const std::string& out);

}  // namespace nnmark::cli
