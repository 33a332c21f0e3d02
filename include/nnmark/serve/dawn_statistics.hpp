// dawn_statistics: the p-value of "the suspect answers the registry's images with the
// labels the API altered" (DAWN, Szyller et al., ACM MM 2021, Section 5).
//
// H0: the suspect was trained independently of the server's answers; it never saw the
// altered labels. The test conditions on the suspect's answers:
//   - record i's altered label L_i was drawn by serve/dawn_answers.hpp from digest bits
//     of HMAC-SHA256(secret, client_i, image_i), uniformly over the K - 1 classes other
//     than the victim's own answer v_i (the record keeps v_i). Whether the pair was
//     altered at all comes from other bits of the same digest, so given that it was
//     (that it is in the registry), L_i is still uniform over those K - 1 classes;
//   - the suspect's answer a_i is a function of image_i and of randomness independent of
//     the secret. It may well depend on v_i (a good independent model often agrees with
//     the victim), but whatever a_i is: P[L_i = a_i | a_i] = 0 when a_i = v_i and
//     exactly 1/(K - 1) otherwise;
//   - the records are distinct (client, image) pairs, so their HMAC messages differ and
//     the L_i are independent (HMAC as a pseudorandom function), also given all a_i.
// So given the suspect's answers, the records it answered with v_i cannot match and are
// left out, and the matches k among the other n' records (`informative`) are
// Binomial(n', 1/(K - 1)): watermark/statistics.hpp's binomial tail at p0 = 1/(K - 1)
// over n' is a valid p-value for EVERY such suspect, with no calibration. Leaving those
// records out costs an innocent suspect nothing and gives the test its power: a good
// independent model answers almost every record with v_i (n' near 0, nothing to find),
// while a surrogate that repeats m of the altered labels has n' >= m, and p is about
// (1/(K - 1))^m; testing all n records instead would count every record the surrogate
// answered with v_i as a trial it failed (measured on MNIST: a surrogate repeating 49 of
// 94 altered labels, 50 records answered otherwise, gets p = 1.5e-22 over the 94 and
// 7.8e-46 over the 50).
// The test of each client's records alone is the same argument on a subset; when all
// clients are reported, the per-client p-values are also given Bonferroni-adjusted
// (times the number of clients), since the smallest of many p-values is not one.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/model/sequential.hpp"
#include "nnmark/serve/dawn_registry.hpp"
#include "nnmark/watermark/statistics.hpp"
#include "nnmark/watermark/verify.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>
#include <span>
#include <string>
#include <vector>

namespace nnmark {

struct dawn_client_result {
    std::string client;
    index_t queries = 0;
    index_t informative = 0;  // records the suspect did not answer with the victim's own label
    index_t matches = 0;
    double log10_p_value = 0.0;
    double p_value = 1.0;
    double adjusted_p_value = 1.0;  // min(1, p times the number of clients)
};

struct dawn_verification {
    verification_result overall;  // all the records tested (null_source "dawn")
    index_t informative = 0;      // of them, the ones not answered with the victim's own label
    std::vector<dawn_client_result> clients;
};

namespace detail::dawn {

inline double log10_tail(index_t n, index_t k, int classes) {
    return log_binomial_tail(n, k, 1.0 / (classes - 1)) / std::numbers::ln10;
}

inline int common_classes(std::span<const dawn_record> records) {
    if (records.empty()) throw argument_error("dawn verify: the registry has no records to ask the suspect");
    const int classes = records.front().classes;
    for (const dawn_record& r : records)
        if (r.classes != classes)
            throw format_error("dawn verify: expected every record to be of " + std::to_string(classes) +
                               " classes, found one of " + std::to_string(r.classes));
    return classes;
}

}  // namespace detail::dawn

// A suspect model's label for each record's image, asked as the server saw it (the
// float image, not its bytes); in batches, so the scratch stays small.
template <class T>
std::vector<int> suspect_answers_to_records(const sequential<T>& suspect, std::span<const dawn_record> records) {
    const int classes = detail::dawn::common_classes(records);
    const auto item_of = [](const dawn_record& r) {
        if (r.extents.size() != 3) throw shape_error("expected a record of an image [C, H, W]");
        return shape{r.extents[0], r.extents[1], r.extents[2]};
    };
    const shape& item = suspect.input_item();
    const shape recorded = item_of(records.front());
    if (!(item == recorded) || suspect.output_item().count() != classes)
        throw shape_error("expected a model of " + recorded.str() + " images to " + std::to_string(classes) +
                          " classes, as the records are, found one of " + item.str() + " to " +
                          std::to_string(suspect.output_item().count()));
    constexpr std::size_t batch = 256;
    std::vector<int> labels;
    tensor<T> images, logits;
    inference_buffers<T> buffers;
    for (std::size_t first = 0; first < records.size(); first += batch) {
        const std::size_t count = std::min(batch, records.size() - first);
        images.resize(item.prepend(static_cast<index_t>(count)));
        for (std::size_t i = 0; i < count; ++i) {
            if (!(item_of(records[first + i]) == item))
                throw shape_error("expected every record to be an image " + item.str() + ", found one of " +
                                  item_of(records[first + i]).str());
            std::ranges::copy(records[first + i].image, images.item(static_cast<index_t>(i)).begin());
        }
        suspect.infer(images, logits, buffers);
        for (int label : argmax_rows(logits)) labels.push_back(label);
    }
    return labels;
}

// The test of `answers` (the suspect's label for each record, in order) at level `alpha`.
inline dawn_verification verify_dawn_answers(std::span<const dawn_record> records, std::span<const int> answers,
                                             double alpha) {
    const int classes = detail::dawn::common_classes(records);
    if (answers.size() != records.size())
        throw argument_error("dawn verify: " + std::to_string(answers.size()) + " answers for " +
                             std::to_string(records.size()) + " records");
    std::map<std::string, dawn_client_result> by_client;
    index_t matches = 0, informative = 0;
    for (std::size_t i = 0; i < records.size(); ++i) {
        dawn_client_result& c = by_client[records[i].client];
        const bool match = answers[i] == records[i].answered_label, counts = answers[i] != records[i].own_label;
        ++c.queries;
        c.informative += counts;
        c.matches += match;
        informative += counts;
        matches += match;
    }
    dawn_verification out;
    out.informative = informative;
    verification_result& r = out.overall;
    r.queries = static_cast<index_t>(records.size());
    r.matches = matches;
    r.trigger_accuracy = static_cast<double>(matches) / static_cast<double>(r.queries);
    r.null_rate = 1.0 / (classes - 1);
    r.null_source = "dawn";
    r.log10_p_value = r.population_log10_p_value = detail::dawn::log10_tail(informative, matches, classes);
    r.p_value = std::pow(10.0, r.log10_p_value);
    r.alpha = alpha;
    r.significant = r.watermark_present = r.log10_p_value <= std::log10(alpha);
    const double client_count = static_cast<double>(by_client.size());
    for (auto& [client, c] : by_client) {
        c.client = client;
        c.log10_p_value = detail::dawn::log10_tail(c.informative, c.matches, classes);
        c.p_value = std::pow(10.0, c.log10_p_value);
        c.adjusted_p_value = std::min(1.0, c.p_value * client_count);
        out.clients.push_back(c);
    }
    return out;
}

}  // namespace nnmark
