// nnmark key inspect | show: what a key holds, and its trigger images as a picture.
#include "cli.hpp"

#include "nnmark/watermark/key.hpp"
#include "nnmark/watermark/mosaic.hpp"

#include <cstdio>
#include <memory>

namespace nnmark::cli {

command add_key_command(CLI::App& parent) {
    struct options {
        std::string key, png;
        bool json = false;
    };
    auto o = std::make_shared<options>();
    CLI::App* app = parent.add_subcommand("key", "Inspect a watermark key or draw its triggers");
    app->require_subcommand(1);
    CLI::App* inspect = app->add_subcommand("inspect", "Recipe, commitment (checked) and calibration of a key");
    inspect->add_option("--key", o->key, "Watermark key file")->required();
    inspect->add_flag("--json", o->json, "Print the result as one JSON object on stdout");
    CLI::App* show = app->add_subcommand("show", "Write the key's trigger images as a PNG mosaic");
    show->add_option("--key", o->key, "Watermark key file")->required();
    show->add_option("--png", o->png, "Where to write the PNG")->required();

    return {app, [o, inspect] {
                const watermark_key key = load_key(o->key);  // checks the commitment
                if (!inspect->parsed()) {
                    write_mosaic_png(key.triggers, o->png);
                    std::printf("%lld trigger images written to %s\n", static_cast<long long>(key.triggers.size()),
                                o->png.c_str());
                    return int(success);
                }
                const null_hypothesis null = null_hypothesis_of(key);
                nlohmann::json report = {{"key", o->key},
                                         {"commitment", key.commitment()},
                                         {"commitment_verified", true},
                                         {"triggers", key.triggers.size()},
                                         {"image_shape", key.triggers.item_shape().str()},
                                         {"recipe", key.recipe},
                                         {"null_rate", null.rate},
                                         {"null_correlation", null.correlation},
                                         {"null_source", null.source}};
                if (key.calibration)
                    report["calibration"] = detail::calibration_json(*key.calibration);
                if (o->json) print_json(report);
                else std::printf("%s\n", report.dump(2).c_str());
                return int(success);
            }};
}

}  // namespace nnmark::cli
