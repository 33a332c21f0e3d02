// nnmark study: the false-accusation study. How often does verify accuse a model that
// never saw the key, and how much power does an honest null cost?
//
// Every key of the study (3 trigger kinds x 2 label modes, each with its own key seed,
// from which it draws its source class, target and stamp corner as `embed` does:
// secret_choices.hpp) is verified, as `verify --model` does (triggers plus 1,000 test images as decoys),
// against every innocent model:
// - R independently trained clean models (seeds s+1..s+R; recipes alternate between
//   the base SGD recipe, Adam and SGD with batch 64, so the population is not one recipe);
// - the watermarked models of the OTHER keys;
// - degenerate models: one answering each class for everything, uniform random answers,
//   NaN outputs;
// - a model of another task (Fashion-MNIST) given MNIST triggers;
// - two clean models after each removal attack (pruning, fine-tuning, fine-pruning,
//   distillation).
// Target-label keys are calibrated leave-one-out: on the clean models other than the
// one the innocent model derives from, so no suspect is part of its own calibration.
// Power beside it: each watermarked model and its pruned, fine-tuned and fine-pruned
// copies against its own key, calibrated on all R clean models.
//
// Models are trained once and cached under <out>/models (steps.hpp), so an interrupted
// study resumes; the verification itself is cheap and redone on every run. Writes
// <out>/study.md, <out>/study.json and <out>/figures/innocent-p-values.svg.
#include "attacking.hpp"
#include "embedding.hpp"
#include "steps.hpp"
#include "training_options.hpp"

#include "nnmark/attacks/attacker_data.hpp"
#include "nnmark/core/rng.hpp"
#include "nnmark/core/sha256.hpp"
#include "nnmark/data/load.hpp"
#include "nnmark/model/model_file.hpp"
#include "nnmark/report/line_chart.hpp"
#include "nnmark/serve/query_plan.hpp"
#include "nnmark/watermark/false_accusation.hpp"
#include "nnmark/watermark/verify.hpp"

#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <sstream>

namespace nnmark::cli {

namespace study_detail {

namespace fs = std::filesystem;
using namespace steps;

struct study_options {
    dataset_options data;                       // the task of every key
    std::string other_task = "fashion-mnist";   // the dataset of the other task's model
    std::string other_data;                     // its directory (empty: datasets/<other_task>/)
    std::string unrelated_data;                 // the unrelated triggers' dataset (empty: datasets/<its name>/)
    training_options training;                  // the base recipe (3 epochs by default)
    index_t count = 100, repeat = 10;           // triggers per key, repetitions while embedding
    int clean_models = 12;
    int attack_epochs = 1;
    index_t decoys = 1000;
    std::string out = "study";
    double alpha = 1e-6;
    bool json = false;
};

const std::vector<std::string> kinds = {"content", "unrelated", "noise"};
const std::vector<std::string> label_modes = {"target", "random"};

// The removal attacks applied to innocent clean models and to each watermarked model.
struct removal {
    std::string id, kind;
    std::function<void(attack_options&)> configure;
};

std::vector<removal> removals(bool with_distillation) {
    std::vector<removal> r = {
        {"prune", "prune", [](attack_options& a) { a.rate = 0.5, a.scope = "global"; }},
        {"ftal", "finetune", [](attack_options& a) { a.mode = "ftal"; }},
        {"fineprune", "fineprune", [](attack_options& a) { a.rate = 0.5; }}};
    if (with_distillation) r.push_back({"distill", "distill", [](attack_options&) {}});
    return r;
}

constexpr int attacked_clean_models = 2;

nlohmann::json settings_of(const study_options& o) {
    const training_recipe& r = o.training.recipe;
    return {{"dataset", o.data.name},         {"other_task", o.other_task},   {"epochs", r.epochs},
            {"batch", r.batch},               {"lr", r.learning_rate},        {"seed", r.seed},
            {"trigger_count", o.count},       {"trigger_repeat", o.repeat},   {"clean_models", o.clean_models},
            {"attack_epochs", o.attack_epochs}, {"decoys", o.decoys},         {"alpha", o.alpha}};
}

// Clean model i's recipe: the base one, Adam, or SGD with smaller batches, in turn.
training_recipe innocent_recipe(training_recipe base, int i) {
    base.seed += static_cast<std::uint64_t>(i);
    if (i % 3 == 1) base.optimizer = "adam", base.learning_rate = 1e-3;
    if (i % 3 == 2) base.batch = 64;
    return base;
}

class study {
public:
    explicit study(const study_options& o)
        : o_(o), dir_(o.out),
          steps_("study", dir_,
                 o.clean_models + 1 + int(kinds.size() * label_modes.size()) * (1 + int(removals(false).size())) +
                     attacked_clean_models * int(removals(true).size()),
                 o.training.quiet) {}

