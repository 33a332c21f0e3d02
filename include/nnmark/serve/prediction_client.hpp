// prediction_client: how the owner asks a model he can only reach as a prediction API,
// without saying how the bytes travel.
//
// A remote verification (serve/remote_verification.hpp), a service's accuracy (`eval
// --url`) and a thief's extraction (`attack extract`) all do the same thing: write
// TensorFlow Serving Predict request bodies (serve/predict_request.hpp), send them, and
// read the labels (or scores) out of the answers (serve/predict_response.hpp). Only the
// sending differs: the tool sends over HTTP (with pacing and retries; its HTTP library is
// the tool's dependency, not the engine's), a test or an in-process audit hands the body
// to a serve/prediction_service directly. So the engine states what a transport must do
// (prediction_client) and does everything else itself.
//
// Contract of a prediction_client:
// - predict(body, images) returns the body of the service's successful answer to the
//   Predict request `body`, which holds `images` images, or throws an nnmark::error that
//   says why there is none (refused, unreachable, out of retries);
// - sent() counts every request it made and every image in them, retries included: what
//   the service saw, which the reports state.
//
// ask_in_order() sends images in their order, `batch` at a time; ask_hidden() shuffles
// queries among decoys first (serve/query_plan.hpp), so that a service watching its
// queries cannot tell the owner's from ordinary ones.
#pragma once

#include "nnmark/attacks/attacker_data.hpp"
#include "nnmark/core/error.hpp"
#include "nnmark/core/rng.hpp"
#include "nnmark/data/dataset.hpp"
#include "nnmark/serve/predict_request.hpp"
#include "nnmark/serve/predict_response.hpp"
#include "nnmark/serve/query_plan.hpp"
#include "nnmark/train/progress.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace nnmark {

// What a client sent: the service saw exactly this much.
struct client_traffic {
    long long requests = 0;     // HTTP requests (or their equivalent), retries included
    long long images_sent = 0;  // images in them, a retried request's counted again
};

class prediction_client {
public:
    virtual ~prediction_client() = default;
    // The service's successful answer to `body` (a Predict request of `images` images).
    virtual std::string predict(const std::string& body, index_t images) = 0;
    virtual client_traffic sent() const = 0;
    // Where the service is ("http://host:port/v1/models/m:predict"), for reports and errors.
    virtual const std::string& address() const = 0;
};

// How requests are written and answers read, for one service.
struct service_query {
    index_t batch = 16;                         // images per request
    image_layout layout = image_layout::hwc;    // [H][W][C] (TensorFlow) or [C][H][W] (PyTorch)
    std::string signature;                      // "signature_name" of the requests ("": none)
    response_layout reply{"label", false};      // where each prediction's label (or scores) is
    std::string command = "verify --url";       // who asks, in error messages
};

// What a service answered to images sent in their order.
struct service_replies {
    std::vector<int> labels;
    std::vector<float> scores;  // reply.scores only: [N * classes], row after row
    long long requests = 0;
};

// How queries hidden among decoys were asked.
struct remote_asking {
    std::string address;        // the service asked
    index_t decoys = 0;         // test images the queries were hidden among
    double decoy_accuracy = 0;  // the service's accuracy on them: does it classify the task?
    client_traffic traffic;     // requests and images sent
    double seconds = 0;
};

// What a service answered to queries hidden among decoys, and how it was asked.
struct hidden_answers {
    std::vector<int> queries, decoys, decoy_labels;  // queries in their own order
    // Predictions with a non-finite score (reply.scores only); labels cannot show one.
    std::optional<index_t> non_finite_outputs;
    remote_asking asking;
};

namespace detail {

// The predictions of `answer`, `count` of them, or a format_error naming who asked whom.
inline read_predictions_result read_service_answer(const std::string& answer, index_t count, int classes,
                                                   const service_query& query, const prediction_client& client) {
    try {
        read_predictions_result read = read_predictions(answer, count, query.reply, classes);
        if (query.reply.scores && read.scores.size() != static_cast<std::size_t>(count * classes))
            throw format_error("expected " + std::to_string(classes) + " scores per prediction, found " +
                               std::to_string(read.scores.size()) + " scores for " + std::to_string(count) +
                               " predictions");
        return read;
    } catch (const format_error& e) {
        throw format_error(query.command + ": the answer of " + client.address() +
                           " does not have the expected layout (see --label-field, --scores): " + e.what());
    }
}

inline void check_batch(const service_query& query) {
    if (query.batch < 1)
        throw argument_error(query.command + ": expected at least 1 image per request, found " +
                             std::to_string(query.batch));
}

}  // namespace detail

// The service's answers to `images` (of a `classes`-class task), asked in order.
inline service_replies ask_in_order(prediction_client& client, const service_query& query,
                                    const unlabeled_images& images, int classes, progress_line& progress) {
    detail::check_batch(query);
    service_replies out;
    const long long before = client.sent().requests;
    for (index_t first = 0; first < images.size(); first += query.batch) {
        const index_t count = std::min<index_t>(query.batch, images.size() - first);
        const std::string body =
            predict_request_body(count, images.images.shape().drop_front(), query.layout, query.signature,
                                 [&](index_t i) { return images.images.item(first + i); });
        const read_predictions_result read =
            detail::read_service_answer(client.predict(body, count), count, classes, query, client);
        out.labels.insert(out.labels.end(), read.labels.begin(), read.labels.end());
        out.scores.insert(out.scores.end(), read.scores.begin(), read.scores.end());
        progress.update("asked " + std::to_string(first + count) + "/" + std::to_string(images.size()) + " images");
    }
    out.requests = client.sent().requests - before;
    progress.finish("asked " + std::to_string(images.size()) + " images in " + std::to_string(out.requests) +
                    " requests");
    return out;
}

// The service's answers to `queries`, sent shuffled (by `random`) among `decoys`, which
// must be at least as many (query_plan). `before_sending` runs once the requests are
// ready, before the first leaves: a trigger ledger records them there.
inline hidden_answers ask_hidden(prediction_client& client, const service_query& query, const dataset& queries,
                                 const dataset& decoys, rng& random, const std::function<void()>& before_sending = {}) {
    detail::check_batch(query);
    const auto start = std::chrono::steady_clock::now();
    const client_traffic before = client.sent();
    query_plan plan(queries, decoys, random);
    index_t non_finite = 0;
    if (before_sending) before_sending();
    for (index_t first = 0; first < plan.size(); first += query.batch) {
        const index_t count = std::min<index_t>(query.batch, plan.size() - first);
        const std::string body = plan.request_body(first, count, query.layout, query.signature);
        const read_predictions_result read =
            detail::read_service_answer(client.predict(body, count), count, queries.classes, query, client);
        plan.record(first, read.labels);
        non_finite += read.non_finite;
    }
    const client_traffic after = client.sent();
    hidden_answers out;
    out.queries = plan.trigger_answers();
    out.decoys = plan.decoy_answers();
    out.decoy_labels = decoys.labels;
    if (query.reply.scores) out.non_finite_outputs = non_finite;
    out.asking = {client.address(), decoys.size(), plan.decoy_accuracy(),
                  {after.requests - before.requests, after.images_sent - before.images_sent},
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
    return out;
}

}  // namespace nnmark
