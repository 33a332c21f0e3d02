// base64: RFC 4648's test vectors both ways, and the strictness of the decoder.
#include "nnmark/serve/base64.hpp"

#include "../support/errors.hpp"

#include <doctest/doctest.h>

namespace nnmark::testing::base64_tests {

std::vector<unsigned char> bytes_of(std::string_view s) { return {s.begin(), s.end()}; }

TEST_CASE("serve base64: RFC 4648 test vectors encode and decode") {
    const std::pair<std::string_view, std::string_view> vectors[] = {{"", ""},
                                                                     {"f", "Zg=="},
                                                                     {"fo", "Zm8="},
                                                                     {"foo", "Zm9v"},
                                                                     {"foob", "Zm9vYg=="},
                                                                     {"fooba", "Zm9vYmE="},
                                                                     {"foobar", "Zm9vYmFy"}};
    for (const auto& [plain, encoded] : vectors) {
        CAPTURE(plain);
        CHECK(encode_base64(bytes_of(plain)) == encoded);
        CHECK(decode_base64(encoded, "b64") == bytes_of(plain));
    }
    CHECK(decode_base64("Zm9vYg", "b64") == bytes_of("foob"));  // padding may be left out
    std::vector<unsigned char> all(256);
    for (int i = 0; i < 256; ++i) all[static_cast<std::size_t>(i)] = static_cast<unsigned char>(i);
    CHECK(decode_base64(encode_base64(all), "b64") == all);
}

TEST_CASE("serve base64: malformed text is refused with the offset") {
    CHECK(contains(error_message<format_error>([] { decode_base64("Zm9v Yg==", "img"); }),
                   "img: invalid base64 at character 4"));
    CHECK(contains(error_message<format_error>([] { decode_base64("Zm=9", "img"); }), "'=' before the end"));
    CHECK(contains(error_message<format_error>([] { decode_base64("Zm9vY", "img"); }), "cannot end a byte string"));
    CHECK(contains(error_message<format_error>([] { decode_base64("Zm8==", "img"); }), "do not complete a group"));
    CHECK(contains(error_message<format_error>([] { decode_base64("Zh==", "img"); }), "bits set past the end"));
}

}  // namespace nnmark::testing::base64_tests
