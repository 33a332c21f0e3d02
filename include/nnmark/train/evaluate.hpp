// evaluate: accuracy and mean loss of a model on a labelled dataset, in eval mode.
//
// Runs the const inference path batch by batch (the layers parallelize inside each
// batch), so it never changes the model and can run while another thread serves it.
#pragma once

#include "nnmark/data/dataset.hpp"
#include "nnmark/layers/softmax_cross_entropy.hpp"
#include "nnmark/model/sequential.hpp"

#include <algorithm>
#include <numeric>
#include <vector>

namespace nnmark {

struct evaluation {
    index_t images = 0;
    index_t correct = 0;
    double mean_loss = 0;
    double accuracy() const { return images ? static_cast<double>(correct) / static_cast<double>(images) : 0.0; }
};

// Runs the model over `data` in order, `batch` images at a time, and calls
// visit(first_index, logits) for each batch.
template <class T, class Visit>
void for_each_batch_logits(const sequential<T>& model, const dataset& data, index_t batch, Visit&& visit) {
    inference_buffers<T> buffers;
    tensor<T> images, logits;
    std::vector<index_t> indices;
    for (index_t first = 0; first < data.size(); first += batch) {
        indices.resize(static_cast<std::size_t>(std::min(batch, data.size() - first)));
        std::iota(indices.begin(), indices.end(), first);
        to_float(data, indices, images);
        model.infer(images, logits, buffers);
        visit(first, static_cast<const tensor<T>&>(logits));
    }
}

// Top-1 labels the model predicts for every image of `data`.
template <class T>
std::vector<int> predict_labels(const sequential<T>& model, const dataset& data, index_t batch = 256) {
    std::vector<int> predictions;
    predictions.reserve(static_cast<std::size_t>(data.size()));
    for_each_batch_logits(model, data, batch, [&](index_t, const tensor<T>& logits) {
        for (int label : argmax_rows(logits)) predictions.push_back(label);
    });
    return predictions;
}

// The accuracy and mean loss of `model` on `data`; each batch's logits also go to
// visit(first_index, logits), for callers that report every image (nnmark eval
// --predictions) without a second pass.
template <class T, class Visit>
evaluation evaluate_visiting(const sequential<T>& model, const dataset& data, index_t batch, Visit&& visit) {
    evaluation result;
    double loss_sum = 0;
    for_each_batch_logits(model, data, batch, [&](index_t first, const tensor<T>& logits) {
        visit(first, logits);
        const index_t count = logits.batch();
        const std::span<const int> labels(data.labels.data() + first, static_cast<std::size_t>(count));
        loss_sum += static_cast<double>(softmax_cross_entropy(logits, labels, static_cast<tensor<T>*>(nullptr))) *
                    static_cast<double>(count);
        const std::vector<int> predicted = argmax_rows(logits);
        for (index_t i = 0; i < count; ++i)
            result.correct += predicted[static_cast<std::size_t>(i)] == labels[static_cast<std::size_t>(i)];
        result.images += count;
    });
    result.mean_loss = result.images ? loss_sum / static_cast<double>(result.images) : 0.0;
    return result;
}

template <class T>
evaluation evaluate(const sequential<T>& model, const dataset& data, index_t batch = 256) {
    return evaluate_visiting(model, data, batch, [](index_t, const tensor<T>&) {});
}

}  // namespace nnmark
