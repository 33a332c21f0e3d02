#include "nnmark/report/line_chart.hpp"

#include "../support/files.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <utility>
#include <vector>

using namespace nnmark;

namespace {

constexpr double chart_test_nan = std::numeric_limits<double>::quiet_NaN();
constexpr double chart_test_inf = std::numeric_limits<double>::infinity();

// The paper's pruning figure: accuracy (0-100 %) against pruning rate (10-90 %).
line_chart chart_test_pruning(std::string title) {
    line_chart chart;
    chart.title = std::move(title);
    chart.x_label = "Pruning rate (%)";
    chart.y_label = "Accuracy (%)";
    chart.x_min = 10, chart.x_max = 90, chart.x_tick = 10;
    chart.y_min = 0, chart.y_max = 100, chart.y_tick = 20;
    return chart;
}

std::string chart_test_svg(const std::vector<line_chart>& panels, double width = 480, double height = 320) {
    return render_charts_svg(panels, width, height);
}

// What keeps `svg` from being well-formed XML as far as this writer goes: "" when every
// element is closed in order, there is one root, and every '&' starts an entity.
std::string chart_test_xml_problem(const std::string& svg) {
    for (std::size_t i = svg.find('&'); i != std::string::npos; i = svg.find('&', i + 1)) {
        const std::size_t end = svg.find(';', i);
        const std::string entity = svg.substr(i, end == std::string::npos ? 1 : end - i + 1);
        if (entity != "&amp;" && entity != "&lt;" && entity != "&gt;" && entity != "&quot;")
            return "a bare '&' at byte " + std::to_string(i);
    }
    std::vector<std::string> open;
    std::size_t roots = 0;
    for (std::size_t i = 0; i < svg.size(); ++i) {
        if (svg[i] != '<') continue;
        const std::size_t end = svg.find('>', i);
        if (end == std::string::npos) return "an unclosed tag at byte " + std::to_string(i);
        const std::string tag = svg.substr(i + 1, end - i - 1);
        const std::string name = tag.substr(0, tag.find_first_of(" />"));
        if (tag.front() == '?') {
            if (i != 0) return "a processing instruction after the start";
        } else if (tag.front() == '/') {
            if (open.empty() || open.back() != tag.substr(1)) return "</" + tag.substr(1) + "> closes nothing open";
            open.pop_back();
        } else {
            if (open.empty()) ++roots;
            if (tag.back() != '/') open.push_back(name);
        }
        if (tag.find('<') != std::string::npos) return "a '<' inside the tag at byte " + std::to_string(i);
        i = end;
    }
    if (!open.empty()) return "<" + open.back() + "> is never closed";
    return roots == 1 ? "" : std::to_string(roots) + " root elements";
}

// The start tags in `svg` that begin with `prefix` ("<circle "), in order.
std::vector<std::string> chart_test_tags(const std::string& svg, const std::string& prefix) {
    std::vector<std::string> tags;
    for (std::size_t i = svg.find(prefix); i != std::string::npos; i = svg.find(prefix, i + 1))
        tags.push_back(svg.substr(i, svg.find('>', i) - i + 1));
    return tags;
}

std::string chart_test_attribute(const std::string& tag, const std::string& name) {
    const std::size_t start = tag.find(" " + name + "=\"");
    const std::string missing = tag + " has no " + name;
    REQUIRE_MESSAGE(start != std::string::npos, missing);
    const std::size_t value = start + name.size() + 3;
    return tag.substr(value, tag.find('"', value) - value);
}

double chart_test_number(const std::string& tag, const std::string& name) {
    return std::strtod(chart_test_attribute(tag, name).c_str(), nullptr);
}

using chart_test_points = std::vector<std::pair<double, double>>;

chart_test_points chart_test_polyline(const std::string& tag) {
    chart_test_points points;
    const std::string text = chart_test_attribute(tag, "points");
    const char* p = text.c_str();
    while (*p) {
        char* end = nullptr;
        const double x = std::strtod(p, &end);
        const double y = std::strtod(end + 1, &end);  // after the comma
        points.emplace_back(x, y);
        p = *end ? end + 1 : end;
    }
    return points;
}

// The documented mapping from data to panel coordinates, written out again.
std::pair<double, double> chart_test_expected(const line_chart& chart, double w, double h, double x, double y) {
    const chart_box a = chart_plot_area(chart, w, h);
    return {a.left + (x - chart.x_min) / (chart.x_max - chart.x_min) * (a.right - a.left),
            a.bottom - (y - chart.y_min) / (chart.y_max - chart.y_min) * (a.bottom - a.top)};
}

// Coordinates are written with two decimals.
bool chart_test_near(std::pair<double, double> a, std::pair<double, double> b) {
    return std::abs(a.first - b.first) <= 0.006 && std::abs(a.second - b.second) <= 0.006;
}

std::pair<double, double> chart_test_centre(const std::string& circle) {
    return {chart_test_number(circle, "cx"), chart_test_number(circle, "cy")};
}

// The part of `svg` from panel k's <g> (0-based) to the next panel's, or to the end.
std::string chart_test_panel(const std::string& svg, std::size_t k) {
    std::size_t start = svg.find("<g transform=\"translate(");
    for (std::size_t i = 0; i < k; ++i) start = svg.find("<g transform=\"translate(", start + 1);
    REQUIRE(start != std::string::npos);
    return svg.substr(start, svg.find("<g transform=\"translate(", start + 1) - start);
}

// The start tags beginning with `prefix` that are drawn in `colour`.
std::vector<std::string> chart_test_in_colour(const std::string& svg, const std::string& prefix,
                                              std::string_view colour) {
    const std::string value = std::string(1, '"').append(colour).append(1, '"');
    std::vector<std::string> tags;
    for (const std::string& tag : chart_test_tags(svg, prefix))
        if (testing::contains(tag, value)) tags.push_back(tag);
    return tags;
}

// The x of each x tick label: the texts on the baseline the layout puts them on.
std::vector<double> chart_test_x_tick_labels(const std::string& svg, const line_chart& chart, double w, double h) {
    const double baseline = chart_plot_area(chart, w, h).bottom + 4 + 3 + 12;  // tick, gap, font size
    std::vector<double> xs;
    for (const std::string& tag : chart_test_tags(svg, "<text "))
        if (testing::contains(tag, " y=\"" + chart_detail::coordinate(baseline) + "\""))
            xs.push_back(chart_test_number(tag, "x"));
    return xs;
}

}  // namespace

