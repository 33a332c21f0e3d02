#include "nnmark/watermark/key.hpp"

#include "../support/files.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

using namespace nnmark;
using testing::bytes;
using testing::contains;
using testing::error_message;
using testing::temp_dir;

namespace {

constexpr index_t trigger_count = 6;

// Six 1x5x4 trigger images with distinct bytes (0 and 255 included) and mixed labels.
dataset make_triggers() {
    dataset t;
    t.images.resize(shape{trigger_count, 1, 5, 4});
    for (index_t i = 0; i < t.images.size(); ++i) t.images[i] = static_cast<std::uint8_t>((i * 37 + 255) % 256);
    for (index_t i = 0; i < trigger_count; ++i) t.labels.push_back(static_cast<int>((1 + 4 * i) % 10));
    t.classes = 10;
    t.name = "test triggers";
    return t;
}

json make_recipe(const std::string& label_mode) {
    json generator = json::object();
    generator["text"] = "TEST";
    generator["gray"] = 0.5;
    json file = json::object();
    file["file"] = "train-images-idx3-ubyte.gz";
    file["sha256"] = "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609";
    json datasets = json::array();
    datasets.push_back(std::move(file));
    json r = json::object();
    r["kind"] = "content";
    r["source"] = 1;
    r["target"] = 7;
    r["seed"] = 12345;
    r["count"] = trigger_count;
    r["label_mode"] = label_mode;
    r["classes"] = 10;
    r["dataset"] = "mnist";
    r["generator"] = std::move(generator);
    r["datasets"] = std::move(datasets);
    r["note"] = "owner: caf\xc3\xa9 ACME";
    return r;
}

watermark_key make_key(const std::string& label_mode = "random") {
    return {make_triggers(), make_recipe(label_mode), std::nullopt};
}

std::uint64_t header_length(const bytes& file) {
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | file[static_cast<std::size_t>(i)];
    return n;
}

// Offset of the first occurrence of `text` in `file`; fails the test if absent.
std::size_t find_text(const bytes& file, const std::string& text) {
    const auto at = std::search(file.begin(), file.end(), text.begin(), text.end());
    REQUIRE(at != file.end());
    return static_cast<std::size_t>(at - file.begin());
}

// The message load_key gives for a copy of `saved` changed by `edit`.
std::string load_error_after_edit(const std::filesystem::path& saved, const std::function<void(bytes&)>& edit) {
    bytes content = read_file(saved);
    edit(content);
    const auto edited = saved.parent_path() / "edited.safetensors";
    testing::write_bytes(edited, content);
    return error_message([&] { load_key(edited); });
}

// A key file written without save_key's checks; the commitment is correct for what is written.
void write_unchecked(const std::filesystem::path& path, const dataset& triggers, const std::string& recipe_text,
                     const std::string& calibration_text = "") {
    safetensors_writer w;
    w.add_tensor<std::uint8_t>("images", dims_of(triggers.images.shape()), triggers.images.span());
    const std::vector<std::int64_t> labels(triggers.labels.begin(), triggers.labels.end());
    w.add_tensor<std::int64_t>("labels", {triggers.size()}, labels);
    w.set_metadata("nnmark.key.recipe", recipe_text);
    w.set_metadata("nnmark.key.commitment", commitment_of(triggers, recipe_text));
    if (!calibration_text.empty()) w.set_metadata("nnmark.key.calibration", calibration_text);
    w.write(path);
}

const std::string sha_a(64, 'a'), sha_b(64, 'b');
const std::string service = "http://10.0.0.7:8501/v1/models/clean:predict";

// Three reference models of the six triggers: two files and one served model.
std::vector<reference_model> three_references() {
    return {{"clean-a.safetensors", sha_a, 1}, {"clean-b.safetensors", sha_b, 2}, {service, "", 0}};
}

// `text` as it appears inside the safetensors header, where metadata values are JSON strings.
std::string escaped(const std::string& text) {
    std::string out;
    for (char c : text) out += c == '"' ? std::string("\\\"") : std::string(1, c);
    return out;
}

}  // namespace

