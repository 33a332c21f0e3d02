// libFuzzer target for the IDX reader (raw and gzip): any input must either parse or
// throw nnmark::error; a crash, a sanitizer report or any other exception is a bug.
// Built and run by scripts/fuzz.sh; seeds in tests/fuzz/corpus/idx/.
#include "nnmark/data/idx.hpp"

#include <cstddef>
#include <cstdint>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const unsigned char> bytes(data, size);
    try {
        (void)nnmark::parse_idx_images(bytes, "fuzz-input");
    } catch (const nnmark::error&) {
    }
    try {
        (void)nnmark::parse_idx_labels(bytes, "fuzz-input");
    } catch (const nnmark::error&) {
    }
    return 0;
}
