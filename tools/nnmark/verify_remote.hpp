// verify --url: the verify command's questions sent to a prediction service over HTTP
// instead of to a model file. What is asked and how the answers are verified is the
// engine's (serve/prediction_client.hpp, serve/remote_verification.hpp); here are the
// flags, the HTTP client (paced, with timeouts and retries), where decoys and fresh
// triggers come from, and the reports.
#pragma once

#include "cli.hpp"

#include "nnmark/attacks/attacker_data.hpp"
#include "nnmark/core/rng.hpp"
#include "nnmark/train/progress.hpp"
#include "nnmark/serve/prediction_client.hpp"
#include "nnmark/serve/remote_verification.hpp"
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

// The service at `o.url` over HTTP (cpp-httplib): requests paced to o.rate, each
// given o.timeout, retried o.retries times after no answer, 429 or 5xx.
std::unique_ptr<prediction_client> connect_service(const remote_verify_options& o);

// How o's requests are written and answers read (serve/prediction_client.hpp).
service_query service_query_of(const remote_verify_options& o);

// The key's triggers, all of them, whatever was sent before: what calibrate asks
// reference models (they are not suspects watching for a key).
remote_verification verify_remote(const remote_verify_options& options, const watermark_key& key, double alpha);

// verify --url: triggers no earlier verification with the key (at `key_path`) sent, the
// ledger entry written before the first request (serve/remote_verification.hpp).
remote_verification verify_remote_unspent(const remote_verify_options& options, const std::string& key_path,
                                          const watermark_key& key, double alpha);

// The service's answers to `queries`, hidden among decoys from the test split of
// --dataset/--data (default: `default_dataset`).
hidden_answers ask_remote(const remote_verify_options& options, const dataset& queries,
                          const std::string& default_dataset);

// The service's answers to `images`, asked in order (eval --url, attack extract).
service_replies ask_in_order(const remote_verify_options& options, const unlabeled_images& images, int classes,
                             progress_line& progress);

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

// The JSON fields of how a service was asked: url, decoys, decoy_accuracy, queries_sent,
// requests, seconds.
nlohmann::json asking_json(const remote_asking& asking);

// Prints the result as verify --model does, plus the transport fields; returns the exit code.
int report_remote_verification(const remote_verification& v, const std::string& commitment, bool json);

// verify --model's report (verify.cpp), which the text output reuses.
int report_verification(const verification_result& r, const std::string& commitment, bool json);

}  // namespace nnmark::cli
