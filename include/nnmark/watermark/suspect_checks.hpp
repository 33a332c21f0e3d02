// suspect_checks: does the suspect behave as a classifier of the key's task at all?
//
// A p-value answers "how unlikely are these trigger answers for a model that never saw
// the key", and for target labels that rests on innocent models being like the reference
// models (watermark/statistics.hpp). A suspect that answers the target for every input,
// or whose outputs are NaN, is like no reference model: its answers to the triggers say
// nothing about the key. So before a watermark is declared present, the suspect's answers
// to decoys (test images of the key's task, asked in the same session) must show a
// classifier of that task:
// - decoy accuracy at least 1/2: every model a thief would bother to steal and serve is
//   far above (the paper's MNIST and CIFAR-10 models reach 99% and 78%);
// - its most frequent answer at most (1 + 1/K)/2 of the decoys (0.55 for K = 10): a
//   classifier of balanced test images answers each class about 1/K of the time, a
//   degenerate one mostly one class;
// - every output finite, when the outputs are seen (a model in memory, or scores).
// A failed check can only turn "present" into "not detected", never the other way, so
// it costs power on broken copies and never accuses anyone.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/shape.hpp"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace nnmark {

struct suspect_checks {
    bool run = false;                // false: no decoys were asked (an owner's study of its own attacked copies)
    index_t decoys = 0;
    double decoy_accuracy = 0.0;
    int most_frequent_answer = -1;
    double most_frequent_share = 0.0;           // of the decoys
    std::optional<index_t> non_finite_outputs;  // queries with a NaN or infinite output; unknown for labels only
    std::string failure;                        // empty when the suspect behaves as a classifier; else why not

    bool passed() const { return failure.empty(); }
};

inline constexpr double minimum_decoy_accuracy = 0.5;

inline double largest_answer_share(int classes) { return (1.0 + 1.0 / classes) / 2.0; }

namespace detail {

inline std::string percent_text(double share) {
    char text[16];
    std::snprintf(text, sizeof text, "%.1f%%", 100 * share);
    return text;
}

// The first check that fails, in one line, or "".
inline std::string first_failed_check(const suspect_checks& c, int classes) {
    if (c.non_finite_outputs && *c.non_finite_outputs > 0)
        return "the suspect's outputs are not finite (NaN or infinite) for " + std::to_string(*c.non_finite_outputs) +
               " queries";
    if (c.decoy_accuracy < minimum_decoy_accuracy)
        return "the suspect is not a classifier of the task: " + percent_text(c.decoy_accuracy) + " of " +
               std::to_string(c.decoys) + " test images right (at least " + percent_text(minimum_decoy_accuracy) +
               " needed)";
    if (c.most_frequent_share > largest_answer_share(classes))
        return "the suspect is not a classifier of the task: it answers class " + std::to_string(c.most_frequent_answer) +
               " for " + percent_text(c.most_frequent_share) + " of " + std::to_string(c.decoys) +
               " test images (at most " + percent_text(largest_answer_share(classes)) + " expected)";
    return "";
}

}  // namespace detail

// The checks on a suspect's answers to decoys of known labels, for a task of `classes`
// classes. non_finite_outputs: how many of all queries had a non-finite output, when known.
inline suspect_checks check_suspect(std::span<const int> decoy_answers, std::span<const int> decoy_labels, int classes,
                                    std::optional<index_t> non_finite_outputs) {
    if (decoy_answers.size() != decoy_labels.size())
        throw argument_error("suspect checks: " + std::to_string(decoy_answers.size()) + " answers for " +
                             std::to_string(decoy_labels.size()) + " decoys");
    if (decoy_answers.empty()) throw argument_error("suspect checks: no decoys were asked");
    if (classes < 2) throw argument_error("suspect checks: a task of " + std::to_string(classes) + " classes");
    suspect_checks c;
    c.run = true;
    c.decoys = static_cast<index_t>(decoy_answers.size());
    c.non_finite_outputs = non_finite_outputs;
    std::vector<index_t> answered(static_cast<std::size_t>(classes), 0);
    index_t correct = 0;
    for (std::size_t i = 0; i < decoy_answers.size(); ++i) {
        const int a = decoy_answers[i];
        if (a >= 0 && a < classes) ++answered[static_cast<std::size_t>(a)];
        correct += a == decoy_labels[i];
    }
    const auto top = std::max_element(answered.begin(), answered.end());
    c.decoy_accuracy = static_cast<double>(correct) / static_cast<double>(c.decoys);
    c.most_frequent_answer = static_cast<int>(top - answered.begin());
    c.most_frequent_share = static_cast<double>(*top) / static_cast<double>(c.decoys);
    c.failure = detail::first_failed_check(c, classes);
    return c;
}

}  // namespace nnmark
