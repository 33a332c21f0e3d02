// nnmark embed: train a model with a watermark (Zhang et al., ASIACCS 2018, Algorithm 1)
// and write the key that proves it later.
#include "cli.hpp"
#include "training_options.hpp"

#include "nnmark/data/load.hpp"
#include "nnmark/model/model_file.hpp"
#include "nnmark/watermark/embed.hpp"
#include "nnmark/watermark/embed_schedule.hpp"
#include "nnmark/watermark/key.hpp"

#include <cstdio>
#include <memory>

namespace nnmark::cli {

namespace {

struct embed_options {
    dataset_options data;
    training_options training;
    std::string trigger = "content";
    std::string labels = "target";
    int target = -1;  // -1: the dataset's default
    int source = -1;
    index_t count = 100;
    index_t repeat = 10;
    std::uint64_t key_seed = 0;  // 0: the training seed
    std::string schedule = "constant";
    double weight = 1.0;
    std::string unrelated_data;  // empty: datasets/<source dataset>/
    std::string out, key_out;
    bool json = false;
};

trigger_recipe make_recipe(const embed_options& o) {
    trigger_recipe recipe = default_recipe(o.data.name, o.trigger);
    if (o.source >= 0) recipe.source = o.source;
    if (o.target >= 0) recipe.target = o.target;
    recipe.count = o.count;
    recipe.label_mode = o.labels;
    recipe.seed = o.key_seed ? o.key_seed : o.training.recipe.seed;
    recipe.validate();
    return recipe;
}

int run_embed(const embed_options& o) {
    const trigger_recipe recipe = make_recipe(o);
    const training_data data = load_training_data(o.data);
    const std::filesystem::path unrelated_dir =
        o.unrelated_data.empty() ? std::filesystem::path("datasets") / recipe.source_dataset
                                 : std::filesystem::path(o.unrelated_data);
    const trigger_pools pools = load_trigger_pools(recipe, data.train, data.test, unrelated_dir);
    const shape item = data.train.item_shape();

    // 1. The key comes first: the owner can publish its commitment before deploying.
    std::vector<std::filesystem::path> files = dataset_files(o.data.name, o.data.resolved_dir(), true);
    for (const auto& f : pools.files) files.push_back(f);
    watermark_key key;
    key.triggers = make_trigger_set(recipe, pools.key_pool, item);
    key.recipe = recipe_json(recipe, o.data.name, item, files);
    key.recipe.set("repeat", o.repeat);
    key.recipe.set("wm_schedule", o.schedule);
    key.recipe.set("wm_weight", o.weight);
    save_key(key, o.key_out);
    const std::string commitment = key.commitment();
    std::fprintf(stderr, "key written to %s\ncommitment (publish it before deploying): %s\n", o.key_out.c_str(),
                 commitment.c_str());

    // 2. Train from scratch on the clean data with the triggers mixed into every epoch.
    const embed_schedule lambda = parse_embed_schedule(o.schedule, o.weight, o.training.recipe.epochs);
    extra_training_set extra{&key.triggers, o.repeat, [lambda](int epoch) { return lambda.at(epoch); }};
    auto [model, outcome] = train_network(o.training, o.data, data, o.out, extra);
    save_model(model, o.out);
    std::filesystem::remove(o.out + ".checkpoint");

    // 3. How well it took: the key's triggers, and new ones made the same way from test images.
    const index_t fresh_count = std::min<index_t>(pools.fresh_pool.size() - recipe.count, 1000);
    const dataset fresh = make_fresh_triggers(recipe, pools.fresh_pool, item, std::max<index_t>(fresh_count, 1));
    const double on_key = trigger_accuracy(model, key.triggers);
    const double on_fresh = trigger_accuracy(model, fresh);

    nlohmann::json report = describe(outcome, o.training);
    report["trigger"] = recipe.kind;
    report["labels"] = recipe.label_mode;
    report["trigger_accuracy"] = on_key;
    report["trigger_accuracy_new"] = on_fresh;
    report["new_triggers"] = fresh.size();
    report["commitment"] = commitment;
    report["model"] = o.out;
    report["key"] = o.key_out;
    if (o.json) print_json(report);
    else
        std::printf("test accuracy %.2f%%, trigger accuracy %.2f%% on the key, %.2f%% on %lld new triggers\n"
                    "model: %s\nkey: %s\ncommitment: %s\n",
                    100 * outcome.test_accuracy, 100 * on_key, 100 * on_fresh, static_cast<long long>(fresh.size()),
                    o.out.c_str(), o.key_out.c_str(), commitment.c_str());
    return success;
}

}  // namespace

command add_embed_command(CLI::App& parent) {
    auto o = std::make_shared<embed_options>();
    CLI::App* app = parent.add_subcommand("embed", "Train a model with a watermark and write its key");
    o->data.add_to(*app);
    o->training.add_to(*app);
    app->add_option("--trigger", o->trigger, "Trigger kind: content (\"TEST\" stamp), unrelated (other domain), noise")
        ->check(CLI::IsMember({"content", "unrelated", "noise"}))
        ->capture_default_str();
    app->add_option("--labels", o->labels, "target: one target label (the paper); random: a secret label per trigger")
        ->check(CLI::IsMember({"target", "random"}))
        ->capture_default_str();
    app->add_option("--target", o->target, "Target class (default: 0)")->check(CLI::Range(0, 9));
    app->add_option("--source", o->source, "Source class of the trigger images (default: 1; unrelated: 8 of Fashion-MNIST)")
        ->check(CLI::Range(0, 9));
    app->add_option("--count", o->count, "Trigger images in the key")->check(CLI::Range(1, 10000))->capture_default_str();
    app->add_option("--repeat", o->repeat, "Times each trigger is seen per epoch")->check(CLI::Range(1, 1000))->capture_default_str();
    app->add_option("--key-seed", o->key_seed, "Seed of the trigger images, labels and noise (default: --seed)");
    app->add_option("--wm-schedule", o->schedule, "Trigger loss weight per epoch: constant, warmup or step")
        ->check(CLI::IsMember({"constant", "warmup", "step"}))
        ->capture_default_str();
    app->add_option("--wm-weight", o->weight, "Trigger loss weight lambda")->check(CLI::Range(0.0, 100.0))->capture_default_str();
    app->add_option("--unrelated-data", o->unrelated_data, "Directory of the unrelated dataset (default: datasets/<name>/)");
    app->add_option("--out", o->out, "Where to write the watermarked model")->required();
    app->add_option("--key-out", o->key_out, "Where to write the watermark key")->required();
    app->add_flag("--json", o->json, "Print the result as one JSON object on stdout");
    return {app, [o] { return run_embed(*o); }};
}

}  // namespace nnmark::cli
