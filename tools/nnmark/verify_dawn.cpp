// verify --dawn-registry: did a suspect learn the answers DAWN altered (Szyller et al.,
// ACM MM 2021)? The registry's recorded images are asked of the suspect (a model file,
// or a service with --url, where they go out shuffled among test-set decoys as a key's
// triggers do), and its matches with the recorded labels are tested against the
// randomisation bound of serve/dawn_statistics.hpp. Exit codes as verify: 0 present,
// 1 not detected, 2 bad input (a registry whose records do not check out included).
#include "verify_dawn.hpp"
#include "training_options.hpp"

#include "nnmark/model/model_file.hpp"
#include "nnmark/serve/dawn_answers.hpp"
#include "nnmark/serve/dawn_registry.hpp"
#include "nnmark/serve/dawn_statistics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace nnmark::cli {

namespace dawn_verifying {

// A record's image shape [C, H, W] (the registry reader accepts rank 3 only).
shape item_of(const dawn_record& r) { return {r.extents[0], r.extents[1], r.extents[2]}; }

// The records of --client, or all of them.
std::vector<dawn_record> chosen_records(const dawn_registry_contents& contents, const dawn_verify_options& o) {
    std::vector<dawn_record> chosen;
    for (const dawn_record& r : contents.records)
        if (o.client.empty() || r.client == o.client) chosen.push_back(r);
    if (chosen.empty())
        throw argument_error("verify --dawn-registry: expected recorded answers" +
                             (o.client.empty() ? std::string() : " to client \"" + o.client + "\"") + " in '" +
                             o.registry + "', found none of " + std::to_string(contents.records.size()));
    // One server's records are of one model's input; images of several cannot go to one suspect.
    for (const dawn_record& r : chosen)
        if (r.extents != chosen.front().extents)
            throw format_error("verify --dawn-registry: expected the records of '" + o.registry +
                               "' to be images of one shape, found " + item_of(chosen.front()).str() + " and " +
                               item_of(r).str());
    return chosen;
}

// The suspect model's labels for the records' images.
std::vector<int> model_answers(const suspect_file& file, const std::vector<dawn_record>& records) {
    const std::string& path = file.path;
    const sequential<float> suspect = read_model(path, file.arch);
    try {
        return suspect_answers_to_records(suspect, records);
    } catch (const shape_error& e) {
        throw shape_error("verify --dawn-registry: the suspect '" + path + "': " + e.what());
    }
}

// A record's image as the 0-255 bytes a client sends, when it is exactly such bytes
// (predict_request.hpp reads a pixel b as b / 255.0f).
std::optional<std::vector<std::uint8_t>> as_bytes(const dawn_record& r) {
    std::vector<std::uint8_t> bytes;
    bytes.reserve(r.image.size());
    for (float v : r.image) {
        const long b = std::lround(v * 255.0f);
        if (b < 0 || b > 255 || static_cast<float>(b) / 255.0f != v) return std::nullopt;
        bytes.push_back(static_cast<std::uint8_t>(b));
    }
    return bytes;
}

// The service's labels for the records sent as 0-255 pixels among decoys. Records that
// were asked in 0-1 intensities no byte gives exactly cannot be sent as the server saw
// them; they are left out (`records` keeps those asked, `left_out` counts the others),
// which keeps the test valid: which records are left out depends on their images only,
// not on their labels.
hidden_answers service_answers(const remote_verify_options& o, std::vector<dawn_record>& records,
                               std::size_t& left_out) {
    std::vector<dawn_record> kept;
    std::vector<std::vector<std::uint8_t>> images;
    for (dawn_record& r : records)
        if (auto bytes = as_bytes(r)) {
            images.push_back(std::move(*bytes));
            kept.push_back(std::move(r));
        }
    if (kept.empty())
        throw argument_error("verify --dawn-registry --url: none of the " + std::to_string(records.size()) +
                             " records is an image of 0-255 pixels that can be sent as it was answered");
    left_out = records.size() - kept.size();
    if (left_out)
        std::fprintf(stderr, "nnmark: %zu records were asked in 0-1 intensities no 0-255 pixel gives exactly; "
                             "they cannot be sent as they were answered and are left out\n", left_out);
    records = std::move(kept);
    const dawn_record& first = records.front();
    dataset queries;
    queries.classes = first.classes;
    queries.name = "dawn-registry";
    queries.images.resize(item_of(first).prepend(static_cast<index_t>(records.size())));
    for (std::size_t i = 0; i < images.size(); ++i) {
        std::ranges::copy(images[i], queries.images.item(static_cast<index_t>(i)).begin());
        queries.labels.push_back(records[i].answered_label);
    }
    return ask_remote(o, queries, "mnist");
}

nlohmann::json clients_json(const std::vector<dawn_client_result>& clients) {
    nlohmann::json out = nlohmann::json::array();
    for (const dawn_client_result& c : clients)
        out.push_back({{"client", c.client},
                       {"queries", c.queries},
                       {"informative", c.informative},
                       {"matches", c.matches},
                       {"p_value", c.p_value},
                       {"log10_p_value", c.log10_p_value},
                       {"adjusted_p_value", c.adjusted_p_value}});
    return out;
}

void print_text(const dawn_verification& v, const std::string& commitment, const std::optional<remote_asking>& asked) {
    const verification_result& r = v.overall;
    std::printf("%s: %lld of %lld altered answers repeated by the suspect (%.2f%%; %lld answered otherwise than the "
                "victim); null rate 1/(K-1) = %.4g; p = %.3g (log10 p = %.1f), alpha = %.3g\n",
                r.watermark_present ? "WATERMARK PRESENT" : "not detected", static_cast<long long>(r.matches),
                static_cast<long long>(r.queries), 100 * r.trigger_accuracy, static_cast<long long>(v.informative),
                r.null_rate, r.p_value, r.log10_p_value, r.alpha);
    for (const dawn_client_result& c : v.clients)
        std::printf("client %s: %lld of %lld (log10 p = %.1f, times %zu clients: p = %.3g)\n", c.client.c_str(),
                    static_cast<long long>(c.matches), static_cast<long long>(c.queries), c.log10_p_value,
                    v.clients.size(), c.adjusted_p_value);
    if (asked)
        std::printf("asked %s: %lld images (the records among %lld decoys) in %lld requests\n",
                    asked->address.c_str(), asked->traffic.images_sent, static_cast<long long>(asked->decoys),
                    asked->traffic.requests);
    std::printf("registry commitment: %s\n", commitment.c_str());
}

}  // namespace dawn_verifying