TEST_CASE("key: save then load gives bit-identical triggers, the same recipe and a stable commitment") {
    temp_dir dir;
    const watermark_key original = make_key();
    save_key(original, dir / "key.safetensors");
    const watermark_key loaded = load_key(dir / "key.safetensors");

    CHECK(loaded.triggers.images.shape() == original.triggers.images.shape());
    CHECK(std::memcmp(loaded.triggers.images.data(), original.triggers.images.data(),
                      static_cast<std::size_t>(original.triggers.images.size())) == 0);
    CHECK(loaded.triggers.labels == original.triggers.labels);
    CHECK(loaded.triggers.classes == 10);
    CHECK(loaded.recipe == original.recipe);
    CHECK_FALSE(loaded.calibration.has_value());
    CHECK(loaded.commitment() == original.commitment());

    const safetensors_file file = safetensors_file::load(dir / "key.safetensors");
    CHECK(*file.find_metadata("nnmark.key.commitment") == original.commitment());
    CHECK(*file.find_metadata("nnmark.key.recipe") == dump_json(original.recipe));
    CHECK(*file.find_metadata("nnmark.version") == "1");
    CHECK(file.find("images")->dtype == "U8");
    CHECK(file.find("labels")->dtype == "I64");

    // Saving the loaded key again writes the same bytes.
    save_key(loaded, dir / "again.safetensors");
    CHECK(read_file(dir / "again.safetensors") == read_file(dir / "key.safetensors"));
}

TEST_CASE("key: a calibration round trips, is outside the commitment and holds its per-model counts") {
    temp_dir dir;
    watermark_key key = make_key("target");
    const std::string before = key.commitment();
    key.calibration = calibrate(three_references(), trigger_count, 0.99);
    // Derived by hand: pooled m = 3/18; X^2 = (0 + 1 + 1) / (6 m (1 - m)) = 2.4 against
    // chi2_2(0.01) = -2 ln 0.99 gives a dispersion far above 6, so phi_u = n = 6 (the
    // most 6 answers can show), rho_u = 0.999 (the cap), and 18 / 6 = 3 effective
    // answers with ceil(3 m) = 1 match.
    CHECK(key.calibration->fit.pooled_rate == doctest::Approx(1.0 / 6).epsilon(1e-15));
    CHECK(2.4 / (-2 * std::log(0.99)) > 6);
    CHECK(key.calibration->fit.dispersion_bound == 6.0);
    CHECK(key.calibration->fit.correlation_bound == 0.999);
    CHECK(key.calibration->fit.mean_bound == clopper_pearson_upper(3, 1, 0.99));
    CHECK(key.calibration->queries() == 18);
    CHECK(key.calibration->matches() == 3);
    CHECK(key.commitment() == before);
    save_key(key, dir / "key.safetensors");
    const watermark_key loaded = load_key(dir / "key.safetensors");
    REQUIRE(loaded.calibration.has_value());
    REQUIRE(loaded.calibration->models.size() == 3);
    CHECK(loaded.calibration->models[1].name == "clean-b.safetensors");
    CHECK(loaded.calibration->models[1].sha256 == sha_b);
    CHECK(loaded.calibration->models[1].matches == 2);
    CHECK(loaded.calibration->models[2].name == service);
    CHECK(loaded.calibration->models[2].sha256.empty());
    CHECK(loaded.calibration->confidence == 0.99);
    CHECK(loaded.calibration->fit.mean_bound == key.calibration->fit.mean_bound);
    CHECK(loaded.commitment() == before);
}

