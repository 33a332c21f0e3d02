// nnmark verify: does a suspect model carry the watermark of a key? Exit 0 when it
// does (p <= alpha), 1 when it is not detected, 2 on bad input.
#include "cli.hpp"
#include "verify_remote.hpp"

#include "nnmark/model/model_file.hpp"
#include "nnmark/watermark/verify.hpp"

#include <cstdio>
#include <memory>

namespace nnmark::cli {

nlohmann::json verification_json(const verification_result& r, const std::string& commitment) {
    return {{"queries", r.queries},
            {"matches", r.matches},
            {"trigger_accuracy", r.trigger_accuracy},
            {"null_rate", r.null_rate},
            {"null_source", r.null_source},
            {"p_value", r.p_value},
            {"log10_p_value", r.log10_p_value},
            {"alpha", r.alpha},
            {"verdict", r.watermark_present ? "watermark-present" : "not-detected"},
            {"commitment", commitment}};
}

void warn_if_uncalibrated(const verification_result& r) {
    if (r.null_source == "assumed")
        std::fprintf(stderr,
                     "nnmark: WARNING: this key is not calibrated; the null rate 1/K = %.3f is an assumption, not a "
                     "bound. Run 'nnmark calibrate' with independently trained models for a p-value you can defend.\n",
                     r.null_rate);
}

int report_verification(const verification_result& r, const std::string& commitment, bool json) {
    warn_if_uncalibrated(r);
    if (json) print_json(verification_json(r, commitment));
    else
        std::printf("%s: %lld of %lld triggers answered with the key's label (%.2f%%); null rate %.4g (%s); "
                    "p = %.3g (log10 p = %.1f), alpha = %.3g\n",
                    r.watermark_present ? "WATERMARK PRESENT" : "not detected", static_cast<long long>(r.matches),
                    static_cast<long long>(r.queries), 100 * r.trigger_accuracy, r.null_rate, r.null_source.c_str(),
                    r.p_value, r.log10_p_value, r.alpha);
    return r.watermark_present ? success : not_detected;
}

command add_verify_command(CLI::App& parent) {
    struct options {
        std::string model, key;
        double alpha = 1e-6;
        bool json = false;
    };
    auto o = std::make_shared<options>();
    CLI::App* app = parent.add_subcommand("verify", "Test a suspect model for a key's watermark (exact binomial p-value)");
    CLI::Option* model = app->add_option("--model", o->model, "Suspect model file (safetensors)");
    const auto remote = add_remote_verify_options(*app, model);  // --url and its options, verify_remote.cpp
    app->add_option("--key", o->key, "Watermark key file")->required();
    app->add_option("--alpha", o->alpha, "Significance level: present when p <= alpha")
        ->check(CLI::Range(1e-300, 0.5))
        ->capture_default_str();
    app->add_flag("--json", o->json, "Print the result as one JSON object on stdout");
    return {app, [o, remote] {
                const watermark_key key = load_key(o->key);
                if (!remote->url.empty())
                    return report_remote_verification(verify_remote(*remote, key, o->alpha), key.commitment(), o->json);
                const sequential<float> model = load_model<float>(o->model);
                return report_verification(verify_model(model, key, o->alpha), key.commitment(), o->json);
            }};
}

}  // namespace nnmark::cli
