// attacked_service: what a thief serves after a removal attack, and how an auditor scores
// it (the Watermark Robustness Toolbox's protocol, Lukas et al., IEEE S&P 2022): the
// service's accuracy on held-out data beside the original model's, the watermark verified
// through the service, and the verdict (attacks/verdict.hpp).
//
// An attack changes the model (prune.hpp, finetune.hpp, fineprune.hpp, distill.hpp) or
// the queries on their way to it (transform.hpp): the service is the model and,
// optionally, the transformation every query passes through, so the verifier's triggers
// and decoys are transformed exactly as the users' images are.
#pragma once

#include "nnmark/attacks/transform.hpp"
#include "nnmark/attacks/verdict.hpp"
#include "nnmark/data/dataset.hpp"
#include "nnmark/model/sequential.hpp"
#include "nnmark/train/evaluate.hpp"
#include "nnmark/watermark/key.hpp"
#include "nnmark/watermark/verify.hpp"

#include <optional>

namespace nnmark {

struct attacked_service {
    sequential<float> model;
    std::optional<input_transform> transform;  // none: queries reach the model as sent
};

// Accuracy of the service on `data` (through its transformation).
inline double service_accuracy(const attacked_service& s, const dataset& data) {
    return (s.transform ? evaluate_through(s.model, data, *s.transform) : evaluate(s.model, data)).accuracy();
}

// `key` verified through the service, its triggers among `decoys` (verify.hpp).
inline verification_result verify_service(const attacked_service& s, const watermark_key& key, const dataset& decoys,
                                          double alpha) {
    return s.transform ? verify_through(s.model, key, decoys, *s.transform, alpha) : verify_model(s.model, key, decoys, alpha);
}

struct attack_score {
    double original_accuracy = 0;  // of the model before the attack, on the evaluation data
    double accuracy = 0;           // of the service after it
    std::optional<verification_result> verification;  // with a key
    std::optional<attack_verdict> verdict;            // with a key
};

// The service scored on `evaluation` against `original_accuracy`; with `key`, verified at
// `alpha` (its triggers among `decoys`) and judged by the 5-point criterion.
inline attack_score score_attack(const attacked_service& s, const dataset& evaluation, double original_accuracy,
                                 const watermark_key* key, const dataset& decoys, double alpha) {
    attack_score score{original_accuracy, service_accuracy(s, evaluation), std::nullopt, std::nullopt};
    if (key) {
        score.verification = verify_service(s, *key, decoys, alpha);
        score.verdict = judge_attack(original_accuracy, score.accuracy, score.verification->watermark_present);
    }
    return score;
}

}  // namespace nnmark
