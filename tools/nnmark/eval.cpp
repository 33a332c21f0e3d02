// nnmark eval: accuracy of a saved model, or of a prediction service (--url), on a
// dataset's test split. A service is asked every image in order, as a user would; what
// it answers may differ from its model's own labels (DAWN's altered answers, an evading
// thief's filter), which is what --url measures. --predictions writes every image's
// logits (a model file only), for checking nnmark against another framework row by row.
// --precision bf16|int8 evaluates the model in that arithmetic (model/low_precision.hpp),
// int8 calibrated on images of the dataset's training split.
#include "cli.hpp"
#include "precision_options.hpp"
#include "training_options.hpp"
#include "verify_remote.hpp"

#include "nnmark/attacks/attacker_data.hpp"
#include "nnmark/core/atomic_file.hpp"

#include "nnmark/data/load.hpp"
#include "nnmark/model/model_file.hpp"
#include "nnmark/train/evaluate.hpp"

#include <chrono>
#include <cstdio>
#include <memory>

namespace nnmark::cli {

namespace {

struct eval_options {
    dataset_options data;
    std::string model, arch, predictions;
    remote_verify_options service;
    precision_options precision;
    bool train_split = false;
    bool json = false;
};

// The accuracy of the service at o.service.url on `data`, asked every image in order.
evaluation evaluate_service(const eval_options& o, const dataset& data) {
    progress_line progress(stderr, 5.0, o.json);
    const service_replies replies = ask_in_order(o.service, strip_labels(data), data.classes, progress);
    evaluation result;
    result.images = data.size();
    for (std::size_t i = 0; i < replies.labels.size(); ++i) result.correct += replies.labels[i] == data.labels[i];
    return result;
}

// The CSV of `nnmark eval --predictions`: a header, then one row per image in dataset
// order: index, true label, predicted label, and the K logits (9 significant digits:
// a float survives the text round trip exactly).
class predictions_csv {
public:
    explicit predictions_csv(int classes) {
        text_ = "index,label,predicted";
        for (int k = 0; k < classes; ++k) text_ += ",logit_" + std::to_string(k);
        text_ += '\n';
    }
    void add_batch(const dataset& data, index_t first, const tensor<float>& logits) {
        const std::vector<int> predicted = argmax_rows(logits);
        const index_t classes = logits.size() / logits.batch();
        char number[32];
        for (index_t i = 0; i < logits.batch(); ++i) {
            const index_t index = first + i;
            text_ += std::to_string(index) + ',' + std::to_string(data.labels[static_cast<std::size_t>(index)]) + ',' +
                     std::to_string(predicted[static_cast<std::size_t>(i)]);
            for (index_t k = 0; k < classes; ++k) {
                std::snprintf(number, sizeof number, ",%.9g", static_cast<double>(logits[i * classes + k]));
                text_ += number;
            }
            text_ += '\n';
        }
    }
    const std::string& text() const { return text_; }

private:
    std::string text_;
};

evaluation evaluate_file(const eval_options& o, const dataset& data) {
    sequential<float> trained = read_model(o.model, o.arch);
    if (!(data.item_shape() == trained.input_item()))
        throw shape_error("model '" + o.model + "' takes images " + trained.input_item().str() + " but dataset " +
                          data.name + " has images " + data.item_shape().str());
    const sequential<float> model = at_chosen_precision(std::move(trained), o.precision, [&] {
        return load_dataset(o.data.name, o.data.resolved_dir(), true);
    });
    if (o.predictions.empty()) return evaluate(model, data);
    predictions_csv csv(static_cast<int>(model.output_item().count()));
    const evaluation result = evaluate_visiting(model, data, 256, [&](index_t first, const tensor<float>& logits) {
        csv.add_batch(data, first, logits);
    });
    write_file_atomically(o.predictions, csv.text());
    return result;
}

int run_eval(const eval_options& o) {
    const dataset data = load_dataset(o.data.name, o.data.resolved_dir(), o.train_split);
    const auto start = std::chrono::steady_clock::now();
    const evaluation result = o.service.url.empty() ? evaluate_file(o, data) : evaluate_service(o, data);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::string source = o.service.url.empty() ? o.model : o.service.url;
    if (o.json) {
        nlohmann::json out = {{"accuracy", result.accuracy()},
                              {"images", result.images},
                              {"correct", result.correct},
                              {"dataset", data.name},
                              {"seconds", seconds},
                              {"images_per_second", static_cast<double>(result.images) / std::max(1e-9, seconds)}};
        if (o.service.url.empty())
            out.update({{"model", o.model}, {"loss", result.mean_loss}, {"precision", o.precision.name}});
        if (!o.predictions.empty()) out["predictions"] = o.predictions;
        else out["url"] = o.service.url;  // a service gives labels only: no loss
        print_json(out);
    } else {
        std::printf("accuracy %.2f%% (%lld of %lld images of %s) of %s", 100 * result.accuracy(),
                    static_cast<long long>(result.correct), static_cast<long long>(result.images), data.name.c_str(),
                    source.c_str());
        if (o.service.url.empty()) std::printf(", loss %.4f, %s", result.mean_loss, o.precision.name.c_str());
        std::printf("\n");
    }
    return success;
}

}  // namespace

command add_eval_command(CLI::App& parent) {
    auto o = std::make_shared<eval_options>();
    CLI::App* app = parent.add_subcommand("eval", "Measure the accuracy of a model, or of a prediction service, on a dataset");
    CLI::Option* model = app->add_option("--model", o->model, "Model file (safetensors)");
    CLI::Option* url = app->add_option("--url", o->service.url,
                                       "Prediction service instead of a model file: "
                                       "http://HOST:PORT/v1/models/NAME:predict (TensorFlow Serving REST)");
    add_model_arch_option(*app, o->arch);
    app->get_option("--arch")->needs(model);
    app->add_option("--predictions", o->predictions,
                    "Also write every image's label, prediction and logits to this CSV file "
                    "(index,label,predicted,logit_0,...)")
        ->needs(model);
    model->excludes(url);
    url->excludes(model);
    o->data.add_to(*app);
    app->add_flag("--train-split", o->train_split, "Evaluate on the training split instead of the test split");
    o->precision.add_to(*app);
    for (const char* name : {"--precision", "--calibration-images"}) app->get_option(name)->needs(model);
    app->add_flag("--json", o->json, "Print the result as one JSON object on stdout");
    o->service.command = "eval --url";
    add_transport_options(*app, o->service, "--batch");
    for (const char* name : {"--batch", "--rate", "--timeout", "--retries", "--label-field", "--scores", "--layout",
                             "--signature"})
        app->get_option(name)->needs(url);  // a model file is not asked over HTTP
    app->parse_complete_callback([model, url] {
        if (model->count() == 0 && url->count() == 0) throw CLI::RequiredError("--model or --url");
    });
    return {app, [o] { return run_eval(*o); }};
}

}  // namespace nnmark::cli