    nlohmann::json run() {
        open_run_directory(dir_, settings_of(o_));
        data_ = load_training_data(o_.data);
        rng random(o_.training.recipe.seed);
        decoys_ = pick_decoys(data_.test, std::min(o_.decoys, data_.test.size()), random);
        train_models();
        const std::vector<study_suspect> innocents = innocent_models();
        std::vector<accusation> innocent, power;
        nlohmann::json keys = nlohmann::json::array();
        for (const std::string& key_name : key_names()) {
            const watermark_key key = load_key(key_path(key_name));
            keys.push_back(choices_of(key_name, key));
            const std::vector<reference_model> references = clean_references(key);
            for (const study_suspect& s : innocents)
                if (s.name != key_name) innocent.push_back(verdict_on(key_name, key, references, s, o_.alpha));
            for (const study_suspect& s : own_models(key_name))
                power.push_back(verdict_on(key_name, key, references, s, o_.alpha));
        }
        return {{"settings", settings_of(o_)}, {"keys", keys},   {"innocent", verdicts_json(innocent)},
                {"power", verdicts_json(power)}, {"summary", summary_json(summarize(innocent))}};
    }

private:
    fs::path model_path(const std::string& name) const { return dir_ / "models" / (name + ".safetensors"); }
    fs::path key_path(const std::string& name) const { return dir_ / "models" / (name + ".key"); }
    static std::string clean_name(int i) { return "clean-" + std::to_string(i); }

    static std::vector<std::string> key_names() {
        std::vector<std::string> names;
        for (const auto& kind : kinds)
            for (const auto& mode : label_modes) names.push_back(kind + "-" + mode);
        return names;
    }

    training_options training_for(const training_recipe& recipe) const {
        training_options t = o_.training;
        t.recipe = recipe;
        t.resume = true;  // a checkpoint left by an interrupted run is continued
        return t;
    }

    void train(const std::string& name, const training_options& t, const dataset_options& d, const training_data& data) {
        const fs::path out = model_path(name);
        steps_.run("model-" + name, "train " + name + " (" + t.recipe.optimizer + ", seed " +
                                        std::to_string(t.recipe.seed) + ", " + d.name + ")",
                   {out}, [&] { return train_to_file(t, d, data, out.string()); });
    }

    void embed(const std::string& kind, const std::string& mode, int index) {
        const std::string name = kind + "-" + mode;
        const fs::path out = model_path(name), key = key_path(name);
        steps_.run("model-" + name, "embed the " + name + " watermark", {out, key}, [&] {
            watermark_options w;
            w.trigger = parse_trigger_kind(kind, "study");
            w.labels = parse_trigger_labeling(mode, "study");
            w.count = o_.count;
            w.repeat = o_.repeat;
            w.unrelated_data = o_.unrelated_data;
            w.key_seed = o_.training.recipe.seed + 100 + static_cast<std::uint64_t>(index);  // one key per model
            const embedded_model e =
                embed_to_files(w, training_for(o_.training.recipe), o_.data, data_, out.string(), key.string());
            nlohmann::json j = describe(e.outcome, training_for(o_.training.recipe));
            j["trigger_accuracy"] = e.quality.trigger_accuracy;
            j["commitment"] = e.key.commitment();
            return j;
        });
    }

    // `model`'s copy after `r`, attacked with the first half of the test set.
    void attack(const std::string& model, const removal& r) {
        const fs::path out = model_path(model + "-" + r.id);
        steps_.run("attack-" + model + "-" + r.id, "attack " + model + ": " + r.id, {out}, [&] {
            attack_options a;
            a.data = o_.data;
            a.quiet = o_.training.quiet;
            a.finetuning.epochs = o_.attack_epochs;
            a.distillation.epochs = o_.attack_epochs;
            r.configure(a);
            const attack_data split = make_attack_data(dataset{}, data_.test, attacker_split{});
            return attack_and_score(r.kind, load_model<float>(model_path(model)), split, a, nullptr, out.string());
        });
    }

