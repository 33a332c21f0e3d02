// evading_service: the answers of a stolen model served behind query detectors
// (attacks/query_detectors.hpp), the evasion attack of Hitaj & Mancini 2018 ("Have you
// stolen my model? Evasion attacks against deep neural network watermarking
// techniques"): a query any detector flags is answered with something other than the
// model's label, every other query with the model's own label.
//
// Contract:
// - answer_behind_detectors: an unflagged query gets the model's top-1 class; a flagged
//   query (flagged by at least one detector: the union) gets the model's second-best
//   class, the most plausible wrong answer, so a trigger's learned target is never
//   returned while an innocent image flagged by mistake often still gets its class.
// - answer_with_second_opinion: the thief's own model (train_second_opinion: a fresh
//   network of the stolen one's architecture trained a few epochs on the attacker's
//   labelled data) is asked too; a query is flagged when the two disagree and then gets
//   the second model's class (it never saw the triggers, so it answers them as an
//   innocent model would).
// - as_suspect_answers: the service's answers to the key's triggers and to decoys of
//   known labels, in the form verify_answers judges (watermark/verify.hpp). The service
//   shows labels only, so whether its outputs were finite is unknown.
#pragma once

#include "nnmark/attacks/query_detectors.hpp"
#include "nnmark/core/error.hpp"
#include "nnmark/data/dataset.hpp"
#include "nnmark/model/layer_factory.hpp"
#include "nnmark/model/sequential.hpp"
#include "nnmark/train/evaluate.hpp"
#include "nnmark/train/progress.hpp"
#include "nnmark/train/recipe.hpp"
#include "nnmark/train/trainer.hpp"
#include "nnmark/watermark/verify.hpp"

#include <algorithm>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace nnmark {

// What the service answered for each query, and which queries it flagged.
struct service_answers {
    std::vector<int> labels;
    std::vector<bool> flagged;

    index_t flagged_count() const { return static_cast<index_t>(std::ranges::count(flagged, true)); }
    double accuracy(std::span<const int> truth) const {
        if (truth.size() != labels.size())
            throw argument_error("evading service: " + std::to_string(labels.size()) + " answers for " +
                                 std::to_string(truth.size()) + " labels");
        index_t correct = 0;
        for (std::size_t i = 0; i < labels.size(); ++i) correct += labels[i] == truth[i];
        return labels.empty() ? 0.0 : static_cast<double>(correct) / static_cast<double>(labels.size());
    }
};

namespace detail {

// The best and second-best class of every row of `logits` [N, K] (first index on ties).
template <class T>
void append_top_two(const tensor<T>& logits, std::vector<int>& best, std::vector<int>& second) {
    const index_t classes = logits.shape()[1];
    if (classes < 2)
        throw shape_error("evading service: expected a model of at least 2 classes (a second-best answer), got " +
                          std::to_string(classes));
    for (index_t row = 0; row < logits.shape()[0]; ++row) {
        const T* z = logits.data() + row * classes;
        index_t first = z[1] > z[0] ? 1 : 0, runner = 1 - first;
        for (index_t k = 2; k < classes; ++k) {
            if (z[k] > z[first]) runner = std::exchange(first, k);
            else if (z[k] > z[runner]) runner = k;
        }
        best.push_back(static_cast<int>(first));
        second.push_back(static_cast<int>(runner));
    }
}

}  // namespace detail

// `model`'s answers to `queries` behind `detectors` (none: the model as it is).
template <class T>
service_answers answer_behind_detectors(const sequential<T>& model, std::span<const fitted_detector> detectors,
                                        const dataset& queries) {
    std::vector<int> best, second;
    for_each_batch_logits(model, queries, 256,
                          [&](index_t, const tensor<T>& logits) { detail::append_top_two(logits, best, second); });
    service_answers a{std::move(best), std::vector<bool>(second.size(), false)};
    for (const fitted_detector& d : detectors) {
        const std::vector<bool> flagged = d.flag(model, queries);
        for (std::size_t i = 0; i < flagged.size(); ++i) a.flagged[i] = a.flagged[i] || flagged[i];
    }
    for (std::size_t i = 0; i < second.size(); ++i)
        if (a.flagged[i]) a.labels[i] = second[i];
    return a;
}

// The thief's second opinion: a fresh model of `model`'s architecture, initialised from
// recipe.seed and trained on the attacker's labelled images, as distill builds its
// student (attacks/distill.hpp).
template <class T>
sequential<T> train_second_opinion(const sequential<T>& model, const dataset& attacker, const training_recipe& recipe,
                                   progress_line& progress) {
    sequential<T> second = build_from_architecture<T>(architecture_json(model), "evade: the stolen model's architecture");
    second.initialize(recipe.seed);
    trainer<T>(second, recipe).fit(attacker, nullptr, progress);
    return second;
}

// `model`'s answers to `queries` when `second` (the thief's own model) is asked too.
template <class T>
service_answers answer_with_second_opinion(const sequential<T>& model, const sequential<T>& second,
                                           const dataset& queries) {
    service_answers a{predict_labels(model, queries), {}};
    const std::vector<int> opinion = predict_labels(second, queries);
    a.flagged.resize(a.labels.size());
    for (std::size_t i = 0; i < a.labels.size(); ++i) {
        a.flagged[i] = a.labels[i] != opinion[i];
        a.labels[i] = opinion[i];  // equal where unflagged
    }
    return a;
}

// The verifier's session: the service's answers to the key's triggers (key order) and to
// `decoys`, whose true labels go with them.
inline suspect_answers as_suspect_answers(const service_answers& triggers, const service_answers& decoy_answers,
                                          const dataset& decoys) {
    if (decoy_answers.labels.size() != decoys.labels.size())
        throw argument_error("evading service: " + std::to_string(decoy_answers.labels.size()) + " answers for " +
                             std::to_string(decoys.size()) + " decoys");
    return {triggers.labels, decoy_answers.labels, decoys.labels, std::nullopt};
}

}  // namespace nnmark
