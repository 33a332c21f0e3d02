// predict_request: the body of a TensorFlow Serving REST predict call, read into a
// batch of images for a model, and written from images for a client.
//
// The body is one JSON object (read by core/json.hpp, strictly) in one of TF Serving's
// two formats (api_rest.md, Predict API, "Request format"):
//     {"instances": [I, I, ...], "signature_name": S}       row format
//     {"inputs": [I, I, ...], "signature_name": S}          columnar, one unnamed input
//     {"inputs": {"NAME": [I, I, ...]}, ...}                 columnar, one named input
// signature_name is optional; "instances" and "inputs" exclude each other, as in TF
// Serving. A row-format instance is an image I, or an object of named inputs {"NAME": I}
// ("list of objects"). A served model has one input, so an object of named inputs must
// hold exactly one, whatever its name: clients name it after the model they were
// written for ("input_1", "x"); the metadata (serve/model_metadata.hpp) calls it "image".
// Each image I is, for a model whose input item is [C, H, W]:
// - nested arrays of numbers in one of these layouts, recognized from their extents:
//     [H][W][C]  HWC, the order of TensorFlow/Keras and of image files;
//     [C][H][W]  CHW, the order of PyTorch and of nnmark itself;
//     [H][W]     for one-channel models only (MNIST clients often send this);
//     [C*H*W]    flat, in HWC order (a Keras Flatten's, and a tf.Example feature's).
//   Only when C == H == W do HWC and CHW look alike; CHW is meant then.
//   Values (input_range): `byte` reads every number as a 0-255 pixel, `unit` as a 0-1
//   intensity, and `automatic` decides per instance: 0-255 when every number is written
//   as an integer or any number is above 1 ("84.0": TF Serving clients send 0-255 float
//   tensors), else 0-1 ("0.5", "1.0", "1e-3"). Only non-integer numbers all within
//   [0, 1] are ambiguous, a scaled image or a very dark one of raw pixels: automatic
//   takes them for 0-1, and a server started with `unit` or `byte` says which. A pixel
//   p becomes p / 255, as data/dataset.hpp's to_float computes it, so a served model sees
//   a dataset's bytes bit for bit as in memory. Values outside the range are refused,
//   not clamped.
// - or {"b64": "<base64 of a PNG or JPEG file>"} of exactly W x H pixels; stb_image
//   converts gray, gray+alpha, RGB and RGBA to the model's C channels (alpha dropped).
//   An object whose only key is "b64" is this binary value, never an input named "b64",
//   as in TF Serving (util/json_tensor.cc, IsValBase64Object).
// S is "serving_default" or "labels" (the default): answer labels; or "scores": answer
// labels and softmax probabilities (serve/predict_response.hpp), in the request's format.
//
// Errors are nnmark::error with the JSON path of the problem, what was expected and
// what was found ("request.instances[3][27]: expected an array of 28, found an array of
// 27"): format_error for malformed bodies, limit_error when the request asks for more
// than predict_limits allows (a server answers 413 for it, 400 for the others).
//
// Memory: the JSON tree costs up to about 25 times the bytes of the body (a one-digit
// pixel "0," becomes a 40-byte value), so a server bounds the body size first.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/json.hpp"
#include "nnmark/core/shape.hpp"
#include "nnmark/core/stb.hpp"
#include "nnmark/core/tensor.hpp"
#include "nnmark/serve/base64.hpp"
#include "nnmark/serve/png_bounds.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nnmark {

// A request is larger than the server's limits allow.
class limit_error : public error {
public:
    using error::error;
};

// How a request's numbers are scaled (see the top of this file): decided per instance
// (automatic), or told by the server's operator.
enum class input_range { automatic, unit, byte };

// What a server accepts in a request.
struct predict_limits {
    index_t max_instances = 64;                    // images per request
    input_range range = input_range::automatic;  // how numbers are read
};

// TF Serving's two request formats; the answer is in the request's (api_rest.md,
// Predict API, "Response format"): rows answer "predictions", columns "outputs".
enum class request_format { rows, columns };

struct predict_request {
    tensor<float> images;  // [N, C, H, W], values in [0, 1]
    bool scores = false;   // signature "scores": answer probabilities too
    request_format format = request_format::rows;
};

// How a client writes an instance's nested arrays.
enum class image_layout { hwc, chw };

