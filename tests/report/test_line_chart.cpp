#include "nnmark/report/line_chart.hpp"

#include "../support/files.hpp"

#include <doctest/doctest.h>

// PNG decoding (stb_image) comes with line_chart.hpp, through core/stb.hpp.

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

using namespace nnmark;

namespace {

constexpr double chart_test_nan = std::numeric_limits<double>::quiet_NaN();
constexpr rgb_colour chart_test_white = {255, 255, 255}, chart_test_black = {0, 0, 0};

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

// How many pixels of `colour` the image has in the (inclusive) rectangle, clipped to the image.
index_t chart_test_count(const rgb_image& image, rgb_colour colour, chart_rect r) {
    index_t count = 0;
    for (index_t y = std::max<index_t>(r.top, 0); y <= std::min(r.bottom, image.height - 1); ++y)
        for (index_t x = std::max<index_t>(r.left, 0); x <= std::min(r.right, image.width - 1); ++x)
            count += image.at(x, y) == colour;
    return count;
}

chart_rect chart_test_whole(const rgb_image& image) { return {0, 0, image.width - 1, image.height - 1}; }

// The smallest rectangle holding every pixel of `colour` in `r`.
chart_rect chart_test_box(const rgb_image& image, rgb_colour colour, chart_rect r) {
    chart_rect box{image.width, image.height, -1, -1};
    for (index_t y = r.top; y <= r.bottom; ++y)
        for (index_t x = r.left; x <= r.right; ++x)
            if (image.at(x, y) == colour)
                box = {std::min(box.left, x), std::min(box.top, y), std::max(box.right, x), std::max(box.bottom, y)};
    return box;
}

// Columns [left, left + width) of `image`, as an image of their own.
rgb_image chart_test_columns(const rgb_image& image, index_t left, index_t width) {
    rgb_image part{width, image.height, {}};
    for (index_t y = 0; y < image.height; ++y)
        for (index_t x = left; x < left + width; ++x) {
            const rgb_colour c = image.at(x, y);
            part.pixels.insert(part.pixels.end(), c.begin(), c.end());
        }
    return part;
}

}  // namespace

TEST_CASE("line_chart: the image is panels * width x height, white where nothing is drawn") {
    const std::vector<line_chart> panels = {chart_test_pruning("Test accuracy"), chart_test_pruning("Trigger accuracy")};
    const rgb_image image = render_charts(panels, 300, 200);
    CHECK(image.width == 600);
    CHECK(image.height == 200);
    CHECK(image.pixels.size() == 600u * 200u * 3u);
    CHECK(image.at(0, 0) == chart_test_white);
    CHECK(image.at(599, 199) == chart_test_white);
    const chart_rect area = chart_plot_area(panels[0], 300, 200);
    const chart_point between = chart_pixel(panels[0], 300, 200, 15, 10);  // between grid lines
    CHECK(image.at(between.x, between.y) == chart_test_white);
    CHECK(image.at(300 + between.x, between.y) == chart_test_white);
    CHECK(area.left > 0);
    CHECK(area.right < 299);
    CHECK(area.top > 0);
    CHECK(area.bottom < 199);
}

