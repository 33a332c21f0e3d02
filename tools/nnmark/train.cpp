// nnmark train: train one of the paper's networks on MNIST or CIFAR-10.
#include "cli.hpp"
#include "training_options.hpp"

#include "nnmark/data/load.hpp"
#include "nnmark/model/model_file.hpp"

#include <cstdio>
#include <filesystem>
#include <memory>

namespace nnmark::cli {

command add_train_command(CLI::App& parent) {
    struct options {
        dataset_options data;
        training_options training;
        std::string out;
        bool json = false;
    };
    auto o = std::make_shared<options>();
    CLI::App* app = parent.add_subcommand("train", "Train a classifier (the paper's network for the dataset)");
    o->data.add_to(*app);
    o->training.add_to(*app);
    app->add_option("--out", o->out, "Where to write the trained model (safetensors)")->required();
    app->add_flag("--json", o->json, "Print the result as one JSON object on stdout");

    return {app, [o] {
                const training_data data = load_training_data(o->data);
                auto [model, outcome] = train_network(o->training, o->data, data, o->out);
                save_model(model, o->out, dataset_class_names(o->data.name));
                std::filesystem::remove(o->out + ".checkpoint");  // the model file supersedes it
                nlohmann::json report = describe(outcome, o->training);
                report["model"] = o->out;
                if (o->json) print_json(report);
                else
                    std::printf("test accuracy %.2f%% after %d epochs (%.0f s, %.0f images/s); model written to %s\n",
                                100 * outcome.test_accuracy, o->training.recipe.epochs, outcome.seconds,
                                outcome.images_per_second, o->out.c_str());
                return int(success);
            }};
}

}  // namespace nnmark::cli
