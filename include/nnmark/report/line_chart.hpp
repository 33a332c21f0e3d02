// line_chart: line charts drawn into an RGB image and a PNG, for the figures `nnmark
// reproduce` draws (the paper's pruning figure: test and trigger accuracy against the
// pruning rate, one curve per trigger kind, as two panels side by side).
//
// No plotting library: the figure comes out of the tool alone, with the same pixels on
// every machine, its text drawn with the project's 5x7 font (watermark/bitmap_font.hpp).
//
// Contract:
// - render_charts(panels, panel_width, panel_height) draws the panels left to right into
//   one white image, panels.size() * panel_width wide and panel_height high. A panel has
//   its title at the top (font scale 2, or 1 when that does not fit), a plot area with a
//   black left and bottom axis, a light grey grid line and a black tick mark at every
//   multiple of x_tick (y_tick) within the axis range, tick labels printed "%.6g" ("0",
//   "20", "0.5"), the x label below and the y label on the left, reading upwards. Text is
//   drawn uppercased. When neighbouring tick labels would touch, only the ticks at
//   multiples of m * tick are labelled, with the smallest m that keeps them apart.
// - chart_plot_area(chart, w, h) is the plot area's pixel rectangle in a w x h panel
//   (inclusive bounds; the axes are its left column and bottom row). chart_pixel maps
//   a data point linearly, rounded to the nearest pixel: (x_min, y_min) to (left, bottom),
//   (x_max, y_max) to (right, top). Points outside the ranges land outside the area, at
//   most one area size beyond it.
// - Series k of every panel is drawn in chart_colour(k) (Okabe-Ito's colourblind-safe
//   palette without black, repeating after 7 series): 2-pixel lines between consecutive
//   points whose x and y are finite, cut off at the axis ranges, and a 7 x 7 square
//   marker on each such point within the ranges. A NaN (or infinite) x or y is a gap: no
//   marker, no line to or from it.
// - The legend lists the first panel's series (a swatch and the label each): a white,
//   grey-framed box in the corner of the first panel's plot area that hides the fewest
//   series pixels (top right on ties). No series, no legend.
// - Drawing is clipped to each panel: nothing reaches a neighbour or leaves the image.
// - write_png writes an rgb_image as an 8-bit RGB PNG (core/png.hpp),
//   replacing the file atomically (core/atomic_file.hpp); write_charts_png renders and
//   writes.
// - Errors: argument_error for no panels and a panel smaller than chart_min_width x
//   chart_min_height; argument_error naming the panel (and the series) for axis ranges
//   that are not finite with x_min < x_max and y_min < y_max, a tick that is not positive
//   and finite or gives more than chart_max_ticks grid lines, a series with x and y of
//   different sizes, and text with a character the font lacks. write_png: argument_error
//   for an image whose pixels do not hold width * height * 3 bytes, io_error when the
//   PNG cannot be encoded or the file cannot be written.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/shape.hpp"
#include "nnmark/core/png.hpp"
#include "nnmark/watermark/bitmap_font.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nnmark {

using rgb_colour = std::array<unsigned char, 3>;

// Okabe & Ito (2008), "Color Universal Design", in an order that keeps the first
// colours apart for every kind of colour blindness; black is left to the axes, and
// yellow comes last because it is faint on white.
inline constexpr std::array<rgb_colour, 7> chart_palette = {{
    {0, 114, 178},    // blue
    {213, 94, 0},     // vermillion
    {0, 158, 115},    // bluish green
    {204, 121, 167},  // reddish purple
    {230, 159, 0},    // orange
    {86, 180, 233},   // sky blue
    {240, 228, 66},   // yellow
}};

inline rgb_colour chart_colour(std::size_t series) { return chart_palette[series % chart_palette.size()]; }

inline constexpr index_t chart_min_width = 160;   // room for the margins and a plot area
inline constexpr index_t chart_min_height = 120;
inline constexpr double chart_max_ticks = 200;  // grid lines per axis; more is a tick given in the wrong unit

struct chart_series {
    std::string label;
    std::vector<double> x, y;  // a NaN y is a gap (point skipped)
};

struct line_chart {
    std::string title, x_label, y_label;
    double x_min = 0, x_max = 1, y_min = 0, y_max = 1;  // axis ranges (data outside is clipped)
    double x_tick = 0.1, y_tick = 0.1;                  // tick spacing, labelled
    std::vector<chart_series> series;                   // colour = chart_colour(index), same for every panel
};

