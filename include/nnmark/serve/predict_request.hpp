// predict_request: the body of a TensorFlow Serving REST predict call ("row format"),
// read into a batch of images for a model, and written from images for a client.
//
// The body is one JSON object (read by core/json.hpp, strictly):
//     {"instances": [I, I, ...], "signature_name": S}        (signature_name optional)
// Each instance I is one image for a model whose input item is [C, H, W]:
// - nested arrays of numbers in one of these layouts, recognized from their extents:
//     [H][W][C]  HWC, the order of TensorFlow/Keras and of image files;
//     [C][H][W]  CHW, the order of PyTorch and of nnmark itself;
//     [H][W]     for one-channel models only (MNIST clients often send this).
//   Only when C == H == W do HWC and CHW look alike; CHW is meant then.
//   Values: when every number of the instance is written as an integer it is a 0-255
//   pixel, divided by 255 exactly as data/dataset.hpp's to_float does, so a served
//   model sees the bytes of a dataset bit for bit as in memory. When any number has a
//   fraction or an exponent ("0.5", "1.0", "1e-3"), the whole instance holds 0-1
//   intensities. Values outside the range are refused, not clamped.
// - or {"b64": "<base64 of a PNG or JPEG file>"} of exactly W x H pixels; stb_image
//   converts gray, gray+alpha, RGB and RGBA to the model's C channels (alpha dropped).
// S is "serving_default" or "labels" (the default): answer labels; or "scores": answer
// labels and softmax probabilities (serve/predict_response.hpp).
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

#include <array>
#include <climits>
#include <cstdint>
#include <memory>
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

struct predict_limits {
    index_t max_instances = 64;  // images per request
};

struct predict_request {
    tensor<float> images;  // [N, C, H, W], values in [0, 1]
    bool scores = false;   // signature "scores": answer probabilities too
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
    for (const json* v = &value; const json::array_t* a = v->if_array(); v = &a->front()) {
        extents.push_back(static_cast<index_t>(a->size()));
        if (a->empty() || extents.size() > 3) break;
    }
    return extents;
}

enum class nesting { hwc, chw, hw };

// Which layout the nested arrays `instance` are for an item [C, H, W].
inline nesting recognize_layout(const json& instance, const shape& item, const std::string& where) {
    const index_t c = item[0], h = item[1], w = item[2];
    const std::vector<index_t> extents = nested_extents(instance), hwc{h, w, c}, chw{c, h, w};
    if (extents == chw) return nesting::chw;
    if (extents == hwc) return nesting::hwc;
    if (c == 1 && extents == std::vector<index_t>{h, w}) return nesting::hw;
    const std::string found = extents.empty() ? instance.describe() : "nested arrays " + extents_str(extents);
    throw format_error(where + ": expected an image as nested arrays " + extents_str(hwc) + " (HWC) or " +
                       extents_str(chw) + " (CHW)" + (c == 1 ? " or " + extents_str({hwc.data(), 2}) : "") +
                       " or {\"b64\": <PNG>}, found " + found);
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
                throw format_error(position(depth) + ": expected a number, found " + value.describe());
            visit_number(value, flat);
            return;
        }
        const index_t extent = extents_[static_cast<std::size_t>(depth)];
        const json::array_t* array = value.if_array();
        if (!array || static_cast<index_t>(array->size()) != extent)
            throw format_error(position(depth) + ": expected an array of " + std::to_string(extent) + ", found " +
                               (array ? "an array of " + std::to_string(array->size()) : value.describe()));
        for (index_t i = 0; i < extent; ++i) {
            at_[static_cast<std::size_t>(depth)] = i;
            walk((*array)[static_cast<std::size_t>(i)], depth + 1, flat * extent + i, visit_number);
        }
    }

    std::span<const index_t> extents_;
    const std::string& where_;
    std::array<index_t, 3> at_{};
};

// Reads nested arrays of numbers into `out` (one [C, H, W] image, CHW).
inline void read_nested_instance(const json& instance, const shape& item, const std::string& where,
                                 std::span<float> out) {
    const nesting layout = recognize_layout(instance, item, where);
    const std::vector<index_t> extents = nested_extents(instance);
    const index_t channels = item[0], plane = item[1] * item[2];
    // HWC arrays list the channels of a pixel together; the model wants each channel's plane.
    const auto destination = [&](index_t flat) {
        return layout == nesting::hwc ? flat % channels * plane + flat / channels : flat;
    };
    nested_reader reader(extents, where);
    bool unit_scale = false;  // any number written with a fraction or exponent
    reader.visit(instance, [&](const json& v, index_t) { unit_scale |= !v.is_integer(); });
    reader.visit(instance, [&](const json& v, index_t flat) {
        float x;
        if (unit_scale) {
            const double d = v.is_integer() ? static_cast<double>(*v.if_integer()) : *v.if_double();
            if (!(d >= 0.0 && d <= 1.0))
                throw format_error(reader.position() +
                                   ": expected an intensity in [0, 1] (this instance has "
                                   "non-integer numbers, so all are read as 0-1), found " +
                                   json(d).dump());
            x = static_cast<float>(d);
        } else {
            const std::int64_t i = *v.if_integer();
            if (i < 0 || i > 255)
                throw format_error(reader.position() + ": expected a pixel in 0..255, found " + std::to_string(i));
            x = static_cast<float>(i) / 255.0f;  // as to_float: bytes_to_unit
        }
        out[static_cast<std::size_t>(destination(flat))] = x;
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

}  // namespace detail::predict

// The images and options of a predict request for a model taking [C, H, W] items.
inline predict_request parse_predict_request(std::string_view body, const shape& item,
                                             const predict_limits& limits = {}) {
    if (item.rank() != 3)
        throw shape_error("parse_predict_request: a served model takes [C, H, W] images, this one " + item.str());
    const json doc = json::parse(body, "request");
    const json_view root(doc, "request");
    root.expect_only_keys({"instances", "signature_name"});
    predict_request request;
    if (const auto signature = root.find("signature_name")) request.scores = detail::predict::wants_scores(*signature);
    const json_view instances = root["instances"];
    const json::array_t* list = instances.value().if_array();
    if (!list) instances.fail("expected an array of images, found " + instances.value().describe());
    if (list->empty()) instances.fail("expected at least one image, found an empty array");
    if (static_cast<index_t>(list->size()) > limits.max_instances)
        throw limit_error(instances.path() + ": " + std::to_string(list->size()) + " images, more than the limit of " +
                          std::to_string(limits.max_instances) + " per request");
    request.images.resize(item.prepend(static_cast<index_t>(list->size())));
    for (std::size_t i = 0; i < list->size(); ++i) {
        const index_t position[] = {static_cast<index_t>(i)};
        const std::string where = instances.path() + detail::predict::extents_str(position);
        const std::span<float> out = request.images.item(static_cast<index_t>(i));
        if ((*list)[i].is_object())
            detail::predict::read_encoded_instance((*list)[i], item, where, out);
        else
            detail::predict::read_nested_instance((*list)[i], item, where, out);
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
    std::string body = signature.empty() ? "{" : "{\"signature_name\":" + json(signature).dump() + ",";
    body += "\"instances\":[";
    for (index_t i = 0; i < count; ++i) {
        if (i > 0) body += ',';
        append_instance(body, images(i), item, layout);
    }
    return body + "]}";
}

}  // namespace nnmark
