// key: the watermark key file, the secret an owner keeps to verify a suspect model.
//
// A key file is a safetensors file (model/safetensors.hpp) holding
// - tensor "images" U8 [N, C, H, W]: the trigger images, as the model saw them (NCHW);
// - tensor "labels" I64 [N]: the label each trigger must be answered with, in [0, classes);
// - metadata "nnmark.key.recipe": a JSON object saying how the triggers were made. It
//   has at least kind (string), source, target (integer class), seed (integer), count
//   (integer, = N), label_mode (string: "random" = each trigger has a secret label drawn
//   uniformly from the K - 1 classes other than its image's class, `source`, or for kind
//   "natural" (source -1) the training image's own class, see watermark/trigger_set.hpp;
//   anything else, e.g. "target", is a fixed label), classes (integer K >= 2), dataset (string) and datasets (an
//   array of {"file": name, "sha256": 64 hex digits} of the data files used), plus the
//   generator's parameters and any free-form extras;
// - metadata "nnmark.key.commitment": the commitment below, 64 lowercase hex digits;
// - metadata "nnmark.key.calibration" (optional): how reference models without the
//   watermark answered the triggers, JSON {"models": [{"name": file name, "sha256": its
//   SHA-256, "matches": triggers it answered with the key's label}, ...], "triggers": N,
//   "queries": models x N, "matches": their sum, "confidence": c, "mean": mu_u,
//   "correlation": rho_u} with mu_u and rho_u the upper bounds fit_overdispersed_null
//   (watermark/statistics.hpp) derives from the per-model counts at confidence c;
// - metadata "nnmark.version": "1".
//
// The commitment is SHA-256 over this byte string, which an owner can publish (with a
// date) before deploying the model, to show later that the key existed unchanged:
//     "nnmark-key-v1\0"            14 bytes, the domain tag with its NUL
//     N, C, H, W                   four uint64, little endian
//     the images                   N*C*H*W bytes, NCHW
//     the labels                   N int64, little endian
//     the recipe                   the UTF-8 text of nnmark.key.recipe exactly as stored
// In Python: hashlib.sha256(b"nnmark-key-v1\0" + struct.pack("<4Q", *images.shape) +
//   images.tobytes() + labels.astype("<i8").tobytes() + recipe.encode()).hexdigest()
// The calibration is NOT covered: it is measured after the key is made (and published),
// on reference models. load_key() checks instead that it is consistent: at least two
// models, each with a SHA-256 and at most N matches, queries and matches the totals of
// the per-model counts, and mean and correlation exactly what those counts give. The
// model files it names let anyone re-run the calibration and compare.
//
// load_key() recomputes the commitment and refuses a key whose content does not match
// it ("key file X was tampered with"), so one changed byte in the images, labels or
// recipe is detected. It also refuses a recipe text that is not in the compact form
// json::dump() writes, so watermark_key::commitment() (recomputed from the parsed
// recipe) always equals the stored one.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/json.hpp"
#include "nnmark/core/sha256.hpp"
#include "nnmark/data/dataset.hpp"
#include "nnmark/model/safetensors.hpp"
#include "nnmark/watermark/statistics.hpp"
#include "nnmark/watermark/trigger_kind.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nnmark {

inline constexpr std::string_view key_file_version = "1";
inline constexpr std::string_view key_recipe_metadata = "nnmark.key.recipe";
inline constexpr std::string_view key_commitment_metadata = "nnmark.key.commitment";
inline constexpr std::string_view key_calibration_metadata = "nnmark.key.calibration";

// One reference model of a calibration: a model trained without the key.
struct reference_model {
    std::string name;    // its file name, or the URL of a served model
    std::string sha256;  // of its file, so the calibration can be re-run and checked; "" for a served model
    index_t matches = 0; // triggers it answered with the key's label
};

// How reference models without the watermark answered the key's triggers, and the
// population null fitted to them (watermark/statistics.hpp, fit_overdispersed_null).
struct key_calibration {
    std::vector<reference_model> models;
    index_t triggers = 0;  // per model: the key's trigger count
    double confidence = 0.99;
    overdispersed_null fit;

    index_t queries() const { return triggers * static_cast<index_t>(models.size()); }
    index_t matches() const {
        index_t sum = 0;
        for (const reference_model& m : models) sum += m.matches;
        return sum;
    }
};

