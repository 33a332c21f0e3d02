// nnmark reproduce end to end on the CIFAR-10 path, with generated CIFAR-format files, a
// small network and one epoch per training: every table of the report is filled, every
// attack judged, the figures written (the pruning curves as SVG, the mosaics as PNG); a
// second run reuses the stored steps and gives the same results, a run with other
// settings is refused, and a model deleted between runs is trained again to the same
// weights (same seed, same threads); the steps run as jobs of GNU parallel (--emit-jobs)
// give the same results.
#include "../support/errors.hpp"
#include "../support/files.hpp"
#include "../support/skips.hpp"
#include "../support/tiny_data.hpp"
#include "attack_verdict.hpp"
#include "cli_runner.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <map>
#include <vector>

using namespace nnmark;
using namespace nnmark::testing;

namespace reproduce_cli_test {

bool is_png(const std::filesystem::path& file) {
    const std::string bytes = slurp(file);
    return bytes.size() > 8 && bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0;
}

// The command of a small reproduce into `report`, on generated CIFAR-format files in
// `dir` (written on first use): every table filled in seconds.
std::string small_reproduce(const temp_dir& dir, const std::filesystem::path& report) {
    // 10 images per class: enough automobiles (class 1) for 6 content and noise triggers.
    const auto cifar = dir.path / "cifar", mnist = dir.path / "mnist";
    if (!std::filesystem::exists(cifar)) {
        write_synthetic_cifar10(cifar, 100, 40, 3);
        write_synthetic_mnist(mnist, 100, 100, 4);  // unrelated triggers: digit 1
    }
    return "reproduce --dataset cifar10 --data " + cifar.string() + " --unrelated-data " + mnist.string() + " --arch " +
           write_architecture(make_small_image_net<float>(shape{3, 32, 32}), dir, "small.json") +
           " --epochs 1 --batch 16 --count 6 --repeat 2 --references 3 --alpha 0.01 --extraction-share 0.5 --dawn-rate 0.3 "
           "--out " +
           report.string();
}

// What differs between runs of the same steps: how long they took and when they ran.
const std::set<std::string> timing_fields = {"seconds",    "step_seconds", "wall_seconds", "images_per_second",
                                             "started_at", "finished_at"};

// `results` without what differs between runs of the same steps: times, and the report
// directory in the files it names.
nlohmann::json without_timing_and_place(const nlohmann::json& results, const std::string& report) {
    if (results.is_object()) {
        nlohmann::json out = nlohmann::json::object();
        for (const auto& [name, value] : results.items())
            if (!timing_fields.contains(name))
                out[name] = without_timing_and_place(value, report);
        return out;
    }
    if (results.is_array()) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& value : results) out.push_back(without_timing_and_place(value, report));
        return out;
    }
    if (results.is_string() && results.get<std::string>().starts_with(report))
        return "REPORT" + results.get<std::string>().substr(report.size());
    return results;
}

}  // namespace reproduce_cli_test
using namespace reproduce_cli_test;

