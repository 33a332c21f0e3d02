// line_chart: line charts written as SVG documents, for the figures of `nnmark reproduce`
// (the paper's pruning figure: test and trigger accuracy against the pruning rate, one
// curve per trigger kind, as two panels side by side) and `nnmark study` (the innocent
// p-values' distribution against the uniform line).
//
// No plotting library and no rasterizer: text stays text (selectable, searchable, any
// character the viewer's font has), the figure scales without blurring, and the same
// input gives the same bytes on every machine (numbers are formatted by std::to_chars,
// which, unlike printf, never looks at the locale).
//
// Contract:
// - render_charts_svg(panels, panel_width, panel_height) returns a standalone SVG 1.1
//   document panels.size() * panel_width wide and panel_height high (width, height and
//   viewBox in px) on a white background. Panel k is a <g> translated by k * panel_width
//   and clipped to its own rectangle: nothing in it reaches a neighbour.
// - A panel has its title at the top (14 px, centred; from the left edge when it is
//   estimated wider than the panel), a plot area with a black left and bottom axis, a
//   light grey grid line and a black tick mark at every multiple of x_tick (y_tick)
//   within the axis range, tick labels printed "%.6g" ("0", "20", "0.5", "1e+06"), the x
//   label below and the y label on the left, reading upwards: all <text>, 12 px
//   sans-serif unless said otherwise, with &, <, > and " escaped. When tick labels would
//   overlap, only the ticks at multiples of m * tick are labelled, with the smallest m
//   that keeps them apart. Text widths are estimated at 0.6 em per character; the
//   viewer's font decides the real ones.
// - chart_plot_area(chart, w, h) is the plot area in a w x h panel's coordinates (y
//   downwards), the axes on its left and bottom edges. A data point (x, y) is drawn at
//   (left + (x - x_min) / (x_max - x_min) * (right - left),
//    bottom - (y - y_min) / (y_max - y_min) * (bottom - top)).
// - Series k of every panel is drawn in chart_colour(k) (Okabe-Ito's colourblind-safe
//   palette without black, repeating after 7 series): a 2 px <polyline> along each run of
//   consecutive points whose x and y are finite (a NaN or infinite x or y is a gap), and
//   a <circle> of radius 3 on each such point within the axis ranges (whole, also on an
//   axis). Lines are cut at the ranges before they are written (a run that leaves them
//   and comes back is two polylines; a point at 1e300 does not become a 300-digit
//   coordinate), and the plot area's <clipPath> trims the stroke's width at the edges.
// - The legend lists the first panel's series (a swatch and the label each) in a white,
//   grey-framed box, in the corner of the first panel's plot area that holds the fewest
//   of that panel's markers (top right on ties, then top left, bottom right, bottom left).
//   No series, no legend.
// - Coordinates are written with at most two decimals, "%.2f" without trailing zeros.
// - write_charts_svg renders and replaces the file atomically (core/atomic_file.hpp).
// - Errors: argument_error for no panels and a panel size that is not between
//   chart_min_width x chart_min_height and chart_max_size x chart_max_size; argument_error
//   naming the panel (and the series) for axis ranges that are not finite with
//   x_min < x_max and y_min < y_max, a tick that is not positive and finite or gives more
//   than chart_max_ticks grid lines, a series with x and y of different sizes, and text
//   (title, labels) that is not valid UTF-8 or has a control character (a name that
//   cannot be shown is left out of the message). write_charts_svg: io_error when the
//   file cannot be written.
#pragma once

#include "nnmark/core/atomic_file.hpp"
#include "nnmark/core/error.hpp"
#include "nnmark/core/json.hpp"
#include "nnmark/core/shape.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nnmark {

// Okabe & Ito (2008), "Color Universal Design", in an order that keeps the first
// colours apart for every kind of colour blindness; black is left to the axes, and
// yellow comes last because it is faint on white.
inline constexpr std::array<std::string_view, 7> chart_palette = {
    "#0072b2",  // blue
    "#d55e00",  // vermillion
    "#009e73",  // bluish green
    "#cc79a7",  // reddish purple
    "#e69f00",  // orange
    "#56b4e9",  // sky blue
    "#f0e442",  // yellow
};

