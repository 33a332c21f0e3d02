// dawn_extraction: a thief's queries answered through DAWN without a server, for
// experiments that measure DAWN against model extraction (`nnmark reproduce`'s
// extract-dawn rows).
//
// `nnmark serve --dawn-registry` decides per request (serve/prediction_service.hpp); an
// experiment asks tens of thousands of queries, and sending them over HTTP would
// measure the transport, not DAWN. answer_through_dawn makes the same decisions
// (serve/dawn_answers.hpp: keyed on the client and the image as the model sees it) on the
// victim's answers in memory and keeps the records a registry would: a surrogate trained
// on `answers` learned exactly what the served API would have taught it, and
// serve/dawn_statistics.hpp tests suspects on `records`.
#pragma once

#include "nnmark/attacks/attacker_data.hpp"
#include "nnmark/attacks/distill.hpp"
#include "nnmark/core/error.hpp"
#include "nnmark/model/sequential.hpp"
#include "nnmark/serve/dawn_answers.hpp"
#include "nnmark/serve/dawn_registry.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace nnmark {

struct dawn_answered_queries {
    // The victim's labels and scores, the altered ones replaced by DAWN's (scores swapped
    // to agree, as the server does: serve/dawn_answers.hpp's swap_scores).
    victim_answers<float> answers;
    std::vector<dawn_record> records;  // one per altered answer, in query order
};

// `victim`'s top-1 answers to `queries` from `client`, with the share `dawn` decides altered
// (records' unix_ms is 0: no clock in an experiment that must repeat exactly).
inline dawn_answered_queries answer_through_dawn(const sequential<float>& victim, const unlabeled_images& queries,
                                                 const dawn_answers& dawn, std::string_view client) {
    if (victim.input_item().rank() != 3)
        throw shape_error("DAWN extraction: expected a victim taking images [C, H, W], this one takes " +
                          victim.input_item().str());
    dawn_answered_queries out{query_victim(victim, queries), {}};
    dataset& asked = out.answers.labelled;
    const shape item = asked.item_shape();
    tensor<float> image;
    for (index_t i = 0; i < asked.size(); ++i) {
        to_float(asked, std::vector<index_t>{i}, image);  // as the served model would see it
        int& label = asked.labels[static_cast<std::size_t>(i)];
        const dawn_decision d = dawn.decide(client, image.span(), label, asked.classes);
        if (!d.altered) continue;
        out.records.push_back({std::string(client), {item[0], item[1], item[2]},
                               {image.span().begin(), image.span().end()}, asked.classes, label, d.label, 0});
        swap_scores(out.answers.scores.item(i), label, d.label);
        label = d.label;
    }
    return out;
}

}  // namespace nnmark