struct rgb_image {
    index_t width = 0, height = 0;
    std::vector<unsigned char> pixels;  // RGB interleaved, row-major

    rgb_colour at(index_t x, index_t y) const {
        const auto* p = &pixels[static_cast<std::size_t>((y * width + x) * 3)];
        return {p[0], p[1], p[2]};
    }
};

struct chart_point {
    index_t x = 0, y = 0;
    bool operator==(const chart_point&) const = default;
};

struct chart_rect {
    index_t left = 0, top = 0, right = 0, bottom = 0;  // inclusive
};

namespace chart_detail {

inline constexpr rgb_colour white = {255, 255, 255}, black = {0, 0, 0}, grid_grey = {225, 225, 225},
                            frame_grey = {160, 160, 160};
inline constexpr index_t pad = 8;          // between the panel's parts
inline constexpr index_t tick_length = 4;  // outwards from the axis
inline constexpr index_t tick_gap = 3;     // between a tick mark and its label
inline constexpr int title_scale = 2, text_scale = 1;
inline constexpr index_t marker_half = 3;  // markers are 2 * 3 + 1 pixels wide

struct data_point {
    double x, y;
};

// "%.6g": "0", "20", "0.5", "1e+06"; for tick labels and messages alike.
inline std::string number(double value) {
    char text[32];
    std::snprintf(text, sizeof text, "%.6g", value);
    return text;
}

inline std::string upper(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

inline index_t text_width(std::string_view text, int scale) {
    const auto n = static_cast<index_t>(text.size());
    return n == 0 ? 0 : ((glyph_width + glyph_gap) * n - glyph_gap) * scale;
}

inline index_t text_height(int scale) { return index_t{glyph_height} * scale; }

inline void check_text(std::string_view text, const std::string& where, const std::string& what) {
    const std::string known = font_characters();
    for (char c : upper(text))
        if (known.find(c) == std::string::npos)
            throw argument_error(where + ": " + what + " \"" + std::string(text) + "\" has the character '" +
                                 std::string(1, c) + "', which the bitmap font lacks (it has \"" + known + "\")");
}

inline void check_axis(double lo, double hi, double tick, const std::string& where, const char* axis) {
    const std::string name(axis);
    if (!std::isfinite(lo) || !std::isfinite(hi) || !(lo < hi))
        throw argument_error(where + ": " + name + "_min must be below " + name + "_max, both finite; got " +
                             number(lo) + " and " + number(hi));
    if (!std::isfinite(tick) || !(tick > 0))
        throw argument_error(where + ": " + name + "_tick must be positive, got " + number(tick));
    if ((hi - lo) / tick > chart_max_ticks)
        throw argument_error(where + ": " + name + "_tick " + number(tick) + " gives more than " +
                             number(chart_max_ticks) + " grid lines over " + number(lo) + ".." + number(hi));
}

inline void check_axes(const line_chart& chart, const std::string& where) {
    check_axis(chart.x_min, chart.x_max, chart.x_tick, where, "x");
    check_axis(chart.y_min, chart.y_max, chart.y_tick, where, "y");
}

inline void check_panel_size(index_t width, index_t height) {
    if (width < chart_min_width || height < chart_min_height)
        throw argument_error("line chart: panels must be at least " + std::to_string(chart_min_width) + " x " +
                             std::to_string(chart_min_height) + " pixels, got " + std::to_string(width) + " x " +
                             std::to_string(height));
}

inline void check_chart(const line_chart& chart, const std::string& where) {
    check_axes(chart, where);
    check_text(chart.title, where, "title");
    check_text(chart.x_label, where, "x label");
    check_text(chart.y_label, where, "y label");
    for (std::size_t k = 0; k < chart.series.size(); ++k) {
        const chart_series& s = chart.series[k];
        const std::string series_where = where + ", series " + std::to_string(k + 1) + " of " +
                                         std::to_string(chart.series.size()) + " '" + s.label + "'";
        if (s.x.size() != s.y.size())
            throw argument_error(series_where + ": " + std::to_string(s.x.size()) + " x values but " +
                                 std::to_string(s.y.size()) + " y values");
        check_text(s.label, series_where, "label");
    }
}

// The k of the ticks k * tick within [lo, hi] (the tolerance keeps an end of the range
// that is a multiple but for rounding). check_axis bounds their count, and |k| stays far
// below 2^63 because lo and hi are at least a rounding step apart.
inline std::vector<index_t> tick_multiples(double lo, double hi, double tick) {
    const auto first = static_cast<index_t>(std::ceil(lo / tick - 1e-9));
    const auto last = static_cast<index_t>(std::floor(hi / tick + 1e-9));
    std::vector<index_t> multiples;
    for (index_t k = first; k <= last; ++k) multiples.push_back(k);
    return multiples;
}

// k * tick rather than a running sum, so that 0 is exactly 0 and 0.3 prints "0.3".
inline std::string tick_label(index_t k, double tick) {
    return upper(number(static_cast<double>(k) * tick));  // "1E+06": the font has capitals only
}

inline index_t widest_tick_label(double lo, double hi, double tick) {
    index_t widest = 0;
    for (index_t k : tick_multiples(lo, hi, tick))
        widest = std::max(widest, text_width(tick_label(k, tick), text_scale));
    return widest;
}

inline int title_scale_for(const line_chart& chart, index_t panel_width) {
    return text_width(chart.title, title_scale) <= panel_width - 2 * pad ? title_scale : text_scale;
}

// The margins make room for, from the outside in: the title; the y label, the y tick
// labels and tick marks; the x label, the x tick labels and tick marks; half of the
// last x tick label, which is centred on its tick.
inline chart_rect plot_area(const line_chart& chart, index_t width, index_t height) {
    const index_t label_room = text_height(text_scale) + pad;
    const index_t title_room = chart.title.empty() ? 0 : text_height(title_scale_for(chart, width)) + pad;
    const index_t tick_room = tick_length + tick_gap + text_height(text_scale);
    chart_rect area;
    area.top = pad + std::max(title_room, text_height(text_scale) / 2);
    area.left = pad + (chart.y_label.empty() ? 0 : label_room) +
                widest_tick_label(chart.y_min, chart.y_max, chart.y_tick) + tick_gap + tick_length;
    area.bottom = height - 1 - pad - tick_room - (chart.x_label.empty() ? 0 : label_room);
    area.right = width - 1 - pad - widest_tick_label(chart.x_min, chart.x_max, chart.x_tick) / 2;
    return area;
}

// Where `value` lies from lo (0) to hi (1), held within [-1, 2] (NaN to -1) so that the
// pixel coordinate stays an integer of sensible size.
inline double clamped_fraction(double value, double lo, double hi) {
    const double fraction = (value - lo) / (hi - lo);
    return fraction > 2 ? 2 : (fraction >= -1 ? fraction : -1);
}

inline chart_point to_pixel(const line_chart& chart, const chart_rect& area, data_point p) {
    const double fx = clamped_fraction(p.x, chart.x_min, chart.x_max);
    const double fy = clamped_fraction(p.y, chart.y_min, chart.y_max);
    return {area.left + std::lround(fx * static_cast<double>(area.right - area.left)),
            area.bottom - std::lround(fy * static_cast<double>(area.bottom - area.top))};
}

inline bool in_ranges(const line_chart& chart, data_point p) {
    return p.x >= chart.x_min && p.x <= chart.x_max && p.y >= chart.y_min && p.y <= chart.y_max;
}

// Cuts the segment a-b to the side of the line axis = edge that holds coordinates >= edge
// (`above`) or <= edge; false when none of it is there. The cut point is interpolated
// with weights, not as a + t * (b - a), so that a far-away end (1e300) keeps the other
// coordinate exact.
inline bool clip_to_edge(data_point& a, data_point& b, double data_point::*axis, double edge, bool above) {
    const auto inside = [&](const data_point& p) { return above ? p.*axis >= edge : p.*axis <= edge; };
    if (inside(a) && inside(b)) return true;
    if (!inside(a) && !inside(b)) return false;
    const double f = (edge - a.*axis) / (b.*axis - a.*axis);
    data_point cut{a.x * (1 - f) + b.x * f, a.y * (1 - f) + b.y * f};
    cut.*axis = edge;
    (inside(a) ? b : a) = cut;
    return true;
}

// Cuts the segment a-b to the axis ranges; false when none of it is inside.
inline bool clip_segment(const line_chart& chart, data_point& a, data_point& b) {
    return clip_to_edge(a, b, &data_point::x, chart.x_min, true) &&
           clip_to_edge(a, b, &data_point::x, chart.x_max, false) &&
           clip_to_edge(a, b, &data_point::y, chart.y_min, true) &&
           clip_to_edge(a, b, &data_point::y, chart.y_max, false);
}

// One panel of the image, in panel coordinates; writes outside the panel are dropped.
struct panel_canvas {
    rgb_image& image;
    index_t offset, width, height;  // the panel's first column in the image, its size

    bool inside(index_t x, index_t y) const { return x >= 0 && x < width && y >= 0 && y < height; }

    void set(index_t x, index_t y, rgb_colour colour) {
        if (!inside(x, y)) return;
        auto* p = &image.pixels[static_cast<std::size_t>((y * image.width + offset + x) * 3)];
        std::copy(colour.begin(), colour.end(), p);
    }

    void fill(chart_rect r, rgb_colour colour) {
        for (index_t y = r.top; y <= r.bottom; ++y)
            for (index_t x = r.left; x <= r.right; ++x) set(x, y, colour);
    }
};

// `text` with its top-left corner at (x, y); upwards: rotated a quarter turn
// counter-clockwise, reading from the bottom, with its bottom-left corner at (x, y).
inline void draw_text(panel_canvas& canvas, std::string_view text, index_t x, index_t y, int scale,
                      bool upwards = false) {
    if (text.empty()) return;
    const text_bitmap bitmap = render_text(upper(text), scale);
    for (index_t row = 0; row < bitmap.height; ++row)
        for (index_t col = 0; col < bitmap.width; ++col)
            if (bitmap.at(row, col)) {
                if (upwards) canvas.set(x + row, y - col, black);
                else canvas.set(x + col, y + row, black);
            }
}

inline void draw_marker(panel_canvas& canvas, chart_point p, rgb_colour colour) {
    canvas.fill({p.x - marker_half, p.y - marker_half, p.x + marker_half, p.y + marker_half}, colour);
}

// A 2 x 2 pen moved along the segment one pixel step at a time along its longer extent.
inline void draw_segment(panel_canvas& canvas, chart_point a, chart_point b, rgb_colour colour) {
    const index_t steps = std::max({std::abs(b.x - a.x), std::abs(b.y - a.y), index_t{1}});
    for (index_t i = 0; i <= steps; ++i) {
        const double t = static_cast<double>(i) / static_cast<double>(steps);
        const index_t x = a.x + std::lround(t * static_cast<double>(b.x - a.x));
        const index_t y = a.y + std::lround(t * static_cast<double>(b.y - a.y));
        canvas.fill({x, y, x + 1, y + 1}, colour);
    }
}

inline void draw_grid_and_axes(panel_canvas& canvas, const line_chart& chart, const chart_rect& area) {
    for (index_t k : tick_multiples(chart.x_min, chart.x_max, chart.x_tick)) {
        const index_t px = to_pixel(chart, area, {static_cast<double>(k) * chart.x_tick, chart.y_min}).x;
        canvas.fill({px, area.top, px, area.bottom}, grid_grey);
        canvas.fill({px, area.bottom, px, area.bottom + tick_length}, black);
    }
    for (index_t k : tick_multiples(chart.y_min, chart.y_max, chart.y_tick)) {
        const index_t py = to_pixel(chart, area, {chart.x_min, static_cast<double>(k) * chart.y_tick}).y;
        canvas.fill({area.left, py, area.right, py}, grid_grey);
        canvas.fill({area.left - tick_length, py, area.left, py}, black);
    }
    canvas.fill({area.left, area.top, area.left, area.bottom}, black);
    canvas.fill({area.left, area.bottom, area.right, area.bottom}, black);
}

// A tick label: the tick's multiple of the tick spacing, its text and where it is drawn.
struct tick_text {
    index_t multiple;
    std::string text;
    index_t left, top;
};

// Whether two labels leave at least `gap` pixels between them, side by side or stacked.
inline bool labels_apart(const tick_text& a, const tick_text& b, index_t gap) {
    const index_t a_right = a.left + text_width(a.text, text_scale), b_right = b.left + text_width(b.text, text_scale);
    const bool side_by_side = std::max(a.left, b.left) >= std::min(a_right, b_right) + gap;
    const bool stacked = std::abs(a.top - b.top) >= text_height(text_scale) + gap;
    return side_by_side || stacked;
}

// The smallest m such that labelling only the ticks at multiples of m * tick keeps the
// labels apart (by a glyph's width): evenly spaced labels at round values, however
// dense the ticks.
inline index_t label_stride(const std::vector<tick_text>& labels) {
    const index_t gap = glyph_width * text_scale;
    for (index_t m = 1; m < static_cast<index_t>(labels.size()); ++m) {
        const tick_text* previous = nullptr;
        bool apart = true;
        for (const tick_text& label : labels) {
            if (label.multiple % m != 0) continue;
            if (previous) apart = apart && labels_apart(*previous, label, gap);
            previous = &label;
        }
        if (apart) return m;
    }
    return std::max<index_t>(1, static_cast<index_t>(labels.size()));
}

// x labels centred under their ticks, y labels right-aligned and centred on theirs.
inline std::vector<tick_text> tick_texts(const line_chart& chart, const chart_rect& area, bool x_axis) {
    const double tick = x_axis ? chart.x_tick : chart.y_tick;
    std::vector<tick_text> labels;
    for (index_t k : x_axis ? tick_multiples(chart.x_min, chart.x_max, tick)
                            : tick_multiples(chart.y_min, chart.y_max, tick)) {
        std::string text = tick_label(k, tick);
        const index_t w = text_width(text, text_scale);
        const double value = static_cast<double>(k) * tick;
        if (x_axis)
            labels.push_back({k, std::move(text), to_pixel(chart, area, {value, chart.y_min}).x - w / 2,
                              area.bottom + tick_length + tick_gap});
        else
            labels.push_back({k, std::move(text), area.left - tick_length - tick_gap - w,
                              to_pixel(chart, area, {chart.x_min, value}).y - text_height(text_scale) / 2});
    }
    return labels;
}

inline void draw_tick_labels(panel_canvas& canvas, const line_chart& chart, const chart_rect& area) {
    for (bool x_axis : {true, false}) {
        const std::vector<tick_text> labels = tick_texts(chart, area, x_axis);
        const index_t stride = label_stride(labels);
        for (const tick_text& label : labels)
            if (label.multiple % stride == 0) draw_text(canvas, label.text, label.left, label.top, text_scale);
    }
}

inline void draw_labels(panel_canvas& canvas, const line_chart& chart, const chart_rect& area) {
    const int scale = title_scale_for(chart, canvas.width);
    // Centred; a title too long even at scale 1 starts at the left edge, to be read as far as it goes.
    draw_text(canvas, chart.title, std::max<index_t>(0, (canvas.width - text_width(chart.title, scale)) / 2), pad,
              scale);
    const index_t x_label_top = area.bottom + tick_length + tick_gap + text_height(text_scale) + pad;
    draw_text(canvas, chart.x_label, (area.left + area.right - text_width(chart.x_label, text_scale)) / 2,
              x_label_top, text_scale);
    draw_text(canvas, chart.y_label, pad, (area.top + area.bottom + text_width(chart.y_label, text_scale)) / 2,
              text_scale, true);
}

inline void draw_series(panel_canvas& canvas, const line_chart& chart, const chart_rect& area) {
    for (std::size_t k = 0; k < chart.series.size(); ++k) {
        const chart_series& s = chart.series[k];
        const rgb_colour colour = chart_colour(k);
        for (std::size_t i = 1; i < s.x.size(); ++i) {
            data_point a{s.x[i - 1], s.y[i - 1]}, b{s.x[i], s.y[i]};
            const bool finite = std::isfinite(a.x) && std::isfinite(a.y) && std::isfinite(b.x) && std::isfinite(b.y);
            if (finite && clip_segment(chart, a, b))
                draw_segment(canvas, to_pixel(chart, area, a), to_pixel(chart, area, b), colour);
        }
        for (std::size_t i = 0; i < s.x.size(); ++i)
            if (in_ranges(chart, {s.x[i], s.y[i]}))
                draw_marker(canvas, to_pixel(chart, area, {s.x[i], s.y[i]}), colour);
    }
}

inline constexpr index_t legend_swatch = 24;  // the sample line, with a marker on its middle
inline constexpr index_t legend_spacing = 6;  // around and between the rows, between swatch and label
inline constexpr index_t legend_pitch = glyph_height * text_scale + legend_spacing;  // row to row

// The legend's box with its top-left corner at (left, top).
inline chart_rect legend_box(const line_chart& chart, index_t left, index_t top) {
    index_t widest = 0;
    for (const chart_series& s : chart.series) widest = std::max(widest, text_width(s.label, text_scale));
    const auto rows = static_cast<index_t>(chart.series.size());
    return {left, top, left + 3 * legend_spacing + legend_swatch + widest - 1,
            top + legend_spacing + rows * legend_pitch - 1};
}

inline index_t series_pixels(const panel_canvas& canvas, const chart_rect& box) {
    index_t count = 0;
    for (index_t y = box.top; y <= box.bottom; ++y)
        for (index_t x = box.left; x <= box.right; ++x)
            if (canvas.inside(x, y) && std::find(chart_palette.begin(), chart_palette.end(),
                                                 canvas.image.at(canvas.offset + x, y)) != chart_palette.end())
                ++count;
    return count;
}

// The candidate corners in order of preference: top right, top left, bottom right, bottom left.
inline chart_rect legend_place(const panel_canvas& canvas, const line_chart& chart, const chart_rect& area) {
    const chart_rect size = legend_box(chart, 0, 0);
    const index_t left = area.left + pad, right = area.right - pad - size.right;
    const index_t top = area.top + pad, bottom = area.bottom - pad - size.bottom;
    const chart_rect corners[] = {legend_box(chart, right, top), legend_box(chart, left, top),
                                  legend_box(chart, right, bottom), legend_box(chart, left, bottom)};
    return *std::min_element(std::begin(corners), std::end(corners), [&](const chart_rect& a, const chart_rect& b) {
        return series_pixels(canvas, a) < series_pixels(canvas, b);
    });
}

inline void draw_legend(panel_canvas& canvas, const line_chart& chart, const chart_rect& area) {
    if (chart.series.empty()) return;
    const chart_rect box = legend_place(canvas, chart, area);
    canvas.fill(box, frame_grey);
    canvas.fill({box.left + 1, box.top + 1, box.right - 1, box.bottom - 1}, white);
    for (std::size_t k = 0; k < chart.series.size(); ++k) {
        const index_t top = box.top + legend_spacing + legend_pitch * static_cast<index_t>(k);
        const index_t middle = top + text_height(text_scale) / 2, swatch = box.left + legend_spacing;
        // The pen is 2 pixels wide: the sample line ends at the swatch's last column.
        draw_segment(canvas, {swatch, middle}, {swatch + legend_swatch - 2, middle}, chart_colour(k));
        draw_marker(canvas, {swatch + legend_swatch / 2 - 1, middle}, chart_colour(k));
        draw_text(canvas, chart.series[k].label, swatch + legend_swatch + legend_spacing, top, text_scale);
    }
}

}  // namespace chart_detail

// The plot area of `chart` drawn in a panel_width x panel_height panel (see the contract).
inline chart_rect chart_plot_area(const line_chart& chart, index_t panel_width, index_t panel_height) {
    chart_detail::check_panel_size(panel_width, panel_height);
    chart_detail::check_axes(chart, "line chart '" + chart.title + "'");
    return chart_detail::plot_area(chart, panel_width, panel_height);
}

// The pixel (in panel coordinates) that the data point (x, y) is drawn at.
inline chart_point chart_pixel(const line_chart& chart, index_t panel_width, index_t panel_height, double x,
                               double y) {
    return chart_detail::to_pixel(chart, chart_plot_area(chart, panel_width, panel_height), {x, y});
}

inline rgb_image render_charts(std::span<const line_chart> panels, index_t panel_width = 480,
                               index_t panel_height = 360) {
    if (panels.empty()) throw argument_error("line chart: no panels to draw");
    chart_detail::check_panel_size(panel_width, panel_height);
    for (std::size_t k = 0; k < panels.size(); ++k)
        chart_detail::check_chart(panels[k], "line chart panel " + std::to_string(k + 1) + " of " +
                                                 std::to_string(panels.size()) + " '" + panels[k].title + "'");
    rgb_image image;
    image.width = panel_width * static_cast<index_t>(panels.size());
    image.height = panel_height;
    image.pixels.assign(static_cast<std::size_t>(image.width * image.height * 3), 255);
    for (std::size_t k = 0; k < panels.size(); ++k) {
        chart_detail::panel_canvas canvas{image, panel_width * static_cast<index_t>(k), panel_width, panel_height};
        const chart_rect area = chart_detail::plot_area(panels[k], panel_width, panel_height);
        chart_detail::draw_grid_and_axes(canvas, panels[k], area);
        chart_detail::draw_series(canvas, panels[k], area);
        chart_detail::draw_tick_labels(canvas, panels[k], area);
        chart_detail::draw_labels(canvas, panels[k], area);
        if (k == 0) chart_detail::draw_legend(canvas, panels[k], area);
    }
    return image;
}

inline void write_png(const rgb_image& image, const std::filesystem::path& png) {
    write_png(png, image.width, image.height, 3, image.pixels);
}

inline void write_charts_png(std::span<const line_chart> panels, const std::filesystem::path& png,
                             index_t panel_width = 480, index_t panel_height = 360) {
    write_png(render_charts(panels, panel_width, panel_height), png);
}

}  // namespace nnmark
