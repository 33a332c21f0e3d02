// verify --url: the verify command's questions sent to a prediction service over HTTP
// instead of to a model file. The key's triggers go out shuffled among decoys from the
// test set (serve/query_plan.hpp), in batches, at a limited request rate, with
// timeouts and retries; the answers give the same verification_result as --model.
// Triggers are spent once sent: a ledger beside the key records every image sent, and
// later verifications send unspent key triggers or fresh ones of the key's recipe
// (watermark/trigger_ledger.hpp, watermark/unspent_triggers.hpp).
#pragma once

#include "cli.hpp"

#include "nnmark/attacks/attacker_data.hpp"
#include "nnmark/core/rng.hpp"
#include "nnmark/train/progress.hpp"
#include "nnmark/watermark/key.hpp"
#include "nnmark/watermark/verify.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace nnmark::cli {

// How verify --url spends the key's triggers (watermark/trigger_ledger.hpp,
// watermark/unspent_triggers.hpp): --ledger, --triggers, --reuse-triggers, --unrelated-data.
struct trigger_spending {
    std::string ledger;          // empty: <key>.ledger
    long long triggers = 0;      // triggers to send; 0: as many as the key has
    bool reuse = false;          // send the key's first triggers, spent or not
    std::string unrelated_data;  // unrelated keys' source images (empty: datasets/<source dataset>/)
};

struct remote_verify_options {
    std::string url;                         // http://HOST:PORT/v1/models/NAME:predict
    long long decoys = 0;                    // 0: --url as many as the key has triggers, --model up to 1000
    long long batch = 16;                    // images per request
    double rate = 10;                        // requests per second at most
    double timeout = 10;                     // seconds for connecting, sending and receiving
    int retries = 3;                         // further attempts after a failed request
    std::string label_field = "label";       // "": each prediction is the label (or the scores)
    bool scores = false;                     // the label field holds scores: take their argmax
    std::string layout = "hwc";              // how images are written: hwc or chw
    std::string signature;                   // "signature_name" of the requests ("": none)
    std::optional<unsigned long long> seed;  // decoys and order; default: unpredictable
    dataset_options data;                    // where the decoys come from (default: the key's dataset)
    std::string command = "verify --url";    // who asks, in error messages
    std::string batch_flag = "--batch";      // the flag of `batch`, in error messages
    trigger_spending spending;               // verify --url only
};

// How requests are sent and answers read (--batch under the name `batch_flag`, --rate,
// --timeout, --retries, --label-field, --scores, --layout, --signature) on `app`.
void add_transport_options(CLI::App& app, remote_verify_options& o, const std::string& batch_flag);

// The options of asking a service (all above but the URL) on `app`: verify, calibrate.
void add_service_query_options(CLI::App& app, remote_verify_options& o);

// The options above on `verify`, where --url excludes --model. One of them is required,
// checked once the command line is read, after `more_checks` (the command's own).
std::shared_ptr<remote_verify_options> add_remote_verify_options(CLI::App& verify, CLI::Option* model,
                                                                 std::function<void()> more_checks = {});

struct remote_verification {
    verification_result result;
    nlohmann::json transport;  // url, decoys, decoy_accuracy, queries_sent, requests, seconds
};

// The key's triggers, all of them, whatever was sent before: what calibrate asks
// reference models (they are not suspects watching for a key).
remote_verification verify_remote(const remote_verify_options& options, const watermark_key& key, double alpha);

// verify --url: triggers no earlier verification with the key (at `key_path`) sent, the
// ledger entry written before the first request; the transport gains ledger,
// fresh_triggers and triggers_spent_before.
remote_verification verify_remote_unspent(const remote_verify_options& options, const std::string& key_path,
                                          const watermark_key& key, double alpha);

// What a service answered to `queries` sent shuffled among as many decoys (at least).
struct remote_answers {
    std::vector<int> queries, decoys, decoy_labels;
    // Predictions with a non-finite score; labels alone cannot show one (predict_response.hpp).
    std::optional<index_t> non_finite_outputs;
    nlohmann::json transport;  // url, decoys, decoy_accuracy, queries_sent, requests, seconds
};

// What a service answered to images sent in their order, without decoys: the thief of
// attack extract has nothing to hide. With o.scores, the score vectors too.
struct service_replies {
    std::vector<int> labels;
    std::vector<float> scores;  // o.scores only: [N * classes], row after row
    long long requests = 0;
};
service_replies ask_in_order(const remote_verify_options& o, const unlabeled_images& images, int classes,
                             progress_line& progress);

// Asks the service of `options.url` the `queries`, hidden among decoys from the test
// split of --dataset/--data (default: `default_dataset`); `before_sending` runs once the
// queries are ready, before the first request leaves.
remote_answers ask_remote(const remote_verify_options& options, const dataset& queries,
                          const std::string& default_dataset, const std::function<void()>& before_sending = {});

namespace remote {
// The dataset the key was made for (load_key checked the recipe names one as a string).
const std::string& dataset_of(const watermark_key& key);
}  // namespace remote

// `o.decoys` test images of the key's task (`default_count` when 0, at most the test
// split's size): from --dataset/--data, else the dataset the key was made for.
dataset pick_verification_decoys(const remote_verify_options& o, const watermark_key& key, index_t default_count,
                                 rng& random);
// The same from the test split of --dataset/--data, else of `default_dataset`.
dataset pick_decoys_of(const remote_verify_options& o, const std::string& default_dataset, index_t default_count,
                       rng& random);

// Prints the result as verify --model does, plus the transport fields; returns the exit code.
int report_remote_verification(const remote_verification& v, const std::string& commitment, bool json);

// verify --model's report (verify.cpp), which the text output reuses.
int report_verification(const verification_result& r, const std::string& commitment, bool json);

}  // namespace nnmark::cli
