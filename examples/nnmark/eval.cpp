// nnmark eval: accuracy of a saved model on a dataset's test split.
#include "cli.hpp"

#include "nnmark/data/load.hpp"
#include "nnmark/model/model_file.hpp"
#include "nnmark/train/evaluate.hpp"

#include <chrono>
#include <cstdio>
#include <memory>

namespace nnmark::cli {

command add_eval_command(CLI::App& parent) {
    struct options {
        dataset_options data;
        std::string model;
        bool train_split = false;
        bool json = false;
    };
    auto o = std::make_shared<options>();
    CLI::App* app = parent.add_subcommand("eval", "Measure a model's accuracy on a dataset");
    app->add_option("--model", o->model, "Model file (safetensors)")->required();
    o->data.add_to(*app);
    app->add_flag("--train-split", o->train_split, "Evaluate on the training split instead of the test split");
    app->add_flag("--json", o->json, "Print the result as one JSON object on stdout");

    return {app, [o] {
                const sequential<float> model = load_model<float>(o->model);
                const dataset data = load_dataset(o->data.name, o->data.resolved_dir(), o->train_split);
                if (!(data.item_shape() == model.input_item()))
                    throw shape_error("model '" + o->model + "' takes images " + model.input_item().str() +
                                      " but dataset " + data.name + " has images " + data.item_shape().str());
                const auto start = std::chrono::steady_clock::now();
                const evaluation result = evaluate(model, data);
                const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
                if (o->json)
                    print_json({{"accuracy", result.accuracy()},
                                {"images", result.images},
                                {"correct", result.correct},
                                {"loss", result.mean_loss},
                                {"dataset", data.name},
                                {"model", o->model},
                                {"seconds", seconds},
                                {"images_per_second", static_cast<double>(result.images) / std::max(1e-9, seconds)}});
                else
                    std::printf("accuracy %.2f%% (%lld of %lld images of %s), loss %.4f\n", 100 * result.accuracy(),
                                static_cast<long long>(result.correct), static_cast<long long>(result.images),
                                data.name.c_str(), result.mean_loss);
                return int(success);
            }};
}

}  // namespace nnmark::cli