TEST_CASE("line_chart: chart_pixel maps the axis ranges onto the plot area's corners, where the axes are") {
    const line_chart chart = chart_test_pruning("Pruning");
    const chart_rect area = chart_plot_area(chart, 480, 360);
    CHECK(chart_pixel(chart, 480, 360, 10, 0) == chart_point{area.left, area.bottom});
    CHECK(chart_pixel(chart, 480, 360, 90, 100) == chart_point{area.right, area.top});
    CHECK(chart_pixel(chart, 480, 360, 10, 100) == chart_point{area.left, area.top});
    CHECK(chart_pixel(chart, 480, 360, 90, 0) == chart_point{area.right, area.bottom});
    const chart_point middle = chart_pixel(chart, 480, 360, 50, 50);
    CHECK(std::abs(2 * middle.x - area.left - area.right) <= 1);
    CHECK(std::abs(2 * middle.y - area.top - area.bottom) <= 1);
    // Outside the ranges is outside the area; NaN and huge values stay within a plot size.
    CHECK(chart_pixel(chart, 480, 360, 95, 50).x > area.right);
    CHECK(chart_pixel(chart, 480, 360, 50, -1).y > area.bottom);
    CHECK(chart_pixel(chart, 480, 360, 1e300, 50).x == area.right + (area.right - area.left));
    CHECK(chart_pixel(chart, 480, 360, chart_test_nan, 50).x == area.left - (area.right - area.left));

    const std::vector<line_chart> panels = {chart};
    const rgb_image image = render_charts(panels);
    CHECK(image.at(area.left, (area.top + area.bottom) / 2) == chart_test_black);
    CHECK(image.at((area.left + area.right) / 2, area.bottom) == chart_test_black);
    const chart_point tick = chart_pixel(chart, 480, 360, 30, 50);  // on the x = 30 grid line
    const rgb_colour grid = image.at(tick.x, tick.y + 3);
    CHECK(grid != chart_test_white);
    CHECK(grid != chart_test_black);
    CHECK(grid[0] == grid[1]);  // grey
    CHECK(grid[1] == grid[2]);
    CHECK(image.at(tick.x, area.bottom + 2) == chart_test_black);  // the tick mark below the axis
}

TEST_CASE("line_chart: each point's marker has its series colour where chart_pixel puts it, in every panel") {
    std::vector<line_chart> panels = {chart_test_pruning("Test"), chart_test_pruning("Trigger")};
    panels[0].series = {{"content", {20, 80}, {30, 60}}, {"noise", {20, 80}, {70, 40}}};
    panels[1].series = {{"content", {30}, {50}}, {"noise", {60}, {20}}};
    const rgb_image image = render_charts(panels, 400, 300);
    CHECK(chart_colour(0) != chart_colour(1));
    const auto check_marker = [&](const line_chart& chart, index_t offset, double x, double y, std::size_t k) {
        const chart_point p = chart_pixel(chart, 400, 300, x, y);
        CAPTURE(x);
        CAPTURE(y);
        // The marker is a 7 x 7 square; two pixels beyond it nothing is drawn here.
        CHECK(chart_test_count(image, chart_colour(k), {offset + p.x - 3, p.y - 3, offset + p.x + 3, p.y + 3}) == 49);
        CHECK(image.at(offset + p.x, p.y - 5) != chart_colour(k));
        CHECK(image.at(offset + p.x, p.y + 5) != chart_colour(k));
    };
    check_marker(panels[0], 0, 20, 30, 0);
    check_marker(panels[0], 0, 80, 60, 0);
    check_marker(panels[0], 0, 20, 70, 1);
    check_marker(panels[0], 0, 80, 40, 1);
    check_marker(panels[1], 400, 30, 50, 0);
    check_marker(panels[1], 400, 60, 20, 1);
    // Single points draw no line: only their markers have the colour in the second panel.
    CHECK(chart_test_count(image, chart_colour(0), {400, 0, 799, 299}) == 49);
    CHECK(chart_test_count(image, chart_colour(1), {400, 0, 799, 299}) == 49);
}

TEST_CASE("line_chart: consecutive points are joined by a 2-pixel line") {
    std::vector<line_chart> panels = {chart_test_pruning("Line")};
    panels[0].series = {{"flat", {20, 80}, {50, 50}}, {"steep", {30, 40}, {10, 40}}};
    const rgb_image image = render_charts(panels);
    const chart_point a = chart_pixel(panels[0], 480, 360, 60, 50);
    index_t thick = 0;
    for (index_t y = a.y - 3; y <= a.y + 3; ++y) thick += image.at(a.x, y) == chart_colour(0);
    CHECK(thick == 2);
    const chart_point b = chart_pixel(panels[0], 480, 360, 35, 25);
    CHECK(chart_test_count(image, chart_colour(1), {b.x - 2, b.y - 2, b.x + 2, b.y + 2}) >= 4);
}