TEST_CASE("cli: reproduce runs the paper's experiments on generated CIFAR-format files") {
    temp_dir dir;
    const auto report = dir.path / "report";
    const std::string settings = small_reproduce(dir, report);
    const auto cifar = dir.path / "cifar";
    const std::string command = settings + " --attack-epochs 1";

    const auto first = nnmark_tool(command + " --json", dir);
    REQUIRE_MESSAGE(first.exit_code == 0, first.err);
    const auto results = nlohmann::json::parse(first.out);
    CHECK(results == nlohmann::json::parse(slurp(report / "results.json")));
    CHECK(first.err.find("[reproduce 1/") != std::string::npos);  // progress on the terminal

    {  // the time to a verdict: steps one after another take at least their own times added up
        const double wall = results["wall_seconds"].get<double>(), work = results["step_seconds"].get<double>();
        CHECK(work > 0);
        CHECK(wall >= 0.99 * work);
        CHECK(contains(slurp(report / "report.md"), "minutes from the first step's start to the last one's end"));
    }

    {  // every table is filled
        CHECK(results["dataset"] == "cifar10");
        CHECK(results["settings"]["epochs"] == 1);
        CHECK(results["settings"]["references"] == 3);
        // Each model's test accuracy is the one `nnmark eval` measures on the saved file.
        std::map<std::string, double> evaluated;
        for (const std::string model : {"clean", "reference-1", "reference-2", "reference-3", "content", "unrelated", "noise",
                                         "natural"}) {
            CAPTURE(model);
            const auto file = report / "models" / (model + ".safetensors");
            const auto eval =
                nnmark_tool("eval --model " + file.string() + " --dataset cifar10 --data " + cifar.string() + " --json", dir);
            REQUIRE_MESSAGE(eval.exit_code == 0, eval.err);
            evaluated[model] = nlohmann::json::parse(eval.out)["accuracy"].get<double>();
            CHECK(results["models"][model]["test_accuracy"].get<double>() == evaluated[model]);
        }
        REQUIRE(results["triggers"].size() == 4);
        CHECK(results["triggers"][3]["kind"] == "natural");
        CHECK(results["triggers"][3]["verification"]["null_source"] == "random-labels");
        for (const auto& k : results["triggers"]) {
            const std::string kind = k["kind"];
            CAPTURE(kind);
            CHECK(k["verification"]["queries"] == 6);
            CHECK(k["calibration"]["queries"] == 3 * 6);  // three reference models
            CHECK(k["independent_models"].size() == 4);   // clean and the three other watermarks
            REQUIRE(k["pruning"].size() == 18);           // 10..90%, per layer and global
            CHECK(k["pruning"][0]["rate"].get<double>() == doctest::Approx(0.1));
            CHECK(k["pruning"][8]["rate"].get<double>() == doctest::Approx(0.9));
            CHECK(k["pruning"][8]["scope"] == "layer");
            CHECK(k["pruning"][9]["scope"] == "global");
            CHECK(k["pruning"][8]["parameters"]["pruned"].get<double>() >=
                  0.89 * k["pruning"][8]["parameters"]["weights"].get<double>());
            CHECK(k["pruning"][0]["evaluation_images"] == 40);  // pruning: the whole test set
            REQUIRE(k["attacks"].size() == 11);
            CHECK(k["attacks"][0]["id"] == "finetune-ftal");
            CHECK(k["attacks"][0]["evaluation_images"] == 20);  // the others: its second half
            CHECK(k["attacks"][0]["attacker_images"] == 20);
            // Every row's verdicts from its own numbers: p against alpha, then the WRT
            // criterion; pruning starts from the marked model on the whole test set.
            for (const auto* rows : {&k["attacks"], &k["pruning"]})
                for (const auto& row : *rows) {
                    CAPTURE(row.dump());
                    CHECK(row["verdict"] ==
                          (row["p_value"].get<double>() <= 0.01 ? "watermark-present" : "not-detected"));
                    CHECK(row["attack_verdict"] == expected_attack_verdict(row));
                }
            for (const auto& row : k["pruning"]) CHECK(row["original_test_accuracy"] == evaluated[kind]);
            // The evasion table: every detector of attack evade, on the attacker's half.
            REQUIRE(k["evasion"]["detectors"].size() == 5);
            CHECK(k["evasion"]["detectors"][0]["name"] == "stamp");
            CHECK(k["evasion"]["detectors"][4]["name"] == "ensemble");
            CHECK(k["evasion"]["attacker_images"] == 20);
            for (const auto& d : k["evasion"]["detectors"]) {
                CAPTURE(d.dump());
                CHECK(d["triggers_flagged"].get<int>() <= d["triggers"].get<int>());
                CHECK(d["attack_verdict"] == expected_attack_verdict(
                                                 {{"test_accuracy", d["service_accuracy"]},
                                                  {"original_test_accuracy", k["evasion"]["original_test_accuracy"]},
                                                  {"verdict", d["verdict"]}}));
            }
            CHECK(is_png(report / "figures" / ("triggers-" + kind + ".png")));
        }
        // Extraction: each kind plain and with --survive-extraction, then DAWN at two lengths.
        const auto& extraction = results["extraction"];
        REQUIRE(extraction["models"].size() == 8);
        CHECK(extraction["models"][0]["victim"] == "content");
        CHECK(extraction["models"][0]["queries"] == 33);  // a third of the 100 training images
        CHECK(extraction["models"][1]["victim"] == "content-survive");
        CHECK(extraction["models"][1]["keys"].contains("content-survive-region"));
        for (const auto& row : extraction["models"])
            for (const auto& [name, key] : row["keys"].items()) {
                CAPTURE(name);
                CHECK(key["surrogate"]["verdict"] ==
                      (key["surrogate"]["p_value"].get<double>() <= 0.01 ? "watermark-present" : "not-detected"));
            }
        REQUIRE(extraction["dawn"].size() == 2);
        CHECK(extraction["dawn"][1]["epochs"] == 4);
        CHECK(extraction["dawn"][0]["references"].size() == 3);
        CHECK(extraction["dawn"][0]["records"].get<int>() > 0);
        CHECK(extraction["dawn"][0]["surrogate"]["queries"] == extraction["dawn"][0]["records"]);
        // The paper's figures beside the measured ones, as fractions.
        CHECK(results["paper"]["triggers"]["content"]["test_accuracy"].get<double>() == doctest::Approx(0.7841));
        CHECK(svg_figure_problem(report / "figures" / "pruning.svg",
                                 {"Test accuracy", "Trigger accuracy", "Pruned weights (%)", "Accuracy (%)", "content",
                                  "unrelated", "noise", "natural"}) == "");
        const std::string md = slurp(report / "report.md");
        for (const std::string heading : {"# Zhang et al. (ASIACCS 2018) reproduced by nnmark: cifar10", "## Tables 1 and 2",
                                          "## Verification", "## Tables 3 and 4", "## Table 5", "figures/pruning.svg",
                                          "(78.41)", "finetune --mode ftal", "transform --jpeg 50", "## Evasion", "## Extraction", "content-survive-region",
                                          "| ensemble |"})
            CHECK_MESSAGE(md.find(heading) != std::string::npos, heading);
        // Each model found to carry a key it never saw is spelled out below the table: as
        // many paragraphs as such verdicts in the results, none when there are none (no
        // false accusation is the goal; this test only requires the report to be faithful).
        std::size_t found_falsely = 0, paragraphs = 0;
        for (const auto& k : results["triggers"])
            for (const auto& other : k["independent_models"]) found_falsely += other["verdict"] == "watermark-present";
        for (auto at = md.find("**False detection**"); at != std::string::npos; at = md.find("**False detection**", at + 1))
            ++paragraphs;
        CHECK(paragraphs == found_falsely);
    }

    {  // a second run reuses every step and gives the same results
        const auto again = nnmark_tool(command + " --json", dir);
        REQUIRE_MESSAGE(again.exit_code == 0, again.err);
        CHECK(again.err.find("done by an earlier run") != std::string::npos);
        CHECK(again.err.find("train clean model (seed 1)\n") == std::string::npos);
        CHECK(nlohmann::json::parse(again.out) == results);
    }

    {  // a model lost between runs is trained again to the same weights
        std::filesystem::remove(report / "models" / "noise.safetensors");
        const auto again = nnmark_tool(command + " --json", dir);
        REQUIRE_MESSAGE(again.exit_code == 0, again.err);
        CHECK(again.err.find("embed the noise watermark\n") != std::string::npos);
        // Everything but the time the retraining took is the same.
        const auto without_timing = [](nlohmann::json r) {
            for (const std::string& field : timing_fields) r["models"]["noise"].erase(field);
            r["models"]["noise"].erase("history");
            r.erase("step_seconds");
            r.erase("wall_seconds");
            return r;
        };
        CHECK(without_timing(nlohmann::json::parse(again.out)) == without_timing(results));
    }

    {  // other settings in the same directory are refused
        const auto other = nnmark_tool(settings + " --attack-epochs 2", dir);
        CHECK(other.exit_code == 2);
        CHECK(other.one_line_error());
        CHECK(other.err.find("attack_epochs") != std::string::npos);
    }
}

