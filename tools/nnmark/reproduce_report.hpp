// The report of `nnmark reproduce`: report.md (the paper's tables with the measured
// numbers beside the printed ones) and figures/pruning.svg (test and trigger accuracy
// against the global pruning rate, one curve per trigger kind), both made from results.json
// alone, so the report can be redrawn from the results of any run.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>

namespace nnmark::cli {

// Writes <dir>/report.md and <dir>/figures/pruning.svg from `results` (the document
// reproduce.cpp writes to results.json), both atomically.
void write_report(const nlohmann::json& results, const std::filesystem::path& dir);

}  // namespace nnmark::cli