    void train_models() {
        for (int i = 1; i <= o_.clean_models; ++i)
            train(clean_name(i), training_for(innocent_recipe(o_.training.recipe, i)), o_.data, data_);
        dataset_options other = o_.data;
        other.name = o_.other_task;
        other.dir = o_.other_data;
        train("other-task", training_for(o_.training.recipe), other, load_training_data(other));
        int index = 0;
        for (const auto& kind : kinds)
            for (const auto& mode : label_modes) embed(kind, mode, index++);
        for (int i = 1; i <= attacked_clean_models; ++i)
            for (const removal& r : removals(true)) attack(clean_name(i), r);
        for (const std::string& key_name : key_names())
            for (const removal& r : removals(false)) attack(key_name, r);
    }

    // The model file `name`, asked as verify --model asks it; `origin` the clean model it
    // derives from (1..R; 0: none), left out of its calibrations.
    study_suspect from_file(const std::string& name, const std::string& group, int origin) const {
        return model_suspect(name, group, origin - 1, load_model<float>(model_path(name)), decoys_);
    }

    std::vector<study_suspect> innocent_models() const {
        std::vector<study_suspect> s;
        for (int i = 1; i <= o_.clean_models; ++i) s.push_back(from_file(clean_name(i), "clean", i));
        for (const std::string& key_name : key_names()) s.push_back(from_file(key_name, "other watermark", 0));
        // The degenerate networks are built on clean-1's architecture: left out with it.
        for (int label = 0; label < data_.test.classes; ++label)
            s.push_back(model_suspect("constant-" + std::to_string(label), "degenerate", 0, constant_network(label), decoys_));
        sequential<float> nan = load_model<float>(model_path(clean_name(1)));
        std::fill(nan.parameters().begin(), nan.parameters().end(), std::numeric_limits<float>::quiet_NaN());
        s.push_back(model_suspect("nan-outputs", "degenerate", 0, std::move(nan), decoys_));
        s.push_back(guessing_suspect("uniform-guesses", o_.training.recipe.seed + 7, decoys_));
        s.push_back(from_file("other-task", "other task", 0));
        for (int i = 1; i <= attacked_clean_models; ++i)
            for (const removal& r : removals(true)) s.push_back(from_file(clean_name(i) + "-" + r.id, "attacked clean", i));
        return s;
    }

    std::vector<study_suspect> own_models(const std::string& key_name) const {
        std::vector<study_suspect> s{from_file(key_name, "own", 0)};
        for (const removal& r : removals(false)) s.push_back(from_file(key_name + "-" + r.id, "own, " + r.id, 0));
        return s;
    }

    // Zero weights and one positive output bias: `label` for every input.
    sequential<float> constant_network(int label) const {
        sequential<float> net = o_.training.build_network(o_.data.name);
        std::fill(net.parameters().begin(), net.parameters().end(), 0.0f);
        net.named_parameters().back().value[static_cast<std::size_t>(label)] = 1.0f;
        return net;
    }

    // How each clean model answered the key's triggers: the references its null is fitted to.
    std::vector<reference_model> clean_references(const watermark_key& key) const {
        std::vector<reference_model> references;
        for (int i = 1; i <= o_.clean_models; ++i) {
            const sequential<float> model = load_model<float>(model_path(clean_name(i)));
            references.push_back({clean_name(i) + ".safetensors", sha256_file_hex(model_path(clean_name(i))),
                                  count_matches(key, predict_labels(model, key.triggers))});
        }
        return references;
    }

    // What the key drew from its seed (secret_choices.hpp), stated beside the results.
    static nlohmann::json choices_of(const std::string& key_name, const watermark_key& key) {
        const json& recipe = key.recipe;
        nlohmann::json j = {{"key", key_name},
                            {"source_dataset", recipe["source_dataset"]},
                            {"source", recipe["source"]},
                            {"commitment", key.commitment()}};
        if (!has_random_labels(key)) j["target"] = recipe["target"];
        if (recipe["kind"] == to_string(trigger_kind::content))
            j["stamp"] = {{"text", recipe["generator"]["text"]}, {"x", recipe["generator"]["x"]}, {"y", recipe["generator"]["y"]}};
        return j;
    }