// A calibration with its null fitted to the per-model counts. Throws argument_error for
// fewer than two models or a count outside 0..triggers.
inline key_calibration calibrate(std::vector<reference_model> models, index_t triggers, double confidence = 0.99) {
    std::vector<index_t> counts;
    for (const reference_model& m : models) counts.push_back(m.matches);
    const overdispersed_null fit = fit_overdispersed_null(counts, triggers, confidence);
    return {std::move(models), triggers, confidence, fit};
}

namespace detail {

inline constexpr std::string_view key_domain_tag{"nnmark-key-v1\0", 14};

inline void hash_u64_le(sha256& hasher, std::uint64_t value) {
    unsigned char bytes[8];
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(value >> (8 * i));
    hasher.update(std::span<const unsigned char>(bytes));
}

// The commitment over its parts (see the header comment for the byte string).
inline std::string key_commitment(std::span<const std::int64_t> image_dims, std::span<const unsigned char> images,
                                  std::span<const std::int64_t> labels, std::string_view recipe_text) {
    sha256 hasher;
    hasher.update(key_domain_tag);
    for (std::int64_t d : image_dims) hash_u64_le(hasher, static_cast<std::uint64_t>(d));
    hasher.update(images);
    for (std::int64_t label : labels) hash_u64_le(hasher, static_cast<std::uint64_t>(label));
    hasher.update(recipe_text);
    return to_hex(hasher.finish());
}

inline std::vector<std::int64_t> labels_as_int64(const dataset& triggers) {
    return {triggers.labels.begin(), triggers.labels.end()};
}

inline bool is_lowercase_sha256_hex(std::string_view text) {
    return text.size() == 64 &&
           std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Throws format_error (with the JSON path) unless `recipe` has the required members
// with their types and agrees with the `count` triggers.
inline void check_recipe(const json_view& recipe, index_t count) {
    constexpr std::string_view required[] = {"kind",       "source",  "target",  "seed",    "count",
                                             "label_mode", "classes", "dataset", "datasets"};
    for (std::string_view key : required)
        if (!recipe.find(key))
            recipe.fail("missing key \"" + std::string(key) +
                        "\" (a recipe has kind, source, target, seed, count, label_mode, classes, dataset, datasets)");
    // Typed reads for their checks: each throws naming the member when its type is wrong.
    recipe["kind"].as_string();
    recipe["label_mode"].as_string();
    recipe["dataset"].as_string();
    recipe["seed"].as_int();
    const std::int64_t classes = recipe["classes"].as_int_at_least(2);
    if (classes > std::numeric_limits<int>::max())
        recipe["classes"].fail(std::to_string(classes) + " classes do not fit a dataset's int labels");
    const std::int64_t target = recipe["target"].as_int_at_least(0);
    if (target >= classes)
        recipe["target"].fail("target class " + std::to_string(target) + " is outside 0.." + std::to_string(classes - 1));
    if (recipe["count"].as_int_at_least(1) != count)
        recipe["count"].fail("the recipe counts " + std::to_string(recipe["count"].as_int()) + " triggers, the key holds " +
                             std::to_string(count));
    for (const json_view& file : recipe["datasets"].elements()) {
        file.expect_only_keys({"file", "sha256"});
        file["file"].as_string();
        if (!is_lowercase_sha256_hex(file["sha256"].as_string()))
            file["sha256"].fail("expected 64 lowercase hex digits, found \"" + file["sha256"].as_string() + "\"");
    }
}

inline json calibration_json(const key_calibration& c) {
    json models = json::array();
    for (const reference_model& m : c.models) {
        json entry = json::object();
        entry["name"] = m.name;
        if (!m.sha256.empty()) entry["sha256"] = m.sha256;
        entry["matches"] = m.matches;
        models.push_back(std::move(entry));
    }
    json doc = json::object();
    doc["models"] = std::move(models);
    doc["triggers"] = c.triggers;
    doc["queries"] = c.queries();
    doc["matches"] = c.matches();
    doc["confidence"] = c.confidence;
    doc["mean"] = c.fit.mean_bound;
    doc["correlation"] = c.fit.correlation_bound;
    return doc;
}

inline bool is_sha256_hex(const std::string& text) {
    return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char ch) {
               return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
           });
}

