// verify: black-box ownership verification (Zhang et al., ASIACCS 2018, Sec. 4.3) with
// an exact p-value instead of the paper's raw trigger accuracy.
//
// The suspect is asked for the label of every trigger image of the key; k of its n
// answers match the key's labels. Under the null hypothesis (the suspect was not
// derived from the watermarked model) each answer matches with probability at most p0,
// so p = P[Binomial(n, p0) >= k] (watermark/statistics.hpp) is the chance of doing this
// well without the watermark. p0 comes from the key (watermark/key.hpp: 1/(K-1) for
// random labels, a calibrated upper bound, or an assumed 1/K).
//
// verify_answers takes the answers however they were obtained (a model in memory, a
// prediction service); verify_model asks a model in memory.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/model/sequential.hpp"
#include "nnmark/train/evaluate.hpp"
#include "nnmark/watermark/key.hpp"
#include "nnmark/watermark/statistics.hpp"

#include <span>
#include <string>
#include <vector>

namespace nnmark {

// Matches of `answers` (one label per trigger of the key, in key order) against the key.
inline index_t count_matches(const watermark_key& key, std::span<const int> answers) {
    if (static_cast<index_t>(answers.size()) != key.triggers.size())
        throw argument_error("verify: " + std::to_string(answers.size()) + " answers for a key of " +
                             std::to_string(key.triggers.size()) + " triggers");
    index_t matches = 0;
    for (std::size_t i = 0; i < answers.size(); ++i) matches += answers[i] == key.triggers.labels[i];
    return matches;
}

inline verification_result verify_answers(const watermark_key& key, std::span<const int> answers, double alpha) {
    const null_hypothesis null = null_hypothesis_of(key);
    return decide(key.triggers.size(), count_matches(key, answers), null.rate, null.source, alpha);
}

template <class T>
verification_result verify_model(const sequential<T>& model, const watermark_key& key, double alpha) {
    if (!(key.triggers.item_shape() == model.input_item()))
        throw shape_error("verify: the key's triggers are " + key.triggers.item_shape().str() +
                          " images, the model takes " + model.input_item().str());
    return verify_answers(key, predict_labels(model, key.triggers), alpha);
}

// Calibration (the key's null rate for target labels): how often independently trained
// models, which never saw the key, answer its triggers with its labels. p0 is the
// Clopper-Pearson upper bound of their pooled match rate at `confidence`.
template <class T>
key_calibration calibrate_key(const watermark_key& key, std::span<const sequential<T>* const> models,
                              std::vector<std::string> model_names, double confidence = 0.99) {
    if (models.empty()) throw argument_error("calibrate: at least one reference model is needed");
    index_t matches = 0;
    for (const sequential<T>* model : models) {
        if (!(key.triggers.item_shape() == model->input_item()))
            throw shape_error("calibrate: the key's triggers are " + key.triggers.item_shape().str() +
                              " images, a reference model takes " + model->input_item().str());
        matches += count_matches(key, predict_labels(*model, key.triggers));
    }
    const index_t queries = key.triggers.size() * static_cast<index_t>(models.size());
    return calibrate(std::move(model_names), queries, matches, confidence);
}

}  // namespace nnmark
