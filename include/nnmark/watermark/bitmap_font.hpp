// bitmap_font: a built-in 5x7 pixel font and the text rendering the content trigger needs.
//
// The paper draws "TEST" into its content triggers without naming a font or size; a font
// file or library would make the trigger depend on what is installed. This font is part
// of the key's definition instead: the same text renders to the same pixels everywhere.
//
// Contract:
// - Glyphs for 'A'-'Z', '0'-'9', ' ' and the punctuation of chart labels (report/
//   line_chart.hpp) . % - : / ( ) , + = _, each 5 columns x 7 rows. A glyph is 7 row
//   bitmasks, top row first; bit 4 is the leftmost column, bit 0 the rightmost (so the
//   binary literals below read like the glyph). The table is in ASCII order.
// - Glyphs are only ever added: a glyph's pixels are part of every key whose content
//   trigger draws it, so an existing glyph never changes.
// - render_text(text, scale) lays the glyphs out left to right with one blank column
//   between them, then scales every pixel to a scale x scale block (the gap too): the
//   result is (6 * n - 1) * scale wide and 7 * scale high for n characters.
// - Any other character, an empty text or scale < 1 throws argument_error.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/shape.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nnmark {

inline constexpr int glyph_width = 5;
inline constexpr int glyph_height = 7;
inline constexpr int glyph_gap = 1;  // blank columns between two glyphs

using glyph_rows = std::array<std::uint8_t, glyph_height>;

namespace detail {

struct font_entry {
    char character;
    glyph_rows rows;
};

// The character set of the HD44780 LCD controller's 5x7 ROM, a widely reproduced design.
inline constexpr font_entry font_5x7[] = {
    {' ', {0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000}},
    {'%', {0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011}},
    {'(', {0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010}},
    {')', {0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000}},
    {'+', {0b00000, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0b00000}},
    {',', {0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b00100, 0b01000}},
    {'-', {0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000}},
    {'.', {0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100}},
    {'/', {0b00000, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b00000}},
    {'0', {0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110}},
    {'1', {0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110}},
    {'2', {0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111}},
    {'3', {0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110}},
    {'4', {0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010}},
    {'5', {0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110}},
    {'6', {0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110}},
    {'7', {0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000}},
    {'8', {0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110}},
    {'9', {0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100}},
    {':', {0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000}},
    {'=', {0b00000, 0b00000, 0b11111, 0b00000, 0b11111, 0b00000, 0b00000}},
    {'A', {0b01110, 0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001}},
    {'B', {0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110}},
    {'C', {0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110}},
    {'D', {0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100}},
    {'E', {0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111}},
    {'F', {0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000}},
    {'G', {0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111}},
    {'H', {0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001}},
    {'I', {0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110}},
    {'J', {0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100}},
    {'K', {0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001}},
    {'L', {0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111}},
    {'M', {0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001}},
    {'N', {0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001}},
    {'O', {0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110}},
    {'P', {0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000}},
    {'Q', {0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101}},
    {'R', {0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001}},
    {'S', {0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110}},
    {'T', {0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100}},
    {'U', {0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110}},
    {'V', {0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100}},
    {'W', {0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010}},
    {'X', {0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001}},
    {'Y', {0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100}},
    {'Z', {0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111}},
    {'_', {0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b11111}},
};

}  // namespace detail

// The characters the font can draw, in table order.
inline std::string font_characters() {
    std::string characters;
    for (const auto& entry : detail::font_5x7) characters += entry.character;
    return characters;
}

// The glyph of `c`; argument_error for a character the font does not have.
inline const glyph_rows& font_glyph(char c) {
    for (const auto& entry : detail::font_5x7)
        if (entry.character == c) return entry.rows;
    throw argument_error("bitmap font: no glyph for character '" + std::string(1, c) + "' (code " +
                         std::to_string(static_cast<unsigned char>(c)) + "); the font has \"" + font_characters() +
                         "\"");
}

// Whether column `col` (0 = leftmost) of row `row` (0 = top) of a glyph is inked.
inline bool glyph_pixel(const glyph_rows& glyph, int row, int col) {
    return (glyph[static_cast<std::size_t>(row)] >> (glyph_width - 1 - col)) & 1u;
}

// A rendered text: height x width pixels, row-major, 1 where inked and 0 elsewhere.
struct text_bitmap {
    index_t width = 0;
    index_t height = 0;
    std::vector<std::uint8_t> ink;

    bool at(index_t row, index_t col) const { return ink[static_cast<std::size_t>(row * width + col)] != 0; }
};

inline text_bitmap render_text(std::string_view text, int scale) {
    if (text.empty()) throw argument_error("bitmap font: the text to render is empty");
    if (scale < 1) throw argument_error("bitmap font: scale must be at least 1, got " + std::to_string(scale));
    const index_t n = static_cast<index_t>(text.size());
    text_bitmap bitmap;
    bitmap.width = ((glyph_width + glyph_gap) * n - glyph_gap) * scale;
    bitmap.height = index_t{glyph_height} * scale;
    bitmap.ink.assign(static_cast<std::size_t>(bitmap.width * bitmap.height), 0);
    for (index_t k = 0; k < n; ++k) {
        const glyph_rows& glyph = font_glyph(text[static_cast<std::size_t>(k)]);
        const index_t left = k * (glyph_width + glyph_gap);
        for (index_t row = 0; row < bitmap.height; ++row)
            for (index_t col = 0; col < index_t{glyph_width} * scale; ++col)
                if (glyph_pixel(glyph, static_cast<int>(row / scale), static_cast<int>(col / scale)))
                    bitmap.ink[static_cast<std::size_t>(row * bitmap.width + left * scale + col)] = 1;
    }
    return bitmap;
}

}  // namespace nnmark
