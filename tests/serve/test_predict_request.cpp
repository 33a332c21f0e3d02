// predict_request: the layouts and value scales a request may use, base64 images, and
// the messages for what is refused (which instance, what was expected, what was found).
#include "nnmark/serve/predict_request.hpp"

#include "../support/errors.hpp"

#include <doctest/doctest.h>

namespace nnmark::testing::predict_request_tests {

// An image [C, H, W] whose bytes are all different: pixel k is 3k + 1.
tensor<std::uint8_t> numbered_image(const shape& item) {
    tensor<std::uint8_t> image(item);
    for (index_t k = 0; k < item.count(); ++k) image.data()[k] = static_cast<std::uint8_t>(3 * k + 1);
    return image;
}

std::string body_of(const tensor<std::uint8_t>& image, image_layout layout, const std::string& extra = "") {
    std::string body = "{" + extra + "\"instances\":[";
    append_instance(body, image.span(), image.shape(), layout);
    return body + "]}";
}

void check_same_pixels(const predict_request& r, const tensor<std::uint8_t>& image) {
    REQUIRE(r.images.shape() == image.shape().prepend(1));
    for (index_t k = 0; k < image.size(); ++k)
        CHECK(r.images.data()[k] == static_cast<float>(image.data()[k]) / 255.0f);
}

TEST_CASE("serve request: HWC and CHW arrays give the same CHW image, divided by 255 like to_float") {
    const shape item{3, 2, 4};
    const auto image = numbered_image(item);
    const predict_request hwc = parse_predict_request(body_of(image, image_layout::hwc), item);
    const predict_request chw = parse_predict_request(body_of(image, image_layout::chw), item);
    check_same_pixels(hwc, image);
    check_same_pixels(chw, image);
    CHECK_FALSE(hwc.scores);
    // The HWC text lists the channels of the first pixel first.
    CHECK(body_of(image, image_layout::hwc).starts_with("{\"instances\":[[[[1,25,49],[4,28,52]"));
}

TEST_CASE("serve request: one-channel images may come as [H][W]; 0-1 floats when any number has a fraction") {
    const shape item{1, 2, 2};
    const predict_request ints = parse_predict_request(R"({"instances": [[[0, 255], [51, 102]]]})", item);
    CHECK(ints.images.data()[1] == 1.0f);
    CHECK(ints.images.data()[2] == 51.0f / 255.0f);
    const predict_request floats = parse_predict_request(R"({"instances": [[[0, 1], [0.5, 1e-1]]]})", item);
    CHECK(floats.images.data()[1] == 1.0f);  // "1" is an intensity here, as its instance has fractions
    CHECK(floats.images.data()[2] == 0.5f);
    CHECK(floats.images.data()[3] == 0.1f);
    const auto two = parse_predict_request(R"({"instances": [[[0, 1], [2, 3]], [[0.0, 0.25], [0.5, 0.75]]]})", item);
    CHECK(two.images.shape() == shape{2, 1, 2, 2});
    CHECK(two.images.data()[7] == 0.75f);
}

TEST_CASE("serve request: 0-255 pixels written as floats read as the integers do; --input-range decides for all") {
    const shape item{1, 2, 2};
    const auto pixels = [&](std::string_view body, input_range range) {
        const predict_request r = parse_predict_request(body, item, predict_limits{64, range});
        return std::vector<float>(r.images.span().begin(), r.images.span().end());
    };
    const auto automatic = input_range::automatic;
    const std::vector<float> ints = pixels(R"({"instances": [[[84, 0], [255, 3]]]})", automatic);
    CHECK(pixels(R"({"instances": [[[84.0, 0.0], [255.0, 3.0]]]})", automatic) == ints);  // bit for bit
    CHECK(pixels(R"({"instances": [[[84.0, 0], [2.55e2, 3]]]})", automatic) == ints);
    CHECK(pixels(R"({"instances": [[[84.5, 0], [255, 3]]]})", automatic)[0] == 84.5f / 255.0f);
    // Ambiguous: non-integer numbers all within [0, 1] are 0-1 unless the server says 0-255.
    CHECK(pixels(R"({"instances": [[[0.5, 0], [1.0, 0]]]})", automatic)[0] == 0.5f);
    CHECK(pixels(R"({"instances": [[[0.5, 0], [1.0, 0]]]})", input_range::byte)[0] == 0.5f / 255.0f);
    // unit reads integers as 0-1 too: 1 is white.
    CHECK(pixels(R"({"instances": [[[1, 0], [1, 0]]]})", input_range::unit)[0] == 1.0f);
    CHECK(pixels(R"({"instances": [[[1, 0], [1, 0]]]})", automatic)[0] == 1.0f / 255.0f);
    const auto refused = [&](std::string_view body, input_range range) {
        return error_message<format_error>([&] { parse_predict_request(body, item, predict_limits{64, range}); });
    };
    CHECK(refused(R"({"instances": [[[84, 0], [255, 3]]]})", input_range::unit) ==
          "request.instances[0][0][0]: expected an intensity in [0, 1], found 84 (--input-range unit)");
    CHECK(refused(R"({"instances": [[[0.5, 0], [256.0, 3]]]})", input_range::byte) ==
          "request.instances[0][1][0]: expected a pixel in 0..255, found 256.0 (--input-range byte)");
}

TEST_CASE("serve request: a flat array of C*H*W numbers is in HWC order") {
    const shape item{3, 2, 4};
    const auto image = numbered_image(item);
    const std::string nested = body_of(image, image_layout::hwc);
    std::string flat = nested;  // [[[a,b,c],[d,e,f]...]] -> [a,b,c,d,e,f...]
    std::erase(flat, '[');
    std::erase(flat, ']');
    flat = "{\"instances\":[[" + flat.substr(flat.find(':') + 1, flat.size() - flat.find(':') - 2) + "]]}";
    REQUIRE(flat.starts_with("{\"instances\":[[1,25,49,4,28,52,"));
    check_same_pixels(parse_predict_request(flat, item), image);
}

TEST_CASE("serve request: named inputs and the columnar format read the same images, whatever the input's name") {
    const shape item{1, 2, 2};
    const std::string image = "[[0, 51], [102, 255]]";
    const predict_request rows = parse_predict_request("{\"instances\": [" + image + "]}", item);
    CHECK(rows.format == request_format::rows);
    for (const std::string& body : {"{\"instances\": [{\"input_1\": " + image + "}]}",
                                   "{\"inputs\": [" + image + "]}", "{\"inputs\": {\"image\": [" + image + "]}}"}) {
        CAPTURE(body);
        const predict_request r = parse_predict_request(body, item);
        CHECK(r.format == (body.starts_with("{\"inputs\"") ? request_format::columns : request_format::rows));
        CHECK(r.images.shape() == rows.images.shape());
        CHECK(std::equal(r.images.span().begin(), r.images.span().end(), rows.images.span().begin()));
    }
    const auto message = [&](std::string_view body) {
        return error_message<format_error>([&] { parse_predict_request(body, item); });
    };
    CHECK(message("{\"inputs\": {\"a\": [" + image + "], \"b\": [" + image + "]}}") ==
          "request.inputs: expected one named input (this model has one, \"image\"), found 2: \"a\", \"b\"");
    CHECK(message(R"({"instances": [{}]})") ==
          "request.instances[0]: expected one named input (this model has one, \"image\"), found 0");
    CHECK(message(R"({"inputs": {"image": 3}})") == "request.inputs.image: expected an array of images, found an integer");
    CHECK(message("{\"inputs\": [{\"image\": " + image + "}]}") == "request.inputs[0]: unexpected key \"image\" (allowed: \"b64\")");
}

TEST_CASE("serve request: signature_name chooses labels or scores") {
    const shape item{1, 1, 1};
    CHECK(parse_predict_request(R"({"signature_name": "scores", "instances": [[[7]]]})", item).scores);
    CHECK_FALSE(parse_predict_request(R"({"signature_name": "serving_default", "instances": [[[7]]]})", item).scores);
    CHECK(contains(error_message<format_error>(
                       [&] { parse_predict_request(R"({"signature_name": "logits", "instances": [[[7]]]})", item); }),
                   "request.signature_name: expected \"serving_default\", \"labels\" or \"scores\", found \"logits\""));
}

TEST_CASE("serve request: base64 PNG instances are decoded to the model's channels") {
    const shape item{3, 2, 4};
    const auto image = numbered_image(item);
    // The same pixels as an RGB PNG (HWC bytes).
    std::vector<unsigned char> hwc(static_cast<std::size_t>(item.count()));
    for (index_t c = 0; c < 3; ++c)
        for (index_t p = 0; p < 8; ++p) hwc[static_cast<std::size_t>(p * 3 + c)] = image.data()[c * 8 + p];
    std::vector<unsigned char> png;
    REQUIRE(stbi_write_png_to_func(detail::append_bytes, &png, 4, 2, 3, hwc.data(), 12));
    const std::string b64 = "{\"b64\":\"" + encode_base64(png) + "\"}";
    check_same_pixels(parse_predict_request("{\"instances\":[" + b64 + "]}", item), image);

    const std::string wrong_size = error_message<format_error>([&] {
        parse_predict_request("{\"instances\":[" + b64 + "]}", shape{3, 4, 2});
    });
    CHECK(contains(wrong_size, "request.instances[0].b64: expected a 2x4 image, found 4x2"));
    const std::string not_png =
        error_message<format_error>([&] { parse_predict_request(R"({"instances":[{"b64":"Zm9vYmFy"}]})", item); });
    CHECK(contains(not_png, "request.instances[0].b64: expected a PNG or JPEG file, found 6 bytes"));
    // Beside other keys, "b64" is a named input (TF Serving's IsValBase64Object), and the model has one.
    CHECK(contains(
        error_message<format_error>([&] { parse_predict_request(R"({"instances":[{"b64":"Zm9v","x":1}]})", item); }),
        "request.instances[0]: expected one named input (this model has one, \"image\"), found 2: \"b64\", \"x\""));
    CHECK(contains(error_message<format_error>(
                       [&] { parse_predict_request(R"({"instances":[{"image":{"b64":"Zm9v","x":1}}]})", item); }),
                   "request.instances[0].image: unexpected key \"x\""));
}

TEST_CASE("serve request: malformed requests name the instance, what was expected and what was found") {
    const shape item{1, 2, 2};
    const auto message = [&](std::string_view body) {
        return error_message<format_error>([&] { parse_predict_request(body, item); });
    };
    CHECK(contains(message("{\"instances\": [}"), "request: invalid JSON at byte 15"));
    CHECK(contains(message("[1, 2]"), "request: expected an object, found an array"));
    CHECK(contains(message("{}"), "request: missing key \"instances\""));
    CHECK(contains(message(R"({"instances": [], "inputs": []})"),
                   "request: expected \"instances\" (row format) or \"inputs\" (columnar format), found both"));
    CHECK(contains(message(R"({"instances": [[[0, 1], [2, 3]]], "outputs": []})"), "unexpected key \"outputs\""));
    CHECK(contains(message(R"({"instances": 3})"), "request.instances: expected an array of images, found an integer"));
    CHECK(contains(message(R"({"instances": []})"), "expected at least one image"));
    CHECK(contains(
        message(R"({"instances": [[[0, 1], [2, 3]], [[0, 1, 2], [3, 4, 5]]]})"),
        "request.instances[1]: expected an image as nested arrays [2][2][1] (HWC) or [1][2][2] (CHW) or [2][2] "
        "or {\"b64\": <PNG>}, or a flat array [4] (HWC order), found nested arrays [2][3]"));
    CHECK(contains(message(R"({"instances": ["cat"]})"), "request.instances[0]: expected an image as nested arrays"));
    CHECK(contains(message(R"({"instances": [[[0, 1], [2]]]})"),
                   "request.instances[0][1]: expected an array of 2, found an array of 1"));
    CHECK(contains(message(R"({"instances": [[[0, 1], [2, "3"]]]})"),
                   "request.instances[0][1][1]: expected a number, found a string"));
    CHECK(contains(message(R"({"instances": [[[0, 1], [2, 256]]]})"),
                   "request.instances[0][1][1]: expected a pixel in 0..255, found 256"));
    CHECK(contains(message(R"({"instances": [[[0, -1], [2, 3]]]})"),
                   "request.instances[0][0][1]: expected a pixel in 0..255, found -1"));
    CHECK(contains(message(R"({"instances": [[[0.5, -0.25], [1, 0]]]})"),
                   "request.instances[0][0][1]: expected an intensity in [0, 1], found -0.25 (this instance has "
                   "non-integer numbers, none above 1, so all are 0-1"));
    CHECK(contains(message(R"({"instances": [[[0.5, 255.5], [1, 0]]]})"),
                   "request.instances[0][0][1]: expected a pixel in 0..255, found 255.5 (this instance has numbers "
                   "above 1, so all are 0-255 pixels)"));
}

TEST_CASE("serve request: more images than the limit is a limit_error") {
    const shape item{1, 1, 1};
    const std::string message = error_message<limit_error>(
        [&] { parse_predict_request(R"({"instances": [[[1]], [[2]], [[3]]]})", item, predict_limits{2}); });
    CHECK(message == "request.instances: 3 images, more than the limit of 2 per request");
    CHECK(parse_predict_request(R"({"instances": [[[1]], [[2]]]})", item, predict_limits{2}).images.batch() == 2);
}

}  // namespace nnmark::testing::predict_request_tests
