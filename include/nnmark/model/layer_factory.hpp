// layer_factory: layers from their names and configurations, and a sequential
// model's architecture as JSON and back.
//
// make_layer<T>(kind, config) builds one layer from what layer::kind() and
// layer::config() return; every key the layer's constructor takes is required, and
// unknown kinds, missing or unexpected keys and values of the wrong type are an
// argument_error ("conv2d: missing key \"kernel\"").
//
// The architecture JSON, stored in model files (model/model_file.hpp):
//   {"format":"nnmark.sequential","version":1,"input":[1,28,28],
//    "layers":[{"kind":"conv2d","out_channels":32,"kernel":3,"stride":1,"padding":"valid"},
//              {"kind":"relu"}, ...]}
// Each layer object is "kind" plus the layer's config() keys in config() order.
// build_from_architecture() reads it back into a model with the same layers and zeroed
// parameters (parse_architecture() then build_model(), for callers that check the
// parameter shapes in between); errors are format_errors naming the source and the place
// ("m.safetensors: architecture.layers[3]: conv2d: missing key \"kernel\""), except
// layers that cannot take their input shape, which stay shape_errors.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/json.hpp"
#include "nnmark/layers/batchnorm.hpp"
#include "nnmark/layers/conv2d.hpp"
#include "nnmark/layers/dense.hpp"
#include "nnmark/layers/dropout.hpp"
#include "nnmark/layers/flatten.hpp"
#include "nnmark/layers/layer.hpp"
#include "nnmark/layers/maxpool2d.hpp"
#include "nnmark/layers/relu.hpp"
#include "nnmark/model/sequential.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace nnmark {

namespace detail {

// Typed access to a layer_config that remembers which keys were read, so that keys
// no layer asked for are reported instead of silently ignored.
class config_reader {
public:
    config_reader(std::string_view kind, const layer_config& config)
        : kind_(kind), config_(config), used_(config.size(), false) {
        for (std::size_t i = 0; i < config.size(); ++i)
            for (std::size_t j = 0; j < i; ++j)
                if (config[i].first == config[j].first) fail("key \"" + config[i].first + "\" given twice");
    }

    std::int64_t integer(std::string_view key) { return *get<std::int64_t>(key, "an integer"); }
    const std::string& text(std::string_view key) { return *get<std::string>(key, "a string"); }

    // A real number; an integer is accepted too (a hand-written "momentum": 0).
    double real(std::string_view key) {
        const config_value& v = find(key);
        if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
        return *get<double>(key, "a number");
    }

    void expect_no_other_keys() const {
        for (std::size_t i = 0; i < config_.size(); ++i) {
            if (used_[i]) continue;
            std::string allowed;
            for (std::size_t j = 0; j < config_.size(); ++j)
                if (used_[j]) allowed += (allowed.empty() ? "\"" : ", \"") + config_[j].first + "\"";
            fail("unexpected key \"" + config_[i].first + "\" (" +
                 (allowed.empty() ? "this layer takes no keys)" : "allowed: " + allowed + ")"));
        }
    }

private:
    [[noreturn]] void fail(const std::string& what) const { throw argument_error(kind_ + ": " + what); }

    const config_value& find(std::string_view key) {
        for (std::size_t i = 0; i < config_.size(); ++i) {
            if (config_[i].first != key) continue;
            used_[i] = true;
            return config_[i].second;
        }
        fail("missing key \"" + std::string(key) + "\"");
    }

    template <class V>
    const V* get(std::string_view key, const char* expected) {
        const config_value& v = find(key);
        if (const V* p = std::get_if<V>(&v)) return p;
        static constexpr const char* names[] = {"an integer", "a non-integer number", "a string"};
        fail("key \"" + std::string(key) + "\": expected " + expected + ", found " + names[v.index()]);
    }

    std::string kind_;
    const layer_config& config_;
    std::vector<bool> used_;
};

}  // namespace detail

