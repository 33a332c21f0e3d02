// report.md and the pruning figure of `nnmark reproduce`, from results.json.
#include "reproduce_report.hpp"

#include "nnmark/core/atomic_file.hpp"
#include "nnmark/report/line_chart.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

namespace nnmark::cli {

namespace report_detail {

using nlohmann::json;

// "99.47" from 0.9947.
std::string percent(double fraction) {
    char text[32];
    std::snprintf(text, sizeof text, "%.2f", 100 * fraction);
    return text;
}

// "5.3e-165", or the exact power of ten where the double underflowed to 0.
std::string p_value(const json& verification) {
    const double p = verification["p_value"].get<double>();
    char text[48];
    if (p > 0) std::snprintf(text, sizeof text, "%.2g", p);
    else std::snprintf(text, sizeof text, "1e%.0f", std::floor(verification["log10_p_value"].get<double>()));
    return text;
}

// The markdown rule under a header of a first column and one column per trigger kind.
std::string kind_columns_rule(const json& results) {
    std::string rule = "\n|---|";
    for (std::size_t k = 0; k < results["triggers"].size(); ++k) rule += "---|";
    return rule + "\n";
}

// A measured accuracy with the paper's beside it when the paper has one: "99.40 (99.46)".
std::string with_paper(double measured, const json& paper) {
    return paper.is_number() ? percent(measured) + " (" + percent(paper.get<double>()) + ")" : percent(measured);
}

// The paper's figures for one trigger kind, or null when the dataset has none.
json paper_kind(const json& results, const std::string& kind) {
    const json& paper = results["paper"];
    return paper.is_object() ? paper["triggers"].value(kind, json()) : json();  // none for the natural kind
}

json paper_value(const json& node, const std::string& field) { return node.is_object() ? node.value(field, json()) : json(); }

// "present, p = 5.3e-165" / "not detected, p = 0.27".
std::string detection(const json& verification) {
    return (verification["verdict"] == "watermark-present" ? "present, p = " : "not detected, p = ") +
           p_value(verification);
}

void models_section(std::ostringstream& md, const json& results) {
    md << "## Models\n\n| model | seed | test accuracy | training | images/s |\n|---|---|---|---|---|\n";
    // clean and the references first, in seed order, then the watermarked models.
    const int references = results["settings"]["references"].get<int>();
    std::vector<std::string> names = {"clean"};
    for (int r = 1; r <= references; ++r) names.push_back("reference-" + std::to_string(r));
    for (const json& k : results["triggers"]) names.push_back(k["kind"]);
    for (const std::string& name : names) {
        const json& m = results["models"][name];
        md << "| " << name << " | " << m["recipe"]["seed"] << " | " << percent(m["test_accuracy"].get<double>()) << "% | "
           << static_cast<long long>(m["seconds"].get<double>()) << " s | "
           << static_cast<long long>(m["images_per_second"].get<double>()) << " |\n";
    }
    md << "\nreference-1.." << references
       << " only calibrate the keys' null rates. The watermarked models share the clean model's "
          "seed, so each differs from it by the watermark alone (Table 2).\n\n";
}

void tables_1_2(std::ostringstream& md, const json& results) {
    const json& clean = results["models"]["clean"];
    const double clean_accuracy = clean["test_accuracy"].get<double>();
    const json& paper = results["paper"];
    md << "## Tables 1 and 2: test accuracy and trigger accuracy\n\n"
          "Measured, with the paper's figure in parentheses.\n\n"
          "| model | test accuracy | vs clean | key's triggers | new triggers |\n|---|---|---|---|---|\n"
       << "| clean | " << with_paper(clean_accuracy, paper.is_object() ? paper["clean_test_accuracy"] : json())
       << " | | | |\n";
    for (const json& k : results["triggers"]) {
        const json p = paper_kind(results, k["kind"]);
        char delta[16];
        std::snprintf(delta, sizeof delta, "%+.2f", 100 * (k["test_accuracy"].get<double>() - clean_accuracy));
        md << "| " << k["kind"].get<std::string>() << " | " << with_paper(k["test_accuracy"], paper_value(p, "test_accuracy"))
           << " | " << delta << " | " << with_paper(k["trigger_accuracy"], paper_value(p, "trigger_accuracy")) << " | "
           << with_paper(k["trigger_accuracy_new"], paper_value(p, "trigger_accuracy_new")) << " of "
           << k["new_triggers"] << " |\n";
    }
    md << "\n";
}

// Every model that never saw a key but was declared to carry it, spelled out: such a
// result is the scheme failing, and must not hide in a table cell.
void false_detections(std::ostringstream& md, const json& results) {
    for (const json& k : results["triggers"])
        for (const json& other : k["independent_models"])
            if (other["verdict"] == "watermark-present")
                md << "**False detection**: the " << k["kind"].get<std::string>() << " key is found in the "
                   << other["model"].get<std::string>() << " model (" << other["matches"] << "/" << other["queries"]
                   << ", p = " << p_value(other) << "), which never saw it. The calibrated null rate bounds models "
                      "like the reference models; it does not bound a model that learned to give the target label "
                      "to unusual inputs, as another watermark with the same target teaches. A key made with "
                      "`--labels random` (a secret label per trigger) has a null rate of 1/(K-1) that holds for "
                      "any model that never saw the key.\n\n";
}

void verification_section(std::ostringstream& md, const json& results) {
    md << "## Verification (alpha = " << results["settings"]["alpha"].get<double>() << ")\n\n"
          "The null is a beta-binomial fitted to how often the "
       << results["settings"]["references"].get<int>() << " reference models answer the key's triggers "
          "with its labels: 99% upper bounds on its mean rate and on the correlation of one model's answers "
          "(watermark/statistics.hpp). The independent models never saw the key and took no part in "
          "calibrating it: the watermark must not be found in them.\n\n"
          "| key | null rate, correlation | own model | independent models |\n|---|---|---|---|\n";
    for (const json& k : results["triggers"]) {
        const json& v = k["verification"];
        md << "| " << k["kind"].get<std::string>() << " | ";
        if (v["null_source"] == "random-labels")  // a bound for every innocent model: no calibration used
            md << "1/(K-1) = " << v["null_rate"].get<double>() << ", 0 (random labels)";
        else
            md << k["calibration"]["mean"].get<double>() << ", " << k["calibration"]["correlation"].get<double>() << " ("
               << k["calibration"]["matches"] << "/" << k["calibration"]["queries"] << ")";
        md << " | " << v["matches"] << "/"
           << v["queries"] << ", " << detection(v) << " |";
        for (const json& other : k["independent_models"])
            md << " " << other["model"].get<std::string>() << ": " << other["matches"] << "/" << other["queries"] << ", "
               << detection(other) << ";";
        md << " |\n";
    }
    md << "\n";
    false_detections(md, results);
}

// One pruning cell: "99.31 / 100.00 (99.29 / 100.00) survived".
std::string pruning_cell(const json& row, const json& paper_row) {
    std::string cell = percent(row["test_accuracy"]) + " / " + percent(row["trigger_accuracy"]);
    if (paper_row.is_array()) cell += " (" + percent(paper_row[0]) + " / " + percent(paper_row[1]) + ")";
    return cell + " " + row["attack_verdict"].get<std::string>();
}

void pruning_table(std::ostringstream& md, const json& results, const std::string& scope) {
    md << "| pruned |";
    for (const json& k : results["triggers"]) md << " " << k["kind"].get<std::string>() << " |";
    md << kind_columns_rule(results);
    const json& first_rows = results["triggers"][0]["pruning"];
    for (std::size_t i = 0; i < first_rows.size(); ++i) {
        if (first_rows[i]["scope"] != scope) continue;
        const double rate = first_rows[i]["rate"];
        md << "| " << static_cast<int>(std::lround(100 * rate)) << "% |";
        for (const json& k : results["triggers"]) {
            const json pruning = paper_value(paper_kind(results, k["kind"]), "pruning");
            const std::string rate_key = std::to_string(std::lround(100 * rate));
            const json paper_row = scope == "global" && pruning.is_object() ? pruning.value(rate_key, json()) : json();
            md << " " << pruning_cell(k["pruning"][i], paper_row) << " |";
        }
        md << "\n";
    }
    md << "\n";
}

void pruning_section(std::ostringstream& md, const json& results) {
    md << "## Tables 3 and 4: magnitude pruning, no retraining\n\n"
          "Test accuracy (whole test set) / trigger accuracy (the key's triggers), in %, then the verdict. "
          "Global: the smallest weights of the whole model are zeroed. The paper says only that the "
          "parameters with the smallest absolute values are removed; its figures (in parentheses) match "
          "global pruning, and are set beside it.\n\n";
    pruning_table(md, results, "global");
    md << "![test and trigger accuracy against the global pruning rate](figures/pruning.svg)\n\n"
          "Per layer: the smallest weights of every layer are zeroed, the first convolution's too.\n\n";
    pruning_table(md, results, "layer");
}

void attacks_section(std::ostringstream& md, const json& results) {
    md << "## Table 5 and the other removal attacks\n\n"
          "The attacker holds the first half of the test set (without the owner's training data); accuracy is "
          "measured on the second half. finetune --mode ftal is the paper's Table 5; its figures are in "
          "parentheses. Each cell: test accuracy (original) / trigger accuracy, p-value, verdict. Each row is "
          "`nnmark attack KIND FLAGS --model M --key K` with --epochs " << results["settings"]["attack_epochs"]
       << " where the attack trains.\n\n| attack |";
    for (const json& k : results["triggers"]) md << " " << k["kind"].get<std::string>() << " |";
    md << kind_columns_rule(results);
    const json& first = results["triggers"][0]["attacks"];
    for (std::size_t i = 0; i < first.size(); ++i) {
        md << "| " << first[i]["attack"].get<std::string>() << " " << first[i]["flags"].get<std::string>() << " |";
        for (const json& k : results["triggers"]) {
            const json& a = k["attacks"][i];
            md << " " << percent(a["test_accuracy"]) << " (" << percent(a["original_test_accuracy"]) << ") / "
               << percent(a["trigger_accuracy"]);
            const json table5 = paper_value(paper_kind(results, k["kind"]), "finetune");
            if (a["id"] == "finetune-ftal" && table5.is_array())
                md << " (paper " << percent(table5[0]) << " / " << percent(table5[1]) << ")";
            md << ", p = " << p_value(a) << ", **" << a["attack_verdict"].get<std::string>() << "** |";
        }
        md << "\n";
    }
    md << "\nVerdicts as in the Watermark Robustness Toolbox (Lukas et al., IEEE S&P 2022): *removed* when "
          "verification no longer finds the watermark while test accuracy stays within 5 points of the original; "
          "*destroyed-model* when the attack costs more than 5 points; otherwise *survived*.\n\n";
}

void evasion_section(std::ostringstream& md, const json& results) {
    const json& first = results["triggers"][0];
    md << "## Evasion: query detectors in front of the stolen model\n\n"
          "The thief serves the watermarked model behind a detector fitted on his half of the test set to flag at "
          "most " << percent(first["evasion"]["false_positive_rate"])
       << "% of it, and answers flagged queries with the model's second-best class (`ensemble`: with a second "
          "model of his own where the two disagree); `nnmark attack evade --detector all` (Hitaj & Mancini 2018). "
          "Each cell: triggers flagged / evaluation images flagged, the service's accuracy (original), p-value, "
          "verdict.\n\n| detector |";
    for (const json& k : results["triggers"]) md << " " << k["kind"].get<std::string>() << " |";
    md << kind_columns_rule(results);
    for (std::size_t i = 0; i < first["evasion"]["detectors"].size(); ++i) {
        md << "| " << first["evasion"]["detectors"][i]["name"].get<std::string>() << " |";
        for (const json& k : results["triggers"]) {
            const json& d = k["evasion"]["detectors"][i];
            md << " " << d["triggers_flagged"] << "/" << d["triggers"] << " / " << percent(d["decoys_flagged_share"])
               << "%, " << percent(d["service_accuracy"]) << "% (" << percent(k["evasion"]["original_test_accuracy"])
               << "%), p = " << p_value(d) << ", **" << d["attack_verdict"].get<std::string>() << "** |";
        }
        md << "\n";
    }
    md << "\n";
}

// "20/41, present, p = 1.6e-09" for one verification of a key.
std::string found(const json& verification) {
    return std::to_string(verification["matches"].get<long long>()) + "/" +
           std::to_string(verification["queries"].get<long long>()) + ", " + detection(verification);
}

void extraction_section(std::ostringstream& md, const json& results) {
    const json& e = results["extraction"];
    const json& first = e["models"][0];
    md << "## Extraction through the API's labels\n\n"
          "A surrogate of the victim's architecture trained " << first["epochs"] << " epochs on the victim's labels for "
       << first["queries"] << " training images (`nnmark attack extract --attacker-data train-fraction`, label-only; "
          "Tramer et al. 2016). `-survive` models were embedded with `--survive-extraction`, whose region key holds "
          "test images of a secret region of the task relabelled by the watermarked model. Each key cell: "
          "victim / surrogate.\n\n| victim | accuracy: victim / surrogate | key | victim | surrogate |\n|---|---|---|---|---|\n";
    for (const json& row : e["models"])
        for (const auto& [name, key] : row["keys"].items())
            md << "| " << row["victim"].get<std::string>() << " | " << percent(row["victim_accuracy"]) << "% / "
               << percent(row["surrogate_accuracy"]) << "% | " << name << " | " << found(key["victim"]) << " | "
               << found(key["surrogate"]) << " |\n";
    md << "\nDAWN (Szyller et al. 2021) in front of the clean model: a keyed " << percent(e["dawn"][0]["rate"])
       << "% of the queries answered with a keyed wrong label; the records tested on the surrogate (only records it "
          "answered otherwise than the victim count: `informative`) and on each reference model.\n\n"
          "| surrogate epochs | records | surrogate accuracy | surrogate | smallest p of the reference models |\n"
          "|---|---|---|---|---|\n";
    for (const json& d : e["dawn"]) {
        double smallest = 1;
        for (const json& r : d["references"]) smallest = std::min(smallest, r["p_value"].get<double>());
        md << "| " << d["epochs"] << " | " << d["records"] << " | " << percent(d["surrogate_accuracy"]) << "% | "
           << found(d["surrogate"]) << " (" << d["surrogate"]["informative"] << " informative) | " << smallest << " |\n";
    }
    md << "\n";
}

void mosaics_section(std::ostringstream& md, const json& results) {
    md << "## Trigger sets\n\nThe first 20 triggers of each key.\n\n";
    for (const json& k : results["triggers"])
        md << "**" << k["kind"].get<std::string>() << "** (commitment `" << k["commitment"].get<std::string>()
           << "`)\n\n![" << k["kind"].get<std::string>() << " triggers](" << k["mosaic"].get<std::string>() << ")\n\n";
}

// "28 minutes from the first step's start to the last one's end (the steps' own times
// add up to 31 minutes)": wall time, the time to a verdict, and the work.
std::string time_to_verdict(const json& results) {
    const auto minutes = [](double seconds) { return std::to_string(std::llround(seconds / 60)); };
    const double wall = results.value("wall_seconds", 0.0);
    return minutes(wall) + " minutes from the first step's start to the last one's end (the steps' own times add up to " +
           minutes(results["step_seconds"].get<double>()) + " minutes)";
}

std::string markdown(const json& results) {
    const json& s = results["settings"];
    std::ostringstream md;
    md << "# Zhang et al. (ASIACCS 2018) reproduced by nnmark: " << results["dataset"].get<std::string>() << "\n\n"
       << "Architecture " << s["architecture"].get<std::string>() << ", " << s["epochs"] << (s["epochs"] == 1 ? " epoch" : " epochs") << " (the paper: 50), "
       << s["optimizer"].get<std::string>() << " lr " << s["lr"] << " " << s["schedule"].get<std::string>() << ", batch "
       << s["batch"] << ", seed " << s["seed"] << "; " << s["trigger_count"] << " triggers per key, each seen "
       << s["trigger_repeat"] << " times per epoch. " << results["threads"] << " threads; "
       << time_to_verdict(results) << ". All figures are measured by this run; the paper's are in parentheses.\n\n";
    models_section(md, results);
    tables_1_2(md, results);
    verification_section(md, results);
    pruning_section(md, results);
    attacks_section(md, results);
    evasion_section(md, results);
    extraction_section(md, results);
    mosaics_section(md, results);
    return md.str();
}

// The y axis from a round value below the lowest point up to 100%: on MNIST every curve
// stays near the top, and a 0-100 axis would draw them as one line.
void fit_y_axis(line_chart& chart) {
    double lowest = 100;
    for (const chart_series& series : chart.series)
        for (const double y : series.y) lowest = std::min(lowest, y);
    chart.y_min = std::clamp(std::floor((lowest - 1) / 10) * 10, 0.0, 90.0);
    const double range = chart.y_max - chart.y_min;
    chart.y_tick = range <= 20 ? 2 : range <= 50 ? 5 : 20;
}

// Panel `field` ("test_accuracy" or "trigger_accuracy") of the global pruning figure.
line_chart pruning_panel(const json& results, const std::string& field, const std::string& title) {
    line_chart chart;
    chart.title = title;
    chart.x_label = "Pruned weights (%)";
    chart.y_label = "Accuracy (%)";
    chart.x_min = 0;
    chart.x_max = 100;
    chart.y_max = 100;
    chart.x_tick = 10;
    for (const json& k : results["triggers"]) {
        chart_series series{k["kind"].get<std::string>(), {}, {}};
        for (const json& row : k["pruning"])
            if (row["scope"] == "global") {
                series.x.push_back(100 * row["rate"].get<double>());
                series.y.push_back(100 * row[field].get<double>());
            }
        chart.series.push_back(series);
    }
    fit_y_axis(chart);
    return chart;
}

}  // namespace report_detail

void write_report(const nlohmann::json& results, const std::filesystem::path& dir) {
    using namespace report_detail;
    const line_chart panels[] = {pruning_panel(results, "test_accuracy", "Test accuracy"),
                                 pruning_panel(results, "trigger_accuracy", "Trigger accuracy")};
    std::filesystem::create_directories(dir / "figures");
    write_charts_svg(panels, dir / "figures" / "pruning.svg");
    write_file_atomically(dir / "report.md", markdown(results));
}

}  // namespace nnmark::cli
