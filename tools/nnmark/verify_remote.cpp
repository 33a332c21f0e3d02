// verify --url: query a prediction service (nnmark serve, TensorFlow Serving, or any
// server whose answers a response_layout can read) with the key's triggers hidden
// among decoys, and verify its answers like verify --model does a model's.
#include "verify_remote.hpp"

#include "nnmark/core/rng.hpp"
#include "nnmark/data/load.hpp"
#include "nnmark/serve/prediction_client.hpp"
#include "nnmark/serve/query_plan.hpp"
#include "nnmark/serve/remote_verification.hpp"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

namespace nnmark::cli {

// A named namespace: the tool compiles as one translation unit with the other commands.
namespace remote {

using seconds = std::chrono::duration<double>;
using steady = std::chrono::steady_clock;

// "http://host:port/v1/models/m:predict" -> {"http://host:port", "/v1/models/m:predict"};
// a URL without a path means the default model's predict endpoint.
std::pair<std::string, std::string> split_url(const std::string& url, const std::string& command) {
    const std::size_t scheme = url.find("://");
    if (scheme == std::string::npos || (url.compare(0, scheme, "http") != 0 && url.compare(0, scheme, "https") != 0))
        throw argument_error(command + ": expected http://HOST:PORT/v1/models/NAME:predict, found \"" + url + "\"");
    const std::size_t path = url.find('/', scheme + 3);
    if (path == std::string::npos || path + 1 == url.size()) return {url.substr(0, path), "/v1/models/default:predict"};
    return {url.substr(0, path), url.substr(path)};
}

// Starts requests at most `rate` per second: each waits for its turn 1/rate after the last.
class pacer {
public:
    explicit pacer(double rate) : interval_(std::chrono::duration_cast<steady::duration>(seconds(1.0 / rate))) {}
    void wait_turn() {
        std::this_thread::sleep_until(next_);
        next_ = std::max(next_, steady::now()) + interval_;
    }

private:
    steady::duration interval_;
    steady::time_point next_ = steady::now();
};

// The service's own words for a failure: the "error" of a JSON body, else the body.
std::string service_message(const httplib::Response& res) {
    try {
        const json doc = parse_json(res.body, "answer");
        if (const auto e = doc.find("error"); e != doc.end() && e->is_string()) return e->get<std::string>();
    } catch (const error&) {
    }
    return res.body.substr(0, 200);
}

// Statuses after which the same request may succeed: overload, timeouts, restarts.
bool worth_retrying(int status) {
    return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

// The service over one keep-alive HTTP connection: pacing, retries and the counts of
// what was sent (retries included: the service saw them).
class http_client final : public prediction_client {
public:
    explicit http_client(const remote_verify_options& o) : options_(o), pacer_(o.rate) {
        const auto [origin, path] = split_url(o.url, o.command);
        path_ = path;
        client_ = std::make_unique<httplib::Client>(origin);
        if (!client_->is_valid())
            throw argument_error(o.command + ": cannot use \"" + origin + "\" as an HTTP address");
        const auto timeout = std::chrono::duration_cast<std::chrono::microseconds>(seconds(o.timeout));
        client_->set_connection_timeout(timeout);
        client_->set_read_timeout(timeout);
        client_->set_write_timeout(timeout);
        client_->set_keep_alive(true);
        client_->set_tcp_nodelay(true);  // no 40 ms waits for delayed ACKs between small writes
    }

    std::string predict(const std::string& body, index_t images) override {
        for (int attempt = 0;; ++attempt) {
            pacer_.wait_turn();
            ++sent_.requests;
            sent_.images_sent += images;
            const httplib::Result result = client_->Post(path_, body, "application/json");
            std::string problem;
            if (!result) {
                problem = "no answer (" + httplib::to_string(result.error()) + ")";
            } else if (result->status == 200) {
                return result->body;
            } else {
                problem = "HTTP " + std::to_string(result->status) + ": " + service_message(*result);
                if (!worth_retrying(result->status))
                    throw error(options_.command + ": " + options_.url + " refused a request of " + std::to_string(images) +
                                " images: " + problem + (result->status == 413 ? " (a smaller " + options_.batch_flag + " may fit)" : ""));
            }
            if (attempt == options_.retries)
                throw io_error(options_.command + ": " + options_.url + " failed " + std::to_string(attempt + 1) +
                               " times, last with " + problem);
            // Exponential backoff gives an overloaded or restarting service time to recover.
            std::this_thread::sleep_for(seconds(0.25 * (1 << std::min(attempt, 6))));
        }
    }

    client_traffic sent() const override { return sent_; }
    const std::string& address() const override { return options_.url; }

private:
    const remote_verify_options& options_;
    pacer pacer_;
    std::unique_ptr<httplib::Client> client_;
    std::string path_;
    client_traffic sent_;
};

}  // namespace remote

namespace remote {

// The dataset the key was made for (load_key checked the recipe names one as a string).
const std::string& dataset_of(const watermark_key& key) { return key.recipe.at("dataset").get_ref<const std::string&>(); }

}  // namespace remote

dataset pick_verification_decoys(const remote_verify_options& o, const watermark_key& key, index_t default_count,
                                 rng& random) {
    return pick_decoys_of(o, remote::dataset_of(key), default_count, random);
}

dataset pick_decoys_of(const remote_verify_options& o, const std::string& default_dataset, index_t default_count,
                       rng& random) {
    dataset_options data = o.data;
    if (data.name.empty()) data.name = default_dataset;
    dataset test;
    try {
        test = load_dataset(data.name, data.resolved_dir(), false);
    } catch (const error& e) {
        throw io_error("verify: the decoys (test images the suspect must classify) come from the test split of '" +
                       data.name + "' (--dataset, --data): " + e.what());
    }
    return pick_decoys(test, o.decoys ? o.decoys : std::min(default_count, test.size()), random);
}

namespace remote {

std::uint64_t plan_seed(const remote_verify_options& o) {
    if (o.seed) return *o.seed;
    std::random_device device;  // the service must not be able to predict the order
    return (std::uint64_t(device()) << 32) ^ device();
}

}  // namespace remote

void add_transport_options(CLI::App& app, remote_verify_options& o, const std::string& batch_flag) {
    o.batch_flag = batch_flag;
    app.add_option(batch_flag, o.batch, "Images per request")->check(CLI::Range(1LL, 1LL << 20))->capture_default_str();
    app.add_option("--rate", o.rate, "Requests per second at most")->check(CLI::Range(0.001, 1e6))->capture_default_str();
    app.add_option("--timeout", o.timeout, "Seconds to connect, send and receive")
        ->check(CLI::Range(0.001, 3600.0))
        ->capture_default_str();
    app.add_option("--retries", o.retries, "Further attempts after a failed request (no answer, 429, 5xx)")
        ->check(CLI::Range(0, 100))
        ->capture_default_str();
    app.add_option("--label-field", o.label_field,
                   "Field of each prediction that holds the label (\"\": the prediction itself)")
        ->capture_default_str();
    app.add_flag("--scores", o.scores, "The label field holds class scores: the label is their argmax");
    app.add_option("--layout", o.layout, "How images are sent: hwc ([H][W][C], TensorFlow) or chw ([C][H][W], PyTorch)")
        ->check(CLI::IsMember({"hwc", "chw"}))
        ->capture_default_str();
    app.add_option("--signature", o.signature, "\"signature_name\" to send, e.g. scores (nnmark serve: answer scores too)");
}

void add_service_query_options(CLI::App& app, remote_verify_options& o) {
    o.data.name.clear();
    app.add_option("--decoys", o.decoys,
                   "Test images asked with the triggers, to check the suspect classifies the task (--url: default "
                   "and minimum as many as triggers, hiding them; --model: default up to 1000)")
        ->check(CLI::Range(0LL, 1LL << 30));
    add_transport_options(app, o, "--batch");
    app.add_option("--seed", o.seed, "Seed for the decoys and the order (default: unpredictable)");
    o.data.add_to(app, false);  // where the decoys come from (default: the key's dataset)
}

std::shared_ptr<remote_verify_options> add_remote_verify_options(CLI::App& verify, CLI::Option* model,
                                                                 std::function<void()> more_checks) {
    auto o = std::make_shared<remote_verify_options>();
    CLI::Option* url = verify.add_option("--url", o->url,
                                         "Prediction service to verify instead of a model file: "
                                         "http://HOST:PORT/v1/models/NAME:predict (TensorFlow Serving REST)");
    url->excludes(model);
    model->excludes(url);
    add_service_query_options(verify, *o);
    trigger_spending& spend = o->spending;
    verify.add_option("--ledger", spend.ledger,
                      "With --url: the file recording every trigger image sent, so none is sent twice "
                      "(default: KEY.ledger)")
        ->needs(url);
    verify.add_option("--triggers", spend.triggers, "With --url: triggers to send (default: as many as the key has)")
        ->check(CLI::Range(1LL, 1LL << 30))
        ->needs(url);
    verify.add_flag("--reuse-triggers", spend.reuse,
                    "With --url: send the key's first triggers even if sent before (a thief who logged them can "
                    "filter them out)")
        ->needs(url);
    verify.add_option("--unrelated-data", spend.unrelated_data,
                      "With --url: directory of an unrelated key's source dataset, for new triggers (default: "
                      "datasets/<name>/)")
        ->needs(url);
    // One of --model and --url: checked once the command line is read, as a usage error.
    verify.parse_complete_callback([o, model, more_checks] {
        if (more_checks) more_checks();
        if (o->url.empty() && model->count() == 0) throw CLI::RequiredError("--model or --url");
    });
    return o;
}

std::unique_ptr<prediction_client> connect_service(const remote_verify_options& o) {
    return std::make_unique<remote::http_client>(o);
}

service_query service_query_of(const remote_verify_options& o) {
    return {o.batch, o.layout == "chw" ? image_layout::chw : image_layout::hwc, o.signature,
            response_layout{o.label_field, o.scores}, o.command};
}

hidden_answers ask_remote(const remote_verify_options& o, const dataset& queries, const std::string& default_dataset) {
    const auto client = connect_service(o);  // first: a malformed URL is reported before any data is read
    rng random(remote::plan_seed(o));
    const dataset decoys = pick_decoys_of(o, default_dataset, queries.size(), random);
    return ask_hidden(*client, service_query_of(o), queries, decoys, random);
}

service_replies ask_in_order(const remote_verify_options& o, const unlabeled_images& images, int classes,
                             progress_line& progress) {
    return ask_in_order(*connect_service(o), service_query_of(o), images, classes, progress);
}

remote_verification verify_remote(const remote_verify_options& o, const watermark_key& key, double alpha) {
    const auto client = connect_service(o);
    rng random(remote::plan_seed(o));
    const dataset decoys = pick_verification_decoys(o, key, key.triggers.size(), random);
    return verify_service(*client, service_query_of(o), key, decoys, random, alpha);
}

namespace remote {

// The images a key's fresh triggers are made from (watermark/unspent_triggers.hpp): the
// training split's source class of the key's dataset (--dataset, --data), or of the
// recipe's source dataset for unrelated triggers (--unrelated-data).
dataset fresh_trigger_pool(const remote_verify_options& o, const watermark_key& key, const trigger_recipe& recipe) {
    const bool unrelated = recipe.kind == trigger_kind::unrelated;
    dataset_options data = o.data;
    if (data.name.empty()) data.name = dataset_of(key);
    if (unrelated) data = {recipe.source_dataset, o.spending.unrelated_data};
    try {
        return load_dataset(data.name, data.resolved_dir(), true).filter_by_label(recipe.source);
    } catch (const error& e) {
        throw io_error(o.command + ": new triggers are made from the training split of '" + data.name + "' (" +
                       (unrelated ? "--unrelated-data" : "--dataset, --data") + "): " + e.what());
    }
}

}  // namespace remote

remote_verification verify_remote_unspent(const remote_verify_options& o, const std::string& key_path,
                                          const watermark_key& key, double alpha) {
    const trigger_spending& spend = o.spending;
    const auto client = connect_service(o);
    rng random(remote::plan_seed(o));
    const index_t count = spend.triggers ? static_cast<index_t>(spend.triggers) : key.triggers.size();
    const dataset decoys = pick_verification_decoys(o, key, count, random);
    return verify_service_unspent(*client, service_query_of(o), key, spend.ledger.empty() ? key_path + ".ledger" : spend.ledger,
                                  {count, spend.reuse},
                                  [&](const trigger_recipe& r) { return remote::fresh_trigger_pool(o, key, r); },
                                  decoys, random, alpha);
}

nlohmann::json asking_json(const remote_asking& a) {
    return {{"url", a.address},
            {"decoys", a.decoys},
            {"decoy_accuracy", a.decoy_accuracy},
            {"queries_sent", a.traffic.images_sent},
            {"requests", a.traffic.requests},
            {"seconds", a.seconds}};
}

int report_remote_verification(const remote_verification& v, const std::string& commitment, bool json) {
    const verification_result& r = v.result;
    const remote_asking& a = v.asking;
    if (!json) {
        const int code = report_verification(r, commitment, false);
        std::printf("asked %s: %lld images (the triggers among %lld decoys) in %lld requests, %.2f s\n",
                    a.address.c_str(), a.traffic.images_sent, static_cast<long long>(a.decoys), a.traffic.requests,
                    a.seconds);
        if (const auto& spent = v.spending)
            std::printf("ledger %s: %lld triggers sent, %lld of them new from the key's recipe; %lld trigger images "
                        "were spent before\n",
                        spent->ledger.string().c_str(), static_cast<long long>(r.queries),
                        static_cast<long long>(spent->fresh_triggers),
                        static_cast<long long>(spent->triggers_spent_before));
        return code;
    }
    warn_if_uncalibrated(r);
    nlohmann::json out = verification_json(r, commitment);
    out.update(asking_json(a));
    if (const auto& spent = v.spending)
        out.update({{"ledger", spent->ledger.string()},
                    {"fresh_triggers", spent->fresh_triggers},
                    {"triggers_spent_before", spent->triggers_spent_before}});
    print_json(out);
    return r.watermark_present ? success : not_detected;
}

}  // namespace nnmark::cli
