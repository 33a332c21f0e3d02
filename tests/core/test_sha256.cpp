#include "nnmark/core/sha256.hpp"

#include "../support/files.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace nnmark;
using testing::contains;
using testing::error_message;
using testing::temp_dir;

// Expected digests are the FIPS 180-2 appendix B vectors; the file vector was computed
// with Python's hashlib:
//   python3 -c "import hashlib; print(hashlib.sha256(bytes(range(256))*4097).hexdigest())"

TEST_CASE("sha256: the FIPS 180-2 test vectors") {
    CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    CHECK(sha256_hex(std::string(1'000'000, 'a')) ==
          "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256: a message fed in pieces hashes like the whole, and finish() starts a new message") {
    const std::string million(1'000'000, 'a');
    sha256 hasher;
    for (std::size_t at = 0; at < million.size(); at += 999) hasher.update(std::string_view(million).substr(at, 999));
    CHECK(to_hex(hasher.finish()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    hasher.update("ab").update(std::string_view{}).update("c");
    CHECK(to_hex(hasher.finish()) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(to_hex(hasher.finish()) == sha256_hex(""));
}

TEST_CASE("sha256: bytes and text of the same content give the same digest") {
    const std::vector<unsigned char> bytes{'a', 'b', 'c'};
    CHECK(sha256_hex(std::span<const unsigned char>(bytes)) == sha256_hex("abc"));
}

TEST_CASE("to_hex: lowercase, two digits per byte") {
    const std::vector<unsigned char> bytes{0x00, 0x0f, 0xa0, 0xff};
    CHECK(to_hex(bytes) == "000fa0ff");
    CHECK(to_hex(std::span<const unsigned char>{}) == "");
}

TEST_CASE("sha256_file_hex: streams a file longer than one read buffer") {
    temp_dir dir;
    std::vector<unsigned char> content;
    for (int copy = 0; copy < 4097; ++copy)
        for (int b = 0; b < 256; ++b) content.push_back(static_cast<unsigned char>(b));
    testing::write_bytes(dir / "big.bin", content);
    CHECK(sha256_file_hex(dir / "big.bin") == "dd7e5c49d123e860c8bb7016bada722b5d0baa37ef8b19d5e270cf2a3000c31d");
    testing::write_bytes(dir / "empty.bin", {});
    CHECK(sha256_file_hex(dir / "empty.bin") == sha256_hex(""));
}

TEST_CASE("sha256_file_hex: a missing file is an io_error naming it") {
    temp_dir dir;
    CHECK_THROWS_AS(sha256_file_hex(dir / "absent.bin"), io_error);
    CHECK(contains(error_message([&] { sha256_file_hex(dir / "absent.bin"); }), "absent.bin"));
}