TEST_CASE("line_chart: a NaN y draws no marker and no line to or from it") {
    std::vector<line_chart> panels = {chart_test_pruning("Gap")};
    panels[0].series = {{"gap", {20, 50, 80}, {40, chart_test_nan, 40}}};
    const rgb_image image = render_charts(panels);
    const chart_point skipped = chart_pixel(panels[0], 480, 360, 50, 40);
    CHECK(image.at(skipped.x, skipped.y) != chart_colour(0));
    CHECK(image.at(skipped.x, skipped.y + 1) != chart_colour(0));
    const chart_point kept = chart_pixel(panels[0], 480, 360, 20, 40);
    CHECK(image.at(kept.x, kept.y) == chart_colour(0));
    // Nothing between the two markers that are left.
    const chart_rect line_row = {kept.x + 4, kept.y - 1, chart_pixel(panels[0], 480, 360, 80, 40).x - 4, kept.y + 1};
    CHECK(chart_test_count(image, chart_colour(0), line_row) == 0);
}

TEST_CASE("line_chart: data outside the axis ranges is clipped to the plot area, without markers") {
    std::vector<line_chart> panels = {chart_test_pruning("Clip")};
    panels[0].series = {{"out", {50, 120, 150}, {50, 50, 200}},
                        {"far", {-1e300, 1e300}, {30, 30}},
                        {"steep", {70, 80}, {60, 140}}};
    const rgb_image image = render_charts(panels);
    const chart_rect area = chart_plot_area(panels[0], 480, 360);
    const chart_rect outside_right = {area.right + 4, 0, 479, 359};
    CHECK(chart_test_count(image, chart_colour(0), outside_right) == 0);
    CHECK(chart_test_count(image, chart_colour(1), outside_right) == 0);
    const chart_point edge = chart_pixel(panels[0], 480, 360, 90, 50);
    CHECK(chart_test_count(image, chart_colour(0), {edge.x - 2, edge.y - 1, edge.x, edge.y + 1}) > 0);
    // The line of "far" crosses the whole area, from axis to axis.
    const chart_point far_left = chart_pixel(panels[0], 480, 360, 10, 30);
    const chart_point far_right = chart_pixel(panels[0], 480, 360, 90, 30);
    CHECK(image.at(far_left.x + 1, far_left.y) == chart_colour(1));
    CHECK(image.at(far_right.x, far_right.y) == chart_colour(1));
    CHECK(chart_test_count(image, chart_colour(1), {0, 0, area.left - 2, 359}) == 0);
    // "steep" leaves through the top at x = 75, and nothing of it is above.
    const chart_point exit = chart_pixel(panels[0], 480, 360, 75, 100);
    CHECK(chart_test_count(image, chart_colour(2), {exit.x - 1, exit.y, exit.x + 1, exit.y + 1}) > 0);
    CHECK(chart_test_count(image, chart_colour(2), {0, 0, 479, area.top - 2}) == 0);
}

TEST_CASE("line_chart: the legend shows every series' colour in the plot area corner with the fewest data") {
    std::vector<line_chart> panels = {chart_test_pruning("Legend"), chart_test_pruning("Second")};
    // Series without drawable points: the legend's swatches are their only pixels.
    panels[0].series = {{"content", {50}, {chart_test_nan}}, {"unrelated", {}, {}}, {"noise", {50}, {200}}};
    panels[1].series = panels[0].series;
    const rgb_image empty = render_charts(panels);
    const chart_rect area = chart_plot_area(panels[0], 480, 360);
    const index_t mid_x = (area.left + area.right) / 2, mid_y = (area.top + area.bottom) / 2;
    for (std::size_t k = 0; k < 3; ++k) {
        CAPTURE(k);
        const chart_rect swatch = chart_test_box(empty, chart_colour(k), chart_test_whole(empty));
        CHECK(swatch.left > mid_x);  // top right, the first choice when nothing is in the way
        CHECK(swatch.right < area.right);
        CHECK(swatch.bottom < mid_y);
        CHECK(swatch.top > area.top);
        CHECK(swatch.right - swatch.left + 1 == 24);
    }
    CHECK(chart_test_count(empty, chart_colour(0), {480, 0, 959, 359}) == 0);  // once, in the first panel

    // Data along the top: the legend moves to a bottom corner.
    panels[0].series[1] = {"unrelated", {10, 90}, {95, 95}};
    const rgb_image crowded = render_charts(panels);
    const chart_rect swatch = chart_test_box(crowded, chart_colour(0), chart_test_whole(crowded));
    CHECK(swatch.top > mid_y);
    CHECK(swatch.bottom < area.bottom);
}