TEST_CASE("commitment_of: the documented byte string (reference computed with Python's hashlib)") {
    // python3 -c 'import hashlib, struct; recipe = "<the text below>";
    //   print(hashlib.sha256(b"nnmark-key-v1\0" + struct.pack("<4Q", 2, 1, 1, 3) +
    //         bytes([0, 1, 2, 250, 255, 128]) + struct.pack("<2q", 3, 9) + recipe.encode()).hexdigest())'
    const std::string recipe = R"({"kind":"content","source":1,"target":3,"seed":7,"count":2,)"
                               R"("label_mode":"target","classes":10,"dataset":"mnist","datasets":[]})";
    dataset t;
    t.images.resize(shape{2, 1, 1, 3});
    const std::uint8_t pixels[] = {0, 1, 2, 250, 255, 128};
    std::copy(std::begin(pixels), std::end(pixels), t.images.data());
    t.labels = {3, 9};
    CHECK(commitment_of(t, recipe) == "64f00f8b59135e643e810b8ec3aa4f165ca2c6b6c837d3a0cbad42b892ef1757");
    const watermark_key key{t, parse_json(recipe, "test"), std::nullopt};
    CHECK(key.commitment() == "64f00f8b59135e643e810b8ec3aa4f165ca2c6b6c837d3a0cbad42b892ef1757");
}

TEST_CASE("commitment_of: changes with any pixel, label, recipe character or the image shape") {
    const dataset t = make_triggers();
    const std::string recipe = dump_json(make_recipe("random"));
    const std::string base = commitment_of(t, recipe);
    dataset pixel = make_triggers();
    pixel.images[17] ^= 1;
    dataset label = make_triggers();
    label.labels[5] = (label.labels[5] + 1) % 10;
    dataset reshaped = make_triggers();
    reshaped.images.reshape(shape{trigger_count, 1, 4, 5});
    CHECK(commitment_of(pixel, recipe) != base);
    CHECK(commitment_of(label, recipe) != base);
    CHECK(commitment_of(reshaped, recipe) != base);
    CHECK(commitment_of(t, recipe + " ") != base);
    CHECK(commitment_of(t, recipe) == base);
}

TEST_CASE("load_key: one changed byte in the images, labels, recipe or commitment is detected") {
    temp_dir dir;
    const auto path = dir / "key.safetensors";
    save_key(make_key(), path);
    const bytes saved = read_file(path);
    const std::size_t data_start = 8 + header_length(saved);
    const std::size_t image_bytes = trigger_count * 1 * 5 * 4;
    const auto tampered = [&](const std::function<void(bytes&)>& edit) {
        const std::string message = load_error_after_edit(path, edit);
        CHECK(contains(message, "edited.safetensors was tampered with: stored commitment"));
        CHECK(contains(message, "does not match its content"));
    };
    SUBCASE("an image byte") { tampered([&](bytes& b) { b[data_start + 13] ^= 0x01; }); }
    SUBCASE("the last image byte") { tampered([&](bytes& b) { b[data_start + image_bytes - 1] ^= 0x80; }); }
    SUBCASE("a label, staying in range") { tampered([&](bytes& b) { b[data_start + image_bytes + 8] ^= 0x01; }); }
    SUBCASE("a label's high byte") { tampered([&](bytes& b) { b[data_start + image_bytes + 8 * 5 + 7] ^= 0x40; }); }
    SUBCASE("a digit of the recipe's seed") { tampered([&](bytes& b) { b[find_text(b, "12345") + 4] = '6'; }); }
    SUBCASE("a letter of a generator parameter") { tampered([&](bytes& b) { b[find_text(b, "TEST") + 3] = 'U'; }); }
    SUBCASE("the stored commitment") {
        const std::string commitment = make_key().commitment();
        tampered([&](bytes& b) { b[find_text(b, commitment) + 10] ^= commitment[10] == 'a' ? 0x03 : 0x01; });
    }
}

