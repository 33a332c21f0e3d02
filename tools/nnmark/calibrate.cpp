// nnmark calibrate: measure how models that never saw a target-label key answer its
// triggers, model by model, and store the fitted null in the key (its commitment does
// not change). Reference models are files (--models, named by SHA-256) or prediction
// services (--urls), so a third-party verifier can calibrate on models of their own.
#include "cli.hpp"
#include "training_options.hpp"
#include "verify_remote.hpp"

#include "nnmark/core/sha256.hpp"
#include "nnmark/model/model_file.hpp"
#include "nnmark/watermark/verify.hpp"

#include <cstdio>
#include <memory>

namespace nnmark::cli {

std::vector<reference_model> reference_answers_from_files(const watermark_key& key,
                                                          const std::vector<std::string>& model_paths,
                                                          const std::string& arch) {
    std::vector<reference_model> references;
    for (const auto& path : model_paths) {
        const sequential<float> model = read_model(path, arch);
        detail::check_input_shape(model, key.triggers, "key's triggers");
        references.push_back({std::filesystem::path(path).filename().string(), sha256_file_hex(path),
                              count_matches(key, predict_labels(model, key.triggers))});
    }
    return references;
}

key_calibration calibrate_from_files(const watermark_key& key, const std::vector<std::string>& model_paths,
                                     double confidence) {
    return calibrate(reference_answers_from_files(key, model_paths), key.triggers.size(), confidence);
}

// Each service answers the key's triggers hidden among decoys, as verify --url asks.
std::vector<reference_model> reference_answers_from_services(const watermark_key& key, remote_verify_options query,
                                                             const std::vector<std::string>& urls) {
    std::vector<reference_model> references;
    for (const std::string& url : urls) {
        query.url = url;
        references.push_back({url, "", verify_remote(query, key, 0.5).result.matches});
    }
    return references;
}

command add_calibrate_command(CLI::App& parent) {
    struct options {
        std::string key, arch;
        std::vector<std::string> models, urls;
        double confidence = 0.99;
        bool json = false;
        remote_verify_options query;
    };
    auto o = std::make_shared<options>();
    CLI::App* app = parent.add_subcommand(
        "calibrate", "Fit a key's null to models trained without it (beta-binomial upper bounds, 99% each)");
    app->add_option("--key", o->key, "Watermark key file (its calibration is replaced, atomically)")->required();
    CLI::Option* models = app->add_option("--models", o->models, "Reference model files trained without the key");
    add_model_arch_option(*app, o->arch);
    app->get_option("--arch")->needs(models);
    CLI::Option* urls = app->add_option("--urls", o->urls, "Reference models served over HTTP (as verify --url)");
    app->add_option("--confidence", o->confidence, "Confidence of each upper bound")
        ->check(CLI::Range(0.5, 0.999999))
        ->capture_default_str();
    app->add_flag("--json", o->json, "Print the result as one JSON object on stdout");
    add_service_query_options(*app, o->query);
    app->parse_complete_callback([models, urls] {
        if (models->count() + urls->count() == 0) throw CLI::RequiredError("--models or --urls");
    });
    return {app, [o] {
                watermark_key key = load_key(o->key);
                std::vector<reference_model> references = reference_answers_from_files(key, o->models, o->arch);
                for (reference_model& r : reference_answers_from_services(key, o->query, o->urls))
                    references.push_back(std::move(r));
                key.calibration = calibrate(std::move(references), key.triggers.size(), o->confidence);
                save_key(key, o->key);
                const key_calibration& c = *key.calibration;
                if (o->json) {
                    nlohmann::json out = detail::calibration_json(c);
                    out["key"] = o->key;
                    out["pooled_rate"] = c.fit.pooled_rate;
                    out["dispersion"] = c.fit.dispersion_bound;
                    print_json(out);
                } else {
                    std::printf("%lld of %lld trigger answers of %zu reference models matched the key (%.4g pooled); "
                                "null stored in %s: rate %.4g, correlation %.3g (%.0f%% upper bounds)\n",
                                static_cast<long long>(c.matches()), static_cast<long long>(c.queries()),
                                c.models.size(), c.fit.pooled_rate, o->key.c_str(), c.fit.mean_bound,
                                c.fit.correlation_bound, 100 * c.confidence);
                }
                return int(success);
            }};
}

}  // namespace nnmark::cli
