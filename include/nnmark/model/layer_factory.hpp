// layer_factory: layers from their names and configurations, the registry of layer
// kinds, and a sequential model's architecture as JSON and back.
//
// make_layer<T>(kind, config) builds one layer from what layer::kind() and
// layer::config() return; every key the layer's constructor takes is required, and
// unknown kinds, missing or unexpected keys and values of the wrong type are an
// argument_error ("conv2d: missing key \"kernel\"").
//
// The kinds make_layer knows are a registry per element type T: the built-in layers,
// then whatever register_layer<T>(kind, build) added. A layer written outside the
// library registers once (at the start of main, before models are built on other
// threads: registration is not synchronized) and then loads from model files, and
// trains data-parallel, whose replicas are made by make_layer (same_architecture;
// examples/custom_network.cpp writes such a layer):
//     nnmark::register_layer<float>("prelu", [](nnmark::config_reader& c) {
//         return std::make_unique<prelu<float>>(c.real("initial_slope"));
//     });
// The builder reads its keys through config_reader (integer, real, text, layers), which
// reports missing, mistyped and unexpected keys in the built-in layers' words.
//
// The architecture JSON, stored in model files (model/model_file.hpp):
//   {"format":"nnmark.sequential","version":1,"input":[1,28,28],
//    "layers":[{"kind":"conv2d","out_channels":32,"kernel":3,"stride":1,"padding":"valid"},
//              {"kind":"relu"}, ...]}
// Each layer object is "kind" plus the layer's config() keys in config() order. A key
// whose value is a list of layers (layer_description) is an array of layer objects of
// the same form: a residual block reads
//   {"kind":"residual","layers":[{"kind":"conv2d",...},{"kind":"relu"},{"kind":"conv2d",...}]}
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
#include "nnmark/layers/global_avgpool2d.hpp"
#include "nnmark/layers/layer.hpp"
#include "nnmark/layers/maxpool2d.hpp"
#include "nnmark/layers/relu.hpp"
#include "nnmark/layers/residual.hpp"
#include "nnmark/model/sequential.hpp"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

namespace nnmark {

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
    const std::vector<layer_description>& layers(std::string_view key) {
        return *get<std::vector<layer_description>>(key, "a list of layers");
    }

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
        static constexpr const char* names[] = {"an integer", "a non-integer number", "a string", "a list of layers"};
        fail("key \"" + std::string(key) + "\": expected " + expected + ", found " + names[v.index()]);
    }

    std::string kind_;
    const layer_config& config_;
    std::vector<bool> used_;
};

// How a layer kind is built from its config.
template <class T>
using layer_builder = std::function<std::unique_ptr<layer<T>>(config_reader&)>;

// One layer kind the factory knows: its name and how to build it.
template <class T>
struct layer_kind {
    std::string name;
    layer_builder<T> build;
};

template <class T>
std::unique_ptr<layer<T>> make_layer(const std::string& kind, const layer_config& config);

namespace detail {

// The inner layers of a residual block, each made by make_layer; an error names the one.
template <class T>
std::vector<std::unique_ptr<layer<T>>> make_layers(const std::vector<layer_description>& list) {
    std::vector<std::unique_ptr<layer<T>>> out;
    for (std::size_t i = 0; i < list.size(); ++i) {
        try {
            out.push_back(make_layer<T>(list[i].kind, list[i].config));
        } catch (const argument_error& e) {
            throw argument_error("residual: layers[" + std::to_string(i) + "]: " + e.what());
        }
    }
    return out;
}

// The built-in kinds. Config values are read into locals first so that, with several
// keys missing, the first one in the constructor's order is reported.
template <class T>
std::vector<layer_kind<T>> built_in_layer_kinds() {
    return {
        {"conv2d",
         [](config_reader& c) -> std::unique_ptr<layer<T>> {
             const auto out_channels = c.integer("out_channels");
             const auto kernel = c.integer("kernel");
             const auto stride = c.integer("stride");
             const padding pad = parse_padding(c.text("padding"));
             return std::make_unique<conv2d<T>>(out_channels, kernel, stride, pad);
         }},
        {"dense",
         [](config_reader& c) -> std::unique_ptr<layer<T>> {
             return std::make_unique<dense<T>>(c.integer("out_features"));
         }},
        {"relu", [](config_reader&) -> std::unique_ptr<layer<T>> { return std::make_unique<relu<T>>(); }},
        {"maxpool2d",
         [](config_reader& c) -> std::unique_ptr<layer<T>> {
             const auto size = c.integer("size");
             const auto stride = c.integer("stride");
             return std::make_unique<maxpool2d<T>>(size, stride);
         }},
        {"dropout",
         [](config_reader& c) -> std::unique_ptr<layer<T>> { return std::make_unique<dropout<T>>(c.real("rate")); }},
        {"flatten", [](config_reader&) -> std::unique_ptr<layer<T>> { return std::make_unique<flatten<T>>(); }},
        {"batchnorm",
         [](config_reader& c) -> std::unique_ptr<layer<T>> {
             const double momentum = c.real("momentum");
             const double eps = c.real("eps");
             return std::make_unique<batchnorm<T>>(momentum, eps);
         }},
        {"global_avgpool2d",
         [](config_reader&) -> std::unique_ptr<layer<T>> { return std::make_unique<global_avgpool2d<T>>(); }},
        {"residual",
         [](config_reader& c) -> std::unique_ptr<layer<T>> {
             return std::make_unique<residual<T>>(make_layers<T>(c.layers("layers")));
         }},
    };
}

// The registry of T's layer kinds: the built-in ones first, then the registered ones.
template <class T>
std::vector<layer_kind<T>>& layer_kinds() {
    static std::vector<layer_kind<T>> kinds = built_in_layer_kinds<T>();
    return kinds;
}

}  // namespace detail

