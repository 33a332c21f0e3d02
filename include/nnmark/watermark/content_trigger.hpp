// content_trigger: the paper's "content" watermark (Sec. 4.1, Fig. 4): the text "TEST"
// drawn into the bottom-left corner of source-class images.
//
// Contract:
// - Each trigger is its pool image [C, H, W] with the pixels of render_text(text, scale)
//   (bitmap_font.hpp) set to `intensity` in every channel; every other pixel is left as
//   it was. The text's bottom-left corner sits `x` columns from the left edge and `y`
//   rows above the bottom edge.
// - Defaults are MNIST's: mid-grey (128) strokes at scale 1 with a 1-pixel margin; the
//   4-letter text is then 23 x 7 pixels. trigger_set.hpp uses light grey (192) for
//   CIFAR-10, as in the paper's figures.
// - Output items have the pool's item shape. A text that does not fit the image throws
//   argument_error naming the sizes; unknown characters, intensity outside 0..255,
//   scale < 1 and negative offsets throw argument_error at construction.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/watermark/bitmap_font.hpp"
#include "nnmark/watermark/trigger.hpp"

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <utility>

namespace nnmark {

struct content_options {
    std::string text = "TEST";
    int x = 1;            // columns between the left edge and the text
    int y = 1;            // rows between the bottom edge and the text
    int intensity = 128;  // grey value of the strokes, all channels
    int scale = 1;        // each font pixel becomes scale x scale image pixels
};

class content_trigger final : public trigger_generator {
public:
    explicit content_trigger(content_options options = {}) : options_(std::move(options)) {
        auto fail = [](const std::string& what) { throw argument_error("content trigger: " + what); };
        if (options_.intensity < 0 || options_.intensity > 255)
            fail("intensity must be in 0..255, got " + std::to_string(options_.intensity));
        if (options_.x < 0 || options_.y < 0)
            fail("text offsets must be >= 0, got x " + std::to_string(options_.x) + ", y " +
                 std::to_string(options_.y));
        text_ = render_text(options_.text, options_.scale);
    }

    std::string kind() const override { return "content"; }

    layer_config parameters() const override {
        return {{"text", options_.text},
                {"x", std::int64_t{options_.x}},
                {"y", std::int64_t{options_.y}},
                {"intensity", std::int64_t{options_.intensity}},
                {"scale", std::int64_t{options_.scale}}};
    }

    const content_options& options() const { return options_; }
    const text_bitmap& text() const { return text_; }

    // Throws unless an image of shape `item` [C, H, W] holds the text at the configured place.
    void check_fits(const shape& item) const {
        if (item.rank() != 3) throw shape_error("content trigger: expected image items [C, H, W], got " + item.str());
        const index_t need_w = options_.x + text_.width, need_h = options_.y + text_.height;
        if (need_w > item[2] || need_h > item[1])
            throw argument_error("content trigger: the text \"" + options_.text + "\" at scale " +
                                 std::to_string(options_.scale) + " is " + std::to_string(text_.width) + "x" +
                                 std::to_string(text_.height) + " pixels; at x " + std::to_string(options_.x) +
                                 ", y " + std::to_string(options_.y) + " it needs images at least " +
                                 std::to_string(need_w) + " wide and " + std::to_string(need_h) + " high, got " +
                                 item.str());
    }

    // Draws the text into one image of shape `item`, which must fit it.
    void stamp(std::span<std::uint8_t> image, const shape& item) const {
        const index_t channels = item[0], height = item[1], width = item[2];
        const index_t top = height - options_.y - text_.height;
        const auto value = static_cast<std::uint8_t>(options_.intensity);
        for (index_t c = 0; c < channels; ++c)
            for (index_t row = 0; row < text_.height; ++row)
                for (index_t col = 0; col < text_.width; ++col)
                    if (text_.at(row, col))
                        image[static_cast<std::size_t>((c * height + top + row) * width + options_.x + col)] = value;
    }

    dataset make(const dataset& pool, index_t count, rng& random) const override {
        const shape item = pool.item_shape();
        check_fits(item);
        return detail::make_triggers(*this, pool, count, random, item,
                                     [&](std::span<const std::uint8_t> source, std::span<std::uint8_t> trigger) {
                                         std::ranges::copy(source, trigger.begin());
                                         stamp(trigger, item);
                                     });
    }

private:
    content_options options_;
    text_bitmap text_;
};

}  // namespace nnmark