// One layer kind the factory knows: its name and how to build it from a config.
template <class T>
struct layer_kind {
    std::string_view name;
    std::unique_ptr<layer<T>> (*build)(detail::config_reader&);
};

// Config values are read into locals first so that, with several keys missing, the
// first one in the constructor's order is reported.
template <class T>
inline const layer_kind<T> layer_kinds[] = {
    {"conv2d",
     [](detail::config_reader& c) -> std::unique_ptr<layer<T>> {
         const auto out_channels = c.integer("out_channels");
         const auto kernel = c.integer("kernel");
         const auto stride = c.integer("stride");
         const padding pad = parse_padding(c.text("padding"));
         return std::make_unique<conv2d<T>>(out_channels, kernel, stride, pad);
     }},
    {"dense",
     [](detail::config_reader& c) -> std::unique_ptr<layer<T>> {
         return std::make_unique<dense<T>>(c.integer("out_features"));
     }},
    {"relu", [](detail::config_reader&) -> std::unique_ptr<layer<T>> { return std::make_unique<relu<T>>(); }},
    {"maxpool2d",
     [](detail::config_reader& c) -> std::unique_ptr<layer<T>> {
         const auto size = c.integer("size");
         const auto stride = c.integer("stride");
         return std::make_unique<maxpool2d<T>>(size, stride);
     }},
    {"dropout",
     [](detail::config_reader& c) -> std::unique_ptr<layer<T>> { return std::make_unique<dropout<T>>(c.real("rate")); }},
    {"flatten", [](detail::config_reader&) -> std::unique_ptr<layer<T>> { return std::make_unique<flatten<T>>(); }},
    {"batchnorm",
     [](detail::config_reader& c) -> std::unique_ptr<layer<T>> {
         const double momentum = c.real("momentum");
         const double eps = c.real("eps");
         return std::make_unique<batchnorm<T>>(momentum, eps);
     }},
};

// The layer `kind` configured by `config`; argument_error if either is not valid.
template <class T>
std::unique_ptr<layer<T>> make_layer(const std::string& kind, const layer_config& config) {
    for (const layer_kind<T>& k : layer_kinds<T>) {
        if (k.name != kind) continue;
        detail::config_reader reader(kind, config);
        std::unique_ptr<layer<T>> made = k.build(reader);
        reader.expect_no_other_keys();
        return made;
    }
    std::string known;
    for (const layer_kind<T>& k : layer_kinds<T>) known += (known.empty() ? "" : ", ") + std::string(k.name);
    throw argument_error("unknown layer kind \"" + kind + "\" (known: " + known + ")");
}

// A model with the layers of `model`, made afresh from their kinds and configs, and
// zeroed parameters (the replicas of data-parallel training, train/data_parallel.hpp).
template <class T>
sequential<T> same_architecture(const sequential<T>& model) {
    sequential<T> copy(model.input_item());
    for (int i = 0; i < model.size(); ++i) copy.add(make_layer<T>(model.at(i).kind(), model.at(i).config()));
    return copy;
}

// One layer as its entry of the architecture JSON: {"kind": ..., config keys...}.
template <class T>
json layer_json(const layer<T>& l) {
    json entry = json::object();
    entry.set("kind", l.kind());
    for (const auto& [key, value] : l.config()) std::visit([&entry, &name = key](const auto& v) { entry.set(name, v); }, value);
    return entry;
}

// The model's input shape and layers as compact JSON (see the top of this file).
template <class T>
std::string architecture_json(const sequential<T>& model) {
    json input = json::array();
    for (int a = 0; a < model.input_item().rank(); ++a) input.push_back(model.input_item()[a]);
    json layers = json::array();
    for (int i = 0; i < model.size(); ++i) layers.push_back(layer_json(model.at(i)));
    json doc = json::object();
    doc.set("format", "nnmark.sequential");
    doc.set("version", 1);
    doc.set("input", std::move(input));
    doc.set("layers", std::move(layers));
    return doc.dump();
}

