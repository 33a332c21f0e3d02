// precision: every arithmetic's name reads back as itself; other names are refused.
#include "nnmark/core/precision.hpp"

#include <doctest/doctest.h>

using namespace nnmark;

TEST_CASE("precision: names round-trip, and an unknown name is an argument_error naming it") {
    for (precision p : {precision::fp32, precision::bf16, precision::int8}) CHECK(parse_precision(precision_name(p)) == p);
    CHECK(precision_name(precision::int8) == "int8");
    try {
        (void)parse_precision("fp16");
        FAIL("expected an argument_error");
    } catch (const argument_error& e) {
        CHECK(std::string(e.what()).find("'fp16'") != std::string::npos);
    }
    CHECK_THROWS_AS((void)parse_precision("FP32"), argument_error);
}
