// evading_service: the answers of a stolen model served behind query detectors
// (attacks/query_detectors.hpp), the evasion attack of Hitaj & Mancini 2018 ("Have you
// stolen my model? Evasion attacks against deep neural network watermarking
// techniques"): a query any detector flags is answered with something other than the
// model's label, every other query with the model's own label.
//
// Contract:
// - evasion_policy is the thief's rule, one object for a dataset (answer_through, for
//   `attack evade`) and for a batch a server has just scored (answer_batch, for `nnmark
//   serve --evade`, serve/prediction_service.hpp), so both answer identically:
//   - behind detectors: an unflagged query gets the model's top-1 class; a flagged query
//     (flagged by at least one detector: the union) gets the model's second-best class,
//     the most plausible wrong answer, so a trigger's learned target is never returned
//     while an innocent image flagged by mistake often still gets its class;
//   - with a second opinion: the thief's own model (train_second_opinion: a fresh
//     network of the stolen one's architecture trained a few epochs on the attacker's
//     labelled data) is asked too; a query is flagged when the two disagree and then
//     gets the second model's class (it never saw the triggers, so it answers them as an
//     innocent model would).
//   Detectors read an image as bytes: a served image (x / 255 floats) is rounded back to
//   the nearest grey level, which gives exactly the bytes of an image sent as 0-255.
//   Score rows, when the service returns them, are swapped so their argmax is the answer.
// - as_suspect_answers: the service's answers to the key's triggers and to decoys of
//   known labels, in the form verify_answers judges (watermark/verify.hpp). The service
//   shows labels only, so whether its outputs were finite is unknown.
#pragma once

#include "nnmark/attacks/query_detectors.hpp"
#include "nnmark/attacks/verdict.hpp"
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
#include <cmath>
#include <cstdint>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
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

// The best and second-best class of one row of logits (first index on ties).
template <class T>
std::pair<int, int> top_two(std::span<const T> z) {
    if (z.size() < 2)
        throw shape_error("evading service: expected a model of at least 2 classes (a second-best answer), got " +
                          std::to_string(z.size()));
    std::size_t first = z[1] > z[0] ? 1 : 0, runner = 1 - first;
    for (std::size_t k = 2; k < z.size(); ++k) {
        if (z[k] > z[first]) runner = std::exchange(first, k);
        else if (z[k] > z[runner]) runner = k;
    }
    return {static_cast<int>(first), static_cast<int>(runner)};
}

// One image [C, H, W] of x / 255 floats as the bytes it was made from.
inline void to_bytes(std::span<const float> image, std::vector<std::uint8_t>& bytes) {
    bytes.resize(image.size());
    for (std::size_t i = 0; i < image.size(); ++i)
        bytes[i] = static_cast<std::uint8_t>(std::clamp(std::lround(image[i] * 255.0f), 0L, 255L));
}

}  // namespace detail

// Scratch of one thread answering through an evasion_policy (the second opinion's pass).
struct evasion_buffers {
    inference_buffers<float> inference;
    tensor<float> logits;
    std::vector<std::uint8_t> bytes;
};

// The thief's rule for answering queries: detectors in front of the stolen model, or a
// second opinion beside it. Immutable once made, so any number of threads may use it.
class evasion_policy {
public:
    // Flag what any of `detectors` flags; a flagged query gets the second-best class.
    explicit evasion_policy(std::vector<fitted_detector> detectors) : detectors_(std::move(detectors)) {}
    // Flag where `second` disagrees with the stolen model; answer with `second`'s class.
    explicit evasion_policy(std::shared_ptr<const sequential<float>> second) : second_(std::move(second)) {
        if (!second_) throw argument_error("evading service: the second opinion is missing");
    }

    // Rewrites the answers to one batch the stolen model scored: `images` [N, C, H, W]
    // as it saw them, `logits` its scores, `labels` its argmax on entry and the service's
    // answers on return, `scores` (optional, [N, K]) swapped to agree. Returns the flags.
    std::vector<bool> answer_batch(const tensor<float>& images, const tensor<float>& logits, std::vector<int>& labels,
                                   tensor<float>* scores, evasion_buffers& buffers) const {
        const index_t count = images.batch();
        if (static_cast<index_t>(labels.size()) != count || logits.batch() != count)
            throw argument_error("evading service: " + std::to_string(labels.size()) + " labels and " +
                                 std::to_string(logits.batch()) + " logit rows for " + std::to_string(count) + " images");
        std::vector<int> replacements(labels.size());
        std::vector<bool> flagged(labels.size(), false);
        if (second_) {
            second_->infer(images, buffers.logits, buffers.inference);
            replacements = argmax_rows(buffers.logits);
            for (std::size_t i = 0; i < labels.size(); ++i) flagged[i] = replacements[i] != labels[i];
        } else {
            const shape item = images.shape().drop_front();
            for (index_t n = 0; n < count; ++n) {
                const auto i = static_cast<std::size_t>(n);
                replacements[i] = detail::top_two(logits.item(n)).second;
                detail::to_bytes(images.item(n), buffers.bytes);
                for (const fitted_detector& d : detectors_)
                    flagged[i] = flagged[i] || d.flags(detector_score(d.kind, std::span<const std::uint8_t>(buffers.bytes),
                                                                      item, logits.item(n)));
            }
        }
        for (std::size_t i = 0; i < labels.size(); ++i) {
            if (!flagged[i] || replacements[i] == labels[i]) continue;
            if (scores) {
                const std::span<float> row = scores->item(static_cast<index_t>(i));
                std::swap(row[static_cast<std::size_t>(labels[i])], row[static_cast<std::size_t>(replacements[i])]);
            }
            labels[i] = replacements[i];
        }
        return flagged;
    }

