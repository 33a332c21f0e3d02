// nnmark study end to end on generated MNIST-format files (and generated "Fashion-MNIST"
// for the unrelated triggers and the other task), with a small network and one epoch
// per training: every key meets every innocent model, the degenerate ones are never
// accused, target keys are calibrated leave-one-out, and a second run reuses the models.
#include "../support/files.hpp"
#include "../support/tiny_data.hpp"
#include "cli_runner.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

using namespace nnmark;
using namespace nnmark::testing;

TEST_CASE("cli: study verifies every key against every innocent model on generated files") {
    temp_dir dir;
    const auto mnist = write_synthetic_mnist(dir.path / "mnist", 200, 60, 4);
    const auto fashion = write_synthetic_mnist(dir.path / "fashion", 100, 20, 5);  // unrelated triggers, other task
    const auto out = dir.path / "study";
    const std::string command = "study --dataset mnist --data " + mnist.string() + " --arch " +
                                write_architecture(make_small_mnist_net<float>(), dir, "small.json") +
                                " --other-data " + fashion.string() + " --unrelated-data " + fashion.string() +
                                " --clean-models 3 --epochs 1 --batch 16 --lr 0.02 --count 6 --repeat 2 --decoys 60"
                                " --attack-epochs 1 --alpha 0.01 --out " + out.string();
    const auto first = nnmark_tool(command + " --json", dir);
    REQUIRE_MESSAGE(first.exit_code == 0, first.err);
    const auto results = nlohmann::json::parse(first.out);
    CHECK(results == nlohmann::json::parse(slurp(out / "study.json")));
    CHECK(contains(first.err, "[study 1/"));

    // 6 keys x (3 clean + 5 other watermarks + 10 constant + NaN + uniform + other task
    // + 2 clean models x 4 attacks) innocent pairs; 6 x (own model + 3 attacked copies) for power.
    const auto& innocent = results["innocent"];
    CHECK(innocent.size() == 6 * 29);
    CHECK(results["power"].size() == 6 * 4);
    CHECK(results["summary"]["pairs"] == innocent.size());
    long long accused = 0;
    for (const auto& row : innocent) {
        CAPTURE(row.dump());
        const std::string model = row["model"], key = row["key"];
        CHECK(model != key);  // no model is an innocent for its own key
        CHECK(row["null_source"] == (contains(key, "random") ? "random-labels" : "calibrated"));
        if (model.rfind("constant-", 0) == 0 || model == "nan-outputs" || model == "uniform-guesses") {
            CHECK_FALSE(row["present"].get<bool>());
            CHECK_FALSE(row["checks_passed"].get<bool>());
        }
        if (model == "nan-outputs") CHECK(contains(row["failure"].get<std::string>(), "not finite"));
        accused += row["present"].get<bool>();
    }
    CHECK(results["summary"]["accusations"] == accused);
    // Each key states the choices it drew from its own seed.
    REQUIRE(results["keys"].size() == 6);
    for (const auto& k : results["keys"]) {
        CAPTURE(k.dump());
        const std::string name = k["key"];
        CHECK(k["commitment"].get<std::string>().size() == 64);
        CHECK(k.contains("target") == contains(name, "target"));
        CHECK(k.contains("stamp") == contains(name, "content"));
        if (k.contains("target") && !contains(name, "unrelated")) CHECK(k["target"] != k["source"]);
    }
    CHECK(contains(slurp(out / "study.md"), "# False-accusation study"));
    CHECK(contains(slurp(out / "study.md"), "(figures/innocent-p-values.svg)"));
    CHECK(svg_figure_problem(out / "figures" / "innocent-p-values.svg",
                             {"Share of p at most x", "Near 0", "innocent p-values", "uniform"}) == "");

    // A second run trains nothing again and reaches the same verdicts.
    const auto second = nnmark_tool(command + " --json", dir);
    REQUIRE_MESSAGE(second.exit_code == 0, second.err);
    CHECK(contains(second.err, "done by an earlier run"));
    CHECK(nlohmann::json::parse(second.out)["innocent"] == innocent);
}