    static nlohmann::json verdicts_json(const std::vector<accusation>& verdicts) {
        nlohmann::json rows = nlohmann::json::array();
        for (const accusation& a : verdicts) {
            const verification_result& r = a.result;
            rows.push_back({{"key", a.key},
                            {"model", a.model},
                            {"group", a.group},
                            {"matches", r.matches},
                            {"queries", r.queries},
                            {"null_source", r.null_source},
                            {"log10_p_value", r.log10_p_value},
                            {"population_log10_p_value", r.population_log10_p_value},
                            {"checks_passed", r.checks.passed()},
                            {"failure", r.checks.failure},
                            {"present", r.watermark_present}});
        }
        return rows;
    }

    static nlohmann::json summary_json(const accusation_summary& s) {
        return {{"pairs", s.pairs},
                {"accusations", s.accusations},
                {"share_p_at_most_0.01", s.share_p_at_most_0_01},
                {"share_p_at_most_0.05", s.share_p_at_most_0_05}};
    }

    const study_options& o_;
    fs::path dir_;
    step_runner steps_;
    training_data data_;
    dataset decoys_;
};

// ---- the report -------------------------------------------------------------------

std::string p_text(double log10_p) {
    char text[32];
    if (log10_p > -4) std::snprintf(text, sizeof text, "%.3g", std::pow(10.0, log10_p));
    else std::snprintf(text, sizeof text, "1e%.0f", std::floor(log10_p));
    return text;
}

// One row per group of innocent models: how many, accusations, small p-values, the smallest.
void group_table(std::ostringstream& md, const nlohmann::json& rows, double alpha) {
    md << "| innocent models | pairs (model x key) | accused at alpha = " << alpha
       << " | p <= 0.01 | p <= 0.05 | smallest p |\n|---|---|---|---|---|---|\n";
    std::vector<std::string> groups;
    for (const auto& row : rows)
        if (std::find(groups.begin(), groups.end(), row["group"].get<std::string>()) == groups.end())
            groups.push_back(row["group"].get<std::string>());
    for (const std::string& g : groups) {
        long long pairs = 0, accused = 0, under_01 = 0, under_05 = 0;
        double smallest = 0;
        for (const auto& row : rows) {
            if (row["group"] != g) continue;
            const double lp = row["log10_p_value"].get<double>();
            ++pairs;
            accused += row["present"].get<bool>();
            under_01 += lp <= -2;
            under_05 += lp <= std::log10(0.05);
            smallest = std::min(smallest, lp);
        }
        md << "| " << g << " | " << pairs << " | " << accused << " | " << under_01 << " | " << under_05 << " | "
           << p_text(smallest) << " |\n";
    }
}

void power_table(std::ostringstream& md, const nlohmann::json& power) {
    md << "\n| key | own model | pruned 50% | FTAL | fine-pruned |\n|---|---|---|---|---|\n";
    std::string current;
    for (const auto& row : power) {
        if (row["key"] != current) {
            if (!current.empty()) md << "\n";
            current = row["key"].get<std::string>();
            md << "| " << current << " |";
        }
        md << " " << row["matches"] << "/" << row["queries"] << ", p = " << p_text(row["log10_p_value"].get<double>())
           << (row["present"].get<bool>() ? "" : " (not detected)") << " |";
    }
    md << "\n";
}

// The keys' secret choices: two keys that share them are not independent secrets.
void key_table(std::ostringstream& md, const nlohmann::json& keys) {
    md << "| key | triggers made from | target | stamp |\n|---|---|---|---|\n";
    for (const auto& k : keys) {
        md << "| " << k["key"].get<std::string>() << " | " << k["source_dataset"].get<std::string>() << " class "
           << k["source"] << " | " << (k.contains("target") ? k["target"].dump() : "random") << " | ";
        if (k.contains("stamp"))
            md << "\"" << k["stamp"]["text"].get<std::string>() << "\" at x " << k["stamp"]["x"] << ", y " << k["stamp"]["y"];
        md << " |\n";
    }
}

// The empirical distribution of the innocent p-values against the uniform line: a valid
// p lies on or below it (P[p <= x] <= x), over the whole range and near 0.
void p_value_figure(const nlohmann::json& rows, const fs::path& svg) {
    std::vector<double> p;
    for (const auto& row : rows) p.push_back(std::pow(10.0, row["log10_p_value"].get<double>()));
    std::sort(p.begin(), p.end());
    chart_series empirical{"innocent p-values", {}, {}}, uniform{"uniform", {0, 1}, {0, 1}};
    for (std::size_t i = 0; i < p.size(); ++i) {
        empirical.x.push_back(p[i]);
        empirical.y.push_back(static_cast<double>(i + 1) / static_cast<double>(p.size()));
    }
    line_chart whole{"Share of p at most x", "x", "share", 0, 1, 0, 1, 0.2, 0.2, {empirical, uniform}};
    line_chart near_zero{"Near 0", "x", "share", 0, 0.1, 0, 0.1, 0.02, 0.02, {empirical, uniform}};
    const line_chart panels[] = {whole, near_zero};
    write_charts_svg(panels, svg);
}

void write_study_report(const nlohmann::json& results, const fs::path& dir) {
    const nlohmann::json& s = results["summary"];
    const double alpha = results["settings"]["alpha"].get<double>();
    std::ostringstream md;
    md << "# False-accusation study\n\nEvery key against every model that never saw it (" << s["pairs"]
       << " pairs): " << s["accusations"] << " accused at alpha = " << alpha << "; "
       << 100 * s["share_p_at_most_0.01"].get<double>() << "% of the p-values at most 0.01, "
       << 100 * s["share_p_at_most_0.05"].get<double>() << "% at most 0.05.\n\n";
    md << "Keys (each drew its source class, target and stamp corner from its seed):\n\n";
    key_table(md, results["keys"]);
    md << "\n";
    group_table(md, results["innocent"], alpha);
    md << "\nPower: each watermarked model and its attacked copies against its own key.\n";
    power_table(md, results["power"]);
    md << "\n![innocent p-values](figures/innocent-p-values.svg)\n";
    write_file_atomically(dir / "study.md", md.str());
    p_value_figure(results["innocent"], dir / "figures" / "innocent-p-values.svg");
}

}  // namespace study_detail

command add_study_command(CLI::App& parent) {
    using namespace study_detail;
    auto o = std::make_shared<study_options>();
    o->training.recipe.epochs = 3;
    CLI::App* app = parent.add_subcommand(
        "study", "False-accusation study: every key against every model that never saw it, and the power kept");
    o->data.add_to(*app, true, {"mnist", "fashion-mnist"});
    o->training.add_to(*app, false);  // the study always resumes
    app->add_option("--other-task", o->other_task, "Dataset of the other task's model (same image size)")
        ->check(CLI::IsMember({"mnist", "fashion-mnist"}))
        ->capture_default_str();
    app->add_option("--other-data", o->other_data, "Directory of the other task's dataset (default: datasets/<name>/)");
    app->add_option("--unrelated-data", o->unrelated_data,
                    "Directory of the unrelated triggers' dataset (default: datasets/<name>/)");
    app->add_option("--count", o->count, "Triggers per key")->check(CLI::Range(1LL, 100000LL))->capture_default_str();
    app->add_option("--repeat", o->repeat, "Repetitions of the triggers while embedding")
        ->check(CLI::Range(1LL, 1000LL))
        ->capture_default_str();
    app->add_option("--clean-models", o->clean_models, "Independently trained clean models")
        ->check(CLI::Range(3, 1000))
        ->capture_default_str();
    app->add_option("--attack-epochs", o->attack_epochs, "Epochs of fine-tuning, fine-pruning and distillation")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    app->add_option("--decoys", o->decoys, "Test images asked with the triggers")
        ->check(CLI::Range(1LL, 1000000LL))
        ->capture_default_str();
    app->add_option("--out", o->out, "Study directory (reused and resumed)")->capture_default_str();
    app->add_option("--alpha", o->alpha, "Significance level of verification")
        ->check(CLI::Range(1e-300, 0.5))
        ->capture_default_str();
    app->add_flag("--json", o->json, "Print study.json on stdout at the end");
    return {app, [o] {
                const nlohmann::json results = study(*o).run();
                write_json(fs::path(o->out) / "study.json", results);
                write_study_report(results, o->out);
                if (o->json) print_json(results);
                else
                    std::printf("study: %s: %lld innocent pairs, %lld accused at alpha = %g\n",
                                (fs::path(o->out) / "study.md").string().c_str(),
                                results["summary"]["pairs"].get<long long>(),
                                results["summary"]["accusations"].get<long long>(), o->alpha);
                return int(success);
            }};
}

}  // namespace nnmark::cli