    // The detectors (empty for a second opinion).
    const std::vector<fitted_detector>& detectors() const { return detectors_; }

private:
    std::vector<fitted_detector> detectors_;
    std::shared_ptr<const sequential<float>> second_;
};

// The service's answers to every image of `queries` (in batches of 256).
inline service_answers answer_through(const evasion_policy& policy, const sequential<float>& model,
                                      const dataset& queries) {
    service_answers out;
    inference_buffers<float> inference;
    evasion_buffers buffers;
    tensor<float> images, logits;
    std::vector<index_t> indices;
    for (index_t first = 0; first < queries.size(); first += 256) {
        indices.resize(static_cast<std::size_t>(std::min<index_t>(256, queries.size() - first)));
        std::iota(indices.begin(), indices.end(), first);
        to_float(queries, indices, images);
        model.infer(images, logits, inference);
        std::vector<int> labels = argmax_rows(logits);
        const std::vector<bool> flagged = policy.answer_batch(images, logits, labels, nullptr, buffers);
        out.labels.insert(out.labels.end(), labels.begin(), labels.end());
        out.flagged.insert(out.flagged.end(), flagged.begin(), flagged.end());
    }
    return out;
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

// The evasions by name: a detector ("stamp", "noise-residual", "ood") fitted on the
// attacker's images to flag at most `false_positive_rate` of them, "union" (all three),
// or "ensemble" (a second opinion trained with `second_opinion`).
inline const std::vector<std::string>& evasion_names() {
    static const std::vector<std::string> names = {"stamp", "noise-residual", "ood", "union", "ensemble"};
    return names;
}

// The evasion `name` (one of evasion_names()) in front of `model`.
inline evasion_policy make_evasion_policy(std::string_view name, const sequential<float>& model, const dataset& attacker,
                                          double false_positive_rate, const training_recipe& second_opinion,
                                          progress_line& progress) {
    if (name == "ensemble")
        return evasion_policy(
            std::make_shared<const sequential<float>>(train_second_opinion(model, attacker, second_opinion, progress)));
    std::vector<fitted_detector> detectors;
    for (detector_kind kind : all_detector_kinds)
        if (name == "union" || name == to_string(kind))
            detectors.push_back(fit_detector(kind, model, attacker, false_positive_rate));
    if (detectors.empty())
        throw argument_error("evading service: unknown evasion '" + std::string(name) +
                             "': expected stamp, noise-residual, ood, union or ensemble");
    return evasion_policy(std::move(detectors));
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

// An evading service scored as attacked_service.hpp scores a removal (the WRT protocol):
// what its rule flagged among the key's triggers and the evaluation images, the service's
// accuracy on them, the key verified through it (its triggers among `decoys`) and the
// verdict against `original_accuracy`.
struct evasion_score {
    index_t triggers_flagged = 0;
    index_t evaluation_flagged = 0;
    double accuracy = 0;
    verification_result verification;
    attack_verdict verdict = attack_verdict::survived;
};

inline evasion_score score_evasion(const evasion_policy& policy, const sequential<float>& model, const watermark_key& key,
                                   const dataset& evaluation, const dataset& decoys, double original_accuracy,
                                   double alpha) {
    const auto answer = [&](const dataset& queries) { return answer_through(policy, model, queries); };
    const service_answers triggers = answer(key.triggers), evaluated = answer(evaluation);
    evasion_score score;
    score.triggers_flagged = triggers.flagged_count();
    score.evaluation_flagged = evaluated.flagged_count();
    score.accuracy = evaluated.accuracy(evaluation.labels);
    score.verification = verify_answers(key, as_suspect_answers(triggers, answer(decoys), decoys), alpha);
    score.verdict = judge_attack(original_accuracy, score.accuracy, score.verification.watermark_present);
    return score;
}

}  // namespace nnmark