TEST_CASE("line_chart: a standalone, well-formed SVG document, one translated <g> per panel") {
    const std::vector<line_chart> panels = {chart_test_pruning("Test accuracy"),
                                            chart_test_pruning("Trigger accuracy")};
    const std::string svg = chart_test_svg(panels, 300, 200);
    CHECK(chart_test_xml_problem(svg) == "");
    CHECK(
        svg.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
                        "version=\"1.1\" width=\"600\" height=\"200\" viewBox=\"0 0 600 200\""));
    CHECK(svg.ends_with("</svg>\n"));
    const std::vector<std::string> groups = chart_test_tags(svg, "<g transform=");
    REQUIRE(groups.size() == 2);
    CHECK(groups[0] == "<g transform=\"translate(0,0)\">");
    CHECK(groups[1] == "<g transform=\"translate(300,0)\">");
    // The checker itself catches what it should.
    CHECK(chart_test_xml_problem("<svg><g></svg>") != "");
    CHECK(chart_test_xml_problem("<svg>a & b</svg>") != "");
    CHECK(chart_test_xml_problem("<svg/><svg/>") != "");
    // Each panel is clipped to its own rectangle, in its own coordinates.
    const std::string second = chart_test_panel(svg, 1);
    CHECK(second.find("<clipPath id=\"panel-2\">\n<rect x=\"0\" y=\"0\" width=\"300\" height=\"200\"/>") !=
          std::string::npos);
    CHECK(second.find("<g clip-path=\"url(#panel-2)\">") != std::string::npos);
}

