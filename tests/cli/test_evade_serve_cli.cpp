// nnmark serve --evade and eval --url end to end, on loopback: a served thief whose stamp
// detector hides a content watermark from verify --url exactly as attack evade
// simulates it, while the same model served plainly is found; eval --url measures what a
// service answers, equal to eval --model for a plain one; bad --evade flags exit 2.
#include "nnmark/data/load.hpp"
#include "nnmark/model/model_file.hpp"
#include "nnmark/train/evaluate.hpp"
#include "nnmark/watermark/content_trigger.hpp"
#include "nnmark/watermark/key.hpp"

#include "../support/files.hpp"
#include "../support/tiny_data.hpp"
#include "cli_runner.hpp"
#include "server_process.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

namespace nnmark::testing::evade_serve_cli_tests {

// A content key whose labels are what `net` answers on 16 stamped training images (random
// label mode, null rate 1/9): `net` carries this watermark without any training, and the
// stamp detector sees every trigger.
watermark_key stamped_key_answered_by(const sequential<float>& net, const dataset& train) {
    rng random(4);
    watermark_key key;
    key.triggers = content_trigger().make(train, 16, random);
    key.triggers.labels = predict_labels(net, key.triggers);
    key.recipe = parse_json(R"({"kind":"content","source":1,"target":0,"seed":1,"count":16,"label_mode":"random",)"
                             R"("classes":10,"dataset":"mnist","datasets":[]})",
                             "recipe");
    return key;
}

std::string url_of(const server_process& server) {
    return "http://127.0.0.1:" + std::to_string(server.port()) + "/v1/models/default:predict";
}

TEST_CASE("cli serve --evade: a served stamp detector hides the watermark as attack evade says; eval --url") {
    temp_dir dir;
    const auto mnist = write_synthetic_mnist(dir.path / "mnist", 200, 60, 9);
    const std::string data = " --dataset mnist --data " + mnist.string();
    const auto model = dir / "stolen.safetensors", key = dir / "stolen.key";
    const auto trained = nnmark_tool("train" + data + " --arch " +
                                         write_architecture(make_small_mnist_net<float>(), dir, "small.json") +
                                         " --epochs 2 --batch 16 --lr 0.02 --seed 5 --quiet --out " + model.string(),
                                     dir);
    REQUIRE_MESSAGE(trained.exit_code == 0, trained.err);
    save_key(stamped_key_answered_by(load_model<float>(model), load_dataset("mnist", mnist, true)), key);
    // --reuse-triggers: both verifications ask the same triggers, to compare them.
    const std::string verify = " --key " + key.string() + " --reuse-triggers --rate 1000 --batch 8 --seed 3" + data + " --json";

    // Served plainly, the model is found, and a user of the service sees the model's accuracy.
    {
        server_process plain(model, "", dir);
        const auto found = nnmark_tool("verify --url " + url_of(plain) + verify, dir);
        CHECK_MESSAGE(found.exit_code == 0, found.err);
        CHECK(nlohmann::json::parse(found.out)["matches"] == 16);
        const auto remote = nnmark_tool("eval --url " + url_of(plain) + data + " --rate 1000 --json", dir);
        const auto local = nnmark_tool("eval --model " + model.string() + data + " --json", dir);
        REQUIRE_MESSAGE(remote.exit_code == 0, remote.err);
        REQUIRE_MESSAGE(local.exit_code == 0, local.err);
        const auto r = nlohmann::json::parse(remote.out), l = nlohmann::json::parse(local.out);
        CHECK(r["correct"] == l["correct"]);
        CHECK(r["images"] == 60);
        CHECK(r["url"] == url_of(plain));
        CHECK_FALSE(r.contains("loss"));  // labels only
        CHECK(plain.stop() == 0);
    }

    // Behind --evade stamp every trigger is flagged and answered with the model's
    // second-best class: not one match, as attack evade predicts for the same detector.
    server_process thief(model, "--evade stamp" + data, dir);
    CHECK(contains(thief.out(), "evading verification (--evade stamp): stamp above"));
    const auto hidden = nnmark_tool("verify --url " + url_of(thief) + verify, dir);
    CHECK_MESSAGE(hidden.exit_code == 1, hidden.err);
    const auto simulated =
        nnmark_tool("attack evade --model " + model.string() + " --key " + key.string() + data + " --detector stamp --json", dir);
    REQUIRE_MESSAGE(simulated.exit_code == 1, simulated.err);
    const auto served = nlohmann::json::parse(hidden.out);
    const auto stamp = nlohmann::json::parse(simulated.out)["detectors"][0];
    CHECK(stamp["triggers_flagged"] == 16);
    CHECK(served["matches"] == stamp["matches"]);
    CHECK(served["matches"] == 0);
    CHECK(thief.stop() == 0);

    // Bad evasion flags are usage errors, before any slow work.
    for (const std::string& flags : std::vector<std::string>{"--evade stamps" + data, "--evade ood --dataset cifar11",
                                     "--evade ood --dawn-registry " + (dir / "dawn").string(),
                                     "--false-positive-rate 0.1" + data,
                                     "--evade ood --false-positive-rate 1" + data}) {
        CAPTURE(flags);
        const auto refused = nnmark_tool("serve --model " + model.string() + " --port 0 " + flags, dir);
        CHECK(refused.exit_code == 2);
        CHECK(refused.one_line_error());
    }
    const auto neither = nnmark_tool("eval" + data, dir);
    CHECK(neither.exit_code == 2);
    CHECK_MESSAGE(contains(neither.err, "--model or --url"), neither.err);
    const auto batch_without_url = nnmark_tool("eval --model " + model.string() + data + " --batch 4", dir);
    CHECK(batch_without_url.exit_code == 2);
}

}  // namespace nnmark::testing::evade_serve_cli_tests
