#include "training_options.hpp"

#include "nnmark/data/load.hpp"
#include "nnmark/core/atomic_file.hpp"
#include "nnmark/model/layer_factory.hpp"
#include "nnmark/model/model_file.hpp"
#include "nnmark/model/paper_models.hpp"
#include "nnmark/train/progress.hpp"

#include <algorithm>
#include <filesystem>

namespace nnmark::cli {

void training_options::add_to(CLI::App& app, bool with_resume_flag) {
    app.add_option("--arch", arch,
                   "Network: paper-mnist, paper-cifar10 (default: the paper's for the dataset), or a JSON file "
                   "in the format of a model file's nnmark.architecture metadata");
    app.add_option("--epochs", recipe.epochs, "Training epochs")->check(CLI::Range(1, 100000))->capture_default_str();
    app.add_option("--batch", recipe.batch, "Minibatch size")->check(CLI::Range(1, 65536))->capture_default_str();
    app.add_option("--optimizer", recipe.optimizer, "sgd (Nesterov momentum 0.9) or adam")
        ->check(CLI::IsMember({"sgd", "adam"}))
        ->capture_default_str();
    app.add_option("--lr", recipe.learning_rate, "Base learning rate")->check(positive_number)->capture_default_str();
    app.add_option("--momentum", recipe.momentum, "SGD momentum")->check(CLI::Range(0.0, 0.999))->capture_default_str();
    app.add_option("--weight-decay", recipe.weight_decay, "L2 weight decay on weights (not biases)")
        ->check(CLI::Range(0.0, 1.0))
        ->capture_default_str();
    app.add_option("--schedule", recipe.schedule, "Learning-rate schedule: constant, step or cosine")
        ->check(CLI::IsMember({"constant", "step", "cosine"}))
        ->capture_default_str();
    app.add_option("--seed", recipe.seed, "Seed of every random choice (initial weights, order, dropout)")
        ->capture_default_str();
    if (with_resume_flag) app.add_flag("--resume", resume, "Continue from <out>.checkpoint if an earlier run left one");
    app.add_flag("--quiet", quiet, "No progress output");
}

std::string training_options::architecture_for(const std::string& dataset_name) const {
    return arch.empty() ? default_architecture(dataset_name) : arch;
}

sequential<float> training_options::build_network(const std::string& dataset_name) const {
    return network_named(architecture_for(dataset_name));
}

void add_model_arch_option(CLI::App& app, std::string& arch) {
    app.add_option("--arch", arch,
                   "Network of weights-only model files (no nnmark.architecture metadata): paper-mnist, "
                   "paper-cifar10, or an architecture JSON file");
}

sequential<float> read_model(const std::string& path, const std::string& arch) {
    return arch.empty() ? load_model<float>(path) : load_model<float>(path, network_named(arch));
}

sequential<float> network_named(const std::string& name) {
    const std::vector<std::string>& names = architecture_names();
    if (std::ranges::find(names, name) != names.end()) return build_architecture<float>(name);
    if (!std::filesystem::is_regular_file(name)) {
        std::string known;
        for (const auto& n : names) known += n + ", ";
        throw argument_error("--arch: expected " + known + "or an architecture JSON file, found '" + name + "'");
    }
    const std::vector<unsigned char> text = read_file(name);
    return build_from_architecture<float>(std::string_view(reinterpret_cast<const char*>(text.data()), text.size()),
                                          name);
}

training_data load_training_data(const dataset_options& options) {
    return {load_dataset(options.name, options.resolved_dir(), true),
            load_dataset(options.name, options.resolved_dir(), false)};
}

std::pair<sequential<float>, training_outcome> train_network(const training_options& options,
                                                             const dataset_options& data_options,
                                                             const training_data& data, const std::string& out,
                                                             std::optional<extra_training_set> extra) {
    sequential<float> model = options.build_network(data_options.name);
    model.initialize(options.recipe.seed);
    trainer<float> t(model, options.recipe);
    if (extra) t.set_extra_set(*extra);
    const std::filesystem::path checkpoint = out + ".checkpoint";
    t.set_checkpoint(checkpoint);
    progress_line progress(stderr, 5.0, options.quiet);
    if (options.resume) {
        if (const int done = t.resume(data.train))
            progress.finish("resuming from " + checkpoint.string() + " after epoch " + std::to_string(done));
    } else if (std::filesystem::exists(checkpoint)) {
        throw argument_error("checkpoint '" + checkpoint.string() +
                             "' exists from an earlier run: pass --resume to continue it, or delete it to start over");
    }
    training_outcome outcome;
    outcome.architecture = options.architecture_for(data_options.name);
    outcome.epochs = t.fit(data.train, &data.test, progress);
    double images = 0;
    for (const auto& e : outcome.epochs) {
        outcome.seconds += e.seconds;
        images += e.images_per_second * e.seconds;
    }
    outcome.images_per_second = images / std::max(1e-9, outcome.seconds);
    outcome.test_accuracy = evaluate(model, data.test).accuracy();
    return {std::move(model), outcome};
}

nlohmann::json train_to_file(const training_options& options, const dataset_options& data_options,
                             const training_data& data, const std::string& out) {
    auto [model, outcome] = train_network(options, data_options, data, out);
    save_model(model, out, dataset_class_names(data_options.name));
    std::filesystem::remove(out + ".checkpoint");
    return describe(outcome, options);
}

nlohmann::json describe(const training_outcome& outcome, const training_options& options) {
    nlohmann::json epochs = nlohmann::json::array();
    for (const auto& e : outcome.epochs) {
        nlohmann::json row = {{"epoch", e.epoch},
                              {"loss", e.clean_loss},
                              {"train_accuracy", e.train_accuracy},
                              {"test_accuracy", e.test_accuracy},
                              {"learning_rate", e.learning_rate},
                              {"seconds", e.seconds},
                              {"images_per_second", e.images_per_second}};
        if (!std::isnan(e.trigger_loss)) row["trigger_loss"] = e.trigger_loss;
        epochs.push_back(row);
    }
    const auto& r = options.recipe;
    return {{"test_accuracy", outcome.test_accuracy},
            {"architecture", outcome.architecture},
            {"epochs", r.epochs},
            {"epochs_run", outcome.epochs.size()},
            {"seconds", outcome.seconds},
            {"images_per_second", outcome.images_per_second},
            {"threads", thread_count()},
            {"recipe",
             {{"optimizer", r.optimizer},
              {"lr", r.learning_rate},
              {"momentum", r.momentum},
              {"weight_decay", r.weight_decay},
              {"schedule", r.schedule},
              {"batch", r.batch},
              {"seed", r.seed}}},
            {"history", epochs}};
}

}  // namespace nnmark::cli