TEST_CASE("cli: reproduce --emit-jobs run through GNU parallel gives the results of a plain run" * NNMARK_EXTERNAL_TEST) {
    if (std::system("command -v parallel >/dev/null 2>&1") != 0)
        return skip_test("GNU parallel is not installed (Debian: parallel)");
    temp_dir dir;
    const auto plain_report = dir.path / "plain", waves_report = dir.path / "waves";
    const auto plain = nnmark_tool(small_reproduce(dir, plain_report) + " --attack-epochs 1 --json", dir);
    REQUIRE_MESSAGE(plain.exit_code == 0, plain.err);

    const std::string settings = small_reproduce(dir, waves_report) + " --attack-epochs 1";
    // A step of the second wave before the first: refused, naming what it needs.
    const auto early = nnmark_tool(settings + " --step prune-content --quiet", dir);
    CHECK(early.exit_code == 2);
    CHECK(early.one_line_error());
    CHECK_MESSAGE(contains(early.err, "needs step model-clean"), early.err);

    const auto jobs = dir.path / "jobs.txt";
    std::vector<std::size_t> wave_sizes;
    for (int wave = 0; wave < 4; ++wave) {
        const auto emitted = nnmark_tool(settings + " --quiet --emit-jobs " + jobs.string(), dir);
        REQUIRE_MESSAGE(emitted.exit_code == 0, emitted.err);
        const std::string lines = slurp(jobs);
        const auto count = static_cast<std::size_t>(std::count(lines.begin(), lines.end(), '\n'));
        if (count == 0) break;
        wave_sizes.push_back(count);
        CHECK(contains(slurp(jobs.string() + ".sbatch"), "#SBATCH --array=1-" + std::to_string(count)));
        const auto ran = run_program("parallel", "-j 2 -a " + jobs.string(), dir);  // each line a command
        REQUIRE_MESSAGE(ran.exit_code == 0, ran.err);
    }
    // Wave 1: the clean model, 3 references, 4 watermarked and 4 --survive-extraction models.
    REQUIRE(wave_sizes.size() == 2);
    CHECK(wave_sizes[0] == 12);
    CHECK(wave_sizes[1] > 20);

    const auto assembled = nnmark_tool(settings + " --json", dir);
    REQUIRE_MESSAGE(assembled.exit_code == 0, assembled.err);
    // Every step came from the jobs: each step line says it reused an earlier run's result.
    CHECK(contains(assembled.err, "train clean model (seed 1): done by an earlier run"));
    CHECK_FALSE(contains(assembled.err, "prune the content model at 10..90% (per layer and global)\n"));
    CHECK(without_timing_and_place(nlohmann::json::parse(assembled.out), waves_report.string()) ==
          without_timing_and_place(nlohmann::json::parse(plain.out), plain_report.string()));

    const auto unknown = nnmark_tool(settings + " --step no-such-step --quiet", dir);
    CHECK(unknown.exit_code == 2);
    CHECK(unknown.one_line_error());
}

TEST_CASE("cli: reproduce refuses a dataset the paper did not use") {
    temp_dir dir;
    const auto r = nnmark_tool("reproduce --dataset fashion-mnist --data " + dir.path.string() + " --out " +
                                   (dir.path / "report").string(),
                               dir);
    CHECK(r.exit_code == 2);
    CHECK(r.one_line_error());
    CHECK(r.err.find("fashion-mnist not in {mnist,cifar10}") != std::string::npos);
}