inline bool is_service_address(const std::string& name) {
    return name.starts_with("http://") || name.starts_with("https://");
}

// Fails unless `stored` is `derived` to 1e-9 relative (the bound the counts give).
inline void expect_derived(const json_view& field, double stored, double derived, const std::string& what) {
    if (!(std::abs(stored - derived) <= 1e-9 * std::abs(derived)))
        field.fail(what + " " + number_text(stored) + " is not " + number_text(derived) +
                   ", the bound its per-model counts give");
}

// The calibration in `doc` for a key of `triggers` triggers, checked for consistency
// (see the header comment). A calibration of the earlier pooled form is refused.
inline key_calibration parse_calibration(const json_view& doc, index_t triggers) {
    if (doc.find("null_rate"))
        doc.fail("a pooled calibration of an earlier nnmark, which did not bound the spread between models; "
                 "re-run 'nnmark calibrate'");
    doc.expect_only_keys({"models", "triggers", "queries", "matches", "confidence", "mean", "correlation"});
    key_calibration c;
    c.triggers = doc["triggers"].as_int_at_least(1);
    if (c.triggers != triggers)
        doc["triggers"].fail(std::to_string(c.triggers) + " triggers, the key has " + std::to_string(triggers));
    for (const json_view& m : doc["models"].elements()) {
        m.expect_only_keys({"name", "sha256", "matches"});
        reference_model model{m["name"].as_string(), m.find("sha256") ? m["sha256"].as_string() : "",
                              m["matches"].as_int_at_least(0)};
        if (!is_sha256_hex(model.sha256) && !(model.sha256.empty() && is_service_address(model.name)))
            m["sha256"].fail("expected 64 lowercase hex digits (only a served model, named by its URL, has none)");
        if (model.matches > triggers)
            m["matches"].fail(std::to_string(model.matches) + " matches of " + std::to_string(triggers) + " triggers");
        c.models.push_back(std::move(model));
    }
    if (c.models.size() < 2) doc["models"].fail("a calibration needs at least two reference models");
    if (doc["queries"].as_int() != c.queries())
        doc["queries"].fail(std::to_string(doc["queries"].as_int()) + " queries; " + std::to_string(c.models.size()) +
                            " models x " + std::to_string(triggers) + " triggers = " + std::to_string(c.queries()));
    if (doc["matches"].as_int() != c.matches())
        doc["matches"].fail(std::to_string(doc["matches"].as_int()) + " matches; the models' counts sum to " +
                            std::to_string(c.matches()));
    c.confidence = doc["confidence"].as_double();
    if (!(c.confidence > 0.0 && c.confidence < 1.0))
        doc["confidence"].fail("confidence " + number_text(c.confidence) + " is outside (0, 1)");
    std::vector<index_t> counts;
    for (const reference_model& m : c.models) counts.push_back(m.matches);
    c.fit = fit_overdispersed_null(counts, triggers, c.confidence);
    expect_derived(doc["mean"], doc["mean"].as_double(), c.fit.mean_bound, "mean");
    expect_derived(doc["correlation"], doc["correlation"].as_double(), c.fit.correlation_bound, "correlation");
    return c;
}

// Runs `check`, turning the format_error it reports about a caller's value into an argument_error.
template <class Check>
void as_argument_check(Check check) {
    try {
        check();
    } catch (const format_error& e) {
        throw argument_error(e.what());
    }
}

}  // namespace detail

// SHA-256 commitment of a key's triggers and recipe text, as hex.
inline std::string commitment_of(const dataset& triggers, const std::string& recipe_json) {
    if (triggers.images.shape().rank() != 4)
        throw shape_error("commitment_of: trigger images must be [N, C, H, W], got " + triggers.images.shape().str());
    const std::vector<std::int64_t> dims = dims_of(triggers.images.shape());
    const std::span<const std::uint8_t> images = triggers.images.span();
    return detail::key_commitment(dims, images, detail::labels_as_int64(triggers), recipe_json);
}

struct watermark_key {
    dataset triggers;  // classes = the recipe's classes
    json recipe;
    std::optional<key_calibration> calibration;

