// The tool against hostile files and flags, by class: outputs that name an input or each
// other, FIFOs, devices and directories where files belong, architectures too large for
// memory, non-finite weights, checkpoints of another run, bad numbers, unknown commands.
// Every case must exit 2 with one line of at most 300 characters, at once (a FIFO is
// never waited on: each run is bounded by timeout(1), so a hang fails instead of
// blocking the suite), and leave every file as it was.
#include "nnmark/data/load.hpp"
#include "nnmark/model/model_file.hpp"
#include "nnmark/train/trainer.hpp"

#include "../support/files.hpp"
#include "../support/tiny_data.hpp"
#include "cli_runner.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <sys/stat.h>

using namespace nnmark;
using namespace nnmark::testing;

namespace files_cli_test {

// A run of the tool that cannot hang the suite: timeout(1) ends it after 30 s (exit 124).
run_result bounded_tool(const std::string& args, const temp_dir& logs) {
    return run_program("timeout 30 " NNMARK_TOOL_PATH, args + " --threads 2", logs);
}

// Every regular file under `dir` with its content: what no refused command may change.
std::map<std::string, bytes> snapshot(const std::filesystem::path& dir) {
    std::map<std::string, bytes> files;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
        if (e.is_regular_file() && !e.is_symlink()) files[e.path().string()] = read_file(e.path());
    return files;
}

// Exit 2, one line of at most 300 characters containing `expected`, nothing changed.
void expect_refused(const std::string& args, const std::string& expected, const std::filesystem::path& work,
                    const temp_dir& logs) {
    CAPTURE(args);
    const auto before = snapshot(work);
    const run_result r = bounded_tool(args, logs);
    CAPTURE(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.one_line_error());
    CHECK(r.err.size() <= 301);
    CHECK(contains(r.err, expected));
    CHECK(snapshot(work) == before);
}

struct fixture {
    temp_dir work, logs;
    std::filesystem::path mnist = write_synthetic_mnist(work / "mnist", 120, 40, 9);
    std::string arch = write_architecture(make_small_mnist_net<float>(), work, "small.json");
    std::string data = " --dataset mnist --data " + mnist.string() + " --arch " + arch;
    std::filesystem::path model = work / "model.safetensors";

    fixture() {
        auto net = make_small_mnist_net<float>();
        net.initialize(3);
        save_model(net, model);
    }
    void refused(const std::string& args, const std::string& expected) const {
        expect_refused(args, expected, work.path, logs);
    }
};

// `text` with the first `from` replaced by `to`.
std::string replace_once(std::string text, const std::string& from, const std::string& to) {
    const auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    return text.replace(at, from.size(), to);
}

}  // namespace files_cli_test
using namespace files_cli_test;

TEST_CASE("cli files: no command writes over one of its inputs, or two outputs to one file") {
    fixture f;
    const std::string m = f.model.string();
    const auto link = f.work / "link.safetensors";
    std::filesystem::create_hard_link(f.model, link);
    const std::string data = " --dataset mnist --data " + f.mnist.string();
    f.refused("attack prune --model " + m + " --out " + m + data, "does not write over its inputs");
    f.refused("attack prune --model " + m + " --out " + link.string() + data, "does not write over its inputs");
    f.refused("attack prune --model " + m + " --out " + (f.work.path / "." / "model.safetensors").string() + data,
              "does not write over its inputs");
    f.refused("train" + f.data + " --out " + f.arch, "is also read as --arch");
    f.refused("train" + f.data + " --out " + (f.mnist / "train-labels-idx1-ubyte").string(), "is also read as --data");
    f.refused("embed" + f.data + " --out " + m + " --key-out " + m, "two outputs cannot share one file");
    // train and embed also write <out>.checkpoint.
    f.refused("embed" + f.data + " --out " + m + " --key-out " + m + ".checkpoint", "--out's checkpoint");
}