TEST_CASE("line_chart: title, labels and tick labels are text, escaped, any character") {
    line_chart chart = chart_test_pruning("Tom & Jerry <\"1\"> \xCE\xB1 \xE2\x89\xA4 0.05");
    chart.series = {{"a<b", {20}, {50}}};
    const std::string svg = chart_test_svg({chart});
    CHECK(chart_test_xml_problem(svg) == "");
    CHECK(testing::contains(svg, ">Tom &amp; Jerry &lt;&quot;1&quot;&gt; \xCE\xB1 \xE2\x89\xA4 0.05</text>"));
    CHECK(testing::contains(svg, ">a&lt;b</text>"));
    CHECK(testing::contains(svg, " text-anchor=\"middle\">Pruning rate (%)</text>"));
    const chart_box area = chart_plot_area(chart, 480, 320);
    const std::string y_label = "transform=\"rotate(-90 20 " + chart_detail::coordinate((area.top + area.bottom) / 2) +
                                ")\">Accuracy (%)</text>";
    CHECK(testing::contains(svg, y_label));
    for (const std::string tick : {"10", "50", "90", "0", "20", "100"})
        CHECK_MESSAGE(testing::contains(svg, ">" + tick + "</text>"), tick);
    CHECK_FALSE(testing::contains(svg, ">110</text>"));  // past both ranges
}

TEST_CASE("line_chart: numbers: tick labels \"%.6g\", coordinates \"%.2f\" without trailing zeros") {
    CHECK(chart_detail::tick_label(0, 20) == "0");
    CHECK(chart_detail::tick_label(3, 20) == "60");
    CHECK(chart_detail::tick_label(3, 0.1) == "0.3");
    CHECK(chart_detail::tick_label(-5, 0.1) == "-0.5");
    CHECK(chart_detail::tick_label(1, 1e6) == "1e+06");
    CHECK(chart_detail::tick_multiples(0.05, 0.3, 0.1) == std::vector<index_t>{1, 2, 3});
    CHECK(chart_detail::coordinate(300) == "300");
    CHECK(chart_detail::coordinate(12.5) == "12.5");
    CHECK(chart_detail::coordinate(1.0 / 3) == "0.33");
    CHECK(chart_detail::coordinate(-0.001) == "0");
    CHECK(chart_detail::coordinate(-2.25) == "-2.25");
}

TEST_CASE("line_chart: a point's marker is where the axis mapping puts it, in every panel, in its colour") {
    std::vector<line_chart> panels = {chart_test_pruning("Test"), chart_test_pruning("Trigger")};
    panels[0].series = {{"content", {20, 80}, {30, 60}}, {"noise", {20, 80}, {70, 40}}};
    panels[1].series = {{"content", {30}, {50}}, {"noise", {60}, {20}}};
    panels[1].y_label = "";  // a different plot area from the first panel's
    const std::string svg = chart_test_svg(panels, 400, 300);
    CHECK(chart_colour(0) == "#0072b2");
    CHECK(chart_colour(1) == "#d55e00");
    CHECK(chart_colour(7) == chart_colour(0));
    const auto check_marker = [&](std::size_t panel, std::size_t k, std::size_t i, double x, double y) {
        CAPTURE(panel);
        CAPTURE(k);
        const std::vector<std::string> circles =
            chart_test_in_colour(chart_test_panel(svg, panel), "<circle ", chart_colour(k));
        REQUIRE(circles.size() > i);
        CHECK(chart_test_near(chart_test_centre(circles[i]), chart_test_expected(panels[panel], 400, 300, x, y)));
    };
    check_marker(0, 0, 0, 20, 30);
    check_marker(0, 0, 1, 80, 60);
    check_marker(0, 1, 0, 20, 70);
    check_marker(0, 1, 1, 80, 40);
    check_marker(1, 0, 0, 30, 50);
    check_marker(1, 1, 0, 60, 20);
    // Where the axes are: the plot area's left and bottom edges.
    const chart_box area = chart_plot_area(panels[0], 400, 300);
    const std::string left = chart_detail::coordinate(area.left), bottom = chart_detail::coordinate(area.bottom);
    CHECK(testing::contains(svg, "<line x1=\"" + left + "\" y1=\"" + chart_detail::coordinate(area.top) + "\" x2=\"" +
                                     left + "\" y2=\"" + bottom + "\" stroke=\"black\""));
    // The corners of the ranges are the area's.
    CHECK(chart_test_near(chart_test_expected(panels[0], 400, 300, 10, 0), {area.left, area.bottom}));
    CHECK(chart_test_near(chart_test_expected(panels[0], 400, 300, 90, 100), {area.right, area.top}));
    // Consecutive points make one polyline through both.
    const std::vector<std::string> lines =
        chart_test_in_colour(chart_test_panel(svg, 0), "<polyline ", chart_colour(1));
    REQUIRE(lines.size() == 1);
    const chart_test_points points = chart_test_polyline(lines[0]);
    REQUIRE(points.size() == 2);
    CHECK(chart_test_near(points[1], chart_test_expected(panels[0], 400, 300, 80, 40)));
    // Single points draw no line.
    CHECK(chart_test_tags(chart_test_panel(svg, 1), "<polyline ").empty());
}

