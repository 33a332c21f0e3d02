#include "nnmark/watermark/bitmap_font.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <vector>

using namespace nnmark;

TEST_CASE("bitmap_font: has A-Z, 0-9, space and chart punctuation, each glyph 5 bits wide and distinct") {
    const std::string characters = font_characters();
    for (char c = 'A'; c <= 'Z'; ++c) CHECK(characters.find(c) != std::string::npos);
    for (char c = '0'; c <= '9'; ++c) CHECK(characters.find(c) != std::string::npos);
    for (char c : std::string(".%-:/(),+=_")) CHECK(characters.find(c) != std::string::npos);
    CHECK(std::is_sorted(characters.begin(), characters.end()));
    std::set<glyph_rows> seen;
    for (char c : characters) {
        const glyph_rows& glyph = font_glyph(c);
        int ink = 0;
        for (std::uint8_t row : glyph) {
            CHECK(row < (1u << glyph_width));
            for (int bit = 0; bit < glyph_width; ++bit) ink += (row >> bit) & 1;
        }
        CHECK((c == ' ') == (ink == 0));
        seen.insert(glyph);
    }
    CHECK(seen.size() == characters.size());
}

TEST_CASE("bitmap_font: glyph_pixel reads the row masks left to right, top to bottom") {
    const glyph_rows& t = font_glyph('T');
    for (int col = 0; col < glyph_width; ++col) CHECK(glyph_pixel(t, 0, col));
    for (int row = 1; row < glyph_height; ++row)
        for (int col = 0; col < glyph_width; ++col) CHECK(glyph_pixel(t, row, col) == (col == 2));
    const glyph_rows& l = font_glyph('L');
    CHECK(glyph_pixel(l, 0, 0));
    CHECK_FALSE(glyph_pixel(l, 0, 4));
    CHECK(glyph_pixel(l, 6, 4));
}

TEST_CASE("bitmap_font: render_text lays out glyphs with one blank column and scales every pixel") {
    const text_bitmap one = render_text("TE", 1);
    CHECK(one.width == 11);
    CHECK(one.height == 7);
    for (index_t row = 0; row < 7; ++row) {
        CHECK_FALSE(one.at(row, 5));  // the gap column
        for (index_t col = 0; col < 5; ++col) {
            CHECK(one.at(row, col) == glyph_pixel(font_glyph('T'), static_cast<int>(row), static_cast<int>(col)));
            CHECK(one.at(row, 6 + col) == glyph_pixel(font_glyph('E'), static_cast<int>(row), static_cast<int>(col)));
        }
    }
    const text_bitmap three = render_text("TE", 3);
    CHECK(three.width == 33);
    CHECK(three.height == 21);
    for (index_t row = 0; row < three.height; ++row)
        for (index_t col = 0; col < three.width; ++col) CHECK(three.at(row, col) == one.at(row / 3, col / 3));
    const text_bitmap test = render_text("TEST", 1);
    CHECK(test.width == 23);
}

TEST_CASE("bitmap_font: unknown characters, empty text and scale 0 are argument errors") {
    CHECK_THROWS_AS(font_glyph('t'), argument_error);
    CHECK_THROWS_WITH_AS(render_text("TE?T", 1), doctest::Contains("'?'"), argument_error);
    CHECK_THROWS_AS(render_text("", 1), argument_error);
    CHECK_THROWS_AS(render_text("TEST", 0), argument_error);
}

namespace {

// The rows of a rendered text as strings, '#' for ink: a picture to compare with.
std::vector<std::string> font_test_picture(const text_bitmap& bitmap) {
    std::vector<std::string> rows;
    for (index_t row = 0; row < bitmap.height; ++row) {
        std::string line;
        for (index_t col = 0; col < bitmap.width; ++col) line += bitmap.at(row, col) ? '#' : '.';
        rows.push_back(line);
    }
    return rows;
}

}  // namespace

TEST_CASE("bitmap_font: \"TEST\" keeps the pixels every content-trigger key was made with") {
    const std::vector<std::string> expected = {
        "#####.#####..####.#####",
        "..#...#.....#.......#..",
        "..#...#.....#.......#..",
        "..#...####...###....#..",
        "..#...#.........#...#..",
        "..#...#.........#...#..",
        "..#...#####.####....#..",
    };
    CHECK(font_test_picture(render_text("TEST", 1)) == expected);
}

TEST_CASE("bitmap_font: the chart punctuation glyphs have their usual shapes") {
    CHECK(font_test_picture(render_text("-.", 1)) == std::vector<std::string>{
                                                        "...........",
                                                        "...........",
                                                        "...........",
                                                        "#####......",
                                                        "...........",
                                                        ".......##..",
                                                        ".......##..",
                                                    });
    CHECK(font_test_picture(render_text("(/)", 1)) == std::vector<std::string>{
                                                         "...#.........#...",
                                                         "..#.......#...#..",
                                                         ".#.......#.....#.",
                                                         ".#......#......#.",
                                                         ".#.....#.......#.",
                                                         "..#...#.......#..",
                                                         "...#.........#...",
                                                     });
    CHECK(font_test_picture(render_text("%", 1)) ==
          std::vector<std::string>{"##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"});
    CHECK(font_test_picture(render_text(":", 1)) ==
          std::vector<std::string>{".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."});
    CHECK(font_test_picture(render_text(",", 1)) ==
          std::vector<std::string>{".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."});
    CHECK(font_test_picture(render_text("+", 1)) ==
          std::vector<std::string>{".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."});
    CHECK(font_test_picture(render_text("=", 1)) ==
          std::vector<std::string>{".....", ".....", "#####", ".....", "#####", ".....", "....."});
    CHECK(font_test_picture(render_text("_", 1)) ==
          std::vector<std::string>{".....", ".....", ".....", ".....", ".....", ".....", "#####"});
    CHECK(render_text("ACCURACY (%): 12.5", 2).width == (6 * 18 - 1) * 2);
}