TEST_CASE("cli files: FIFOs, devices and directories are refused at once, as inputs and as outputs") {
    fixture f;
    const std::string m = f.model.string();
    const auto fifo = f.work / "fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    // A symlink to /dev/null stands for the device: were the check missing, the link would
    // be replaced, not the machine's /dev/null.
    const auto null_link = f.work / "null";
    std::filesystem::create_symlink("/dev/null", null_link);
    const std::string data = " --dataset mnist --data " + f.mnist.string();
    f.refused("eval --model " + fifo.string() + data, "found a FIFO");
    f.refused("verify --model " + m + " --key " + fifo.string(), "found a FIFO");
    f.refused("train --dataset mnist --data " + f.mnist.string() + " --arch " + fifo.string() + " --out x",
              "found a FIFO");
    f.refused("eval --model /dev/zero" + data, "found a character device");
    f.refused("eval --model " + f.work.path.string() + data, "found a directory");
    f.refused("attack prune --model " + m + " --out " + fifo.string() + data, "found a FIFO");
    f.refused("attack prune --model " + m + " --out " + null_link.string() + data, "found a character device");
    f.refused("attack prune --model " + m + " --out " + f.mnist.string() + data, "found a directory");
    f.refused("attack prune --model " + m + " --out " + (f.work / "nowhere" / "x").string() + data, "does not exist");
    CHECK(std::filesystem::is_symlink(null_link));

    // A FIFO inside the data directory: the dataset reader refuses it without blocking.
    std::filesystem::remove(f.mnist / "t10k-images-idx3-ubyte");
    REQUIRE(::mkfifo((f.mnist / "t10k-images-idx3-ubyte").c_str(), 0600) == 0);
    f.refused("eval --model " + m + data, "FIFO");
}

TEST_CASE("cli files: architectures too large for memory fail fast with one line, before allocating") {
    fixture f;
    // --arch with a dense layer of 10^12 units, and with an input item of 2^40 pixels.
    const std::string small = architecture_json(make_small_mnist_net<float>());
    for (const auto& [from, to] : {std::pair<std::string, std::string>{"\"out_features\":16", "\"out_features\":1000000000000"},
                                   {"[1,28,28]", "[1,1048576,1048576]"}}) {
        write_file_atomically(f.work / "huge.json", replace_once(small, from, to));
        f.refused("train --dataset mnist --data " + f.mnist.string() + " --arch " + (f.work / "huge.json").string() +
                      " --out " + (f.work / "out.safetensors").string(),
                  "of memory available");
    }

    // A small model file whose metadata claims a 200,000-unit layer: the tensors' shapes
    // in its header are compared with the claim before any model is built.
    const safetensors_file original = safetensors_file::load(f.model);
    safetensors_writer writer;
    for (const auto& e : original.entries()) writer.add_tensor(e.name, e.dtype, e.dims, e.bytes);
    for (const auto& [k, v] : original.metadata())
        writer.set_metadata(k, k == "nnmark.architecture" ? replace_once(v, "\"out_features\":16", "\"out_features\":200000") : v);
    writer.write(f.work / "claims.safetensors");
    f.refused("eval --model " + (f.work / "claims.safetensors").string() + " --dataset mnist --data " + f.mnist.string(),
              "this model expects [200000, 676]");
}

TEST_CASE("cli files: a model file with a non-finite weight is refused, naming the tensor") {
    fixture f;
    for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
        CAPTURE(bad);
        auto net = make_small_mnist_net<float>();
        net.initialize(3);
        net.named_parameters()[2].value[5] = bad;  // 4.weight, element 5
        save_model(net, f.work / "bad.safetensors");
        f.refused("eval --model " + (f.work / "bad.safetensors").string() + " --dataset mnist --data " + f.mnist.string(),
                  "tensor 4.weight holds a non-finite value");
    }
}

TEST_CASE("cli files: --resume refuses a checkpoint of other data, another architecture or other triggers") {
    fixture f;
    const std::string m = f.model.string();
    const std::string flags = " --epochs 2 --batch 16 --lr 0.02 --quiet --resume --out " + m;
    {
        // The checkpoint an interrupted `train` of these flags leaves after epoch 1.
        training_recipe recipe;
        recipe.epochs = 2;
        recipe.batch = 16;
        recipe.learning_rate = 0.02;
        auto net = build_from_architecture<float>(architecture_json(make_small_mnist_net<float>()), "test");
        net.initialize(recipe.seed);
        trainer<float> t(net, recipe);
        t.set_checkpoint(m + ".checkpoint");
        t.on_epoch([](const epoch_summary&) { throw std::runtime_error("interrupted"); });
        progress_line quiet(stderr, 5.0, true);
        CHECK_THROWS(t.fit(load_dataset("mnist", f.mnist, true), nullptr, quiet));
    }
    const auto relabelled = write_synthetic_mnist(f.work / "other", 120, 40, 10);
    f.refused("train --dataset mnist --data " + relabelled.string() + " --arch " + f.arch + flags, "another data");
    const std::string other_arch =
        write_architecture(make_small_image_net<float>(shape{1, 28, 28}, 10, 0.5), f.work, "dropout.json");
    f.refused("train --dataset mnist --data " + f.mnist.string() + " --arch " + other_arch + flags,
              "another architecture");
    f.refused("embed" + f.data + " --count 8 --repeat 2 --key-seed 4 --key-out " + (f.work / "k.key").string() + flags,
              "another triggers");
    // Without its key seed an embed cannot continue: a new secret one would make other triggers.
    f.refused("embed" + f.data + " --count 8 --repeat 2 --key-out " + (f.work / "k.key").string() + flags,
              "pass --key-seed");
    // The same run continues.
    const run_result same = bounded_tool("train" + f.data + flags, f.logs);
    CHECK_MESSAGE(same.exit_code == 0, same.err);
    CHECK(!std::filesystem::exists(m + ".checkpoint"));
}

