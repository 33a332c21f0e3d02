// verify --url with a ledger, end to end: a thief's proxy in front of a served model logs
// every image it is asked, and three verifications with one key send no trigger image
// twice (the ledger says which images were triggers, the proxy's log that they were
// really sent, once); the key runs out with exit 2 and a message; the ledger of another
// key, and a ledger that is the key itself, are refused.
#include "nnmark/core/sha256.hpp"
#include "nnmark/data/load.hpp"
#include "nnmark/model/model_file.hpp"
#include "nnmark/watermark/embed.hpp"
#include "nnmark/watermark/trigger_ledger.hpp"

#include "../support/files.hpp"
#include "../support/tiny_data.hpp"
#include "cli_runner.hpp"
#include "server_process.hpp"

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace nnmark::testing::ledger_cli_tests {

// The thief: forwards every request to the served model and logs the SHA-256 of each
// image it carries (28x28 grey images: HWC order is the key's CHW order).
class logging_proxy {
public:
    explicit logging_proxy(int upstream_port) : upstream_("127.0.0.1", upstream_port) {
        server_.Post(R"(/v1/models/.*)", [this](const httplib::Request& req, httplib::Response& res) {
            log(req.body);
            const httplib::Result answer = upstream_.Post(req.path, req.body, "application/json");
            if (!answer) {  // (no doctest assertion here: this is the server's thread)
                res.status = 502;
                return;
            }
            res.status = answer->status;
            res.set_content(answer->body, "application/json");
        });
        port_ = server_.bind_to_any_port("127.0.0.1");
        thread_ = std::thread([this] { server_.listen_after_bind(); });
        while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ~logging_proxy() {
        server_.stop();
        thread_.join();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1/models/suspect:predict"; }
    // The images seen since the last call.
    std::vector<std::string> take_log() {
        const std::lock_guard lock(mutex_);
        return std::exchange(seen_, {});
    }

private:
    void log(const std::string& body) {
        const auto doc = nlohmann::json::parse(body);
        const std::lock_guard lock(mutex_);
        for (const auto& image : doc.at("instances")) {
            std::string bytes;
            for (const auto& row : image)
                for (const auto& pixel : row) bytes.push_back(static_cast<char>(pixel.at(0).get<int>()));
            seen_.push_back(sha256_hex(bytes));
        }
    }

    httplib::Client upstream_;
    httplib::Server server_;
    int port_ = 0;
    std::thread thread_;
    std::mutex mutex_;
    std::vector<std::string> seen_;
};

// A content key with target labels made as embed makes one, from the source class of
// the training images in `mnist`.
watermark_key content_key(const std::filesystem::path& mnist, index_t count, const std::string& label_mode) {
    const dataset train = load_dataset("mnist", mnist, true);
    trigger_recipe recipe = default_recipe("mnist", trigger_kind::content);
    recipe.count = count;
    recipe.seed = 21;
    recipe.label_mode = parse_trigger_labeling(label_mode, "test");
    watermark_key key;
    key.triggers = make_trigger_set(recipe, train.filter_by_label(recipe.source), train.item_shape());
    key.recipe = recipe_json(recipe, "mnist", train.item_shape(), dataset_files("mnist", mnist, true));
    return key;
}

std::set<std::string> ledger_hashes(const ledger_entry& e) { return {e.sha256.begin(), e.sha256.end()}; }

TEST_CASE("cli ledger: three verifications with one key send no trigger image twice, then the key runs out") {
    temp_dir dir;
    const auto mnist = write_synthetic_mnist(dir.path / "mnist", 200, 60, 4);  // 20 training images of class 1
    const std::string data = " --dataset mnist --data " + mnist.string();
    const auto model = dir / "small.safetensors", key = dir / "content.key", ledger = dir / "content.key.ledger";
    sequential<float> net = make_small_mnist_net<float>();
    net.initialize(3);
    save_model(net, model);
    const watermark_key made = content_key(mnist, 4, "target");
    save_key(made, key);

    server_process server(model, "--name suspect", dir);
    logging_proxy thief(server.port());
    const std::string verify =
        "verify --url " + thief.url() + " --key " + key.string() + " --rate 1000 --batch 4 --timeout 30 --json" + data;
    std::set<std::string> sent_before;  // every image the thief saw in earlier verifications
    for (int run = 0; run < 3; ++run) {
        CAPTURE(run);
        const auto r = nnmark_tool(verify + " --triggers 4", dir);
        REQUIRE_MESSAGE((r.exit_code == 0 || r.exit_code == 1), r.err);
        const auto out = nlohmann::json::parse(r.out);
        CHECK(out["queries"] == 4);
        CHECK((out["verdict"] == "watermark-present" || out["verdict"] == "not-detected"));
        CHECK(out["commitment"] == made.commitment());
        CHECK(out["ledger"] == ledger.string());
        CHECK(out["triggers_spent_before"] == 4 * run);
        CHECK(out["fresh_triggers"] == (run == 0 ? 0 : 4));  // the key's 4, then the recipe's
        const std::vector<ledger_entry> entries = read_trigger_ledger(ledger, made.commitment()).entries;
        REQUIRE(entries.size() == static_cast<std::size_t>(run + 1));
        const std::set<std::string> triggers = ledger_hashes(entries.back());
        CHECK(triggers.size() == 4);
        const std::vector<std::string> seen = thief.take_log();
        CHECK(seen.size() == 8);  // 4 triggers among 4 decoys
        const std::set<std::string> seen_now(seen.begin(), seen.end());
        for (const std::string& t : triggers) {
            CHECK_MESSAGE(seen_now.contains(t), "a trigger the ledger records was not sent");
            CHECK_MESSAGE(!sent_before.contains(t), "a trigger image was sent in an earlier verification");
        }
        sent_before.insert(seen.begin(), seen.end());
    }
    CHECK(thief.take_log().empty());

    // 20 source images: 12 spent, 4 key images among them; 8 remain, 10 are asked for.
    const auto out_of_triggers = nnmark_tool(verify + " --triggers 10", dir);
    CHECK(out_of_triggers.exit_code == 2);
    CHECK(out_of_triggers.one_line_error());
    CHECK_MESSAGE(contains(out_of_triggers.err, "10 needed, 8 unspent remain (12 trigger images spent before"),
                  out_of_triggers.err);
    CHECK_MESSAGE(contains(out_of_triggers.err, "--reuse-triggers"), out_of_triggers.err);
    CHECK(thief.take_log().empty());  // nothing sent
    CHECK(read_trigger_ledger(ledger, made.commitment()).entries.size() == 3);

    // --reuse-triggers sends the key's own again, and still records them.
    const auto reused = nnmark_tool(verify + " --triggers 4 --reuse-triggers", dir);
    REQUIRE_MESSAGE((reused.exit_code == 0 || reused.exit_code == 1), reused.err);
    const std::vector<ledger_entry> entries = read_trigger_ledger(ledger, made.commitment()).entries;
    REQUIRE(entries.size() == 4);
    CHECK(ledger_hashes(entries.back()) == ledger_hashes(entries.front()));
    const std::vector<std::string> resent = thief.take_log();
    for (const std::string& t : ledger_hashes(entries.front()))
        CHECK(std::find(resent.begin(), resent.end(), t) != resent.end());

    // Another key's ledger, or the key itself as the ledger: exit 2, one line, nothing sent.
    const auto other_key = dir / "other.key";
    save_key(content_key(mnist, 6, "random"), other_key);
    const auto foreign = nnmark_tool("verify --url " + thief.url() + " --key " + other_key.string() + " --ledger " +
                                         ledger.string() + " --rate 1000 --timeout 30" + data,
                                     dir);
    CHECK(foreign.exit_code == 2);
    CHECK(foreign.one_line_error());
    CHECK_MESSAGE(contains(foreign.err, "records another key"), foreign.err);
    const auto onto_key = nnmark_tool(verify + " --ledger " + key.string(), dir);
    CHECK(onto_key.exit_code == 2);
    CHECK_MESSAGE(contains(onto_key.err, "is also read as --key"), onto_key.err);
    CHECK(thief.take_log().empty());
    CHECK(load_key(key).commitment() == made.commitment());  // the key is untouched
    CHECK(server.stop() == 0);
}

}  // namespace nnmark::testing::ledger_cli_tests