// The layers an architecture JSON describes, configured along the chain from its input
// shape but without parameter memory: what a model file must hold can be checked
// against the file's tensors before a model of that size is allocated.
template <class T>
struct architecture_plan {
    shape input;
    std::vector<std::unique_ptr<layer<T>>> layers;

    // "<layer index>.<name>" and shape of every parameter, as sequential names them.
    std::vector<std::pair<std::string, shape>> parameters() const {
        std::vector<std::pair<std::string, shape>> out;
        for (std::size_t i = 0; i < layers.size(); ++i)
            for (const auto& spec : layers[i]->param_specs()) out.emplace_back(std::to_string(i) + "." + spec.name, spec.shape);
        return out;
    }
};

// The plan of the architecture described by `json_text`; `source` names the text in
// error messages ("model.safetensors: metadata ..."). Shapes are checked here; sizes
// are checked against the memory available when the plan is built (build_model).
template <class T>
architecture_plan<T> parse_architecture(std::string_view json_text, std::string_view source) {
    const json doc = json::parse(json_text, source);
    const json_view root(doc, std::string(source) + ": architecture");
    root.expect_only_keys({"format", "version", "input", "layers"});
    if (const std::string& format = root["format"].as_string(); format != "nnmark.sequential")
        root["format"].fail("expected \"nnmark.sequential\", found \"" + format + "\"");
    if (const std::int64_t version = root["version"].as_int(); version != 1)
        root["version"].fail("version " + std::to_string(version) + " is not supported; this build reads version 1");

    const std::vector<json_view> dims = root["input"].elements();
    if (dims.empty() || dims.size() > static_cast<std::size_t>(shape::max_rank))
        root["input"].fail("expected 1 to 4 dimensions, found " + std::to_string(dims.size()));
    architecture_plan<T> plan;
    // An item larger than 2^40 elements fits in no memory; the bound keeps shape arithmetic exact.
    constexpr std::int64_t max_extent = std::int64_t{1} << 40;
    std::int64_t elements = 1;
    for (const json_view& d : dims) {
        const std::int64_t extent = d.as_int_at_least(1);
        if (extent > max_extent / elements) root["input"].fail("an input item of more than 2^40 elements");
        elements *= extent;
        plan.input.push_back(static_cast<index_t>(extent));
    }

    shape item = plan.input;
    for (const json_view& entry : root["layers"].elements()) {
        const std::string& kind = entry["kind"].as_string();
        layer_config config;
        for (const auto& [key, value] : entry.members()) {
            if (key == "kind") continue;
            if (const std::int64_t* i = value.value().if_integer()) config.emplace_back(key, *i);
            else if (const double* d = value.value().if_double()) config.emplace_back(key, *d);
            else if (const std::string* s = value.value().if_string()) config.emplace_back(key, *s);
            else value.fail("expected an integer, a number or a string, found " + value.value().describe());
        }
        std::unique_ptr<layer<T>> made;
        try {
            made = make_layer<T>(kind, config);
        } catch (const argument_error& e) {
            entry.fail(e.what());
        }
        try {
            item = made->configure(item);
        } catch (const shape_error& e) {
            throw shape_error(std::string(source) + ": layer " + std::to_string(plan.layers.size()) + " (" + kind +
                              "): " + e.what());
        }
        plan.layers.push_back(std::move(made));
    }
    return plan;
}

// The model of `plan`, with zeroed parameters; shape_error naming `source` when it
// would not fit in the memory available (sequential::add).
template <class T>
sequential<T> build_model(architecture_plan<T> plan, std::string_view source) {
    try {
        sequential<T> model(plan.input);
        for (auto& l : plan.layers) model.add(std::move(l));
        return model;
    } catch (const shape_error& e) {
        throw shape_error(std::string(source) + ": " + e.what());
    }
}

// A model with the architecture described by `json_text` and zeroed parameters.
template <class T>
sequential<T> build_from_architecture(std::string_view json_text, std::string_view source) {
    return build_model(parse_architecture<T>(json_text, source), source);
}

}  // namespace nnmark
