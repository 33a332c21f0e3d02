// query_plan: what a remote verification asks a prediction service, and in which order.
//
// A suspect who serves a stolen model may watch its queries. If the key's triggers
// came alone, or first, or in a batch of their own, the service could recognize them
// and answer them differently. So the triggers are shuffled among at least as many
// decoys, ordinary test-set images chosen at random, and sent in batches of mixed
// images: from its position or its batch, a query reveals nothing about being a trigger.
// (A trigger's own pixels may still stand out, e.g. an "unrelated" trigger; decoys
// cannot hide that, a key generator has to.)
//
// The plan writes request bodies for consecutive slices of the shuffled order, takes
// back the labels the service answered, and hands the trigger answers to
// watermark/verify.hpp's verify_answers in key order. The decoy answers give the
// service's accuracy on ordinary images: a service that answers at random, or a model
// for another task, shows there.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/rng.hpp"
#include "nnmark/data/dataset.hpp"
#include "nnmark/serve/predict_request.hpp"

#include <algorithm>
#include <numeric>
#include <span>
#include <string>
#include <vector>

namespace nnmark {

// `count` images of `test` chosen uniformly without repetition.
inline dataset pick_decoys(const dataset& test, index_t count, rng& random) {
    if (count > test.size())
        throw argument_error("decoys: " + std::to_string(count) + " decoys asked for, the test set '" + test.name +
                             "' has only " + std::to_string(test.size()) + " images");
    std::vector<index_t> order(static_cast<std::size_t>(test.size()));
    std::iota(order.begin(), order.end(), index_t(0));
    random.shuffle(order);
    order.resize(static_cast<std::size_t>(count));
    return test.subset(order);
}

class query_plan {
public:
    // Both datasets must outlive the plan. Throws argument_error when there are fewer
    // decoys than triggers or their images differ in shape.
    query_plan(const dataset& triggers, const dataset& decoys, rng& random) : triggers_(triggers), decoys_(decoys) {
        if (decoys.size() < triggers.size())
            throw argument_error("query plan: " + std::to_string(decoys.size()) + " decoys for " +
                                 std::to_string(triggers.size()) +
                                 " triggers; at least as many decoys are needed to hide them");
        if (!(decoys.item_shape() == triggers.item_shape()))
            throw argument_error("query plan: the decoys are " + decoys.item_shape().str() + " images, the triggers " +
                                 triggers.item_shape().str());
        for (index_t i = 0; i < triggers.size(); ++i) queries_.push_back({true, i});
        for (index_t i = 0; i < decoys.size(); ++i) queries_.push_back({false, i});
        random.shuffle(queries_);
        answers_.assign(queries_.size(), unanswered);
    }

    index_t size() const { return static_cast<index_t>(queries_.size()); }

    // {"instances": [...]} for the queries [first, first + count) as 0-255 integers,
    // with "signature_name" when one is given.
    std::string request_body(index_t first, index_t count, image_layout layout,
                             const std::string& signature = "") const {
        check_slice(first, count);
        return predict_request_body(count, triggers_.item_shape(), layout, signature, [&](index_t i) {
            const query& query = queries_[static_cast<std::size_t>(first + i)];
            return (query.trigger ? triggers_ : decoys_).images.item(query.index);
        });
    }

    // The service's labels for the queries [first, first + labels.size()).
    void record(index_t first, std::span<const int> labels) {
        check_slice(first, static_cast<index_t>(labels.size()));
        std::copy(labels.begin(), labels.end(), answers_.begin() + first);
    }

    // The answers to the triggers (in key order) and to the decoys (in decoy order).
    // Throw unless every query was answered.
    std::vector<int> trigger_answers() const { return answers_of(true, triggers_.size()); }
    std::vector<int> decoy_answers() const { return answers_of(false, decoys_.size()); }

    // Fraction of the decoys answered with their test-set label.
    double decoy_accuracy() const {
        index_t correct = 0;
        for (std::size_t q = 0; q < queries_.size(); ++q)
            if (!queries_[q].trigger)
                correct += answers_[q] == decoys_.labels[static_cast<std::size_t>(queries_[q].index)];
        return decoys_.size() ? static_cast<double>(correct) / static_cast<double>(decoys_.size()) : 0.0;
    }

private:
    struct query {
        bool trigger;   // a trigger of the key, else a decoy
        index_t index;  // into the triggers or the decoys
    };
    static constexpr int unanswered = -1;

    std::vector<int> answers_of(bool triggers, index_t count) const {
        std::vector<int> out(static_cast<std::size_t>(count));
        for (std::size_t q = 0; q < queries_.size(); ++q) {
            if (answers_[q] == unanswered)
                throw error("query plan: query " + std::to_string(q) + " of " + std::to_string(queries_.size()) +
                            " has no answer");
            if (queries_[q].trigger == triggers) out[static_cast<std::size_t>(queries_[q].index)] = answers_[q];
        }
        return out;
    }

    void check_slice(index_t first, index_t count) const {
        if (first < 0 || count < 0 || first + count > size())
            throw argument_error("query plan: queries " + std::to_string(first) + ".." + std::to_string(first + count) +
                                 " are outside the plan's " + std::to_string(size()));
    }

    const dataset& triggers_;
    const dataset& decoys_;
    std::vector<query> queries_;
    std::vector<int> answers_;
};

}  // namespace nnmark