    // Recomputed from the triggers and dump_json(recipe) each time.
    std::string commitment() const { return commitment_of(triggers, dump_json(recipe)); }
};

// Write `key` to `path` atomically. Throws argument_error (shape_error for a bad
// image tensor) when the key would not load back: recipe fields missing or of the
// wrong type, classes differing from triggers.classes, labels out of range, or a
// calibration whose null rate is not the bound of its counts.
inline void save_key(const watermark_key& key, const std::filesystem::path& path) {
    const std::string where = "save_key('" + path.string() + "')";
    key.triggers.validate(where);
    detail::as_argument_check([&] { detail::check_recipe(json_view(key.recipe, where + ": recipe"), key.triggers.size()); });
    const std::int64_t classes = key.recipe.at("classes").get<std::int64_t>();
    if (classes != key.triggers.classes)
        throw argument_error(where + ": the recipe has " + std::to_string(classes) + " classes, the trigger dataset " +
                             std::to_string(key.triggers.classes));
    const std::string recipe_text = dump_json(key.recipe);
    safetensors_writer writer;
    writer.add_tensor<std::uint8_t>("images", dims_of(key.triggers.images.shape()), key.triggers.images.span());
    const std::vector<std::int64_t> labels = detail::labels_as_int64(key.triggers);
    writer.add_tensor<std::int64_t>("labels", {key.triggers.size()}, labels);
    writer.set_metadata(std::string(key_recipe_metadata), recipe_text);
    writer.set_metadata(std::string(key_commitment_metadata), commitment_of(key.triggers, recipe_text));
    if (key.calibration) {
        const json doc = detail::calibration_json(*key.calibration);
        detail::as_argument_check([&] { detail::parse_calibration(json_view(doc, where + ": calibration"), key.triggers.size()); });
        writer.set_metadata(std::string(key_calibration_metadata), dump_json(doc));
    }
    writer.set_metadata("nnmark.version", std::string(key_file_version));
    writer.write(path);
}

namespace detail {

// Checks the tensors of a key file: exactly "images" U8 [N, C, H, W] and "labels" I64 [N].
inline void check_key_tensors(const safetensors_file& file) {
    const std::string what = "key file " + file.source();
    const std::string layout = " (a key holds \"images\" U8 [N, C, H, W] and \"labels\" I64 [N])";
    const safetensors_entry* images = file.find("images");
    const safetensors_entry* labels = file.find("labels");
    if (!images) throw format_error(what + ": tensor \"images\" is missing" + layout);
    if (!labels) throw format_error(what + ": tensor \"labels\" is missing" + layout);
    if (images->dtype != "U8" || images->dims.size() != 4)
        throw format_error(what + ": tensor \"images\" is " + images->dtype + " " + dims_str(images->dims) +
                           ", expected U8 [N, C, H, W]");
    if (labels->dtype != "I64" || labels->dims != std::vector<std::int64_t>{images->dims[0]})
        throw format_error(what + ": tensor \"labels\" is " + labels->dtype + " " + dims_str(labels->dims) +
                           ", expected I64 [" + std::to_string(images->dims[0]) + "] (one label per image)");
    for (const safetensors_entry& e : file.entries())
        if (e.name != "images" && e.name != "labels")
            throw format_error(what + ": unexpected tensor \"" + e.name + "\"" + layout);
}

inline const std::string& required_metadata(const safetensors_file& file, std::string_view key) {
    const std::string* value = file.find_metadata(key);
    if (!value) throw format_error("key file " + file.source() + ": metadata \"" + std::string(key) + "\" is missing");
    return *value;
}

}  // namespace detail