TEST_CASE("load_key: a calibration whose counts do not add up is refused, naming the field") {
    temp_dir dir;
    const auto path = dir / "key.safetensors";
    watermark_key key = make_key("target");
    key.calibration = calibrate(three_references(), trigger_count);
    save_key(key, path);
    const auto refused = [&](const std::string& from, const std::string& to) {
        return load_error_after_edit(path, [&](bytes& b) {
            REQUIRE(from.size() == to.size());
            const std::string inside = escaped(from), replacement = escaped(to);
            std::copy(replacement.begin(), replacement.end(), b.begin() + static_cast<std::ptrdiff_t>(find_text(b, inside)));
        });
    };
    // Hand-made counts: a total that is not the models' sum, queries that are not
    // models x triggers (one model "answering" a billion queries, say), a model with more
    // matches than triggers, a trigger count that is not the key's, a model without its digest.
    CHECK(contains(refused(R"("matches":3,)", R"("matches":0,)"), "the models' counts sum to 3"));
    CHECK(contains(refused(R"("queries":18)", R"("queries":99)"), "3 models x 6 triggers = 18"));
    CHECK(contains(refused(R"("matches":2})", R"("matches":9})"), "9 matches of 6 triggers"));
    CHECK(contains(refused(R"("triggers":6)", R"("triggers":7)"), "7 triggers, the key has 6"));
    CHECK(contains(refused(sha_a.substr(0, 10), "aaaaaaaaaG"), "expected 64 lowercase hex digits"));
}

TEST_CASE("load_key: a calibration of one model, or of the earlier pooled form, is refused") {
    temp_dir dir;
    const auto path = dir / "key.safetensors";
    const watermark_key key = make_key("target");
    const std::string recipe = dump_json(key.recipe);
    write_unchecked(path, key.triggers, recipe,
                    R"({"models":[{"name":"a","sha256":")" + sha_a +
                        R"(","matches":0}],"triggers":6,"queries":6,"matches":0,"confidence":0.99,"mean":0.5,"correlation":0})");
    CHECK(contains(error_message([&] { load_key(path); }), "at least two reference models"));
    write_unchecked(path, key.triggers, recipe,
                    R"({"models":["clean"],"queries":1000000000,"matches":0,"confidence":0.99,"null_rate":4.6e-9})");
    CHECK(contains(error_message([&] { load_key(path); }), "re-run 'nnmark calibrate'"));
}

