// false_accusation: how often verification accuses a model that never saw the key.
//
// Evidence software is judged first by the innocent: a p-value is only an argument if
// models without the watermark rarely reach it (watermark/statistics.hpp states the null;
// this measures it on models). A study verifies each key, exactly as `verify --model`
// does, against suspects that never saw it, and counts the accusations:
// - clean models trained independently (other seeds and recipes);
// - models watermarked with other keys (a watermark must not look like every other);
// - degenerate suspects: a constant answer, uniform random guesses, NaN outputs, which
//   suspect_checks.hpp must refuse to call classifiers, never to accuse;
// - a model of another task, and clean models after removal attacks.
// A target-label key's null is calibrated on reference models (key.hpp's calibrate), and a
// suspect derived from one of them (the model itself, or its attacked copy) would be
// part of its own calibration: it pulls the fitted null towards its own answers and
// makes accusing it harder, which flatters the study. So each verdict is computed with
// that reference left out (leave-one-out, as in cross-validation).
// Random-label keys need no calibration: their null, 1/(K-1), holds for any model that
// never saw the key (statistics.hpp).
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/rng.hpp"
#include "nnmark/model/sequential.hpp"
#include "nnmark/watermark/key.hpp"
#include "nnmark/watermark/verify.hpp"

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace nnmark {

// One model asked about a key: its name, the group it belongs to in the tables, the
// reference model it derives from, and how it answers a key's triggers and decoys.
struct study_suspect {
    std::string name, group;
    int origin = -1;  // index into the references it derives from (left out of its calibrations); -1: none
    std::function<suspect_answers(const watermark_key&)> answer;
};

// A model asked as verify --model asks it: the key's triggers and `decoys` (both
// must outlive the suspect's use).
template <class T>
study_suspect model_suspect(std::string name, std::string group, int origin, sequential<T> model,
                            const dataset& decoys) {
    auto shared = std::make_shared<const sequential<T>>(std::move(model));
    return {std::move(name), std::move(group), origin,
            [shared, &decoys](const watermark_key& key) { return ask_model(*shared, key, decoys); }};
}

// A suspect answering every query with a class drawn uniformly, afresh for every key:
// a service that guesses. Its trigger matches follow the null exactly; its decoy
// accuracy (1/K) is what suspect_checks refuses.
inline study_suspect guessing_suspect(std::string name, std::uint64_t seed, const dataset& decoys) {
    auto random = std::make_shared<rng>(seed);
    return {std::move(name), "degenerate", -1, [random, &decoys](const watermark_key& key) {
                const auto guesses = [&](index_t n) {
                    std::vector<int> g(static_cast<std::size_t>(n));
                    for (int& label : g) label = static_cast<int>(random->below(static_cast<std::uint64_t>(key.triggers.classes)));
                    return g;
                };
                return suspect_answers{guesses(key.triggers.size()), guesses(decoys.size()), decoys.labels, index_t{0}};
            }};
}

// The key's verdict on one suspect.
struct accusation {
    std::string key, model, group;
    verification_result result;
};

// How many verdicts accused, and how the innocent p-values spread.
struct accusation_summary {
    std::size_t pairs = 0;
    std::size_t accusations = 0;   // watermark declared present
    double share_p_at_most_0_01 = 0;
    double share_p_at_most_0_05 = 0;
};

// `key` calibrated on `references` but the one at index `left_out` (-1: all of them);
// calibrate() refuses fewer than 2.
inline watermark_key calibrated_without(watermark_key key, const std::vector<reference_model>& references, int left_out) {
    std::vector<reference_model> used;
    for (std::size_t i = 0; i < references.size(); ++i)
        if (static_cast<int>(i) != left_out) used.push_back(references[i]);
    key.calibration = calibrate(std::move(used), key.triggers.size());
    return key;
}

// The verdict of `key` (named `key_name`) on `suspect` at level `alpha`: a target-label
// key calibrated on `references` without the suspect's origin, a random-label key as it is.
inline accusation verdict_on(const std::string& key_name, const watermark_key& key,
                             const std::vector<reference_model>& references, const study_suspect& suspect,
                             double alpha) {
    const watermark_key used = has_random_labels(key) ? key : calibrated_without(key, references, suspect.origin);
    return {key_name, suspect.name, suspect.group, verify_answers(used, suspect.answer(used), alpha)};
}

inline accusation_summary summarize(const std::vector<accusation>& verdicts) {
    accusation_summary s;
    s.pairs = verdicts.size();
    if (verdicts.empty()) return s;
    double at_most_01 = 0, at_most_05 = 0;
    for (const accusation& a : verdicts) {
        s.accusations += a.result.watermark_present;
        at_most_01 += a.result.log10_p_value <= std::log10(0.01);
        at_most_05 += a.result.log10_p_value <= std::log10(0.05);
    }
    s.share_p_at_most_0_01 = at_most_01 / static_cast<double>(verdicts.size());
    s.share_p_at_most_0_05 = at_most_05 / static_cast<double>(verdicts.size());
    return s;
}

}  // namespace nnmark
