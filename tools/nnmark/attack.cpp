// nnmark attack KIND: try to remove a model's watermark as a thief would, and score the
// result the way an auditor must: the attacked model's test accuracy beside the
// original's, and with --key the verification p-value and the verdict of the Watermark
// Robustness Toolbox (removed / survived / destroyed-model, attacks/verdict.hpp).
//
// The attacker's data and the evaluation half follow attacks/attacker_data.hpp: by
// default the attacker holds the first half of the test set and accuracy is measured on
// the second (the paper's Table 5). Exit 0 whatever the verdict, 2 on bad input.
//
// `attack evade` leaves the model alone and filters the verifier's queries instead
// (attacks/query_detectors.hpp, attacks/evading_service.hpp): for each detector, the
// service's accuracy, the share of triggers and of evaluation images it flags, and
// verification through it. Exit 0 when the watermark is found behind every detector,
// 1 otherwise, 2 on bad input.
//
// `attack extract` (extract.cpp) steals a served model through its prediction API and
// has no model file: its surrogate is what verify --dawn-registry asks.
#include "attacking.hpp"
#include "training_options.hpp"

#include "nnmark/attacks/attacked_service.hpp"
#include "nnmark/attacks/attacker_data.hpp"
#include "nnmark/attacks/removal_attack.hpp"
#include "nnmark/attacks/distill.hpp"
#include "nnmark/attacks/evading_service.hpp"
#include "nnmark/attacks/fineprune.hpp"
#include "nnmark/attacks/finetune.hpp"
#include "nnmark/attacks/prune.hpp"
#include "nnmark/attacks/query_detectors.hpp"
#include "nnmark/attacks/transform.hpp"
#include "nnmark/attacks/verdict.hpp"
#include "nnmark/data/load.hpp"
#include "nnmark/model/model_file.hpp"
#include "nnmark/serve/query_plan.hpp"
#include "nnmark/watermark/key.hpp"
#include "nnmark/watermark/verify.hpp"

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace nnmark::cli {

namespace {


input_transform chosen_transform(const attack_options& o) {
    if (o.jpeg) return {transform_kind::jpeg, *o.jpeg};
    if (o.blur) return {transform_kind::blur, *o.blur};
    if (o.noise) return {transform_kind::noise, *o.noise, o.noise_seed};
    return {transform_kind::bits, *o.bits};
}

// The attack the flags of `kind` describe (attacks/removal_attack.hpp).
removal_attack chosen_attack(const std::string& kind, const attack_options& o) {
    if (kind == "prune") return prune_attack{o.rate, parse_prune_scope(o.scope)};
    if (kind == "finetune") return finetune_attack{parse_finetune_mode(o.mode), o.finetuning};
    if (kind == "fineprune") return fineprune_attack{o.rate, o.finetuning};
    if (kind == "distill") return distill_attack{{o.soft, o.temperature, o.distillation}};
    if (o.quantize) return quantize_attack{parse_precision(*o.quantize), o.calibration_images};
    return transform_attack{chosen_transform(o)};
}

// What the attack did, for the report: its settings and what it found.
nlohmann::json parameters_of(const std::string& kind, const attack_options& o, const removal_outcome& r) {
    if (kind == "prune") return {{"rate", o.rate}, {"scope", o.scope}, {"weights", r.pruned->weights}, {"pruned", r.pruned->pruned}};
    if (kind == "finetune") return {{"mode", o.mode}, {"epochs", o.finetuning.epochs}, {"lr", o.finetuning.learning_rate}};
    if (kind == "fineprune")
        return {{"rate", o.rate}, {"layer", r.fine_pruned->layer}, {"channels", r.fine_pruned->channels},
                {"epochs", o.finetuning.epochs}, {"lr", o.finetuning.learning_rate}};
    if (kind == "distill")
        return {{"soft", o.soft}, {"temperature", o.temperature}, {"epochs", o.distillation.epochs},
                {"lr", o.distillation.learning_rate}};
    if (o.quantize) return {{"quantize", *o.quantize}, {"calibration_images", o.calibration_images}};
    return {{"transform", r.service.transform->describe()}};
}

// The attacker's data and the evaluation half; the training set is read only for
// train-fraction, whose images are drawn with the attack's seed.
attack_data load_attack_data(const std::string& kind, const attack_options& o) {
    const std::uint64_t seed = kind == "distill" ? o.distillation.seed
                               : kind == "evade" ? o.second_opinion.seed
                                                 : o.finetuning.seed;
    return load_attack_data(o, seed);
}

// One line for the terminal from the report of attack_and_score.
std::string summary_line(const std::string& kind, const nlohmann::json& r) {
    char line[512];
    int used = std::snprintf(line, sizeof line, "%s %s: test accuracy %.2f%% (original %.2f%%) on %lld images",
                             kind.c_str(), r["parameters"].dump().c_str(), 100 * r["test_accuracy"].get<double>(),
                             100 * r["original_test_accuracy"].get<double>(), r["evaluation_images"].get<long long>());
    if (r.contains("p_value"))
        std::snprintf(line + used, sizeof line - static_cast<std::size_t>(used),
                      "; trigger accuracy %.2f%%, p = %.3g (%s): %s", 100 * r["trigger_accuracy"].get<double>(),
                      r["p_value"].get<double>(),
                      r["verdict"] == "watermark-present" ? "watermark present" : "not detected",
                      r["attack_verdict"].get<std::string>().c_str());
    return line;
}

// One way the thief answers queries: a detector (or several, or a second opinion) in
// front of the stolen model.
struct evasion {
    std::string name;
    nlohmann::json threshold;  // null where no single threshold decides (union, ensemble)
    evasion_policy policy;
};

std::vector<std::string> chosen_detectors(const std::string& name) {
    if (name == "all") return evasion_names();
    return {name};
}

// The evasions `names` asks for, in front of `model`.
std::vector<evasion> make_evasions(const std::vector<std::string>& names, const sequential<float>& model,
                                   const attack_data& data, const attack_options& o) {
    progress_line progress(stderr, 5.0, o.quiet);
    std::vector<evasion> out;
    for (const std::string& name : names) {
        evasion_policy policy =
            make_evasion_policy(name, model, data.attacker, o.false_positive_rate, o.second_opinion, progress);
        const auto& detectors = policy.detectors();
        nlohmann::json threshold = detectors.size() == 1 ? nlohmann::json(detectors.front().threshold) : nlohmann::json();
        out.push_back({name, std::move(threshold), std::move(policy)});
    }
    return out;
}

double share(index_t part, index_t whole) { return whole ? static_cast<double>(part) / static_cast<double>(whole) : 0.0; }

// The report of one evasion (attacks/evading_service.hpp's score_evasion): verify's
// fields for the verifier's session (the key's triggers among the decoys), what the
// detector flagged, and the service's accuracy on the whole evaluation half; and the
// verification itself.
std::pair<nlohmann::json, verification_result> evasion_report(const evasion& e, const sequential<float>& model,
                                                              const watermark_key& key, const attack_data& data,
                                                              const dataset& decoys, double original_accuracy,
                                                              double alpha) {
    const evasion_score score = score_evasion(e.policy, model, key, data.evaluation, decoys, original_accuracy, alpha);
    nlohmann::json j = verification_json(score.verification, key.commitment());
    j.update({{"name", e.name},
              {"threshold", e.threshold},
              {"triggers", key.triggers.size()},
              {"triggers_flagged", score.triggers_flagged},
              {"triggers_flagged_share", share(score.triggers_flagged, key.triggers.size())},
              {"decoys_flagged", score.evaluation_flagged},
              {"decoys_flagged_share", share(score.evaluation_flagged, data.evaluation.size())},
              {"service_accuracy", score.accuracy},
              {"attack_verdict", to_string(score.verdict)}});
    return {std::move(j), score.verification};
}

std::string evasion_line(const nlohmann::json& d, double original_accuracy, index_t evaluation_images) {
    const std::string threshold = d["threshold"].is_null() ? "" : " (threshold " + d["threshold"].dump() + ")";
    char line[512];
    std::snprintf(line, sizeof line,
                  "evade %s%s: %lld/%lld triggers flagged, %lld/%lld (%.2f%%) evaluation images flagged; service "
                  "accuracy %.2f%% (original %.2f%%); p = %.3g (%s): %s",
                  d["name"].get<std::string>().c_str(), threshold.c_str(), d["triggers_flagged"].get<long long>(),
                  d["triggers"].get<long long>(), d["decoys_flagged"].get<long long>(),
                  static_cast<long long>(evaluation_images), 100 * d["decoys_flagged_share"].get<double>(),
                  100 * d["service_accuracy"].get<double>(), 100 * original_accuracy, d["p_value"].get<double>(),
                  d["verdict"] == "watermark-present" ? "watermark present" : "not detected",
                  d["attack_verdict"].get<std::string>().c_str());
    return line;
}

int run_evade(const attack_options& o) {
    const auto start = std::chrono::steady_clock::now();
    threshold_at_rate({0.0}, o.false_positive_rate);  // the rate is checked before any slow work
    const watermark_key key = load_key(o.key);
    const sequential<float> model = read_model(o.model, o.model_arch);
    const attack_data data = load_attack_data("evade", o);
    nlohmann::json report = {{"attack", "evade"}, {"model", o.model}, {"dataset", o.data.name}};
    report.update(evade_and_score(model, key, data, o));
    report["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (o.json) print_json(report);
    else
        for (const nlohmann::json& d : report["detectors"])
            std::printf("%s\n", evasion_line(d, report["original_test_accuracy"], data.evaluation.size()).c_str());
    return report["watermark_found_behind_every_detector"] ? success : not_detected;
}

int run_attack(const std::string& kind, const attack_options& o) {
    if (kind == "evade") return run_evade(o);
    if (kind == "extract") return run_extract(o);
    const auto start = std::chrono::steady_clock::now();
    if (kind == "transform" && !o.quantize) chosen_transform(o).validate();  // before any slow work
    const std::optional<watermark_key> key = o.key.empty() ? std::nullopt : std::optional(load_key(o.key));
    sequential<float> original = read_model(o.model, o.model_arch);
    const attack_data data = load_attack_data(kind, o);
    nlohmann::json report = {{"attack", kind}, {"model", o.model}, {"dataset", o.data.name}};
    report.update(attack_and_score(kind, std::move(original), data, o, key ? &*key : nullptr, o.out));
    report["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (o.json) print_json(report);
    else std::printf("%s\n", summary_line(kind, report).c_str());
    return success;
}

// A kind of attack as a subcommand of `attack`, with the flags every kind shares.
CLI::App* add_shared_flags(CLI::App& attack, const std::string& name, const std::string& description,
                           attack_options& o) {
    CLI::App* app = attack.add_subcommand(name, description);
    app->add_option("--model", o.model, "Model to attack (safetensors)")->required();
    add_model_arch_option(*app, o.model_arch);
    o.data.add_to(*app);
    app->add_option("--key", o.key, "Watermark key: verify the attacked model and give the verdict");
    app->add_option("--alpha", o.alpha, "Significance level of verification")
        ->check(CLI::Range(1e-300, 0.5))
        ->capture_default_str();
    app->add_flag("--json", o.json, "Print the result as one JSON object on stdout");
    app->add_flag("--quiet", o.quiet, "No progress output");
    return app;
}

// A kind that yields a model to write (unchanged when the attack is on the queries).
CLI::App* add_kind(CLI::App& attack, const std::string& name, const std::string& description, attack_options& o,
                   bool writes_model) {
    CLI::App* app = add_shared_flags(attack, name, description, o);
    auto* out = app->add_option("--out", o.out, "Where to write the attacked model");
    if (writes_model) out->required();
    else out->description("Where to write the model (unchanged: the transformation applies to the queries)");
    return app;
}


}  // namespace

dataset verification_decoys(const dataset& images) {
    rng random(1);
    return pick_decoys(images, std::min<index_t>(1000, images.size()), random);
}

attack_data load_attack_data(const attack_options& o, std::uint64_t seed) {
    const attacker_split split{parse_attacker_source(o.attacker_data), o.train_fraction, seed};
    const dataset test = load_dataset(o.data.name, o.data.resolved_dir(), false);
    const dataset train = split.source == attacker_source::train_fraction
                              ? load_dataset(o.data.name, o.data.resolved_dir(), true)
                              : dataset{};
    return make_attack_data(train, test, split);
}

void add_training_flags(CLI::App& app, attack_options& o, training_recipe& recipe) {
    app.add_option("--attacker-data", o.attacker_data,
                   "The attacker's data: test-half (first half of the test set; accuracy on the second) or "
                   "train-fraction (a random share of the training set)")
        ->check(CLI::IsMember({"test-half", "train-fraction"}))
        ->capture_default_str();
    app.add_option("--train-fraction", o.train_fraction, "Share of the training set for --attacker-data train-fraction")
        ->check(CLI::Range(1e-6, 1.0))
        ->capture_default_str();
    app.add_option("--epochs", recipe.epochs, "Training epochs on the attacker's data")
        ->check(CLI::Range(1, 100000))
        ->capture_default_str();
    app.add_option("--lr", recipe.learning_rate, "Learning rate")->check(positive_number)->capture_default_str();
    app.add_option("--batch", recipe.batch, "Minibatch size")->check(CLI::Range(1, 65536))->capture_default_str();
    app.add_option("--seed", recipe.seed, "Seed of the attack's randomness (order, dropout, new weights)")
        ->capture_default_str();
}

nlohmann::json evade_and_score(const sequential<float>& model, const watermark_key& key, const attack_data& data,
                               const attack_options& o, std::optional<double> original_accuracy) {
    if (!(data.evaluation.item_shape() == model.input_item()))
        throw shape_error("the model takes images " + model.input_item().str() + " but dataset " +
                          data.evaluation.name + " has images " + data.evaluation.item_shape().str());
    if (!original_accuracy) original_accuracy = evaluate(model, data.evaluation).accuracy();
    const dataset decoys = verification_decoys(data.evaluation);
    nlohmann::json detectors = nlohmann::json::array();
    bool everywhere = true;
    for (const evasion& e : make_evasions(chosen_detectors(o.detector), model, data, o)) {
        auto [report, verification] = evasion_report(e, model, key, data, decoys, *original_accuracy, o.alpha);
        if (detectors.empty()) warn_if_uncalibrated(verification);  // the same null for every detector
        everywhere = everywhere && verification.watermark_present;
        detectors.push_back(std::move(report));
    }
    return {{"attacker_data", data.attacker.name},
            {"attacker_images", data.attacker.size()},
            {"evaluation_data", data.evaluation.name},
            {"evaluation_images", data.evaluation.size()},
            {"decoys", decoys.size()},
            {"false_positive_rate", o.false_positive_rate},
            {"original_test_accuracy", *original_accuracy},
            {"detectors", detectors},
            {"watermark_found_behind_every_detector", everywhere}};
}

nlohmann::json attack_and_score(const std::string& kind, sequential<float> model, const attack_data& data,
                                const attack_options& o, const watermark_key* key, const std::string& out,
                                std::optional<double> original_accuracy) {
    if (!(data.evaluation.item_shape() == model.input_item()))
        throw shape_error("the model takes images " + model.input_item().str() + " but dataset " +
                          data.evaluation.name + " has images " + data.evaluation.item_shape().str());
    if (!original_accuracy) original_accuracy = evaluate(model, data.evaluation).accuracy();
    const removal_attack attack = chosen_attack(kind, o);
    progress_line progress(stderr, 5.0, o.quiet);
    const removal_outcome attacked = run_removal(attack, std::move(model), data.attacker, progress);
    const attack_score score = score_attack(attacked.service, data.evaluation, *original_accuracy, key,
                                            verification_decoys(data.evaluation), o.alpha);
    if (!out.empty()) save_model(attacked.service.model, out, dataset_class_names(o.data.name));

    nlohmann::json report = {{"parameters", parameters_of(kind, o, attacked)},
                             {"evaluation_data", data.evaluation.name},
                             {"evaluation_images", data.evaluation.size()},
                             {"original_test_accuracy", score.original_accuracy},
                             {"test_accuracy", score.accuracy}};
    if (uses_attacker_data(attack)) {
        report["attacker_data"] = data.attacker.name;
        report["attacker_images"] = data.attacker.size();
    }
    if (!out.empty()) report["out"] = out;
    if (key) {
        warn_if_uncalibrated(*score.verification);
        report.update(verification_json(*score.verification, key->commitment()));
        report["attack_verdict"] = to_string(*score.verdict);
    }
    return report;
}

command add_attack_command(CLI::App& parent) {
    auto o = std::make_shared<attack_options>();
    CLI::App* app = parent.add_subcommand("attack", "Try to remove a watermark and score the attacked model");
    app->require_subcommand(1);

    CLI::App* prune = add_kind(*app, "prune", "Magnitude pruning without retraining (Zhang et al., Tables 3-4)", *o, true);
    prune->add_option("--rate", o->rate, "Fraction of the weights to zero")->check(CLI::Range(0.0, 1.0))->capture_default_str();
    prune->add_option("--scope", o->scope, "Smallest weights of each layer, or of the whole model")
        ->check(CLI::IsMember({"layer", "global"}))
        ->capture_default_str();

    CLI::App* finetune = add_kind(*app, "finetune", "Fine-tuning FTLL, FTAL, RTLL or RTAL (Adi et al. 2018)", *o, true);
    finetune->add_option("--mode", o->mode, "ftll, ftal (last layer / all layers), rtll, rtal (last layer re-initialised)")
        ->check(CLI::IsMember({"ftll", "ftal", "rtll", "rtal"}))
        ->capture_default_str();
    add_training_flags(*finetune, *o, o->finetuning);

    CLI::App* fineprune = add_kind(*app, "fineprune", "Fine-pruning: prune dormant channels, then fine-tune (Liu et al. 2018)", *o, true);
    fineprune->add_option("--rate", o->rate, "Fraction of the last conv layer's channels to prune")
        ->check(CLI::Range(0.0, 1.0))
        ->capture_default_str();
    add_training_flags(*fineprune, *o, o->finetuning);

    CLI::App* distill = add_kind(*app, "distill", "Model extraction: train a fresh model on the victim's answers", *o, true);
    distill->add_flag("--soft", o->soft, "Learn the victim's scores instead of its labels");
    distill->add_option("--temperature", o->temperature, "With --soft: scores are softmax(logits / temperature)")
        ->check(positive_number)
        ->capture_default_str();
    add_training_flags(*distill, *o, o->distillation);

    CLI::App* transform = add_kind(*app, "transform",
                                   "Transform every query (JPEG, blur, noise, bit depth), or quantize the model", *o, false);
    CLI::Option_group* how = transform->add_option_group("transformation", "exactly one of");
    how->add_option("--jpeg", o->jpeg, "JPEG round trip at quality Q (1-100)");
    how->add_option("--blur", o->blur, "Gaussian blur of standard deviation S pixels");
    how->add_option("--noise", o->noise, "Gaussian noise of standard deviation S on [0, 1] pixels");
    how->add_option("--bits", o->bits, "Bit-depth reduction to B bits (1-8)");
    CLI::Option* quantize =
        how->add_option("--quantize", o->quantize,
                        "Serve the model in bf16 or int8 (int8 calibrated on the attacker's images) instead")
            ->check(CLI::IsMember({"bf16", "int8"}));
    how->require_option(1);
    transform->add_option("--noise-seed", o->noise_seed, "Seed of the noise")->capture_default_str();
    transform->add_option("--calibration-images", o->calibration_images,
                          "With --quantize int8: attacker images the activation ranges are measured on")
        ->check(CLI::Range(index_t(1), index_t(1) << 20))
        ->needs(quantize)
        ->capture_default_str();
    // A lower-precision model has no float parameters to save.
    transform->get_option("--out")->excludes(quantize);

    CLI::App* evade = add_shared_flags(*app, "evade",
                                       "Answer queries a detector flags with another class (Hitaj & Mancini 2018)", *o);
    evade->get_option("--key")->required()->description("Watermark key: verify through each evading service");
    evade->add_option("--detector", o->detector,
                      "stamp, noise-residual, ood, union (any of the three), ensemble (a second model of the "
                      "attacker's) or all")
        ->check(CLI::IsMember({"stamp", "noise-residual", "ood", "union", "ensemble", "all"}))
        ->capture_default_str();
    evade->add_option("--false-positive-rate", o->false_positive_rate,
                      "Share of the attacker's images each detector flags at most (its threshold)")
        ->check(CLI::Range(0.0, 1.0))
        ->capture_default_str();
    add_training_flags(*evade, *o, o->second_opinion);

    add_extract_kind(*app, *o);

    return {app, [o, app] { return run_attack(app->get_subcommands().front()->get_name(), *o); }};
}

}  // namespace nnmark::cli
