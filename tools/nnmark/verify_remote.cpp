// verify --url: query a prediction service (nnmark serve, TensorFlow Serving, or any
// server whose answers a response_layout can read) with the key's triggers hidden
// among decoys, and verify its answers like verify --model does a model's.
#include "verify_remote.hpp"

#include "nnmark/core/rng.hpp"
#include "nnmark/data/load.hpp"
#include "nnmark/serve/predict_response.hpp"
#include "nnmark/serve/query_plan.hpp"
#include "nnmark/watermark/trigger_ledger.hpp"
#include "nnmark/watermark/unspent_triggers.hpp"
#include "nnmark/watermark/verify.hpp"

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
        const json doc = json::parse(res.body, "answer");
        if (const json* e = doc.find("error"); e && e->is_string()) return *e->if_string();
    } catch (const error&) {
    }
    return res.body.substr(0, 200);
}

// Statuses after which the same request may succeed: overload, timeouts, restarts.
bool worth_retrying(int status) {
    return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

// One HTTP session with the service: pacing, retries and the counts of what was sent.
class session {
public:
    explicit session(const remote_verify_options& o) : options_(o), pacer_(o.rate) {
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

    // The body of the service's 200 answer to `body`, which holds `images` images.
    std::string post(const std::string& body, long long images) {
        for (int attempt = 0;; ++attempt) {
            pacer_.wait_turn();
            ++requests_;
            images_sent_ += images;
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

    long long requests() const { return requests_; }
    long long images_sent() const { return images_sent_; }

private:
    const remote_verify_options& options_;
    pacer pacer_;
    std::unique_ptr<httplib::Client> client_;
    std::string path_;
    long long requests_ = 0, images_sent_ = 0;
};

}  // namespace remote

namespace remote {

const std::string& dataset_of(const watermark_key& key) { return *key.recipe.find("dataset")->if_string(); }

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

remote_answers ask_remote(const remote_verify_options& o, const dataset& queries, const std::string& default_dataset,
                          const std::function<void()>& before_sending) {
    const auto start = remote::steady::now();
    remote::session service(o);  // first: a malformed URL is reported before any data is read
    rng random(remote::plan_seed(o));
    const dataset decoys = pick_decoys_of(o, default_dataset, queries.size(), random);
    query_plan plan(queries, decoys, random);
    const image_layout layout = o.layout == "chw" ? image_layout::chw : image_layout::hwc;
    const response_layout reply{o.label_field, o.scores};
    index_t non_finite = 0;
    if (before_sending) before_sending();
    for (index_t first = 0; first < plan.size(); first += o.batch) {
        const index_t count = std::min<index_t>(o.batch, plan.size() - first);
        const std::string answer = service.post(plan.request_body(first, count, layout, o.signature), count);
        try {
            const read_predictions_result read = read_predictions(answer, count, reply, queries.classes);
            plan.record(first, read.labels);
            non_finite += read.non_finite;
        } catch (const format_error& e) {
            throw format_error("verify --url: the answer of " + o.url +
                               " does not have the expected layout (see --label-field, --scores): " + e.what());
        }
    }
    remote_answers out{plan.trigger_answers(), plan.decoy_answers(), decoys.labels,
                       o.scores ? std::optional<index_t>(non_finite) : std::nullopt, {}};
    out.transport = {{"url", o.url},
                     {"decoys", decoys.size()},
                     {"decoy_accuracy", plan.decoy_accuracy()},
                     {"queries_sent", service.images_sent()},
                     {"requests", service.requests()},
                     {"seconds", remote::seconds(remote::steady::now() - start).count()}};
    return out;
}

service_replies ask_in_order(const remote_verify_options& o, const unlabeled_images& images, int classes,
                             progress_line& progress) {
    remote::session service(o);
    const image_layout layout = o.layout == "chw" ? image_layout::chw : image_layout::hwc;
    const response_layout reply{o.label_field, o.scores};
    service_replies out;
    for (index_t first = 0; first < images.size(); first += o.batch) {
        const index_t count = std::min<index_t>(o.batch, images.size() - first);
        const std::string answer = service.post(
            predict_request_body(count, images.images.shape().drop_front(), layout, o.signature,
                                 [&](index_t i) { return images.images.item(first + i); }),
            count);
        try {
            read_predictions_result read = read_predictions(answer, count, reply, classes);
            if (o.scores && read.scores.size() != static_cast<std::size_t>(count * classes))
                throw format_error("expected " + std::to_string(classes) + " scores per prediction, found " +
                                   std::to_string(read.scores.size()) + " scores for " + std::to_string(count) +
                                   " predictions");
            out.labels.insert(out.labels.end(), read.labels.begin(), read.labels.end());
            out.scores.insert(out.scores.end(), read.scores.begin(), read.scores.end());
        } catch (const format_error& e) {
            throw format_error(o.command + ": the answer of " + o.url +
                               " does not have the expected layout (see --label-field, --scores): " + e.what());
        }
        progress.update("asked " + std::to_string(first + count) + "/" + std::to_string(images.size()) + " images");
    }
    out.requests = service.requests();
    progress.finish("asked " + std::to_string(images.size()) + " images in " + std::to_string(out.requests) +
                    " requests");
    return out;
}

remote_verification verify_remote(const remote_verify_options& o, const watermark_key& key, double alpha) {
    remote_answers asked = ask_remote(o, key.triggers, remote::dataset_of(key));
    const suspect_answers answers{std::move(asked.queries), std::move(asked.decoys), std::move(asked.decoy_labels),
                                  asked.non_finite_outputs};
    return {verify_answers(key, answers, alpha), std::move(asked.transport)};
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
    const index_t count = spend.triggers ? static_cast<index_t>(spend.triggers) : key.triggers.size();
    const std::string commitment = key.commitment();
    trigger_ledger ledger(spend.ledger.empty() ? key_path + ".ledger" : spend.ledger, commitment);
    const std::size_t spent_before = ledger.spent().size();
    const trigger_selection chosen = [&] {
        try {
            return spend.reuse ? first_key_triggers(key, count)
                               : choose_unspent_triggers(key, ledger.spent(), count, [&](const trigger_recipe& r) {
                                     return remote::fresh_trigger_pool(o, key, r);
                                 });
        } catch (const argument_error& e) {
            throw argument_error(o.command + ", ledger " + ledger.path().filename().string() + ": " + e.what());
        }
    }();
    // Spent the moment they may be seen: before the first request, not after the answers.
    const auto spend_them = [&] {
        ledger.append({commitment, ledger_time_now(), o.url, chosen.fresh, chosen.sha256});
    };
    const watermark_key sent = key_with_triggers(key, chosen);
    remote_answers asked = ask_remote(o, sent.triggers, remote::dataset_of(key), spend_them);
    const suspect_answers answers{std::move(asked.queries), std::move(asked.decoys), std::move(asked.decoy_labels),
                                  asked.non_finite_outputs};
    asked.transport.update({{"ledger", ledger.path().string()},
                            {"fresh_triggers", chosen.fresh},
                            {"triggers_spent_before", spent_before}});
    return {verify_answers(sent, answers, alpha), std::move(asked.transport)};
}

int report_remote_verification(const remote_verification& v, const std::string& commitment, bool json) {
    const verification_result& r = v.result;
    if (!json) {
        const int code = report_verification(r, commitment, false);
        std::printf("asked %s: %lld images (the triggers among %lld decoys) in %lld requests, %.2f s\n",
                    v.transport["url"].get<std::string>().c_str(), v.transport["queries_sent"].get<long long>(),
                    v.transport["decoys"].get<long long>(), v.transport["requests"].get<long long>(),
                    v.transport["seconds"].get<double>());
        if (v.transport.contains("ledger"))
            std::printf("ledger %s: %lld triggers sent, %lld of them new from the key's recipe; %lld trigger images "
                        "were spent before\n",
                        v.transport["ledger"].get<std::string>().c_str(), static_cast<long long>(r.queries),
                        v.transport["fresh_triggers"].get<long long>(),
                        v.transport["triggers_spent_before"].get<long long>());
        return code;
    }
    warn_if_uncalibrated(r);
    nlohmann::json out = verification_json(r, commitment);
    out.update(v.transport);
    print_json(out);
    return r.watermark_present ? success : not_detected;
}

}  // namespace nnmark::cli
