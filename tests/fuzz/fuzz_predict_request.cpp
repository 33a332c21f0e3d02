// libFuzzer target for the prediction server's request parsers (predict and classify)
// and the client's reader of answers: any input must either parse or throw
// nnmark::error; a crash, a sanitizer report, any other exception or a hang is a bug. A
// request that parses must hold only values in [0, 1], as the model is promised.
// Built and run by scripts/fuzz.sh; seeds in tests/fuzz/corpus/predict_request/.
#include "nnmark/serve/classify_api.hpp"
#include "nnmark/serve/predict_request.hpp"
#include "nnmark/serve/predict_response.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

// Small items make valid images easy for the fuzzer to reach; the MNIST item is what
// servers really get, and [3, 2, 2] has HWC and CHW differ.
const nnmark::shape items[] = {{1, 2, 2}, {3, 2, 2}, {1, 28, 28}};

void check_unit(const nnmark::tensor<float>& images) {
    for (float v : images.span())
        if (!(v >= 0.0f && v <= 1.0f)) __builtin_trap();
}

void parse_request(std::string_view body, const nnmark::shape& item) {
    try {
        check_unit(nnmark::parse_predict_request(body, item, nnmark::predict_limits{4}).images);
    } catch (const nnmark::error&) {
    }
    try {
        check_unit(nnmark::parse_classify_request(body, item, nnmark::predict_limits{4}));
    } catch (const nnmark::error&) {
    }
}

void read_answer(std::string_view body, const nnmark::response_layout& layout) {
    try {
        for (int label : nnmark::read_prediction_labels(body, 2, layout, 10))
            if (label < 0 || label >= 10) __builtin_trap();
    } catch (const nnmark::error&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    for (const nnmark::shape& item : items) parse_request(body, item);
    read_answer(body, {});
    read_answer(body, {"", true});
    return 0;
}
