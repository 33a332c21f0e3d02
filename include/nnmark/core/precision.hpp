// precision: the arithmetic an inference runs in, chosen per command (--precision):
// fp32 (the trained model as it is), bf16 or int8 (model/low_precision.hpp).
#pragma once

#include "nnmark/core/error.hpp"

#include <string>
#include <string_view>

namespace nnmark {

enum class precision { fp32, bf16, int8 };

inline std::string precision_name(precision p) {
    switch (p) {
        case precision::bf16: return "bf16";
        case precision::int8: return "int8";
        case precision::fp32: break;
    }
    return "fp32";
}

inline precision parse_precision(std::string_view name) {
    for (precision p : {precision::fp32, precision::bf16, precision::int8})
        if (name == precision_name(p)) return p;
    throw argument_error("precision: expected fp32, bf16 or int8, got '" + std::string(name) + "'");
}

}  // namespace nnmark