inline std::string_view chart_colour(std::size_t series) { return chart_palette[series % chart_palette.size()]; }

inline constexpr double chart_min_width = 160;  // room for the margins and a plot area
inline constexpr double chart_min_height = 120;
inline constexpr double chart_max_size = 100000;  // a figure, not a poster: keeps the document's numbers short
inline constexpr double chart_max_ticks = 200;    // grid lines per axis; more is a tick given in the wrong unit

struct chart_series {
    std::string label;
    std::vector<double> x, y;  // a NaN (or infinite) x or y is a gap
};

struct line_chart {
    std::string title, x_label, y_label;
    double x_min = 0, x_max = 1, y_min = 0, y_max = 1;  // axis ranges (data outside is clipped)
    double x_tick = 0.1, y_tick = 0.1;                  // tick spacing, labelled
    std::vector<chart_series> series;                   // colour = chart_colour(index), same for every panel
};

struct chart_box {
    double left = 0, top = 0, right = 0, bottom = 0;  // y downwards, as in SVG
};

namespace chart_detail {

inline constexpr double font_size = 12, title_size = 14;
inline constexpr double char_em = 0.6;    // a character's width, estimated: SVG leaves text layout to the viewer
inline constexpr double pad = 8;          // between the panel's parts
inline constexpr double tick_length = 4;  // outwards from the axis
inline constexpr double tick_gap = 3;     // between a tick mark and its label
inline constexpr double marker_radius = 3;
inline constexpr double centre_shift = 0.35 * font_size;  // from a line of text's middle down to its baseline
inline constexpr std::string_view grid_grey = "#e1e1e1", frame_grey = "#a0a0a0";

struct data_point {
    double x, y;
    bool operator==(const data_point&) const = default;
};

// "%.6g": "0", "20", "0.5", "1e+06"; for tick labels and messages alike.
inline std::string number(double value) {
    char text[32];
    const auto result = std::to_chars(text, text + sizeof text, value, std::chars_format::general, 6);
    return {text, result.ptr};
}

// "%.2f" without trailing zeros ("12.5", "300"), and never "-0".
inline std::string coordinate(double value) {
    char text[32];
    std::string out(text, std::to_chars(text, text + sizeof text, value, std::chars_format::fixed, 2).ptr);
    out.erase(out.find_last_not_of('0') + 1);
    if (out.back() == '.') out.pop_back();
    return out == "-0" ? "0" : out;
}

// Characters are counted as UTF-8 sequences: the bytes that do not continue one.
inline double text_width(std::string_view text, double size = font_size) {
    const auto starts = std::count_if(text.begin(), text.end(), [](char c) { return (c & 0xC0) != 0x80; });
    return static_cast<double>(starts) * char_em * size;
}

// XML text and attribute values (always in double quotes): the characters with a
// meaning there escaped.
inline std::string escaped(std::string_view text) {
    std::string out;
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            default: out += c;
        }
    }
    return out;
}

// Where `text` stops being text the document can hold: the offset of the first byte that
// is not valid UTF-8 (core/json.hpp's check), or of a character XML 1.0 does not allow or
// SVG would not show (the control characters); npos when there is none.
inline std::size_t unprintable_at(std::string_view text) {
    for (std::size_t i = 0; i < text.size();) {
        const std::size_t n = detail::json_text::utf8_sequence_length(text, i);
        const std::string_view c = text.substr(i, n);
        const bool control = n == 1 && (static_cast<unsigned char>(c[0]) < 0x20 || c[0] == 0x7F);
        if (n == 0 || control || c == "\xEF\xBF\xBE" || c == "\xEF\xBF\xBF") return i;
        i += n;
    }
    return std::string_view::npos;
}

// " 'name'" for messages, left out when the name could not be shown on one line.
inline std::string named(std::string_view name) {
    return unprintable_at(name) == std::string_view::npos ? " '" + std::string(name) + "'" : "";
}