// Read and check a key file: tensors, version, commitment, recipe, labels, calibration.
inline watermark_key load_key(const std::filesystem::path& path) {
    const safetensors_file file = safetensors_file::load(path);
    const std::string what = "key file " + file.source();
    // Every metadata entry is one of the four a key has: a changed byte in an entry's
    // name is detected like one in its value. (A key without "nnmark.version" still
    // loads, as keys written by hand or by older tools do.)
    for (const auto& [name, value] : file.metadata())
        if (name != key_recipe_metadata && name != key_commitment_metadata && name != key_calibration_metadata &&
            name != "nnmark.version")
            throw format_error(what + ": unexpected metadata entry \"" + name.substr(0, 60) + "\"");
    if (const std::string* version = file.find_metadata("nnmark.version"); version && *version != key_file_version)
        throw format_error(what + " has nnmark.version \"" + *version + "\"; this build reads version " +
                           std::string(key_file_version));
    detail::check_key_tensors(file);
    const safetensors_entry& images = *file.find("images");
    const std::vector<std::int64_t> labels = file.find("labels")->values<std::int64_t>();
    const std::string& recipe_text = detail::required_metadata(file, key_recipe_metadata);
    const std::string& stored = detail::required_metadata(file, key_commitment_metadata);
    const std::string actual = detail::key_commitment(images.dims, images.bytes, labels, recipe_text);
    if (stored != actual)
        throw format_error(what + " was tampered with: stored commitment " + stored +
                           " does not match its content (SHA-256 of images, labels and recipe: " + actual + ")");

    watermark_key key;
    const std::string recipe_source = what + ": metadata " + std::string(key_recipe_metadata);
    key.recipe = parse_json(recipe_text, recipe_source);
    if (dump_json(key.recipe) != recipe_text)
        throw format_error(recipe_source + ": the recipe is not in the compact form nnmark writes, so the commitment "
                           "cannot be recomputed from it; re-save the key with nnmark");
    const json_view recipe(key.recipe, recipe_source);
    detail::check_recipe(recipe, static_cast<index_t>(labels.size()));
    const auto classes = static_cast<int>(recipe["classes"].as_int());
    for (std::size_t i = 0; i < labels.size(); ++i)
        if (labels[i] < 0 || labels[i] >= classes)
            throw format_error(what + ": label " + std::to_string(labels[i]) + " of trigger " + std::to_string(i) +
                               " is outside 0.." + std::to_string(classes - 1));
    if (const std::string* text = file.find_metadata(key_calibration_metadata)) {
        const std::string source = what + ": metadata " + std::string(key_calibration_metadata);
        const json doc = parse_json(*text, source);
        key.calibration = detail::parse_calibration(json_view(doc, source), images.dims[0]);
    }

    key.triggers.images.resize(images.to_shape());
    std::memcpy(key.triggers.images.data(), images.bytes.data(), images.bytes.size());
    key.triggers.labels.assign(labels.begin(), labels.end());
    key.triggers.classes = classes;
    key.triggers.name = "triggers of " + what;
    return key;
}

// True when the key's recipe says its triggers carry secret random labels.
inline bool has_random_labels(const watermark_key& key) {
    const auto mode = key.recipe.find("label_mode");
    return mode != key.recipe.end() && mode->is_string() &&
           mode->get_ref<const std::string&>() == to_string(trigger_labeling::random);
}

// The null a verification of `key` tests against (watermark/statistics.hpp's header
// gives the arguments); K is triggers.classes:
// - label_mode "random": rate 1 / (K - 1), correlation 0, "random-labels", valid for
//   every model that never saw the key;
// - a calibration: the beta-binomial bounds fitted to its reference models, "calibrated";
// - otherwise 1 / K, correlation 0, "assumed": a chance-level model, an assumption and
//   not a bound (a clean model may well prefer the target class on trigger images).
inline null_hypothesis null_hypothesis_of(const watermark_key& key) {
    const auto classes = static_cast<double>(key.triggers.classes);
    if (has_random_labels(key)) return {1.0 / (classes - 1.0), 0.0, "random-labels"};
    if (key.calibration) return {key.calibration->fit.mean_bound, key.calibration->fit.correlation_bound, "calibrated"};
    return {1.0 / classes, 0.0, "assumed"};
}

inline double null_rate(const watermark_key& key) { return null_hypothesis_of(key).rate; }

// [{"file": <file name>, "sha256": <digest>}, ...] for the recipe's "datasets": file
// names without directories, so a key stays valid when the data moves.
inline json dataset_file_digests(std::span<const std::filesystem::path> files) {
    json list = json::array();
    for (const std::filesystem::path& f : files) {
        json entry = json::object();
        entry["file"] = f.filename().string();
        entry["sha256"] = sha256_file_hex(f);
        list.push_back(std::move(entry));
    }
    return list;
}

}  // namespace nnmark
