// nnmark calibrate: measure a target-label key's null rate on independently trained
// models and store it in the key (its commitment does not change).
#include "cli.hpp"

#include "nnmark/core/sha256.hpp"
#include "nnmark/model/model_file.hpp"
#include "nnmark/watermark/verify.hpp"

#include <cstdio>
#include <memory>

namespace nnmark::cli {

key_calibration calibrate_from_files(const watermark_key& key, const std::vector<std::string>& model_paths,
                                     double confidence) {
    std::vector<sequential<float>> models;
    std::vector<std::string> names;
    for (const auto& path : model_paths) {
        models.push_back(load_model<float>(path));
        names.push_back(std::filesystem::path(path).filename().string() + ":" + sha256_file_hex(path));
    }
    std::vector<const sequential<float>*> pointers;
    for (const auto& m : models) pointers.push_back(&m);
    return calibrate_key<float>(key, pointers, names, confidence);
}

command add_calibrate_command(CLI::App& parent) {
    struct options {
        std::string key;
        std::vector<std::string> models;
        double confidence = 0.99;
        bool json = false;
    };
    auto o = std::make_shared<options>();
    CLI::App* app = parent.add_subcommand(
        "calibrate", "Estimate a key's null rate from independently trained models (99% Clopper-Pearson upper bound)");
    app->add_option("--key", o->key, "Watermark key file (updated in place)")->required();
    app->add_option("--models", o->models, "Reference models trained without the key")->required();
    app->add_option("--confidence", o->confidence, "Confidence of the upper bound")
        ->check(CLI::Range(0.5, 0.999999))
        ->capture_default_str();
    app->add_flag("--json", o->json, "Print the result as one JSON object on stdout");
    return {app, [o] {
                watermark_key key = load_key(o->key);
                key.calibration = calibrate_from_files(key, o->models, o->confidence);
                save_key(key, o->key);
                const key_calibration& c = *key.calibration;
                if (o->json)
                    print_json({{"key", o->key},
                                {"models", c.models},
                                {"queries", c.queries},
                                {"matches", c.matches},
                                {"confidence", c.confidence},
                                {"null_rate", c.null_rate}});
                else
                    std::printf("%lld of %lld trigger answers of %zu reference models matched the key; null rate "
                                "(%.0f%% upper bound) %.4g stored in %s\n",
                                static_cast<long long>(c.matches), static_cast<long long>(c.queries), o->models.size(),
                                100 * c.confidence, c.null_rate, o->key.c_str());
                return int(success);
            }};
}

}  // namespace nnmark::cli