inline void check_text(std::string_view text, const std::string& where, const std::string& what) {
    if (const std::size_t i = unprintable_at(text); i != std::string_view::npos)
        throw argument_error(where + ": " + what + " has invalid UTF-8 or a control character at byte " +
                             std::to_string(i) + ", expected printable UTF-8 text");
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

inline void check_panel_size(double width, double height) {
    const auto fits = [](double size, double min) { return size >= min && size <= chart_max_size; };
    if (!fits(width, chart_min_width) || !fits(height, chart_min_height))
        throw argument_error("line chart: panels must be at least " + number(chart_min_width) + " x " +
                             number(chart_min_height) + " and at most " + number(chart_max_size) + " x " +
                             number(chart_max_size) + " px, got " + number(width) + " x " + number(height));
}

inline void check_chart(const line_chart& chart, const std::string& where) {
    check_axes(chart, where);
    check_text(chart.title, where, "the title");
    check_text(chart.x_label, where, "the x label");
    check_text(chart.y_label, where, "the y label");
    for (std::size_t k = 0; k < chart.series.size(); ++k) {
        const chart_series& s = chart.series[k];
        const std::string series_where =
            where + ", series " + std::to_string(k + 1) + " of " + std::to_string(chart.series.size()) + named(s.label);
        check_text(s.label, series_where, "the label");
        if (s.x.size() != s.y.size())
            throw argument_error(series_where + ": " + std::to_string(s.x.size()) + " x values but " +
                                 std::to_string(s.y.size()) + " y values");
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
inline std::string tick_label(index_t k, double tick) { return number(static_cast<double>(k) * tick); }

inline double widest_tick_label(double lo, double hi, double tick) {
    double widest = 0;
    for (index_t k : tick_multiples(lo, hi, tick)) widest = std::max(widest, text_width(tick_label(k, tick)));
    return widest;
}

// The margins make room for, from the outside in: the title; the y label, the y tick
// labels and tick marks; the x label, the x tick labels and tick marks; half of the
// last x tick label, which is centred on its tick.
inline chart_box plot_area(const line_chart& chart, double width, double height) {
    const double label_room = font_size + pad, tick_room = tick_length + tick_gap + font_size;
    chart_box area;
    area.top = pad + (chart.title.empty() ? font_size / 2 : title_size + pad);
    area.left = pad + (chart.y_label.empty() ? 0 : label_room) +
                widest_tick_label(chart.y_min, chart.y_max, chart.y_tick) + tick_gap + tick_length;
    area.bottom = height - pad - tick_room - (chart.x_label.empty() ? 0 : label_room);
    area.right = width - pad - widest_tick_label(chart.x_min, chart.x_max, chart.x_tick) / 2;
    // Long tick labels in a small panel can leave no room: an empty area, not a negative
    // one (a <rect> of negative size is an error in SVG).
    area.right = std::max(area.right, area.left);
    area.bottom = std::max(area.bottom, area.top);
    return area;
}

inline data_point to_panel(const line_chart& chart, const chart_box& area, data_point p) {
    return {area.left + (p.x - chart.x_min) / (chart.x_max - chart.x_min) * (area.right - area.left),
            area.bottom - (p.y - chart.y_min) / (chart.y_max - chart.y_min) * (area.bottom - area.top)};
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

// The series' lines in data coordinates: one polyline per stretch of consecutive finite
// points within the ranges. A segment continues the last polyline when that one ends at
// the segment's first point, uncut, and the segment starts there, uncut.
inline std::vector<std::vector<data_point>> series_lines(const line_chart& chart, const chart_series& s) {
    std::vector<std::vector<data_point>> lines;
    bool open = false;  // the last polyline ends at point i - 1
    for (std::size_t i = 1; i < s.x.size(); ++i) {
        const data_point from{s.x[i - 1], s.y[i - 1]}, to{s.x[i], s.y[i]};
        data_point a = from, b = to;
        const bool finite = std::isfinite(a.x) && std::isfinite(a.y) && std::isfinite(b.x) && std::isfinite(b.y);
        if (!finite || !clip_segment(chart, a, b)) {
            open = false;
            continue;
        }
        if (!open || !(a == from)) lines.push_back({a});
        lines.back().push_back(b);
        open = b == to;
    }
    return lines;
}

inline std::string point_text(data_point p) { return coordinate(p.x) + "," + coordinate(p.y); }

inline void line(std::string& svg, data_point a, data_point b, std::string_view stroke, double stroke_width = 1) {
    svg += "<line x1=\"" + coordinate(a.x) + "\" y1=\"" + coordinate(a.y) + "\" x2=\"" + coordinate(b.x) + "\" y2=\"" +
           coordinate(b.y) + "\" stroke=\"" + std::string(stroke) + "\" stroke-width=\"" + coordinate(stroke_width) +
           "\"/>\n";
}

inline void marker(std::string& svg, data_point p, std::string_view fill) {
    svg += "<circle cx=\"" + coordinate(p.x) + "\" cy=\"" + coordinate(p.y) + "\" r=\"" + coordinate(marker_radius) +
           "\" fill=\"" + std::string(fill) + "\"/>\n";
}

inline void rect(std::string& svg, const chart_box& box, const std::string& paint) {
    svg += "<rect x=\"" + coordinate(box.left) + "\" y=\"" + coordinate(box.top) + "\" width=\"" +
           coordinate(box.right - box.left) + "\" height=\"" + coordinate(box.bottom - box.top) + "\"" + paint + "/>\n";
}

// `text` with its baseline at (x, y); `extra` holds further attributes (anchor, size, rotation).
inline void text(std::string& svg, std::string_view content, data_point at, const std::string& extra = "") {
    if (content.empty()) return;
    svg += "<text x=\"" + coordinate(at.x) + "\" y=\"" + coordinate(at.y) + "\"" + extra + ">" + escaped(content) +
           "</text>\n";
}

inline void clip_path(std::string& svg, const std::string& id, const chart_box& box) {
    svg += "<clipPath id=\"" + id + "\">\n";
    rect(svg, box, "");
    svg += "</clipPath>\n";
}

// The smallest m such that labels at multiples of m * tick, `spacing` px apart per tick,
// leave `room` px for each label; past every tick (but 0) when the area has no room.
inline index_t label_stride(double spacing, double room) {
    const double m = std::ceil(room / spacing - 1e-9);
    return m < 1 ? 1 : static_cast<index_t>(std::min(m, 1e15));
}

inline void draw_x_axis(std::string& svg, const line_chart& chart, const chart_box& area) {
    const double spacing = chart.x_tick / (chart.x_max - chart.x_min) * (area.right - area.left);
    const index_t stride =
        label_stride(spacing, widest_tick_label(chart.x_min, chart.x_max, chart.x_tick) + char_em * font_size);
    for (index_t k : tick_multiples(chart.x_min, chart.x_max, chart.x_tick)) {
        const double x = to_panel(chart, area, {static_cast<double>(k) * chart.x_tick, chart.y_min}).x;
        line(svg, {x, area.top}, {x, area.bottom}, grid_grey);
        line(svg, {x, area.bottom}, {x, area.bottom + tick_length}, "black");
        if (k % stride == 0)
            text(svg, tick_label(k, chart.x_tick), {x, area.bottom + tick_length + tick_gap + font_size},
                 " text-anchor=\"middle\"");
    }
}

inline void draw_y_axis(std::string& svg, const line_chart& chart, const chart_box& area) {
    const double spacing = chart.y_tick / (chart.y_max - chart.y_min) * (area.bottom - area.top);
    const index_t stride = label_stride(spacing, font_size + tick_gap);
    for (index_t k : tick_multiples(chart.y_min, chart.y_max, chart.y_tick)) {
        const double y = to_panel(chart, area, {chart.x_min, static_cast<double>(k) * chart.y_tick}).y;
        line(svg, {area.left, y}, {area.right, y}, grid_grey);
        line(svg, {area.left - tick_length, y}, {area.left, y}, "black");
        if (k % stride == 0)
            text(svg, tick_label(k, chart.y_tick), {area.left - tick_length - tick_gap, y + centre_shift},
                 " text-anchor=\"end\"");
    }
}

inline void draw_labels(std::string& svg, const line_chart& chart, const chart_box& area, double width, double height) {
    // Centred; a title too wide for the panel starts at the left edge, to be read as far as it goes.
    const bool title_fits = text_width(chart.title, title_size) <= width - 2 * pad;
    text(svg, chart.title, {title_fits ? width / 2 : pad, pad + title_size},
         std::string(title_fits ? " text-anchor=\"middle\"" : "") + " font-size=\"" + coordinate(title_size) + "\"");
    text(svg, chart.x_label, {(area.left + area.right) / 2, height - pad}, " text-anchor=\"middle\"");
    const data_point y_label{pad + font_size, (area.top + area.bottom) / 2};
    text(svg, chart.y_label, y_label,
         " text-anchor=\"middle\" transform=\"rotate(-90 " + coordinate(y_label.x) + " " + coordinate(y_label.y) +
             ")\"");
}

inline void draw_series(std::string& svg, const line_chart& chart, const chart_box& area, const std::string& clip) {
    svg += "<g clip-path=\"url(#" + clip + ")\" fill=\"none\" stroke-width=\"2\" stroke-linejoin=\"round\">\n";
    for (std::size_t k = 0; k < chart.series.size(); ++k)
        for (const std::vector<data_point>& points : series_lines(chart, chart.series[k])) {
            svg += "<polyline stroke=\"" + std::string(chart_colour(k)) + "\" points=\"";
            for (std::size_t i = 0; i < points.size(); ++i) {
                if (i) svg += ' ';
                svg += point_text(to_panel(chart, area, points[i]));
            }
            svg += "\"/>\n";
        }
    svg += "</g>\n";
    for (std::size_t k = 0; k < chart.series.size(); ++k) {
        const chart_series& s = chart.series[k];
        for (std::size_t i = 0; i < s.x.size(); ++i)
            if (in_ranges(chart, {s.x[i], s.y[i]}))
                marker(svg, to_panel(chart, area, {s.x[i], s.y[i]}), chart_colour(k));
    }
}

inline constexpr double legend_swatch = 24;  // the sample line, with a marker on its middle
inline constexpr double legend_spacing = 6;  // around and between the rows, between swatch and label
inline constexpr double legend_pitch = font_size + legend_spacing;  // row to row

// The legend's box with its top-left corner at (left, top).
inline chart_box legend_box(const line_chart& chart, double left, double top) {
    double widest = 0;
    for (const chart_series& s : chart.series) widest = std::max(widest, text_width(s.label));
    const auto rows = static_cast<double>(chart.series.size());
    return {left, top, left + 3 * legend_spacing + legend_swatch + widest, top + legend_spacing + rows * legend_pitch};
}

inline index_t points_in(const line_chart& chart, const chart_box& area, const chart_box& box) {
    index_t count = 0;
    for (const chart_series& s : chart.series)
        for (std::size_t i = 0; i < s.x.size(); ++i) {
            if (!in_ranges(chart, {s.x[i], s.y[i]})) continue;
            const data_point p = to_panel(chart, area, {s.x[i], s.y[i]});
            count += p.x >= box.left && p.x <= box.right && p.y >= box.top && p.y <= box.bottom;
        }
    return count;
}

// The candidate corners in order of preference: top right, top left, bottom right, bottom left.
inline chart_box legend_place(const line_chart& chart, const chart_box& area) {
    const chart_box size = legend_box(chart, 0, 0);
    const double left = area.left + pad, right = area.right - pad - size.right;
    const double top = area.top + pad, bottom = area.bottom - pad - size.bottom;
    const chart_box corners[] = {legend_box(chart, right, top), legend_box(chart, left, top),
                                 legend_box(chart, right, bottom), legend_box(chart, left, bottom)};
    return *std::min_element(std::begin(corners), std::end(corners), [&](const chart_box& a, const chart_box& b) {
        return points_in(chart, area, a) < points_in(chart, area, b);
    });
}

inline void draw_legend(std::string& svg, const line_chart& chart, const chart_box& area) {
    if (chart.series.empty()) return;
    const chart_box box = legend_place(chart, area);
    rect(svg, box, " fill=\"white\" stroke=\"" + std::string(frame_grey) + "\"");
    for (std::size_t k = 0; k < chart.series.size(); ++k) {
        const double middle = box.top + legend_spacing + legend_pitch * static_cast<double>(k) + font_size / 2;
        const double swatch = box.left + legend_spacing;
        line(svg, {swatch, middle}, {swatch + legend_swatch, middle}, chart_colour(k), 2);
        marker(svg, {swatch + legend_swatch / 2, middle}, chart_colour(k));
        text(svg, chart.series[k].label, {swatch + legend_swatch + legend_spacing, middle + centre_shift});
    }
}

// Panel k (0-based): its own clip path for the lines, its content clipped to the panel.
inline void draw_panel(std::string& svg, const line_chart& chart, std::size_t k, double width, double height) {
    const std::string id = "panel-" + std::to_string(k + 1), plot_id = "plot-" + std::to_string(k + 1);
    const chart_box area = plot_area(chart, width, height);
    svg += "<g transform=\"translate(" + coordinate(width * static_cast<double>(k)) + ",0)\">\n";
    clip_path(svg, id, {0, 0, width, height});
    clip_path(svg, plot_id, area);
    svg += "<g clip-path=\"url(#" + id + ")\">\n";
    draw_x_axis(svg, chart, area);
    draw_y_axis(svg, chart, area);
    line(svg, {area.left, area.top}, {area.left, area.bottom}, "black");
    line(svg, {area.left, area.bottom}, {area.right, area.bottom}, "black");
    draw_series(svg, chart, area, plot_id);
    draw_labels(svg, chart, area, width, height);
    if (k == 0) draw_legend(svg, chart, area);
    svg += "</g>\n</g>\n";
}

}  // namespace chart_detail

// The plot area of `chart` in a panel_width x panel_height panel (see the contract).
inline chart_box chart_plot_area(const line_chart& chart, double panel_width, double panel_height) {
    chart_detail::check_panel_size(panel_width, panel_height);
    chart_detail::check_axes(chart, "line chart" + chart_detail::named(chart.title));
    return chart_detail::plot_area(chart, panel_width, panel_height);
}

inline std::string render_charts_svg(std::span<const line_chart> panels, double panel_width = 480,
                                     double panel_height = 320) {
    using chart_detail::coordinate;
    if (panels.empty()) throw argument_error("line chart: no panels to draw");
    chart_detail::check_panel_size(panel_width, panel_height);
    for (std::size_t k = 0; k < panels.size(); ++k)
        chart_detail::check_chart(panels[k], "line chart panel " + std::to_string(k + 1) + " of " +
                                                 std::to_string(panels.size()) + chart_detail::named(panels[k].title));
    const std::string width = coordinate(panel_width * static_cast<double>(panels.size())),
                      height = coordinate(panel_height);
    std::string svg =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" +
        width + "\" height=\"" + height + "\" viewBox=\"0 0 " + width + " " + height +
        "\" font-family=\"sans-serif\" font-size=\"" + coordinate(chart_detail::font_size) + "\">\n";
    chart_detail::rect(svg, {0, 0, panel_width * static_cast<double>(panels.size()), panel_height}, " fill=\"white\"");
    for (std::size_t k = 0; k < panels.size(); ++k)
        chart_detail::draw_panel(svg, panels[k], k, panel_width, panel_height);
    return svg + "</svg>\n";
}

inline void write_charts_svg(std::span<const line_chart> panels, const std::filesystem::path& svg,
                             double panel_width = 480, double panel_height = 320) {
    write_file_atomically(svg, render_charts_svg(panels, panel_width, panel_height));
}

}  // namespace nnmark