TEST_CASE("line_chart: title and labels are drawn in black, uppercased, the title centred") {
    line_chart lower = chart_test_pruning("t");
    lower.x_label = "x", lower.y_label = "y";
    line_chart upper = chart_test_pruning("T");
    upper.x_label = "X", upper.y_label = "Y";
    const std::vector<line_chart> lower_panels = {lower}, upper_panels = {upper};
    const rgb_image image = render_charts(lower_panels);
    CHECK(image.pixels == render_charts(upper_panels).pixels);
    const chart_rect area = chart_plot_area(lower, 480, 360);
    // The title: one 'T' at scale 2, 10 x 14 pixels, centred above the plot area.
    const chart_rect title = chart_test_box(image, chart_test_black, {0, 0, 479, area.top - 5});
    CHECK(title.right - title.left + 1 == 10);
    CHECK(title.bottom - title.top + 1 == 14);
    CHECK(std::abs(title.left + title.right - 479) <= 1);
    // The x label below the tick labels, the y label left of them.
    const chart_rect x_label = chart_test_box(image, chart_test_black, {area.left, area.bottom + 20, 479, 359});
    CHECK(x_label.right - x_label.left + 1 == 5);
    CHECK(x_label.bottom - x_label.top + 1 == 7);
    const chart_rect y_label = chart_test_box(image, chart_test_black, {0, area.top, 15, area.bottom});
    CHECK(y_label.right - y_label.left + 1 == 7);  // 'Y' turned a quarter: 7 wide, 5 high
    CHECK(y_label.bottom - y_label.top + 1 == 5);
}

TEST_CASE("line_chart: tick labels print round values, evenly thinned out when the ticks are dense") {
    CHECK(chart_detail::tick_label(0, 20) == "0");
    CHECK(chart_detail::tick_label(3, 20) == "60");
    CHECK(chart_detail::tick_label(3, 0.1) == "0.3");
    CHECK(chart_detail::tick_label(-5, 0.1) == "-0.5");
    CHECK(chart_detail::tick_label(1, 1e6) == "1E+06");
    CHECK(chart_detail::tick_multiples(0.05, 0.3, 0.1) == std::vector<index_t>{1, 2, 3});

    line_chart dense = chart_test_pruning("Dense");
    dense.x_min = 0, dense.x_max = 1, dense.x_tick = 0.01;
    const chart_rect area = chart_plot_area(dense, 240, 180);
    const std::vector<chart_detail::tick_text> labels = chart_detail::tick_texts(dense, area, true);
    CHECK(labels.size() == 101);
    const index_t stride = chart_detail::label_stride(labels);
    CHECK(stride > 1);
    const chart_detail::tick_text* previous = nullptr;
    for (const auto& label : labels) {
        if (label.multiple % stride != 0) continue;
        if (previous) CHECK(previous->left + chart_detail::text_width(previous->text, 1) + 5 <= label.left);
        previous = &label;
    }
    // A stride of 1 when the labels fit.
    const line_chart sparse = chart_test_pruning("Sparse");
    CHECK(chart_detail::label_stride(chart_detail::tick_texts(sparse, chart_plot_area(sparse, 480, 360), true)) == 1);
    CHECK(chart_detail::label_stride(chart_detail::tick_texts(sparse, chart_plot_area(sparse, 480, 360), false)) == 1);
}

TEST_CASE("line_chart: nothing drawn in a panel reaches its neighbour") {
    line_chart busy = chart_test_pruning("A title far too long to fit into its panel even at the smallest scale");
    busy.y_label = "A y label much longer than the plot area is high";
    busy.series = {{"edge", {10, 90, 90}, {100, 100, 0}}, {"low", {10, 90}, {0, 0}}};
    const line_chart blank = chart_test_pruning("");
    const std::vector<line_chart> busy_blank = {busy, blank}, blank_busy = {blank, busy}, blank_only = {blank};
    const rgb_image alone = render_charts(blank_only, 200, 150);
    CHECK(chart_test_columns(render_charts(busy_blank, 200, 150), 200, 200).pixels == alone.pixels);
    CHECK(chart_test_columns(render_charts(blank_busy, 200, 150), 0, 200).pixels == alone.pixels);
}