namespace detail::predict {

inline std::string extents_str(std::span<const index_t> extents) {
    std::string s;
    for (index_t e : extents) {  // appended piece by piece: "[" + ... trips GCC 12's -Wrestrict
        s += '[';
        s += std::to_string(e);
        s += ']';
    }
    return s;
}

// The extents of nested arrays, read along the first elements: [[1, 2], [3, 4]] gives
// {2, 2}. Whether every other array has the same extent is checked while reading values.
inline std::vector<index_t> nested_extents(const json& value) {
    std::vector<index_t> extents;
    for (const json* v = &value; const json::array_t* a = v->get_ptr<const json::array_t*>(); v = &a->front()) {
        extents.push_back(static_cast<index_t>(a->size()));
        if (a->empty() || extents.size() > 3) break;
    }
    return extents;
}

enum class nesting { hwc, chw, hw, flat };

// Which layout the nested arrays `instance` are for an item [C, H, W].
inline nesting recognize_layout(const json& instance, const shape& item, const std::string& where) {
    const index_t c = item[0], h = item[1], w = item[2];
    const std::vector<index_t> extents = nested_extents(instance), hwc{h, w, c}, chw{c, h, w}, flat{c * h * w};
    if (extents == chw) return nesting::chw;
    if (extents == hwc) return nesting::hwc;
    if (c == 1 && extents == std::vector<index_t>{h, w}) return nesting::hw;
    if (extents == flat) return nesting::flat;
    const std::string found = extents.empty() ? describe_json(instance) : "nested arrays " + extents_str(extents);
    throw format_error(where + ": expected an image as nested arrays " + extents_str(hwc) + " (HWC) or " +
                       extents_str(chw) + " (CHW)" + (c == 1 ? " or " + extents_str({hwc.data(), 2}) : "") +
                       " or {\"b64\": <PNG>}, or a flat array " + extents_str(flat) + " (HWC order), found " + found);
}

// Visits every number of nested arrays of the given extents with its index in their
// row-major order; throws naming the position when an array has another length or a
// leaf is not a number. Positions are kept as indices and turned into text only for a
// message: an MNIST instance has 812 arrays and 784 numbers.
class nested_reader {
public:
    nested_reader(std::span<const index_t> extents, const std::string& where) : extents_(extents), where_(where) {}

    template <class Visit>
    void visit(const json& root, Visit&& visit_number) {
        walk(root, 0, 0, visit_number);
    }

    // "request.instances[2][5][7]": the position of the number being visited.
    std::string position() const { return position(static_cast<int>(extents_.size())); }

private:
    std::string position(int depth) const {
        return where_ + extents_str({at_.data(), static_cast<std::size_t>(depth)});
    }

    template <class Visit>
    void walk(const json& value, int depth, index_t flat, Visit& visit_number) {
        if (depth == static_cast<int>(extents_.size())) {
            if (!value.is_number())
                throw format_error(position(depth) + ": expected a number, found " + describe_json(value));
            visit_number(value, flat);
            return;
        }
        const index_t extent = extents_[static_cast<std::size_t>(depth)];
        const json::array_t* array = value.get_ptr<const json::array_t*>();
        if (!array || static_cast<index_t>(array->size()) != extent)
            throw format_error(position(depth) + ": expected an array of " + std::to_string(extent) + ", found " +
                               (array ? "an array of " + std::to_string(array->size()) : describe_json(value)));
        for (index_t i = 0; i < extent; ++i) {
            at_[static_cast<std::size_t>(depth)] = i;
            walk((*array)[static_cast<std::size_t>(i)], depth + 1, flat * extent + i, visit_number);
        }
    }

