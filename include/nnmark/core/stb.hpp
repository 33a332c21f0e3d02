// stb: the single-file image codecs nnmark uses (Sean Barrett's stb, public domain),
// compiled into every translation unit that includes this header.
//
// - stb_image_write: PNG (trigger mosaics, watermark/mosaic.hpp) and JPEG (the JPEG
//   input transformation, attacks/transform.hpp), written to memory only.
// - stb_image: the JPEG and PNG decoders only (STBI_ONLY_JPEG, STBI_ONLY_PNG: base64
//   images of prediction requests, serve/predict_request.hpp), reading from memory only.
//
// Both are compiled as static functions (STB_IMAGE_WRITE_STATIC, STB_IMAGE_STATIC), so a
// header-only nnmark links without a separate stb object. Include the stb headers only
// through this one: an earlier plain include would have declared the functions extern.
#pragma once

#include <cstring>
#include <vector>

#ifndef NNMARK_STB_IMPLEMENTED
#define NNMARK_STB_IMPLEMENTED
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#include <stb_image_write.h>
#include <stb_image.h>
#pragma GCC diagnostic pop
#endif

namespace nnmark::detail {

// The write callback stb_image_write calls with each piece of an encoded image:
// appends it to the std::vector<unsigned char> that `context` points to.
// (resize + memcpy rather than insert: GCC 12 reports a false -Wstringop-overflow for
// insert once the JPEG writer's one-byte calls are inlined.)
inline void append_bytes(void* context, void* data, int size) {
    auto* out = static_cast<std::vector<unsigned char>*>(context);
    const std::size_t old_size = out->size();
    out->resize(old_size + static_cast<std::size_t>(size));
    std::memcpy(out->data() + old_size, data, static_cast<std::size_t>(size));
}

}  // namespace nnmark::detail
