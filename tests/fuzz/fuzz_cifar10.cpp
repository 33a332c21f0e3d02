// libFuzzer target for the CIFAR-10 batch reader: any input must either parse or
// throw nnmark::error; a crash, a sanitizer report or any other exception is a bug.
// Built and run by scripts/fuzz.sh; seeds in tests/fuzz/corpus/cifar10/.
#include "nnmark/data/cifar10.hpp"

#include <cstddef>
#include <cstdint>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        (void)nnmark::parse_cifar10(std::span<const unsigned char>(data, size), "fuzz-input");
    } catch (const nnmark::error&) {
    }
    return 0;
}