    std::span<const index_t> extents_;
    const std::string& where_;
    std::array<index_t, 3> at_{};
};

// How the numbers of one instance are read: as 0-255 pixels or as 0-1 intensities, and
// why, for a message about a number outside the range.
struct value_scale {
    bool bytes;
    std::string_view why;
};

inline value_scale scale_of(const json& instance, nested_reader& reader, input_range range) {
    if (range == input_range::byte) return {true, "--input-range byte"};
    if (range == input_range::unit) return {false, "--input-range unit"};
    bool fraction = false, above_one = false;
    reader.visit(instance, [&](const json& v, index_t) {
        fraction |= !v.is_number_integer();
        above_one |= v.get<double>() > 1.0;
    });
    if (!fraction) return {true, "every number of this instance is an integer, so all are 0-255 pixels"};
    if (above_one) return {true, "this instance has numbers above 1, so all are 0-255 pixels"};
    return {false, "this instance has non-integer numbers, none above 1, so all are 0-1; --input-range byte "
                   "reads them as pixels"};
}

// Reads nested arrays of numbers into `out` (one [C, H, W] image, CHW).
inline void read_nested_instance(const json& instance, const shape& item, const std::string& where,
                                 input_range range, std::span<float> out) {
    const nesting layout = recognize_layout(instance, item, where);
    const std::vector<index_t> extents = nested_extents(instance);
    const index_t channels = item[0], plane = item[1] * item[2];
    // HWC arrays list the channels of a pixel together; the model wants each channel's plane.
    const bool pixel_order = layout == nesting::hwc || layout == nesting::flat;
    const auto destination = [&](index_t flat) { return pixel_order ? flat % channels * plane + flat / channels : flat; };
    nested_reader reader(extents, where);
    const value_scale scale = scale_of(instance, reader, range);
    const double top = scale.bytes ? 255.0 : 1.0;
    reader.visit(instance, [&](const json& v, index_t flat) {
        const double d = v.get<double>();
        if (!(d >= 0.0 && d <= top))
            throw format_error(reader.position() + ": expected " +
                               (scale.bytes ? "a pixel in 0..255" : "an intensity in [0, 1]") + ", found " + dump_json(v) +
                               " (" + std::string(scale.why) + ")");
        // A pixel as to_float divides it (bytes_to_unit), so "84" and "84.0" are the same.
        out[static_cast<std::size_t>(destination(flat))] =
            scale.bytes ? static_cast<float>(d) / 255.0f : static_cast<float>(d);
    });
}

// Reads {"b64": "<base64 PNG or JPEG>"} into `out` (one [C, H, W] image).
inline void read_encoded_instance(const json& instance, const shape& item, const std::string& where,
                                  std::span<float> out) {
    const json_view view(instance, where);
    view.expect_only_keys({"b64"});
    const std::vector<unsigned char> file = decode_base64(view["b64"].as_string(), where + ".b64");
    if (file.size() > static_cast<std::size_t>(INT_MAX)) throw limit_error(where + ".b64: the image file is too large");
    const auto* bytes = file.data();
    const int size = static_cast<int>(file.size());
    const index_t channels = item[0], height = item[1], width = item[2];
    int w = 0, h = 0, stored = 0;
    // The size from the header first, so a forged header cannot make stb allocate gigabytes.
    if (!stbi_info_from_memory(bytes, size, &w, &h, &stored))
        throw format_error(where + ".b64: expected a PNG or JPEG file, found " + std::to_string(file.size()) +
                           " bytes stb_image cannot read (" + stbi_failure_reason() + ")");
    if (w != width || h != height)
        throw format_error(where + ".b64: expected a " + std::to_string(width) + "x" + std::to_string(height) +
                           " image, found " + std::to_string(w) + "x" + std::to_string(h));
    // stb inflates a PNG's whole pixel stream before checking its size: bound it first.
    if (is_png(file)) check_png_bounds(file, where + ".b64");
    const std::unique_ptr<unsigned char, void (*)(void*)> pixels(
        stbi_load_from_memory(bytes, size, &w, &h, &stored, static_cast<int>(channels)), stbi_image_free);
    if (!pixels || w != width || h != height)
        throw format_error(where + ".b64: the image cannot be decoded (" + stbi_failure_reason() + ")");
    const index_t plane = height * width;
    for (index_t p = 0; p < plane; ++p)
        for (index_t c = 0; c < channels; ++c)
            out[static_cast<std::size_t>(c * plane + p)] = static_cast<float>(pixels.get()[p * channels + c]) / 255.0f;
}

inline bool wants_scores(const json_view& signature) {
    const std::string& name = signature.as_string();
    if (name == "serving_default" || name == "labels") return false;
    if (name == "scores") return true;
    signature.fail("expected \"serving_default\", \"labels\" or \"scores\", found \"" + name + "\"");
}

// Reads one image, nested arrays or {"b64": ...}, into `out`.
inline void read_image(const json_view& image, const shape& item, input_range range, std::span<float> out) {
    if (image.value().is_object())
        read_encoded_instance(image.value(), item, image.path(), out);
    else
        read_nested_instance(image.value(), item, image.path(), range, out);
}

// {"b64": ...}: a binary value, not an object of named inputs (json_tensor.cc, IsValBase64Object).
inline bool is_binary(const json& value) {
    const json::object_t* object = value.get_ptr<const json::object_t*>();
    return object && object->size() == 1 && object->front().first == "b64";
}

// The first keys of an object, quoted, for a message: "a", "b", "c", ...
inline std::string key_list(const json::object_t& object) {
    constexpr std::size_t shown = 4;
    std::string list;
    for (std::size_t k = 0; k < std::min(object.size(), shown); ++k) {
        if (k) list += ", ";
        list += dump_json(json(object.begin()[k].first));
    }
    return object.size() > shown ? list + ", ..." : list;
}

// The value of the only input of an object of named inputs, whatever its name.
inline json_view only_named_input(const json_view& inputs) {
    const json::object_t& object = *inputs.value().get_ptr<const json::object_t*>();
    if (object.size() != 1)
        inputs.fail("expected one named input (this model has one, \"image\"), found " + std::to_string(object.size()) +
                    (object.empty() ? "" : ": " + key_list(object)));
    return inputs[object.front().first];
}

// The image of a row-format instance: the instance itself, or its only named input.
inline json_view instance_image(const json_view& instance) {
    if (!instance.value().is_object() || is_binary(instance.value())) return instance;
    return only_named_input(instance);
}

// Reads the array `batch`, one image per element (taken from it by `image_of`), into
// [N, C, H, W] images; `noun` names an element in messages ("image", "example").
template <class ImageOf>
tensor<float> read_batch(const json_view& batch, const shape& item, const predict_limits& limits,
                         const std::string& noun, ImageOf image_of) {
    const json::array_t* list = batch.value().get_ptr<const json::array_t*>();
    if (!list) batch.fail("expected an array of " + noun + "s, found " + describe_json(batch.value()));
    if (list->empty()) batch.fail("expected at least one " + noun + ", found an empty array");
    if (static_cast<index_t>(list->size()) > limits.max_instances)
        throw limit_error(batch.path() + ": " + std::to_string(list->size()) + " " + noun +
                          "s, more than the limit of " + std::to_string(limits.max_instances) + " per request");
    tensor<float> images(item.prepend(static_cast<index_t>(list->size())));
    const std::vector<json_view> elements = batch.elements();
    for (std::size_t i = 0; i < elements.size(); ++i)
        read_image(image_of(elements[i]), item, limits.range, images.item(static_cast<index_t>(i)));
    return images;
}

inline void check_image_item(const shape& item, const char* who) {
    if (item.rank() != 3)
        throw shape_error(std::string(who) + ": a served model takes [C, H, W] images, this one " + item.str());
}

}  // namespace detail::predict

