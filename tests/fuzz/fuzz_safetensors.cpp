// libFuzzer target for the safetensors reader (and through it the JSON parser).
//
// Any input must either parse or throw nnmark::error; crashes, sanitizer reports,
// other exceptions and hangs are bugs. An input that parses must also survive a
// rewrite: writing its tensors and metadata with safetensors_writer and parsing the
// result gives the same tensors, bit for bit.
// Built by scripts/fuzz.sh with clang++ -fsanitize=fuzzer; seeds in tests/fuzz/corpus/safetensors/.
#include "nnmark/model/safetensors.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace {

bool same_tensors(const nnmark::safetensors_file& a, const nnmark::safetensors_file& b) {
    if (a.entries().size() != b.entries().size() || a.metadata() != b.metadata()) return false;
    for (std::size_t i = 0; i < a.entries().size(); ++i) {
        const auto& x = a.entries()[i];
        const auto& y = b.entries()[i];
        if (x.name != y.name || x.dtype != y.dtype || x.dims != y.dims ||
            !std::equal(x.bytes.begin(), x.bytes.end(), y.bytes.begin(), y.bytes.end()))
            return false;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::optional<nnmark::safetensors_file> file;
    try {
        file.emplace(nnmark::safetensors_file::parse(std::vector<unsigned char>(data, data + size), "fuzz input"));
    } catch (const nnmark::error&) {
        return 0;  // rejecting malformed input with a message is the expected outcome
    }
    // Outside the try: a valid file that cannot be rewritten is a bug, not a rejection.
    nnmark::safetensors_writer writer;
    for (const auto& [key, value] : file->metadata()) writer.set_metadata(key, value);
    for (const auto& e : file->entries()) writer.add_tensor(e.name, e.dtype, e.dims, e.bytes);
    const auto rewritten = nnmark::safetensors_file::parse(writer.to_bytes(), "rewritten fuzz input");
    if (!same_tensors(*file, rewritten)) __builtin_trap();
    return 0;
}