TEST_CASE("line_chart: a NaN or infinite coordinate is a gap: two polylines, no marker") {
    std::vector<line_chart> panels = {chart_test_pruning("Gap")};
    panels[0].series = {{"nan", {20, 40, 50, 60, 80}, {40, 40, chart_test_nan, 40, 40}},
                        {"inf", {20, chart_test_inf, 80, 85}, {60, 60, 60, 60}}};
    const std::string svg = chart_test_svg(panels);
    const std::vector<std::string> nan_lines = chart_test_in_colour(svg, "<polyline ", chart_colour(0));
    REQUIRE(nan_lines.size() == 2);
    CHECK(chart_test_polyline(nan_lines[0]).size() == 2);
    CHECK(chart_test_near(chart_test_polyline(nan_lines[0])[1], chart_test_expected(panels[0], 480, 320, 40, 40)));
    CHECK(chart_test_near(chart_test_polyline(nan_lines[1])[0], chart_test_expected(panels[0], 480, 320, 60, 40)));
    CHECK(chart_test_in_colour(svg, "<circle ", chart_colour(0)).size() == 4 + 1);  // + the legend's
    const std::vector<std::string> inf_lines = chart_test_in_colour(svg, "<polyline ", chart_colour(1));
    REQUIRE(inf_lines.size() == 1);  // 20 stands alone, 80-85 is a line
    CHECK(chart_test_near(chart_test_polyline(inf_lines[0])[0], chart_test_expected(panels[0], 480, 320, 80, 60)));
}

TEST_CASE("line_chart: data outside the axis ranges is cut at them, clipped to the plot area, without markers") {
    std::vector<line_chart> panels = {chart_test_pruning("Clip")};
    panels[0].series = {{"out", {50, 120, 150}, {50, 50, 200}},
                        {"far", {-1e300, 1e300}, {30, 30}},
                        {"steep", {70, 80}, {60, 140}},
                        {"back", {20, 50, 80}, {50, 150, 50}}};
    const std::string svg = chart_test_svg(panels);
    const chart_box area = chart_plot_area(panels[0], 480, 320);
    const auto expected = [&](double x, double y) { return chart_test_expected(panels[0], 480, 320, x, y); };
    CHECK(testing::contains(svg, "<clipPath id=\"plot-1\">\n<rect x=\"" + chart_detail::coordinate(area.left) +
                                     "\" y=\"" + chart_detail::coordinate(area.top) + "\""));
    const std::vector<std::string> groups = chart_test_tags(svg, "<g clip-path=\"url(#plot-1)\"");
    REQUIRE(groups.size() == 1);
    // Every polyline is inside the group that references the clip path, and inside the area.
    const std::size_t group = svg.find(groups[0]);
    const std::string clipped = svg.substr(group, svg.find("</g>", group) - group);
    CHECK(chart_test_tags(clipped, "<polyline ").size() == chart_test_tags(svg, "<polyline ").size());
    for (const std::string& line : chart_test_tags(svg, "<polyline "))
        for (const auto& [x, y] : chart_test_polyline(line)) {
            CHECK(x >= area.left - 0.006);
            CHECK(x <= area.right + 0.006);
            CHECK(y >= area.top - 0.006);
            CHECK(y <= area.bottom + 0.006);
        }
    const auto only_line = [&](std::size_t k) {
        const std::vector<std::string> lines = chart_test_in_colour(svg, "<polyline ", chart_colour(k));
        REQUIRE(lines.size() == 1);
        return chart_test_polyline(lines[0]);
    };
    const chart_test_points out = only_line(0);
    REQUIRE(out.size() == 2);
    CHECK(chart_test_near(out[0], expected(50, 50)));
    CHECK(chart_test_near(out[1], expected(90, 50)));
    const chart_test_points far = only_line(1);
    CHECK(chart_test_near(far.front(), expected(10, 30)));
    CHECK(chart_test_near(far.back(), expected(90, 30)));
    CHECK(chart_test_near(only_line(2).back(), expected(75, 100)));  // "steep" leaves through the top at x = 75
    CHECK(chart_test_in_colour(svg, "<polyline ", chart_colour(3)).size() == 2);  // out through the top and back
    // Markers only for points within the ranges: one of "out", none of "far", one of "steep", two of "back".
    const std::size_t markers[] = {1, 0, 1, 2};
    for (std::size_t k = 0; k < 4; ++k)
        CHECK(chart_test_in_colour(svg, "<circle ", chart_colour(k)).size() == markers[k] + 1);  // + the legend's
}