// The images and options of a predict request for a model taking [C, H, W] items.
inline predict_request parse_predict_request(std::string_view body, const shape& item,
                                             const predict_limits& limits = {}) {
    using namespace detail::predict;
    check_image_item(item, "parse_predict_request");
    const json doc = parse_json(body, "request");
    const json_view root(doc, "request");
    root.expect_only_keys({"instances", "inputs", "signature_name"});
    predict_request request;
    if (const auto signature = root.find("signature_name")) request.scores = wants_scores(*signature);
    const std::optional<json_view> instances = root.find("instances"), inputs = root.find("inputs");
    if (instances && inputs) root.fail("expected \"instances\" (row format) or \"inputs\" (columnar format), found both");
    if (!instances && !inputs) root.fail("missing key \"instances\" (row format) or \"inputs\" (columnar format)");
    if (instances) {
        request.images = read_batch(*instances, item, limits, "image", instance_image);
    } else {
        // One input's column is its whole batch: the value itself, or its only named input's.
        request.format = request_format::columns;
        const json_view batch = inputs->value().is_object() ? only_named_input(*inputs) : *inputs;
        request.images = read_batch(batch, item, limits, "image", [](const json_view& image) { return image; });
    }
    return request;
}

// Appends one [C, H, W] image of bytes as a JSON instance of 0-255 integers in `layout`.
inline void append_instance(std::string& out, std::span<const std::uint8_t> image, const shape& item,
                            image_layout layout) {
    const index_t channels = item[0], height = item[1], width = item[2];
    const bool hwc = layout == image_layout::hwc;
    const std::array<index_t, 3> extents =
        hwc ? std::array{height, width, channels} : std::array{channels, height, width};
    const auto pixel = [&](index_t a, index_t b, index_t c) {  // a, b, c: indices into `extents`
        return hwc ? image[static_cast<std::size_t>((c * height + a) * width + b)]
                   : image[static_cast<std::size_t>((a * height + b) * width + c)];
    };
    for (index_t a = 0; a < extents[0]; ++a) {
        out += a ? ",[" : "[[";
        for (index_t b = 0; b < extents[1]; ++b) {
            out += b ? ",[" : "[";
            for (index_t c = 0; c < extents[2]; ++c) {
                if (c) out += ',';
                out += std::to_string(pixel(a, b, c));
            }
            out += ']';
        }
        out += ']';
    }
    out += ']';
}

// The body of a predict request of `count` instances, with "signature_name" unless
// `signature` is empty; image i is images(i), a [C, H, W] span of bytes of shape `item`.
template <class Images>
std::string predict_request_body(index_t count, const shape& item, image_layout layout, const std::string& signature,
                                 Images images) {
    std::string body = signature.empty() ? "{" : "{\"signature_name\":" + dump_json(json(signature)) + ",";
    body += "\"instances\":[";
    for (index_t i = 0; i < count; ++i) {
        if (i > 0) body += ',';
        append_instance(body, images(i), item, layout);
    }
    return body + "]}";
}

}  // namespace nnmark
