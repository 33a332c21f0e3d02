// nnmark embed: train a model with a watermark (Zhang et al., ASIACCS 2018, Algorithm 1)
// and write the key that proves it later.
#include "embedding.hpp"

#include "nnmark/core/atomic_file.hpp"
#include "nnmark/data/load.hpp"
#include "nnmark/model/model_file.hpp"
#include "nnmark/watermark/embed.hpp"
#include "nnmark/watermark/embed_schedule.hpp"
#include "nnmark/watermark/key.hpp"

#include <cstdio>
#include <memory>
#include <optional>

namespace nnmark::cli {

void watermark_options::add_common_to(CLI::App& app) {
    app.add_option("--count", count, "Trigger images in the key")->check(CLI::Range(1, 10000))->capture_default_str();
    app.add_option("--repeat", repeat, "Times each trigger is seen per epoch")->check(CLI::Range(1, 1000))->capture_default_str();
    app.add_option("--unrelated-data", unrelated_data, "Directory of the unrelated dataset (default: datasets/<name>/)");
    app.add_option("--extraction-share", extraction_share,
                   "With --survive-extraction: share of the region's class inside the region (the accuracy it costs "
                   "is about this over K)")
        ->check(CLI::Range(0.001, 0.5))
        ->capture_default_str();
}

void watermark_options::add_to(CLI::App& app) {
    // Read as names, kept as enums: the names are the key file's (watermark/trigger_kind.hpp).
    std::vector<std::string> kinds;
    for (trigger_kind kind : all_trigger_kinds) kinds.emplace_back(to_string(kind));
    app.add_option_function<std::string>(
           "--trigger", [this](const std::string& name) { trigger = parse_trigger_kind(name, "--trigger"); },
           "Trigger kind: content (text stamp), unrelated (other domain), noise, natural (held-out training images "
           "with secret labels; needs --labels random)")
        ->check(CLI::IsMember(kinds))
        ->default_str(std::string(to_string(trigger)));
    app.add_option_function<std::string>(
           "--labels", [this](const std::string& name) { labels = parse_trigger_labeling(name, "--labels"); },
           "target: one target label (the paper); random: a secret label per trigger")
        ->check(CLI::IsMember({"target", "random"}))
        ->default_str(std::string(to_string(labels)));
    app.add_option("--target", target, "Target class (default: drawn from the key seed)")->check(CLI::Range(0, 9));
    app.add_option("--source", source, "Source class of the trigger images, of the unrelated dataset for unrelated "
                                       "triggers (default: drawn from the key seed)")
        ->check(CLI::Range(0, 9));
    app.add_option("--text", text, "Content triggers: the text stamped (capital letters, digits, space, %()+,-./:=_)")->capture_default_str();
    app.add_option("--text-corner", corner, "Content triggers: the stamp's corner (default: drawn from the key seed)")
        ->check(CLI::IsMember({"bottom-left", "bottom-right", "top-left", "top-right"}));
    app.add_flag("--paper-choices", paper_choices,
                 "The paper's public choices where none are given: source 1 -> target 0 (unrelated: bags of "
                 "Fashion-MNIST), stamp bottom-left; models of other owners who keep them can be accused");
    add_common_to(app);
    app.add_option("--key-seed", key_seed,
                   "Seed of the trigger images, labels, noise and secret choices; keep it secret (default: drawn "
                   "at random and printed, to pass again with --resume)");
    app.add_option("--wm-schedule", schedule, "Trigger loss weight per epoch: constant, warmup or step")
        ->check(CLI::IsMember({"constant", "warmup", "step"}))
        ->capture_default_str();
    app.add_option("--wm-weight", weight, "Trigger loss weight lambda")->check(CLI::Range(0.0, 100.0))->capture_default_str();
    CLI::Option* survive = app.add_flag(
        "--survive-extraction", survive_extraction,
        "Also give a secret region of the task's own images a secret label, which a copy trained on the model's "
        "answers inherits; its key goes to --extraction-key-out");
    app.get_option("--extraction-share")->needs(survive);
    survive->needs(app.add_option("--extraction-key-out", extraction_key_out,
                                  "Where to write the key of the extraction region (with --survive-extraction)")
                       ->needs(survive));
}

trigger_recipe watermark_options::recipe_for(const std::string& dataset_name, std::uint64_t seed,
                                             const shape& item) const {
    trigger_recipe recipe = default_recipe(dataset_name, trigger);
    recipe.count = count;
    recipe.label_mode = labels;
    recipe.seed = seed;
    recipe.content.text = text;
    trigger_choices given;
    if (source >= 0) given.source = source;
    if (target >= 0) given.target = target;
    if (!corner.empty()) given.corner = parse_text_corner(corner);
    if (paper_choices) {
        given.source = given.source.value_or(recipe.source);
        given.target = given.target.value_or(recipe.target);
        given.corner = given.corner.value_or(text_corner::bottom_left);
    }
    return draw_secret_choices(recipe, given, item);
}

// The owner's key seed, or a fresh secret one. A resumed run must make the same triggers
// as the run it continues, so it needs that run's seed: a fresh one would be refused by
// the checkpoint ("another triggers") after the time spent loading.
static std::uint64_t key_seed_for(const watermark_options& watermark, const training_options& training) {
    if (watermark.key_seed) return *watermark.key_seed;
    if (training.resume)
        throw argument_error("embed --resume: pass --key-seed, the seed the interrupted run printed (without it a "
                             "new secret seed is drawn, and the triggers would not be the run's)");
    const std::uint64_t seed = draw_secret_seed();
    if (!training.quiet)
        std::fprintf(stderr, "key seed %llu drawn at random (secret: it makes the key; pass --key-seed %llu with "
                             "--resume to continue this run if it is interrupted)\n",
                     static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
    return seed;
}

embedded_model embed_to_files(const watermark_options& watermark, const training_options& training,
                              const dataset_options& data_options, const training_data& data, const std::string& out,
                              const std::string& key_out) {
    const trigger_recipe recipe = watermark.recipe_for(data_options.name, key_seed_for(watermark, training),
                                                       data.train.item_shape());
    const std::filesystem::path unrelated_dir = watermark.unrelated_data.empty()
                                                    ? std::filesystem::path("datasets") / recipe.source_dataset
                                                    : std::filesystem::path(watermark.unrelated_data);
    const trigger_pools pools = load_trigger_pools(recipe, data.train, data.test, unrelated_dir);

    // 1. The key, and the clean data training sees (watermark/embed.hpp).
    std::vector<std::filesystem::path> files = dataset_files(data_options.name, data_options.resolved_dir(), true);
    for (const auto& f : pools.files) files.push_back(f);
    embedding_options options{watermark.repeat, watermark.schedule, watermark.weight, std::nullopt};
    if (watermark.survive_extraction) options.extraction_share = watermark.extraction_share;
    const embedding_setup setup = prepare_embedding(recipe, options, data.train, pools, data_options.name, files);

    // 2. Train from scratch with the triggers mixed into every epoch; 3. how well it took.
    // Copied only when embedding changes the training data.
    const std::optional<training_data> changed =
        setup.changed_train ? std::optional(training_data{*setup.changed_train, data.test}) : std::nullopt;
    auto [model, outcome] = train_network(training, data_options, changed ? *changed : data, out,
                                          embedding_triggers(setup, options, training.recipe.epochs));
    embedding_quality quality = measure_embedding(model, setup, pools, data.test);

    // The model and its key appear together, only after training succeeded: a key
    // without its model (or an old key beside a new model) would be evidence of nothing.
    staged_files written;
    save_model(model, written.stage(out), dataset_class_names(data_options.name));
    save_key(setup.key, written.stage(key_out));
    if (quality.extraction_key) save_key(*quality.extraction_key, written.stage(watermark.extraction_key_out));
    written.commit();
    std::filesystem::remove(out + ".checkpoint");
    if (!training.quiet)
        std::fprintf(stderr, "model written to %s, key to %s\ncommitment (publish it before deploying): %s\n",
                     out.c_str(), key_out.c_str(), setup.key.commitment().c_str());
    return {std::move(model), setup.key, std::move(outcome), std::move(quality)};
}

namespace {

struct embed_options {
    dataset_options data;
    training_options training;
    watermark_options watermark;
    std::string out, key_out;
    bool json = false;
};

int run_embed(const embed_options& o) {
    trigger_recipe kind_and_labels = default_recipe(o.data.name, o.watermark.trigger);
    kind_and_labels.label_mode = o.watermark.labels;
    kind_and_labels.validate();  // e.g. natural triggers with target labels, before any slow work
    const training_data data = load_training_data(o.data);
    const embedded_model e = embed_to_files(o.watermark, o.training, o.data, data, o.out, o.key_out);
    const std::string commitment = e.key.commitment();
    nlohmann::json report = describe(e.outcome, o.training);
    report["trigger"] = to_string(o.watermark.trigger);
    report["labels"] = to_string(o.watermark.labels);
    const std::int64_t source = e.key.recipe.at("source").get<std::int64_t>(), target = e.key.recipe.at("target").get<std::int64_t>();
    report["source"] = source;  // every_class (-1) for natural triggers
    const bool target_labels = o.watermark.labels == trigger_labeling::target;
    if (target_labels) report["target"] = target;
    report["trigger_accuracy"] = e.quality.trigger_accuracy;
    report["trigger_accuracy_new"] = e.quality.trigger_accuracy_new;
    report["new_triggers"] = e.quality.new_triggers;
    report["commitment"] = commitment;
    report["model"] = o.out;
    report["key"] = o.key_out;
    if (e.quality.extraction_key) {
        const json& region = e.key.recipe.at("survive_extraction");
        report["extraction_key"] = o.watermark.extraction_key_out;
        report["extraction_commitment"] = e.quality.extraction_key->commitment();
        report["extraction_triggers"] = e.quality.extraction_key->triggers.size();
        report["extraction_trigger_accuracy"] = e.quality.extraction_trigger_accuracy;
        report["extraction_source"] = region.at("source");
        report["extraction_label"] = region.at("label");
    }
    if (o.json) print_json(report);
    else
        std::printf("test accuracy %.2f%%, trigger accuracy %.2f%% on the key, %.2f%% on %lld new triggers\n"
                    "triggers made from %s%s (keep the key secret: the choices are part of it)\n"
                    "model: %s\nkey: %s\ncommitment: %s\n",
                    100 * e.outcome.test_accuracy, 100 * e.quality.trigger_accuracy, 100 * e.quality.trigger_accuracy_new,
                    static_cast<long long>(e.quality.new_triggers),
                    source == every_class ? "training images of every class"
                                          : ("class " + std::to_string(source)).c_str(),
                    target_labels ? (", labelled " + std::to_string(target)).c_str() : "",
                    o.out.c_str(), o.key_out.c_str(), commitment.c_str());
    return success;
}

}  // namespace

command add_embed_command(CLI::App& parent) {
    auto o = std::make_shared<embed_options>();
    CLI::App* app = parent.add_subcommand("embed", "Train a model with a watermark and write its key");
    o->data.add_to(*app);
    o->training.add_to(*app);
    o->watermark.add_to(*app);
    app->add_option("--out", o->out, "Where to write the watermarked model")->required();
    app->add_option("--key-out", o->key_out, "Where to write the watermark key")->required();
    app->add_flag("--json", o->json, "Print the result as one JSON object on stdout");
    return {app, [o] { return run_embed(*o); }};
}

}  // namespace nnmark::cli
