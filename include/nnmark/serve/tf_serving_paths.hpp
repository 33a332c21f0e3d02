// tf_serving_paths: the URLs of TensorFlow Serving's REST API, read into a typed path.
//
// TF Serving's REST API (tensorflow_serving/g3doc/api_rest.md) names a model, which
// version of it, and what to do, in the path alone:
//     GET  /v1/models/NAME[/versions/V|/labels/L]              Model status API
//     GET  /v1/models/NAME[/versions/V|/labels/L]/metadata     Model Metadata API
//     POST /v1/models/NAME[/versions/V|/labels/L]:predict      Predict API
//     POST /v1/models/NAME[/versions/V|/labels/L]:classify     Classify and Regress API
//     POST /v1/models/NAME[/versions/V|/labels/L]:regress
// NAME and L hold no '/' or ':'; V is a decimal number (TF Serving's own pattern in
// model_servers/http_rest_api_util.cc is `/versions/(\d+)`). parse_model_path reads a
// path by hand, in one pass, rather than with std::regex, whose matching recurses once
// per character of a hostile 8 KiB path.
//
// served_versions is what one nnmark server answers to: one version (1 unless the
// operator says otherwise) and the labels that point at it; servable_refusal gives
// TF Serving's answer to a path for another model, version or label.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nnmark {

// What a model URL asks for, after the model and its version.
enum class model_verb { status, metadata, predict, classify, regress };

struct model_path {
    std::string model;
    std::optional<std::int64_t> version;  // /versions/V
    std::optional<std::string> label;     // /labels/L
    model_verb verb = model_verb::status;

    // The path again, as a client wrote it (the version without leading zeros).
    std::string str() const {
        std::string s = "/v1/models/" + model;
        if (version) s += "/versions/" + std::to_string(*version);
        if (label) s += "/labels/" + *label;
        switch (verb) {
            case model_verb::status: return s;
            case model_verb::metadata: return s + "/metadata";
            case model_verb::predict: return s + ":predict";
            case model_verb::classify: return s + ":classify";
            case model_verb::regress: return s + ":regress";
        }
        return s;
    }
};

// The status and metadata APIs are GETs (HEAD answers their headers); the others are
// POSTs of a JSON body.
inline bool is_read_verb(model_verb verb) { return verb == model_verb::status || verb == model_verb::metadata; }

// The methods `verb` takes, as an Allow header lists them.
inline std::string_view allowed_methods(model_verb verb) { return is_read_verb(verb) ? "GET, HEAD" : "POST"; }

inline bool allows_method(model_verb verb, std::string_view method) {
    return is_read_verb(verb) ? method == "GET" || method == "HEAD" : method == "POST";
}

namespace detail::tf_paths {

// Removes and returns the text of `path` up to the next '/' or ':'.
inline std::string_view take_segment(std::string_view& path) {
    const std::string_view segment = path.substr(0, std::min(path.find_first_of("/:"), path.size()));
    path.remove_prefix(segment.size());
    return segment;
}

inline bool take_prefix(std::string_view& path, std::string_view prefix) {
    if (!path.starts_with(prefix)) return false;
    path.remove_prefix(prefix.size());
    return true;
}

// Decimal digits that fit an int64, as TF Serving's `\d+` read by absl::SimpleAtoi.
inline std::optional<std::int64_t> version_number(std::string_view digits) {
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
    std::int64_t v = 0;
    if (std::from_chars(digits.data(), digits.data() + digits.size(), v).ec != std::errc()) return std::nullopt;
    return v;
}

inline std::optional<model_verb> verb_of(std::string_view rest) {
    if (rest.empty()) return model_verb::status;
    if (rest == "/metadata") return model_verb::metadata;
    if (rest == ":predict") return model_verb::predict;
    if (rest == ":classify") return model_verb::classify;
    if (rest == ":regress") return model_verb::regress;
    return std::nullopt;
}

}  // namespace detail::tf_paths

// The model URL `path` is (already percent-decoded, as an HTTP server hands it over),
// or nothing when it is not one of TF Serving's model URLs.
inline std::optional<model_path> parse_model_path(std::string_view path) {
    using namespace detail::tf_paths;
    if (!take_prefix(path, "/v1/models/")) return std::nullopt;
    model_path p;
    p.model = take_segment(path);
    if (p.model.empty()) return std::nullopt;
    if (take_prefix(path, "/versions/")) {
        p.version = version_number(take_segment(path));
        if (!p.version) return std::nullopt;
    } else if (take_prefix(path, "/labels/")) {
        p.label = take_segment(path);
        if (p.label->empty()) return std::nullopt;
    }
    const std::optional<model_verb> verb = verb_of(path);
    if (!verb) return std::nullopt;
    p.verb = *verb;
    return p;
}

// The one version a server serves, and the version labels (TF Serving's
// version_labels in its model config) that point at it.
struct served_versions {
    std::int64_t version = 1;
    std::vector<std::string> labels;
};

// TF Serving's refusal of a path naming another model, version or label: an HTTP status
// and message.
struct servable_refusal {
    int status;
    std::string message;
};

// The refusal of `path` by a server serving `name` at `versions`, or nothing when the
// path names that model (at its version or one of its labels). The messages begin as
// TF Serving's do: "Servable not found for request: Latest(NAME)" (404,
// core/basic_manager.cc) and "Unrecognized servable version label: L" (400, an
// InvalidArgument in model_servers/server_core.cc).
inline std::optional<servable_refusal> servable_refusal_of(const model_path& path, std::string_view name,
                                                           const served_versions& versions) {
    const std::string served =
        "this server serves \"" + std::string(name) + "\", version " + std::to_string(versions.version);
    const std::string request = path.version ? "Specific(" + path.model + ", " + std::to_string(*path.version) + ")"
                                             : "Latest(" + path.model + ")";
    if (path.model != name)
        return servable_refusal{404, "Servable not found for request: " + request + ": no model named \"" +
                                         path.model + "\"; " + served};
    if (path.version && *path.version != versions.version)
        return servable_refusal{404, "Servable not found for request: " + request + ": no version " +
                                         std::to_string(*path.version) + "; " + served};
    const auto& labels = versions.labels;
    if (path.label && std::find(labels.begin(), labels.end(), *path.label) == labels.end()) {
        std::string known;
        for (const std::string& l : labels) {
            if (!known.empty()) known += ", ";
            known += '"' + l + '"';
        }
        return servable_refusal{400, "Unrecognized servable version label: " + *path.label + "; " +
                                         (known.empty() ? "this server has no version labels"
                                                        : "this server's labels are " + known) +
                                         " (--version-label)"};
    }
    return std::nullopt;
}

}  // namespace nnmark