// Teaches make_layer<T> (and so model files and data-parallel training) a layer kind:
// `build` makes the layer from a config_reader holding what its config() returns.
// argument_error for an empty name or one already known (built-in kinds included).
template <class T>
void register_layer(std::string kind, layer_builder<T> build) {
    if (kind.empty()) throw argument_error("register_layer: expected a layer kind name, got an empty one");
    if (!build) throw argument_error("register_layer: layer kind \"" + kind + "\" has no builder");
    std::vector<layer_kind<T>>& kinds = detail::layer_kinds<T>();
    if (std::ranges::any_of(kinds, [&](const layer_kind<T>& k) { return k.name == kind; }))
        throw argument_error("register_layer: layer kind \"" + kind + "\" is already registered");
    kinds.push_back({std::move(kind), std::move(build)});
}

// The layer `kind` configured by `config`; argument_error if either is not valid.
template <class T>
std::unique_ptr<layer<T>> make_layer(const std::string& kind, const layer_config& config) {
    const std::vector<layer_kind<T>>& kinds = detail::layer_kinds<T>();
    for (const layer_kind<T>& k : kinds) {
        if (k.name != kind) continue;
        config_reader reader(kind, config);
        std::unique_ptr<layer<T>> made = k.build(reader);
        reader.expect_no_other_keys();
        return made;
    }
    std::string known;
    for (const layer_kind<T>& k : kinds) known += (known.empty() ? "" : ", ") + k.name;
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

inline json layer_json(const layer_description& l);

// The keys and values of `config` set as members of the object `entry`, a list of
// layers as an array of their entries.
inline void set_config_members(json& entry, const layer_config& config) {
    for (const auto& [key, value] : config) {
        std::visit(
            [&entry, &name = key](const auto& v) {
                if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::vector<layer_description>>) {
                    json layers = json::array();
                    for (const layer_description& l : v) layers.push_back(layer_json(l));
                    entry[name] = std::move(layers);
                } else {
                    entry[name] = v;
                }
            },
            value);
    }
}

// One layer as its entry of the architecture JSON: {"kind": ..., config keys...}.
inline json layer_json(const layer_description& l) {
    json entry = json::object();
    entry["kind"] = l.kind;
    set_config_members(entry, l.config);
    return entry;
}

template <class T>
json layer_json(const layer<T>& l) {
    return layer_json(layer_description{l.kind(), l.config()});
}

// The model's input shape and layers as compact JSON (see the top of this file).
template <class T>
std::string architecture_json(const sequential<T>& model) {
    json input = json::array();
    for (int a = 0; a < model.input_item().rank(); ++a) input.push_back(model.input_item()[a]);
    json layers = json::array();
    for (int i = 0; i < model.size(); ++i) layers.push_back(layer_json(model.at(i)));
    json doc = json::object();
    doc["format"] = "nnmark.sequential";
    doc["version"] = 1;
    doc["input"] = std::move(input);
    doc["layers"] = std::move(layers);
    return dump_json(doc);
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

namespace detail {

// A layer object of the architecture JSON as kind and config; an array value is a list
// of layer objects (a residual block's "layers").
inline layer_description parse_layer_entry(const json_view& entry) {
    layer_description out{entry["kind"].as_string(), {}};
    for (const auto& [key, value] : entry.members()) {
        if (key == "kind") continue;
        if (value.value().is_number_integer()) {
            out.config.emplace_back(key, value.as_int());
        } else if (value.value().is_number_float()) {
            out.config.emplace_back(key, value.as_double());
        } else if (value.value().is_string()) {
            out.config.emplace_back(key, value.as_string());
        } else if (value.value().is_array()) {
            std::vector<layer_description> layers;
            for (const json_view& inner : value.elements()) layers.push_back(parse_layer_entry(inner));
            out.config.emplace_back(key, std::move(layers));
        } else {
            value.fail("expected an integer, a number, a string or an array of layers, found " + describe_json(value.value()));
        }
    }
    return out;
}

}  // namespace detail

// The plan of the architecture described by `json_text`; `source` names the text in
// error messages ("model.safetensors: metadata ..."). Shapes are checked here; sizes
// are checked against the memory available when the plan is built (build_model).
template <class T>
architecture_plan<T> parse_architecture(std::string_view json_text, std::string_view source) {
    const json doc = parse_json(json_text, source);
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
        const layer_description described = detail::parse_layer_entry(entry);
        std::unique_ptr<layer<T>> made;
        try {
            made = make_layer<T>(described.kind, described.config);
        } catch (const argument_error& e) {
            entry.fail(e.what());
        }
        try {
            item = made->configure(item);
        } catch (const shape_error& e) {
            throw shape_error(std::string(source) + ": layer " + std::to_string(plan.layers.size()) + " (" +
                              described.kind + "): " + e.what());
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
