// nnmark attack end to end on generated MNIST-format files: every kind of attack runs on
// an embedded model, writes what it should, and reports the attacked and original test
// accuracy, the verify fields and a verdict; bad input is exit 2 with one line.
#include "nnmark/data/load.hpp"
#include "nnmark/model/model_file.hpp"
#include "nnmark/train/trainer.hpp"
#include "nnmark/watermark/embed.hpp"

#include "../support/files.hpp"
#include "../support/tiny_data.hpp"
#include "attack_verdict.hpp"
#include "cli_runner.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <string>

using namespace nnmark;
using namespace nnmark::testing;

namespace attack_cli_test {

// A watermarked model and its key on generated MNIST files, made once for all the
// attacks below: the paper's Algorithm 1 (content triggers mixed into every epoch) on
// the small network, in process. These tests check the command, not the watermark.
struct marked_model {
    temp_dir dir;
    std::string data, model, key;
    marked_model() {
        const auto mnist = write_synthetic_mnist(dir.path / "mnist", 100, 40, 9);
        data = " --dataset mnist --data " + mnist.string();
        model = (dir.path / "marked.safetensors").string();
        key = (dir.path / "marked.key").string();
        const dataset train = load_dataset("mnist", mnist, true);
        trigger_recipe recipe = default_recipe("mnist", trigger_kind::content);
        recipe.count = 8;
        watermark_key k;
        k.triggers = make_trigger_set(recipe, train.filter_by_label(recipe.source), train.item_shape());
        k.recipe = recipe_json(recipe, "mnist", train.item_shape(), dataset_files("mnist", mnist, true));
        save_key(k, key);
        auto net = make_small_mnist_net<float>();
        net.initialize(1);
        training_recipe training;
        training.epochs = 5;
        training.batch = 16;
        trainer<float> t(net, training);
        t.set_extra_set({&k.triggers, 4, {}});
        progress_line quiet(stderr, 5.0, true);
        t.fit(train, nullptr, quiet);
        save_model(net, model);
    }
};

const marked_model& marked() {
    static const marked_model m;
    return m;
}

// `nnmark attack <args> --json` on the marked model with its key; the parsed JSON.
nlohmann::json attack_json(const std::string& args) {
    const marked_model& m = marked();
    const auto r = nnmark_tool("attack " + args + " --model " + m.model + " --key " + m.key + m.data + " --quiet --json", m.dir);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    return nlohmann::json::parse(r.out);
}

}  // namespace attack_cli_test

TEST_CASE("cli: attack runs every kind and reports accuracy, verification and a verdict") {
    using namespace attack_cli_test;
    const marked_model& m = marked();
    const std::string budget = " --epochs 1 --batch 16";
    const struct {
        const char* kind;
        std::string args;
    } runs[] = {
        {"prune", "prune --rate 0.5 --scope global"},
        {"finetune", "finetune --mode rtll" + budget},
        {"fineprune", "fineprune --rate 0.25" + budget},
        {"distill", "distill --soft --temperature 2" + budget},
        {"transform", "transform --jpeg 50"},
    };
    for (const auto& run : runs) {
        const std::string kind = run.kind;
        CAPTURE(kind);
        const bool writes = kind != "transform";
        const auto out = m.dir.path / (kind + ".safetensors");
        const auto report = attack_json(run.args + (writes ? " --out " + out.string() : ""));
        CHECK(report["attack"] == kind);
        CHECK(report["evaluation_images"] == 20);  // the second half of the 40 test images
        for (const char* field : {"test_accuracy", "original_test_accuracy", "queries", "matches", "trigger_accuracy",
                                  "null_rate", "null_source", "p_value", "alpha", "verdict", "attack_verdict"})
            CHECK_MESSAGE(report.contains(field), field);
        CHECK(report["queries"] == 8);
        CHECK(report["verdict"] == (report["p_value"].get<double>() <= 1e-6 ? "watermark-present" : "not-detected"));
        CHECK(report["attack_verdict"] == expected_attack_verdict(report));
        CHECK(writes == std::filesystem::exists(out));
        CHECK(report["original_test_accuracy"].get<double>() > 0.5);
        if (report.contains("attacker_images")) CHECK(report["attacker_images"] == 20);  // the first half
    }
    // Pruning nothing changes nothing; the transformation that keeps 8 bits neither.
    for (const std::string& identity : {"prune --rate 0 --out " + (m.dir.path / "same.safetensors").string(),
                                        std::string("transform --bits 8")}) {
        CAPTURE(identity);
        const auto same = attack_json(identity);
        CHECK(same["test_accuracy"] == same["original_test_accuracy"]);
        CHECK(same["attack_verdict"] != "destroyed-model");
    }
}