TEST_CASE("load_key: files without the key's tensors are rejected with what was expected") {
    temp_dir dir;
    const auto path = dir / "bad.safetensors";
    const dataset t = make_triggers();
    const std::vector<std::int64_t> labels(t.labels.begin(), t.labels.end());
    const std::vector<float> floats(static_cast<std::size_t>(t.images.size()), 0.5f);
    const std::vector<std::int32_t> labels32(t.labels.begin(), t.labels.end());
    safetensors_writer w;
    SUBCASE("no images") {
        w.add_tensor<std::int64_t>("labels", {trigger_count}, labels);
        w.write(path);
        CHECK(contains(error_message([&] { load_key(path); }), "bad.safetensors: tensor \"images\" is missing"));
    }
    SUBCASE("no labels") {
        w.add_tensor<std::uint8_t>("images", dims_of(t.images.shape()), t.images.span());
        w.write(path);
        CHECK(contains(error_message([&] { load_key(path); }), "tensor \"labels\" is missing"));
    }
    SUBCASE("float images") {
        w.add_tensor<float>("images", dims_of(t.images.shape()), floats);
        w.add_tensor<std::int64_t>("labels", {trigger_count}, labels);
        w.write(path);
        CHECK(contains(error_message([&] { load_key(path); }),
                       "tensor \"images\" is F32 [6, 1, 5, 4], expected U8 [N, C, H, W]"));
    }
    SUBCASE("images of rank 3") {
        w.add_tensor<std::uint8_t>("images", {trigger_count, 5, 4}, t.images.span());
        w.add_tensor<std::int64_t>("labels", {trigger_count}, labels);
        w.write(path);
        CHECK(contains(error_message([&] { load_key(path); }), "tensor \"images\" is U8 [6, 5, 4], expected U8 [N, C, H, W]"));
    }
    SUBCASE("32-bit labels") {
        w.add_tensor<std::uint8_t>("images", dims_of(t.images.shape()), t.images.span());
        w.add_tensor<std::int32_t>("labels", {trigger_count}, labels32);
        w.write(path);
        CHECK(contains(error_message([&] { load_key(path); }), "tensor \"labels\" is I32 [6], expected I64 [6]"));
    }
    SUBCASE("fewer labels than images") {
        w.add_tensor<std::uint8_t>("images", dims_of(t.images.shape()), t.images.span());
        w.add_tensor<std::int64_t>("labels", {trigger_count - 1}, std::span(labels).first(trigger_count - 1));
        w.write(path);
        CHECK(contains(error_message([&] { load_key(path); }), "tensor \"labels\" is I64 [5], expected I64 [6]"));
    }
    SUBCASE("an extra tensor") {
        w.add_tensor<std::uint8_t>("images", dims_of(t.images.shape()), t.images.span());
        w.add_tensor<std::int64_t>("labels", {trigger_count}, labels);
        w.add_tensor<float>("logits", {trigger_count}, std::span(floats).first(trigger_count));
        w.write(path);
        CHECK(contains(error_message([&] { load_key(path); }), "unexpected tensor \"logits\""));
    }
    SUBCASE("no recipe, no commitment") {
        w.add_tensor<std::uint8_t>("images", dims_of(t.images.shape()), t.images.span());
        w.add_tensor<std::int64_t>("labels", {trigger_count}, labels);
        w.set_metadata("nnmark.key.commitment", std::string(64, '0'));
        w.write(path);
        CHECK(contains(error_message([&] { load_key(path); }), "metadata \"nnmark.key.recipe\" is missing"));
        safetensors_writer no_commitment;
        no_commitment.add_tensor<std::uint8_t>("images", dims_of(t.images.shape()), t.images.span());
        no_commitment.add_tensor<std::int64_t>("labels", {trigger_count}, labels);
        no_commitment.set_metadata("nnmark.key.recipe", "{}");
        no_commitment.write(path);
        CHECK(contains(error_message([&] { load_key(path); }), "metadata \"nnmark.key.commitment\" is missing"));
    }
    SUBCASE("another file version") {
        w.add_tensor<std::uint8_t>("images", dims_of(t.images.shape()), t.images.span());
        w.add_tensor<std::int64_t>("labels", {trigger_count}, labels);
        w.set_metadata("nnmark.version", "2");
        w.write(path);
        CHECK(contains(error_message([&] { load_key(path); }), "has nnmark.version \"2\""));
    }
}

TEST_CASE("load_key: content that is committed but invalid is rejected") {
    temp_dir dir;
    const auto path = dir / "bad.safetensors";
    const auto load_error = [&](const dataset& t, const std::string& recipe) {
        write_unchecked(path, t, recipe);
        return error_message([&] { load_key(path); });
    };
    const std::string recipe = dump_json(make_recipe("target"));
    SUBCASE("a label out of range") {
        dataset t = make_triggers();
        t.labels[2] = 10;
        CHECK(contains(load_error(t, recipe), "bad.safetensors: label 10 of trigger 2 is outside 0..9"));
        t.labels[2] = -1;
        CHECK(contains(load_error(t, recipe), "label -1 of trigger 2 is outside 0..9"));
    }
    SUBCASE("a recipe that is not in compact form") {
        std::string spaced = recipe;
        spaced.insert(1, " ");
        CHECK(contains(load_error(make_triggers(), spaced), "not in the compact form nnmark writes"));
    }
    SUBCASE("a recipe that is not JSON or not an object") {
        CHECK(contains(load_error(make_triggers(), "{\"kind\":"), "metadata nnmark.key.recipe: invalid JSON at byte"));
        CHECK(contains(load_error(make_triggers(), "[1,2]"), "expected an object, found an array"));
    }
    SUBCASE("recipe fields missing, of the wrong type or disagreeing with the triggers") {
        json r = make_recipe("target");
        json no_target = json::object();
        for (const auto& [k, v] : r.items())
            if (k != "target") no_target[k] = v;
        CHECK(contains(load_error(make_triggers(), dump_json(no_target)), "missing key \"target\""));
        json wrong = make_recipe("target");
        wrong["count"] = 5;
        CHECK(contains(load_error(make_triggers(), dump_json(wrong)),
                       "nnmark.key.recipe.count: the recipe counts 5 triggers, the key holds 6"));
        wrong = make_recipe("target");
        wrong["target"] = 10;
        CHECK(contains(load_error(make_triggers(), dump_json(wrong)), "target class 10 is outside 0..9"));
        wrong = make_recipe("target");
        wrong["seed"] = "12345";
        CHECK(contains(load_error(make_triggers(), dump_json(wrong)), "nnmark.key.recipe.seed: expected an integer, found a string"));
        wrong = make_recipe("target");
        json bad_file = json::object();
        bad_file["file"] = "x";
        bad_file["sha256"] = "ABC";
        json list = json::array();
        list.push_back(std::move(bad_file));
        wrong["datasets"] = std::move(list);
        CHECK(contains(load_error(make_triggers(), dump_json(wrong)),
                       "nnmark.key.recipe.datasets[0].sha256: expected 64 lowercase hex digits"));
    }
}

