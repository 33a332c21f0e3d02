// distill: model extraction through the prediction API, the attack Zhang et al. (ASIACCS
// 2018, Sec. 6) say their scheme does not resist: a thief queries the victim with its own
// images and trains a fresh model only from the answers (Tramer et al., USENIX Security
// 2016; distillation after Hinton, Vinyals and Dean 2015). A trigger-set watermark
// survives only if the thief's queries happen to teach it, which in-distribution images
// rarely do.
//
// The thief holds unlabeled_images (attacks/attacker_data.hpp): images without labels,
// so the student cannot see the owner's labels. The victim answers either
//   hard   its top-1 label for each image (a label-only API), or
//   soft   its scores softmax(z / temperature) (an API returning probabilities;
//          a temperature above 1 softens them and shows more of the victim's
//          similarity structure, as in Hinton et al.).
// The student (by default a fresh model of the victim's architecture, initialised from
// recipe.seed) is trained with cross-entropy against those answers by the ordinary
// trainer (train/trainer.hpp; soft answers through trainer::set_soft_targets). The
// student is scored at temperature 1: the thief deploys it as it is.
//
// Budget: the queries (how many images the thief has) and the training recipe; the
// default recipe is nnmark's full training recipe, since the student starts from nothing.
#pragma once

#include "nnmark/attacks/attacker_data.hpp"
#include "nnmark/core/error.hpp"
#include "nnmark/data/dataset.hpp"
#include "nnmark/layers/softmax_cross_entropy.hpp"
#include "nnmark/model/layer_factory.hpp"
#include "nnmark/model/sequential.hpp"
#include "nnmark/train/evaluate.hpp"
#include "nnmark/train/progress.hpp"
#include "nnmark/train/recipe.hpp"
#include "nnmark/train/trainer.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace nnmark {

// What the victim said about each query image.
template <class T>
struct victim_answers {
    dataset labelled;  // the query images, each labelled with the victim's top-1 answer
    tensor<T> scores;  // [N, K]: softmax(logits / temperature), one row per image
};

// Ask `victim` about every image of `queries`.
template <class T>
victim_answers<T> query_victim(const sequential<T>& victim, const unlabeled_images& queries, double temperature = 1.0) {
    if (!(temperature > 0.0 && std::isfinite(temperature)))
        throw argument_error("distill: temperature must be positive and finite, got " + std::to_string(temperature));
    if (!(queries.images.shape().drop_front() == victim.input_item()))
        throw shape_error("distill: the query images are " + queries.images.shape().str() + ", the victim takes [N] + " +
                          victim.input_item().str());
    victim_answers<T> answers;
    dataset& labelled = answers.labelled;
    labelled.images = queries.images;
    // Placeholders so the images can be batched: the victim's answers replace them below.
    labelled.labels.assign(static_cast<std::size_t>(queries.size()), 0);
    labelled.classes = static_cast<int>(victim.output_item()[0]);
    labelled.name = queries.name + "[labelled by the victim]";
    answers.scores.resize(shape{queries.size(), victim.output_item()[0]});
    tensor<T> tempered, probabilities;
    for_each_batch_logits(victim, labelled, 256, [&](index_t first, const tensor<T>& logits) {
        std::ranges::copy(argmax_rows(logits), labelled.labels.begin() + first);
        tempered = logits;
        for (index_t i = 0; i < tempered.size(); ++i) tempered.data()[i] /= static_cast<T>(temperature);
        softmax(tempered, probabilities);
        std::ranges::copy(probabilities.span(), answers.scores.item(first).begin());
    });
    return answers;
}

// Train `student` on answers the thief already holds: the victim's labels, or with
// `soft` its scores (answers.scores, one row of the student's classes per image). The
// answers may come from an in-memory victim (query_victim) or from a prediction API
// (nnmark attack extract, Tramer et al. 2016; Orekondy et al. 2019 Knockoff Nets).
template <class T>
std::vector<epoch_summary> train_on_answers(sequential<T>& student, const victim_answers<T>& answers, bool soft,
                                            const training_recipe& recipe, progress_line& progress,
                                            const dataset* evaluation = nullptr) {
    if (soft && !(answers.scores.shape() == shape{answers.labelled.size(), student.output_item()[0]}))
        throw shape_error("distill: the soft targets are " + answers.scores.shape().str() + ", the student answers [" +
                          std::to_string(answers.labelled.size()) + "] + " + student.output_item().str());
    trainer<T> t(student, recipe);
    if (soft) t.set_soft_targets(answers.scores);
    return t.fit(answers.labelled, evaluation, progress);
}

struct distill_options {
    bool soft = false;         // train on the victim's scores instead of its labels
    double temperature = 1.0;  // soft only: scores are softmax(logits / temperature)
    training_recipe recipe;    // the student's training (default: nnmark's recipe)
};

// Train `student` only from the victim's answers to `queries`. `evaluation`, when given,
// is scored after every epoch (with its true labels: that is the owner measuring).
template <class T>
std::vector<epoch_summary> distill_into(sequential<T>& student, const sequential<T>& victim,
                                        const unlabeled_images& queries, const distill_options& options,
                                        progress_line& progress, const dataset* evaluation = nullptr) {
    if (!(student.output_item() == victim.output_item()))
        throw shape_error("distill: the student answers " + student.output_item().str() + ", the victim " +
                          victim.output_item().str());
    return train_on_answers(student, query_victim(victim, queries, options.temperature), options.soft,
                            options.recipe, progress, evaluation);
}

// A fresh model of the victim's architecture, initialised from options.recipe.seed and
// trained only from the victim's answers to `queries`.
template <class T>
sequential<T> distill(const sequential<T>& victim, const unlabeled_images& queries, const distill_options& options,
                      progress_line& progress, const dataset* evaluation = nullptr) {
    sequential<T> student = build_from_architecture<T>(architecture_json(victim), "distill: the victim's architecture");
    student.initialize(options.recipe.seed);
    distill_into(student, victim, queries, options, progress, evaluation);
    return student;
}

}  // namespace nnmark
