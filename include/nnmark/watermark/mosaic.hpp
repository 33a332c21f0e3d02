// mosaic: a PNG contact sheet of a dataset's images, to look at trigger sets (the
// paper's Fig. 4 and Fig. 8) and check them by eye.
//
// Contract:
// - write_mosaic_png(images, png, columns, upscale) lays the images [N, C, H, W] out
//   row by row, `columns` per row (fewer when N is smaller), each pixel drawn as an
//   upscale x upscale block, with mosaic_gap white pixels between neighbouring tiles:
//   width  = cols * W * upscale + (cols - 1) * mosaic_gap,
//   height = rows * H * upscale + (rows - 1) * mosaic_gap, rows = ceil(N / cols).
//   Unused cells of the last row are white. C == 1 gives a grey PNG, C == 3 an RGB one.
// - The file is replaced atomically (core/png.hpp).
// - Errors: argument_error for no images, columns < 1 or upscale < 1; shape_error for
//   images that are not [N, 1 or 3, H, W]; io_error when the file cannot be written.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/png.hpp"
#include "nnmark/data/dataset.hpp"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace nnmark {

inline constexpr index_t mosaic_gap = 2;  // white pixels between tiles

inline void write_mosaic_png(const dataset& images, const std::filesystem::path& png, int columns = 10,
                             int upscale = 2) {
    const std::string where = "mosaic '" + png.string() + "'";
    const shape& all = images.images.shape();
    if (all.rank() != 4 || (all[1] != 1 && all[1] != 3))
        throw shape_error(where + ": expected images [N, 1 or 3, H, W], got " + all.str());
    if (all[0] == 0) throw argument_error(where + ": dataset '" + images.name + "' has no images");
    if (columns < 1 || upscale < 1)
        throw argument_error(where + ": columns and upscale must be at least 1, got " + std::to_string(columns) +
                             " and " + std::to_string(upscale));
    const index_t n = all[0], channels = all[1], tile_h = all[2] * upscale, tile_w = all[3] * upscale;
    const index_t cols = std::min<index_t>(columns, n), rows = (n + cols - 1) / cols;
    const index_t width = cols * tile_w + (cols - 1) * mosaic_gap, height = rows * tile_h + (rows - 1) * mosaic_gap;
    // PNG rows hold interleaved channels (RGBRGB...), the images planes (NCHW).
    std::vector<unsigned char> canvas(static_cast<std::size_t>(width * height * channels), 255);
    for (index_t k = 0; k < n; ++k) {
        const index_t left = (k % cols) * (tile_w + mosaic_gap), top = (k / cols) * (tile_h + mosaic_gap);
        for (index_t c = 0; c < channels; ++c)
            for (index_t y = 0; y < tile_h; ++y)
                for (index_t x = 0; x < tile_w; ++x)
                    canvas[static_cast<std::size_t>(((top + y) * width + left + x) * channels + c)] =
                        images.images.at(k, c, y / upscale, x / upscale);
    }
    write_png(png, width, height, channels, canvas);
}

}  // namespace nnmark