TEST_CASE("save_key: refuses keys that would not load back, and leaves no file") {
    temp_dir dir;
    const auto path = dir / "key.safetensors";
    watermark_key key = make_key();
    SUBCASE("classes differ between recipe and triggers") {
        key.triggers.classes = 12;
        CHECK(contains(error_message([&] { save_key(key, path); }), "the recipe has 10 classes, the trigger dataset 12"));
    }
    SUBCASE("a label out of range") {
        key.triggers.labels[0] = 10;
        CHECK_THROWS_AS(save_key(key, path), argument_error);
    }
    SUBCASE("a recipe without a kind") {
        key.recipe = json::object();
        CHECK_THROWS_AS(save_key(key, path), argument_error);
        CHECK(contains(error_message([&] { save_key(key, path); }), "recipe: missing key \"kind\""));
    }
    SUBCASE("a calibration whose bounds are not those of its counts") {
        key.calibration = calibrate(three_references(), trigger_count);
        key.calibration->fit.mean_bound = 0.01;
        CHECK_THROWS_AS(save_key(key, path), argument_error);
    }
    CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("null_hypothesis_of: random labels, then a calibration, then chance level") {
    watermark_key random = make_key("random");
    CHECK(null_hypothesis_of(random).rate == 1.0 / 9.0);
    CHECK(null_hypothesis_of(random).correlation == 0.0);
    CHECK(null_hypothesis_of(random).source == "random-labels");
    random.calibration = calibrate(three_references(), trigger_count);
    CHECK(null_hypothesis_of(random).source == "random-labels");

    watermark_key fixed = make_key("target");
    CHECK(null_hypothesis_of(fixed).rate == 0.1);
    CHECK(null_hypothesis_of(fixed).source == "assumed");
    // Two models agreeing exactly (2 and 2 of 6): no overdispersion, so the null is the
    // binomial bound of the pooled 4 of 12.
    fixed.calibration = calibrate({{"a", sha_a, 2}, {"b", sha_b, 2}}, trigger_count, 0.99);
    CHECK(null_hypothesis_of(fixed).rate == clopper_pearson_upper(12, 4, 0.99));
    CHECK(null_hypothesis_of(fixed).correlation == 0.0);
    CHECK(null_hypothesis_of(fixed).source == "calibrated");
}

TEST_CASE("dataset_file_digests: file names and their SHA-256, valid as a recipe's datasets") {
    temp_dir dir;
    testing::write_bytes(dir / "a.bin", bytes{'a', 'b', 'c'});
    testing::write_bytes(dir / "b.bin", bytes{});
    const std::vector<std::filesystem::path> files{dir / "a.bin", dir / "b.bin"};
    const json list = dataset_file_digests(files);
    CHECK(dump_json(list) ==
          R"([{"file":"a.bin","sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},)"
          R"({"file":"b.bin","sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}])");
    watermark_key key = make_key();
    key.recipe["datasets"] = list;
    save_key(key, dir / "key.safetensors");
    CHECK(load_key(dir / "key.safetensors").recipe == key.recipe);
}