TEST_CASE("line_chart: the legend lists the first panel's series with their colours, in the emptiest corner") {
    std::vector<line_chart> panels = {chart_test_pruning("Legend"), chart_test_pruning("Second")};
    panels[0].series = {{"content", {}, {}}, {"unrelated", {}, {}}, {"noise", {}, {}}};
    panels[1].series = {{"only in the second", {}, {}}};
    const std::string svg = chart_test_svg(panels);
    const chart_box area = chart_plot_area(panels[0], 480, 320);
    const double mid_x = (area.left + area.right) / 2, mid_y = (area.top + area.bottom) / 2;
    for (std::size_t k = 0; k < 3; ++k) {
        CAPTURE(k);
        CHECK(testing::contains(svg, ">" + panels[0].series[k].label + "</text>"));
        const std::vector<std::string> swatches = chart_test_in_colour(svg, "<line ", chart_colour(k));
        REQUIRE(swatches.size() == 1);
        CHECK(chart_test_number(swatches[0], "x1") > mid_x);  // top right, when nothing is in the way
        CHECK(chart_test_number(swatches[0], "x2") < area.right);
        CHECK(chart_test_number(swatches[0], "y1") < mid_y);
        CHECK(chart_test_number(swatches[0], "y1") > area.top);
        CHECK(chart_test_in_colour(svg, "<circle ", chart_colour(k)).size() == 1);
    }
    CHECK_FALSE(testing::contains(svg, "only in the second"));
    CHECK(chart_test_in_colour(chart_test_panel(svg, 1), "<line ", chart_colour(0)).empty());

    // Data in the top right corner moves the legend to the top left; data along the top, to
    // the bottom right.
    const auto legend_at = [&](std::vector<double> x, std::vector<double> y) {
        panels[0].series[1] = {"unrelated", std::move(x), std::move(y)};
        const std::vector<std::string> swatch = chart_test_in_colour(chart_test_svg(panels), "<line ", chart_colour(0));
        REQUIRE(swatch.size() == 1);
        return std::pair{chart_test_number(swatch[0], "x1"), chart_test_number(swatch[0], "y1")};
    };
    const auto [top_left_x, top_left_y] = legend_at({85, 88}, {95, 92});
    CHECK(top_left_x < mid_x);
    CHECK(top_left_x > area.left);
    CHECK(top_left_y < mid_y);
    const auto [bottom_right_x, bottom_right_y] =
        legend_at({10, 20, 30, 40, 50, 60, 70, 80, 90}, {95, 95, 95, 95, 95, 95, 95, 95, 95});
    CHECK(bottom_right_x > mid_x);
    CHECK(bottom_right_y > mid_y);
    CHECK(bottom_right_y < area.bottom);

    // No series, no legend.
    const std::string bare = chart_test_svg({chart_test_pruning("Bare")});
    CHECK(chart_test_tags(bare, "<rect ").size() == 1 + 2);  // the background and the two clip paths'
    CHECK(chart_test_tags(svg, "<rect ").size() == 1 + 4 + 1);
}

