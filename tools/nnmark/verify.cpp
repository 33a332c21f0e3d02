// nnmark verify: does a suspect model carry the watermark of a key? Exit 0 when it
// does (p <= alpha and the suspect behaves as a classifier of the task), 1 when it is
// not detected, 2 on bad input (including a key whose commitment is not the expected one).
// With --dawn-registry instead of --key, the same for the answers a DAWN server altered
// (verify_dawn.cpp).
#include "cli.hpp"
#include "precision_options.hpp"
#include "training_options.hpp"
#include "verify_dawn.hpp"
#include "verify_remote.hpp"

#include "nnmark/data/load.hpp"
#include "nnmark/model/model_file.hpp"
#include "nnmark/watermark/verify.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <memory>

namespace nnmark::cli {

namespace {

nlohmann::json checks_json(const suspect_checks& c) {
    nlohmann::json out = {{"run", c.run}, {"passed", c.passed()}};
    if (!c.run) return out;
    out.update({{"decoys", c.decoys},
                {"decoy_accuracy", c.decoy_accuracy},
                {"most_frequent_answer", c.most_frequent_answer},
                {"most_frequent_share", c.most_frequent_share},
                {"non_finite_outputs", c.non_finite_outputs ? nlohmann::json(*c.non_finite_outputs) : nlohmann::json()},
                {"failure", c.failure}});
    return out;
}

nlohmann::json control_json(const control_test& c) {
    if (!c.run) return {{"run", false}};
    return {{"run", true},
            {"decoys", c.decoys},
            {"decoy_target_answers", c.decoy_target_answers},
            {"trigger_target_answers", c.trigger_target_answers},
            {"log10_p_value", c.log10_p_value}};
}

}  // namespace

nlohmann::json verification_json(const verification_result& r, const std::string& commitment) {
    return {{"queries", r.queries},
            {"matches", r.matches},
            {"trigger_accuracy", r.trigger_accuracy},
            {"null_rate", r.null_rate},
            {"null_correlation", r.null_correlation},
            {"null_source", r.null_source},
            {"population_log10_p_value", r.population_log10_p_value},
            {"control", control_json(r.control)},
            {"suspect_checks", checks_json(r.checks)},
            {"p_value", r.p_value},
            {"log10_p_value", r.log10_p_value},
            {"alpha", r.alpha},
            {"significant", r.significant},
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
    if (json) {
        print_json(verification_json(r, commitment));
        return r.watermark_present ? success : not_detected;
    }
    std::printf("%s: %lld of %lld triggers answered with the key's label (%.2f%%); null rate %.4g, correlation %.3g "
                "(%s); p = %.3g (log10 p = %.1f), alpha = %.3g\n",
                r.watermark_present ? "WATERMARK PRESENT" : "not detected", static_cast<long long>(r.matches),
                static_cast<long long>(r.queries), 100 * r.trigger_accuracy, r.null_rate, r.null_correlation,
                r.null_source.c_str(), r.p_value, r.log10_p_value, r.alpha);
    if (r.control.run)
        std::printf("control: %lld of %lld triggers and %lld of %lld decoys of other classes answered with the "
                    "target (log10 p = %.1f)\n",
                    static_cast<long long>(r.control.trigger_target_answers), static_cast<long long>(r.queries),
                    static_cast<long long>(r.control.decoy_target_answers), static_cast<long long>(r.control.decoys),
                    r.control.log10_p_value);
    if (r.checks.run)
        std::printf("suspect: %.2f%% of %lld decoys right, most frequent answer %d (%.1f%%)%s%s\n",
                    100 * r.checks.decoy_accuracy, static_cast<long long>(r.checks.decoys),
                    r.checks.most_frequent_answer, 100 * r.checks.most_frequent_share,
                    r.checks.passed() ? "" : "; not declared present: ", r.checks.failure.c_str());
    std::printf("key commitment: %s\n", commitment.c_str());
    return r.watermark_present ? success : not_detected;
}

// Exit 2 unless the commitment of the key or registry (`of`) is the one the owner
// published (any case); verify_dawn.hpp declares it for the registry's check.
void check_commitment(const std::string& commitment, std::string expected, const std::string& of) {
    std::transform(expected.begin(), expected.end(), expected.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (!detail::is_sha256_hex(expected))
        throw argument_error("verify --expect-commitment: expected 64 hex digits, found \"" + expected.substr(0, 80) + "\"");
    if (expected != commitment)
        throw argument_error("verify: the " + of + "'s commitment " + commitment + " is not the expected " + expected +
                             " (--expect-commitment): this is not the published " + of);
}

// In-memory suspects get up to this many decoys by default: enough to measure accuracy
// and answer shares to a few percent, and cheap next to the model's own evaluation.
constexpr index_t default_model_decoys = 1000;

command add_verify_command(CLI::App& parent) {
    struct options {
        std::string model, arch, key, expected_commitment;
        double alpha = 1e-6;
        bool json = false;
        precision_options precision;
    };
    auto o = std::make_shared<options>();
    CLI::App* app = parent.add_subcommand(
        "verify", "Test a suspect model for a key's watermark (p-value under the key's null, suspect checks)");
    CLI::Option* model = app->add_option("--model", o->model, "Suspect model file (safetensors)");
    add_model_arch_option(*app, o->arch);
    app->get_option("--arch")->needs(model);
    CLI::Option* key_file = app->add_option("--key", o->key, "Watermark key file");
    auto dawn = std::make_shared<dawn_verify_options>();
    CLI::Option* registry = app->add_option("--dawn-registry", dawn->registry,
                                            "DAWN registry of nnmark serve: test the suspect against the answers it "
                                            "altered, instead of a key's triggers");
    registry->excludes(key_file);
    key_file->excludes(registry);
    app->add_option("--client", dawn->client, "With --dawn-registry: only the answers altered for this client")
        ->needs(registry);
    // --url and its options (verify_remote.cpp); one of --key and --dawn-registry is
    // checked once the command line is read, as a usage error.
    const auto remote = add_remote_verify_options(*app, model, [key_file, registry] {
        if (key_file->count() == 0 && registry->count() == 0) throw CLI::RequiredError("--key or --dawn-registry");
    });
    app->add_option("--alpha", o->alpha, "Significance level: present when p <= alpha")
        ->check(CLI::Range(1e-300, 0.5))
        ->capture_default_str();
    CLI::Option* expect = app->add_option("--expect-commitment", o->expected_commitment,
                    "The commitment the owner published (64 hex digits): refuse a key (or a DAWN registry) whose "
                    "commitment differs");
    app->add_flag("--json", o->json, "Print the result as one JSON object on stdout");
    o->precision.add_to(*app, "the training split of the key's dataset (the owner's own data)");
    for (const char* name : {"--precision", "--calibration-images"}) app->get_option(name)->needs(model)->excludes(registry);
    return {app, [o, remote, expect, dawn] {
                if (!dawn->registry.empty()) {
                    if (expect->count() > 0) dawn->expected_commitment = o->expected_commitment;  // "" too
                    return verify_dawn(*dawn, {o->model, o->arch}, *remote, o->alpha, o->json);
                }
                const watermark_key key = load_key(o->key);
                const std::string commitment = key.commitment();
                if (expect->count() > 0) check_commitment(commitment, o->expected_commitment, "key");  // "" too
                if (!remote->url.empty())
                    return report_remote_verification(verify_remote_unspent(*remote, o->key, key, o->alpha), commitment,
                                                      o->json);
                // The suspect as it answers in the chosen arithmetic (int8: calibrated
                // on the training split of the key's dataset, where the decoys' test split is).
                const sequential<float> suspect = at_chosen_precision(read_model(o->model, o->arch), o->precision, [&] {
                    dataset_options data = remote->data;
                    if (data.name.empty()) data.name = remote::dataset_of(key);
                    return load_dataset(data.name, data.resolved_dir(), true);
                });
                rng random(remote->seed.value_or(1));  // no one to hide from in memory: a fixed draw
                const dataset decoys = pick_verification_decoys(*remote, key, default_model_decoys, random);
                return report_verification(verify_model(suspect, key, decoys, o->alpha), commitment, o->json);
            }};
}

}  // namespace nnmark::cli
