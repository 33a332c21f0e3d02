// nnmark attack extract: steal a served model through its prediction API (Tramer et
// al., USENIX Security 2016). The thief draws --queries images from its pool without
// replacement (attacks/extraction_pool.hpp: the attacker's data of --attacker-data,
// plus with --extra-pool a Knockoff pool of another dataset's training images, Orekondy
// et al., CVPR 2019), asks the service of --url for their labels (with --scores, for
// score vectors, learnt as soft targets like distill --soft), trains a fresh network
// on the answers (attacks/distill.hpp train_on_answers) and writes it to --out.
//
// This is the attack DAWN (Szyller et al., ACM MM 2021; serve --dawn-registry) is
// measured against: the owner's server answered a keyed share of these queries wrongly,
// and verify --dawn-registry asks the surrogate the same images.
//
// Reported: the surrogate's accuracy on the evaluation half (the test set's second
// half, as every attack), its agreement with the service's answers on the queries, the
// queries, requests and seconds. The HTTP flags are verify --url's, with --query-batch
// for the images per request, since --batch is the training minibatch as in every
// other attack. Exit 0 on success, 2 on bad input.
#include "attacking.hpp"
#include "training_options.hpp"

#include "nnmark/attacks/distill.hpp"
#include "nnmark/attacks/extraction_pool.hpp"
#include "nnmark/data/load.hpp"
#include "nnmark/model/model_file.hpp"
#include "nnmark/train/evaluate.hpp"

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace nnmark::cli {

namespace extraction {

// The Knockoff part of the pool: the training split of --extra-pool, if one is named.
std::vector<dataset> extra_pool_sets(const attack_options& o) {
    if (o.extra_pool.empty()) return {};
    const dataset_options extra{o.extra_pool, o.extra_data};
    return {load_dataset(extra.name, extra.resolved_dir(), true)};
}

// The surrogate's network: --arch, default the paper's for --dataset.
training_options surrogate_network(const attack_options& o) {
    training_options network;
    network.arch = o.arch;
    return network;
}

// A fresh network of surrogate_network that takes `data`'s images.
sequential<float> fresh_surrogate(const attack_options& o, const dataset& data) {
    const training_options network = surrogate_network(o);
    sequential<float> surrogate = network.build_network(o.data.name);
    if (!(surrogate.input_item() == data.item_shape()) || surrogate.output_item()[0] != data.classes)
        throw shape_error("attack extract: the surrogate " + network.architecture_for(o.data.name) + " takes " +
                          surrogate.input_item().str() + " and answers " + surrogate.output_item().str() +
                          ", dataset " + data.name + " has images " + data.item_shape().str() + " of " +
                          std::to_string(data.classes) + " classes");
    surrogate.initialize(o.extraction.seed);
    return surrogate;
}

// The service's replies as the answers train_on_answers learns from.
victim_answers<float> as_answers(const unlabeled_images& queries, service_replies replies, int classes, bool soft) {
    victim_answers<float> answers;
    answers.labelled = {queries.images, std::move(replies.labels), classes, queries.name + "[labelled by the service]"};
    if (soft) {
        answers.scores.resize(shape{queries.size(), classes});
        std::ranges::copy(replies.scores, answers.scores.span().begin());
    }
    return answers;
}

std::string summary_line(const nlohmann::json& r) {
    char line[512];
    std::snprintf(line, sizeof line,
                  "extract: surrogate accuracy %.2f%% on %lld images; agreement %.2f%% with the service on %lld "
                  "queries of %s (%lld requests, %.1f s)",
                  100 * r["surrogate_accuracy"].get<double>(), r["evaluation_images"].get<long long>(),
                  100 * r["agreement"].get<double>(), r["queries"].get<long long>(),
                  r["pool"].get<std::string>().c_str(), r["requests"].get<long long>(), r["seconds"].get<double>());
    return line;
}

}  // namespace extraction

int run_extract(const attack_options& o) {
    const auto start = std::chrono::steady_clock::now();
    const attack_data data = load_attack_data(o, o.extraction.seed);
    const std::vector<dataset> extras = extraction::extra_pool_sets(o);
    std::vector<const dataset*> extra_views;
    for (const dataset& extra : extras) extra_views.push_back(&extra);
    const unlabeled_images pool = extraction_pool(data.attacker, extra_views);
    const unlabeled_images queries = draw_queries(pool, o.queries, o.extraction.seed);
    sequential<float> surrogate = extraction::fresh_surrogate(o, data.evaluation);  // before any query is paid for

    progress_line progress(stderr, 5.0, o.quiet);
    service_replies replies = ask_in_order(o.service, queries, data.evaluation.classes, progress);
    const long long requests = replies.requests;
    const victim_answers<float> answers =
        extraction::as_answers(queries, std::move(replies), data.evaluation.classes, o.service.scores);
    train_on_answers(surrogate, answers, o.service.scores, o.extraction, progress);
    if (!o.out.empty()) save_model(surrogate, o.out, dataset_class_names(o.data.name));

    nlohmann::json report = {{"attack", "extract"},
                             {"url", o.service.url},
                             {"dataset", o.data.name},
                             {"pool", pool.name},
                             {"pool_images", pool.size()},
                             {"queries", queries.size()},
                             {"requests", requests},
                             {"soft_targets", o.service.scores},
                             {"architecture", extraction::surrogate_network(o).architecture_for(o.data.name)},
                             {"epochs", o.extraction.epochs},
                             {"lr", o.extraction.learning_rate},
                             {"evaluation_data", data.evaluation.name},
                             {"evaluation_images", data.evaluation.size()},
                             {"surrogate_accuracy", evaluate(surrogate, data.evaluation).accuracy()},
                             // The labels of answers.labelled are the service's: this is agreement.
                             {"agreement", evaluate(surrogate, answers.labelled).accuracy()},
                             {"out", o.out.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.out)}};
    report["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (o.json) print_json(report);
    else std::printf("%s\n", extraction::summary_line(report).c_str());
    return success;
}

void add_extract_kind(CLI::App& attack, attack_options& o) {
    CLI::App* app = attack.add_subcommand(
        "extract", "Model extraction through a prediction API: train a surrogate on a service's answers");
    o.service.command = "attack extract --url";
    app->add_option("--url", o.service.url, "Prediction service to steal: http://HOST:PORT/v1/models/NAME:predict")
        ->required();
    app->add_option("--queries", o.queries, "Images to ask the service about, drawn without replacement from the pool")
        ->required()
        ->check(CLI::Range(1LL, 1LL << 40));
    o.data.add_to(*app);
    app->add_option("--extra-pool", o.extra_pool,
                    "Also draw from this dataset's training images (a Knockoff pool, e.g. fashion-mnist)")
        ->check(CLI::IsMember({"mnist", "fashion-mnist", "cifar10"}));
    app->add_option("--extra-data", o.extra_data, "Directory of --extra-pool (default: datasets/<name>/)");
    app->add_option("--arch", o.arch,
                    "Surrogate network: paper-mnist, paper-cifar10 (default: the paper's for the dataset), or an "
                    "architecture JSON file");
    app->add_option("--out", o.out, "Where to write the surrogate (safetensors)");
    add_training_flags(*app, o, o.extraction);
    add_transport_options(*app, o.service, "--query-batch");
    app->get_option("--scores")->description(
        "The label field holds score vectors: learn them as soft targets (nnmark serve: --signature scores "
        "--label-field scores --scores)");
    app->add_flag("--json", o.json, "Print the result as one JSON object on stdout");
    app->add_flag("--quiet", o.quiet, "No progress output");
}

}  // namespace nnmark::cli