int verify_dawn(const dawn_verify_options& o, const suspect_file& model, const remote_verify_options& remote,
                double alpha, bool json) {
    using namespace dawn_verifying;
    const dawn_secret secret = open_dawn_secret(o.registry, false);
    const std::string commitment = dawn_commitment(secret);
    if (o.expected_commitment) check_commitment(commitment, *o.expected_commitment, "registry");
    const dawn_registry_contents contents = read_dawn_records(o.registry, secret);
    if (contents.torn_bytes)
        std::fprintf(stderr, "nnmark: the registry's last record is torn (%llu bytes, the server died writing it); "
                             "it is left out\n", static_cast<unsigned long long>(contents.torn_bytes));
    std::vector<dawn_record> records = chosen_records(contents, o);
    std::optional<remote_asking> asking;
    std::size_t left_out = 0;
    std::vector<int> answers;
    if (remote.url.empty()) {
        answers = model_answers(model, records);
    } else {
        hidden_answers asked = service_answers(remote, records, left_out);
        answers = std::move(asked.queries);
        asking = asked.asking;
    }
    const dawn_verification v = verify_dawn_answers(records, answers, alpha);
    const int code = v.overall.watermark_present ? success : not_detected;
    if (!json) {
        print_text(v, commitment, asking);
        return code;
    }
    nlohmann::json out = verification_json(v.overall, commitment);
    out["informative"] = v.informative;
    out["clients"] = clients_json(v.clients);
    out["registry_records"] = contents.records.size();
    out["registry_torn_bytes"] = contents.torn_bytes;
    if (asking) {
        out.update(asking_json(*asking));
        out["records_left_out"] = left_out;
    }
    print_json(out);
    return code;
}

}  // namespace nnmark::cli