TEST_CASE("cli: attack refuses bad input with exit 2 and one line") {
    using namespace attack_cli_test;
    const marked_model& m = marked();
    for (const std::string& args :
         {std::string("attack"), "attack prune --model " + m.model + m.data, "attack melt --model " + m.model + m.data,
          "attack transform --model " + m.model + m.data, "attack transform --jpeg 50 --blur 1 --model " + m.model + m.data,
          "attack transform --bits 2.5 --model " + m.model + m.data,
          "attack finetune --mode ftxx --out x --model " + m.model + m.data,
          "attack prune --rate 0.5 --out x --model " + (m.dir.path / "missing.safetensors").string() + m.data,
          "attack prune --rate 0.5 --out x --key " + m.model + " --model " + m.model + m.data}) {
        CAPTURE(args);
        const auto r = nnmark_tool(args, m.dir);
        CHECK(r.exit_code == 2);
        CHECK(r.one_line_error());
    }
    const auto help = nnmark_tool("attack distill --help", m.dir);
    CHECK(help.exit_code == 0);
    CHECK(contains(help.out, "--soft"));
}

TEST_CASE("cli: attack evade reports each detector, and the stamp detector flags the content triggers") {
    using namespace attack_cli_test;
    const marked_model& m = marked();
    const std::string base = "attack evade --model " + m.model + " --key " + m.key + m.data + " --quiet";
    const auto r = nnmark_tool(base + " --detector stamp --json", m.dir);
    REQUIRE_MESSAGE((r.exit_code == 0 || r.exit_code == 1), r.err);
    const auto report = nlohmann::json::parse(r.out);
    CHECK(report["attack"] == "evade");
    CHECK(report["evaluation_images"] == 20);
    CHECK(report["attacker_images"] == 20);
    CHECK(report["false_positive_rate"] == 0.05);
    REQUIRE(report["detectors"].size() == 1);
    const auto& stamp = report["detectors"][0];
    for (const char* field : {"name", "threshold", "triggers_flagged", "decoys_flagged", "decoys_flagged_share",
                              "service_accuracy", "p_value", "log10_p_value", "verdict", "attack_verdict"})
        CHECK_MESSAGE(stamp.contains(field), field);
    CHECK(stamp["name"] == "stamp");
    CHECK(stamp["threshold"].is_number());
    // The generated images are noise in 0..59 and a bar in 200..255: no band repeats one
    // value more than a few times, while every trigger carries the 53-55 pixels of its
    // stamp. All 8 are flagged, and answered with another class than the target.
    CHECK(stamp["triggers"] == 8);
    CHECK(stamp["triggers_flagged"] == 8);
    CHECK(stamp["matches"].get<int>() <= 1);  // the second-best class can be the target only where top-1 was not
    CHECK(stamp["verdict"] == "not-detected");
    CHECK(stamp["decoys_flagged_share"].get<double>() == doctest::Approx(stamp["decoys_flagged"].get<double>() / 20));
    CHECK(stamp["decoys_flagged"].get<int>() <= 4);
    // Flagged images lose their class, unflagged ones keep the model's.
    CHECK(stamp["service_accuracy"].get<double>() >=
          report["original_test_accuracy"].get<double>() - stamp["decoys_flagged_share"].get<double>() - 1e-9);
    CHECK(stamp["attack_verdict"] ==
          expected_attack_verdict({{"original_test_accuracy", report["original_test_accuracy"]},
                                   {"test_accuracy", stamp["service_accuracy"]},
                                   {"verdict", stamp["verdict"]}}));
    CHECK(r.exit_code == 1);  // not found behind the stamp detector

    // Every detector, in text: one line each, the union flagging at least what each flags.
    const auto all = nnmark_tool(base + " --detector all --epochs 1 --batch 16 --json", m.dir);
    REQUIRE_MESSAGE((all.exit_code == 0 || all.exit_code == 1), all.err);
    const auto every = nlohmann::json::parse(all.out)["detectors"];
    REQUIRE(every.size() == 5);
    const char* names[] = {"stamp", "noise-residual", "ood", "union", "ensemble"};
    bool everywhere = true;
    for (std::size_t i = 0; i < 5; ++i) {
        CHECK(every[i]["name"] == names[i]);
        if (i < 3) CHECK(every[3]["triggers_flagged"].get<int>() >= every[i]["triggers_flagged"].get<int>());
        everywhere = everywhere && every[i]["verdict"] == "watermark-present";
    }
    CHECK(every[3]["threshold"].is_null());
    CHECK(all.exit_code == (everywhere ? 0 : 1));
    const auto text = nnmark_tool(base + " --detector noise-residual", m.dir);
    CHECK(text.exit_code == (nlohmann::json::parse(all.out)["detectors"][1]["verdict"] == "watermark-present" ? 0 : 1));
    CHECK(std::count(text.out.begin(), text.out.end(), '\n') == 1);
    CHECK(contains(text.out, "evade noise-residual (threshold "));

    for (const std::string& bad : {base + " --detector stamps", base + " --false-positive-rate 1",
                                   base + " --false-positive-rate -0.1",
                                   "attack evade --model " + m.model + m.data + " --detector stamp"}) {
        CAPTURE(bad);
        const auto b = nnmark_tool(bad, m.dir);
        CHECK(b.exit_code == 2);
        CHECK(b.one_line_error());
    }
}