TEST_CASE("cli files: embed writes model and key together, only after training; a failure leaves the old key") {
    fixture f;
    const auto key = f.work / "marked.key";
    write_file_atomically(key, std::string("the owner's earlier key"));
    const std::string wm = " --count 8 --repeat 2 --epochs 1 --batch 16 --lr 0.02 --quiet";
    f.refused("embed" + f.data + wm + " --out " + (f.work / "nowhere" / "m.safetensors").string() + " --key-out " +
                  key.string(),
              "does not exist");
    // Training fails (the data has no images of the trigger source class 1): nothing written.
    const auto ones_free = f.work / "ones-free";
    std::filesystem::create_directories(ones_free);
    write_bytes(ones_free / "train-images-idx3-ubyte", idx_file({2, 28, 28}, bytes(2 * 784, 3)));
    write_bytes(ones_free / "train-labels-idx1-ubyte", idx_file({2}, bytes{0, 2}));
    write_bytes(ones_free / "t10k-images-idx3-ubyte", idx_file({2, 28, 28}, bytes(2 * 784, 3)));
    write_bytes(ones_free / "t10k-labels-idx1-ubyte", idx_file({2}, bytes{0, 2}));
    f.refused("embed --dataset mnist --data " + ones_free.string() + " --arch " + f.arch + wm + " --source 1 --out " +
                  (f.work / "new.safetensors").string() + " --key-out " + key.string(),
              "");

    // A key whose metadata entry "nnmark.version" is renamed by one byte is refused.
    const run_result e = bounded_tool("embed" + f.data + wm + " --out " + (f.work / "new.safetensors").string() +
                                          " --key-out " + key.string(),
                                      f.logs);
    REQUIRE_MESSAGE(e.exit_code == 0, e.err);
    CHECK(std::filesystem::exists(f.work / "new.safetensors"));
    bytes content = read_file(key);
    const std::string text(content.begin(), content.end());
    const auto at = text.find("nnmark.version");
    REQUIRE(at != std::string::npos);
    content[at + 7] = 'w';  // "nnmark.wersion"
    write_bytes(f.work / "flipped.key", content);
    f.refused("key inspect --key " + (f.work / "flipped.key").string(), "unexpected metadata entry");
    f.refused("key show --key " + key.string() + " --png " + key.string(), "does not write over its inputs");
    // No temporary file is left anywhere.
    for (const auto& entry : std::filesystem::recursive_directory_iterator(f.work.path))
        CHECK_MESSAGE(!contains(entry.path().filename().string(), ".tmp-"), entry.path().string());
}

TEST_CASE("cli files: numeric flags refuse non-finite and out-of-range values, naming the flag") {
    fixture f;
    const std::string m = f.model.string();
    const std::string data = " --dataset mnist --data " + f.mnist.string();
    const std::string train = "train" + f.data + " --out " + (f.work / "x.safetensors").string();
    const std::string embed = "embed" + f.data + " --out " + (f.work / "x.safetensors").string() + " --key-out " +
                              (f.work / "x.key").string();
    f.refused(train + " --seed -1", "--seed");
    f.refused(train + " --seed 18446744073709551616", "--seed");
    f.refused(train + " --lr 1e400", "--lr");
    f.refused(train + " --lr nan", "--lr");
    f.refused(train + " --momentum inf", "--momentum");
    f.refused(train + " --epochs 99999999999999999999", "--epochs");
    f.refused(embed + " --wm-weight nan", "--wm-weight");
    f.refused(embed + " --key-seed -3", "--key-seed");
    f.refused("verify --model " + m + " --key k --alpha nan", "--alpha");
    f.refused("attack prune --model " + m + " --out y" + data + " --rate nan", "--rate");
    f.refused("attack transform --model " + m + data + " --noise nan", "--noise");
    f.refused("attack transform --model " + m + data + " --noise 0.1 --noise-seed -1", "--noise-seed");
    f.refused("eval --model " + m + data + " --threads nan", "--threads");
}

TEST_CASE("cli files: an unknown command is named, with the known ones") {
    fixture f;
    f.refused("frobnicate", "unknown command 'frobnicate'");
    f.refused("attack frobnicate --model x", "unknown command 'frobnicate'");
    f.refused("key frob", "unknown command 'frob'");
}