TEST_CASE("line_chart: dense ticks are labelled at evenly spaced multiples that keep the labels apart") {
    line_chart dense = chart_test_pruning("Dense");
    dense.x_min = 0, dense.x_max = 1, dense.x_tick = 0.01;
    const std::string svg = chart_test_svg({dense}, 240, 180);
    std::size_t grid_lines = 0;
    for (const std::string& tag : chart_test_tags(svg, "<line ")) grid_lines += testing::contains(tag, "#e1e1e1");
    CHECK(grid_lines == 101 + 6);  // x: 0, 0.01, ..., 1; y: 0, 20, ..., 100
    const std::vector<double> x_ticks = chart_test_x_tick_labels(svg, dense, 240, 180);
    REQUIRE(x_ticks.size() > 2);
    CHECK(x_ticks.size() < 101);
    const double spacing = x_ticks[1] - x_ticks[0];
    CHECK(spacing >= chart_detail::text_width("0.99"));  // as wide as any label, by the estimate
    for (std::size_t i = 1; i < x_ticks.size(); ++i)
        CHECK(x_ticks[i] - x_ticks[i - 1] == doctest::Approx(spacing).epsilon(0.001));
    // Sparse ticks are all labelled: 10, 20, ..., 90.
    const line_chart sparse = chart_test_pruning("Sparse");
    CHECK(chart_test_x_tick_labels(chart_test_svg({sparse}), sparse, 480, 320).size() == 9);
}

TEST_CASE("line_chart: the same input gives the same bytes, and write_charts_svg writes them") {
    const testing::temp_dir dir;
    std::vector<line_chart> panels = {chart_test_pruning("Test accuracy"), chart_test_pruning("Trigger accuracy")};
    panels[0].series = {{"content", {10, 50, 90}, {99, 98, 40}}, {"noise", {10, 50, 90}, {99, chart_test_nan, 20}}};
    panels[1].series = {{"content", {10, 50, 90}, {100, 100, 70}}, {"noise", {10, 50, 90}, {100, 60, 10}}};
    const std::string svg = render_charts_svg(panels, 320, 240);
    CHECK(render_charts_svg(panels, 320, 240) == svg);
    write_charts_svg(panels, dir / "pruning.svg", 320, 240);
    const std::vector<unsigned char> bytes = read_file(dir / "pruning.svg");
    CHECK(std::string(bytes.begin(), bytes.end()) == svg);
    write_charts_svg(panels, dir / "pruning.svg");  // replaced, at the default size
    const std::vector<unsigned char> again = read_file(dir / "pruning.svg");
    CHECK(std::string(again.begin(), again.end()) == render_charts_svg(panels));
    CHECK_THROWS_AS(write_charts_svg(panels, dir / "missing" / "chart.svg"), io_error);
}

