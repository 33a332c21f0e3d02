// verify: black-box ownership verification (Zhang et al., ASIACCS 2018, Sec. 4.3) with
// a p-value whose null is argued (watermark/statistics.hpp) instead of the paper's raw
// trigger accuracy.
//
// The suspect is asked for the label of every trigger of the key and, in the same
// session, of decoys: test images of the key's task with their true labels. k of its n
// trigger answers match the key. The decision:
// 1. p_population = P[k or more matches | the key's null] (null_hypothesis_of: the
//    random-label bound, a calibrated beta-binomial, or the assumed 1/K);
// 2. for target labels, p_control = the one-sided hypergeometric test of "the suspect
//    answers the target as often on triggers as on decoys of other classes"
//    (log_control_tail); the p reported is max(p_population, p_control), valid when
//    either null holds;
// 3. the watermark is present iff p <= alpha AND the suspect checks pass
//    (watermark/suspect_checks.hpp): a degenerate model is never accused.
// Without decoys (an owner's study of its own attacked copies, attacks/) only step 1 runs
// and suspect_checks.run is false.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/model/sequential.hpp"
#include "nnmark/train/evaluate.hpp"
#include "nnmark/watermark/key.hpp"
#include "nnmark/watermark/statistics.hpp"
#include "nnmark/watermark/suspect_checks.hpp"

#include <cmath>
#include <numbers>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace nnmark {

// The suspect's own control (target labels only; see log_control_tail).
struct control_test {
    bool run = false;
    index_t decoys = 0;                  // decoys whose true class is not the target
    index_t decoy_target_answers = 0;    // of them, answered with the target
    index_t trigger_target_answers = 0;  // triggers answered with the target
    double log10_p_value = 0.0;
};

// The outcome of a black-box verification.
struct verification_result {
    index_t queries = 0;            // trigger images sent to the suspect
    index_t matches = 0;            // answers equal to the key's label
    double trigger_accuracy = 0.0;  // matches / queries
    double null_rate = 0.0;         // the null's bound on a model's match probability
    double null_correlation = 0.0;  // the null's bound on the correlation of one model's matches
    std::string null_source;        // "random-labels" | "calibrated" | "assumed"
    double population_log10_p_value = 0.0;  // under the null alone
    control_test control;
    suspect_checks checks;
    double p_value = 1.0;            // the larger of the population and control p; 0 if it underflows
    double log10_p_value = 0.0;      // exact even where p_value underflows
    double alpha = 0.0;              // significance level of the decision
    bool significant = false;        // p <= alpha
    bool watermark_present = false;  // significant and the suspect checks passed (or were not run)
};

// What a suspect answered: one label per trigger (key order) and, when decoys were
// asked, one per decoy with the decoys' true labels.
struct suspect_answers {
    std::vector<int> triggers;
    std::vector<int> decoys;
    std::vector<int> decoy_labels;
    std::optional<index_t> non_finite_outputs;  // over all queries, when the outputs were seen
};

// Matches of `answers` (one label per trigger of the key, in key order) against the key.
inline index_t count_matches(const watermark_key& key, std::span<const int> answers) {
    if (static_cast<index_t>(answers.size()) != key.triggers.size())
        throw argument_error("verify: " + std::to_string(answers.size()) + " answers for a key of " +
                             std::to_string(key.triggers.size()) + " triggers");
    index_t matches = 0;
    for (std::size_t i = 0; i < answers.size(); ++i) matches += answers[i] == key.triggers.labels[i];
    return matches;
}

namespace detail {

// The target class of a target-label key, or nothing for random labels.
inline std::optional<int> key_target(const watermark_key& key) {
    if (has_random_labels(key)) return std::nullopt;
    const auto target = key.recipe.find("target");
    if (target == key.recipe.end() || !target->is_number_integer()) return std::nullopt;
    return target->get<int>();
}

inline control_test run_control(const suspect_answers& a, int target) {
    control_test c;
    c.run = true;
    for (int answer : a.triggers) c.trigger_target_answers += answer == target;
    for (std::size_t i = 0; i < a.decoys.size(); ++i) {
        if (a.decoy_labels[i] == target) continue;
        ++c.decoys;
        c.decoy_target_answers += a.decoys[i] == target;
    }
    c.log10_p_value = log_control_tail(c.trigger_target_answers, static_cast<index_t>(a.triggers.size()),
                                       c.decoy_target_answers, c.decoys) /
                      std::numbers::ln10;
    return c;
}

}  // namespace detail