TEST_CASE("line_chart: the PNG decodes to the rendered pixels") {
    const testing::temp_dir dir;
    std::vector<line_chart> panels = {chart_test_pruning("Test accuracy"), chart_test_pruning("Trigger accuracy")};
    panels[0].series = {{"content", {10, 50, 90}, {99, 98, 40}}, {"noise", {10, 50, 90}, {99, chart_test_nan, 20}}};
    panels[1].series = {{"content", {10, 50, 90}, {100, 100, 70}}, {"noise", {10, 50, 90}, {100, 60, 10}}};
    write_charts_png(panels, dir / "pruning.png", 320, 240);
    const std::vector<unsigned char> bytes = read_file(dir / "pruning.png");
    int width = 0, height = 0, channels = 0;
    const std::unique_ptr<unsigned char, decltype(&stbi_image_free)> decoded(
        stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &width, &height, &channels, 0),
        &stbi_image_free);
    REQUIRE(decoded != nullptr);
    CHECK(width == 640);
    CHECK(height == 240);
    REQUIRE(channels == 3);
    const rgb_image image = render_charts(panels, 320, 240);
    CHECK(std::vector<unsigned char>(decoded.get(), decoded.get() + 640 * 240 * 3) == image.pixels);
    // A second write replaces the file.
    write_png(rgb_image{1, 1, {1, 2, 3}}, dir / "pruning.png");
    CHECK(read_file(dir / "pruning.png").size() < bytes.size());
}

TEST_CASE("line_chart: PNG errors: an inconsistent image, an unwritable path") {
    const testing::temp_dir dir;
    CHECK_THROWS_WITH_AS(write_png(rgb_image{2, 2, {0, 0, 0}}, dir / "bad.png"), doctest::Contains("2 x 2"),
                         argument_error);
    CHECK_THROWS_AS(write_png(rgb_image{}, dir / "empty.png"), argument_error);
    const std::vector<line_chart> panels = {chart_test_pruning("T")};
    CHECK_THROWS_AS(write_charts_png(panels, dir / "missing" / "chart.png"), io_error);
    CHECK_FALSE(std::filesystem::exists(dir / "bad.png"));
}

TEST_CASE("line_chart: invalid panels are argument errors naming the panel and the series") {
    const auto message = [](std::vector<line_chart> panels, index_t width = 480, index_t height = 360) {
        return testing::error_message<argument_error>([&] { render_charts(panels, width, height); });
    };
    CHECK(testing::contains(message({}), "no panels"));
    CHECK(testing::contains(message({chart_test_pruning("A")}, 100, 360), "at least 160 x 120"));
    CHECK(testing::contains(message({chart_test_pruning("A")}, 480, 80), "480 x 80"));

    line_chart flat_x = chart_test_pruning("Flat");
    flat_x.x_max = flat_x.x_min;
    CHECK(testing::contains(message({chart_test_pruning("A"), flat_x}), "panel 2 of 2 'Flat': x_min must be below x_max"));
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
    CHECK(testing::contains(message({dense_tick}), "'Dense': x_tick 0.01"));

    line_chart mismatch = chart_test_pruning("Sizes");
    mismatch.series = {{"content", {10, 20}, {1, 2}}, {"noise", {10, 20, 30}, {1, 2}}};
    CHECK(testing::contains(message({mismatch}), "'Sizes', series 2 of 2 'noise': 3 x values but 2 y values"));
    line_chart glyph = chart_test_pruning("Glyph");
    glyph.series = {{"what?", {10}, {1}}};
    CHECK(testing::contains(message({glyph}), "series 1 of 1 'what?': label \"what?\" has the character '?'"));
    line_chart title = chart_test_pruning("50% #1");
    CHECK(testing::contains(message({title}), "'50% #1': title"));

    CHECK_THROWS_WITH_AS(chart_pixel(flat_x, 480, 360, 0, 0), doctest::Contains("'Flat'"), argument_error);
    CHECK_THROWS_AS(chart_plot_area(chart_test_pruning("A"), 159, 360), argument_error);
}