TEST_CASE("line_chart: a title too wide for its panel starts at the left edge") {
    const line_chart wide = chart_test_pruning("A title far too long to fit into its panel at this size, by far");
    const std::string svg = chart_test_svg({wide}, 200, 150);
    CHECK(testing::contains(svg, "<text x=\"8\" y=\"22\" font-size=\"14\">A title far"));
    CHECK(testing::contains(chart_test_svg({chart_test_pruning("Short")}, 200, 150),
                            "<text x=\"100\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">Short</text>"));
}

TEST_CASE("line_chart: tick labels too wide for a small panel leave an empty plot area, not a negative one") {
    line_chart squeezed = chart_test_pruning("Squeezed");
    squeezed.x_min = squeezed.y_min = 1e-7, squeezed.x_tick = squeezed.y_tick = 1.23456e-7;
    squeezed.x_max = squeezed.y_max = 2.5e-7;
    const chart_box area = chart_plot_area(squeezed, 160, 120);
    CHECK(area.right == area.left);
    CHECK(area.bottom >= area.top);
    squeezed.series = {{"a", {1e-7, 2e-7}, {1e-7, 2e-7}}};
    const std::string svg = chart_test_svg({squeezed}, 160, 120);
    CHECK(chart_test_xml_problem(svg) == "");
    for (const std::string& rect : chart_test_tags(svg, "<rect ")) CHECK(chart_test_number(rect, "width") >= 0);
}

TEST_CASE("line_chart: invalid panels are argument errors naming the panel and the series") {
    const auto message = [](std::vector<line_chart> panels, double width = 480, double height = 320) {
        return testing::error_message<argument_error>([&] { render_charts_svg(panels, width, height); });
    };
    CHECK(testing::contains(message({}), "no panels"));
    CHECK(testing::contains(message({chart_test_pruning("A")}, 100, 320), "at least 160 x 120"));
    CHECK(testing::contains(message({chart_test_pruning("A")}, 480, 80), "got 480 x 80"));
    CHECK(
        testing::contains(message({chart_test_pruning("A")}, 1e6, 320), "at most 100000 x 100000 px, got 1e+06 x 320"));
    CHECK(testing::contains(message({chart_test_pruning("A")}, chart_test_nan, 320), "got nan x 320"));

    line_chart flat_x = chart_test_pruning("Flat");
    flat_x.x_max = flat_x.x_min;
    CHECK(testing::contains(message({chart_test_pruning("A"), flat_x}),
                            "panel 2 of 2 'Flat': x_min must be below x_max"));
    line_chart flat_y = chart_test_pruning("Upside");
    flat_y.y_min = 100, flat_y.y_max = 0;
    CHECK(testing::contains(message({flat_y}), "panel 1 of 1 'Upside': y_min"));
    line_chart nan_range = chart_test_pruning("NaN");
    nan_range.x_min = chart_test_nan;
    CHECK(testing::contains(message({nan_range}), "'NaN': x_min"));
    line_chart zero_tick = chart_test_pruning("Zero");
    zero_tick.y_tick = 0;
    CHECK(testing::contains(message({zero_tick}), "'Zero': y_tick must be positive"));
    line_chart negative_tick = chart_test_pruning("Negative");
    negative_tick.x_tick = -10;
    CHECK(testing::contains(message({negative_tick}), "'Negative': x_tick must be positive"));
    line_chart dense_tick = chart_test_pruning("Dense");
    dense_tick.x_tick = 0.01;
    CHECK(testing::contains(message({dense_tick}), "'Dense': x_tick 0.01 gives more than 200 grid lines"));

    line_chart mismatch = chart_test_pruning("Sizes");
    mismatch.series = {{"content", {10, 20}, {1, 2}}, {"noise", {10, 20, 30}, {1, 2}}};
    CHECK(testing::contains(message({mismatch}), "'Sizes', series 2 of 2 'noise': 3 x values but 2 y values"));

    // Text the document cannot hold; the message names what it can show.
    line_chart bad_label = chart_test_pruning("Labels");
    bad_label.series = {{"ok", {}, {}}, {"bad\xff", {}, {}}};
    CHECK(testing::contains(message({bad_label}),
                            "'Labels', series 2 of 2: the label has invalid UTF-8 or a control "
                            "character at byte 3"));
    line_chart control = chart_test_pruning("two\nlines");
    const std::string control_message = message({control});
    CHECK(testing::contains(control_message,
                            "panel 1 of 1: the title has invalid UTF-8 or a control character at byte 3"));
    CHECK(control_message.find('\n') == std::string::npos);
    line_chart truncated = chart_test_pruning("T");
    truncated.y_label = "\xE2\x89";  // the start of a 3-byte sequence
    CHECK(testing::contains(message({truncated}), "'T': the y label has invalid UTF-8"));
    line_chart not_a_character = chart_test_pruning("T");
    not_a_character.x_label = "\xEF\xBF\xBF";  // U+FFFF, not allowed in XML
    CHECK(testing::contains(message({not_a_character}), "the x label has"));

    CHECK_THROWS_WITH_AS(chart_plot_area(flat_x, 480, 320), doctest::Contains("'Flat'"), argument_error);
    CHECK_THROWS_AS(chart_plot_area(chart_test_pruning("A"), 159, 320), argument_error);
}