inline verification_result verify_answers(const watermark_key& key, const suspect_answers& answers, double alpha) {
    if (!(alpha > 0.0 && alpha < 1.0))
        throw argument_error("verify: significance level alpha = " + detail::number_text(alpha) + " is outside (0, 1)");
    if (key.triggers.size() < 1) throw argument_error("verify: the key has no triggers");
    verification_result r;
    const null_hypothesis null = null_hypothesis_of(key);
    r.queries = key.triggers.size();
    r.matches = count_matches(key, answers.triggers);
    r.trigger_accuracy = static_cast<double>(r.matches) / static_cast<double>(r.queries);
    r.null_rate = null.rate;
    r.null_correlation = null.correlation;
    r.null_source = null.source;
    r.population_log10_p_value = log_null_tail(r.queries, r.matches, null) / std::numbers::ln10;
    r.log10_p_value = r.population_log10_p_value;
    if (!answers.decoys.empty()) {
        r.checks = check_suspect(answers.decoys, answers.decoy_labels, key.triggers.classes, answers.non_finite_outputs);
        if (const std::optional<int> target = detail::key_target(key)) {
            r.control = detail::run_control(answers, *target);
            r.log10_p_value = std::max(r.log10_p_value, r.control.log10_p_value);
        }
    }
    r.p_value = std::pow(10.0, r.log10_p_value);
    r.alpha = alpha;
    r.significant = r.log10_p_value <= std::log10(alpha);
    r.watermark_present = r.significant && r.checks.passed();
    return r;
}

// Trigger answers alone: the population test, no checks (see the header comment).
inline verification_result verify_answers(const watermark_key& key, std::span<const int> trigger_answers, double alpha) {
    return verify_answers(key, suspect_answers{{trigger_answers.begin(), trigger_answers.end()}, {}, {}, {}}, alpha);
}

namespace detail {

template <class T>
void check_input_shape(const sequential<T>& model, const dataset& images, const char* what) {
    if (!(images.item_shape() == model.input_item()))
        throw shape_error(std::string("verify: the ") + what + " are " + images.item_shape().str() +
                          " images, the model takes " + model.input_item().str());
}

// Top-1 labels of `data`, counting rows with a non-finite output into `non_finite`.
template <class T>
std::vector<int> labels_and_finiteness(const sequential<T>& model, const dataset& data, index_t& non_finite) {
    std::vector<int> labels;
    labels.reserve(static_cast<std::size_t>(data.size()));
    for_each_batch_logits(model, data, 256, [&](index_t, const tensor<T>& logits) {
        const index_t width = logits.size() / std::max<index_t>(1, logits.batch());
        for (index_t row = 0; row < logits.batch(); ++row) {
            const T* values = logits.data() + row * width;
            non_finite += !std::all_of(values, values + width, [](T v) { return std::isfinite(v); });
        }
        for (int label : argmax_rows(logits)) labels.push_back(label);
    });
    return labels;
}

}  // namespace detail

// A model in memory asked for the key's triggers and for `decoys` (test images of the
// key's task), with its outputs checked for non-finite values.
template <class T>
suspect_answers ask_model(const sequential<T>& model, const watermark_key& key, const dataset& decoys) {
    detail::check_input_shape(model, key.triggers, "key's triggers");
    detail::check_input_shape(model, decoys, "decoys");
    suspect_answers a;
    index_t non_finite = 0;
    a.triggers = detail::labels_and_finiteness(model, key.triggers, non_finite);
    a.decoys = detail::labels_and_finiteness(model, decoys, non_finite);
    a.decoy_labels = decoys.labels;
    a.non_finite_outputs = non_finite;
    return a;
}

template <class T>
verification_result verify_model(const sequential<T>& model, const watermark_key& key, const dataset& decoys,
                                 double alpha) {
    return verify_answers(key, ask_model(model, key, decoys), alpha);
}

// Calibration (the key's null for target labels): how often independently trained
// models, which never saw the key, answer its triggers with its labels, model by model.
// `identities` names each model (file name and SHA-256); their matches are filled in.
template <class T>
key_calibration calibrate_key(const watermark_key& key, std::span<const sequential<T>* const> models,
                              std::vector<reference_model> identities, double confidence = 0.99) {
    if (models.size() != identities.size())
        throw argument_error("calibrate: " + std::to_string(models.size()) + " models but " +
                             std::to_string(identities.size()) + " names");
    for (std::size_t i = 0; i < models.size(); ++i) {
        detail::check_input_shape(*models[i], key.triggers, "key's triggers");
        identities[i].matches = count_matches(key, predict_labels(*models[i], key.triggers));
    }
    return calibrate(std::move(identities), key.triggers.size(), confidence);
}

}  // namespace nnmark
