// Merge: every finished point of DIR into one table (CSV: one column per axis plus the
// result fields; or JSON lines), and a report of failed and missing points with the
// command that reruns just those. Reads only; the single output file is written atomically,
// so merging twice gives the same bytes.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace tcsim::sweep {

struct MergeOptions {
  std::filesystem::path dir;
  std::string out;     ///< output file; empty = DIR/results.csv (or .jsonl); "-" = stdout
  bool jsonl = false;
};

struct MergeReport {
  std::size_t total = 0, done = 0, extra = 0;
  std::vector<std::string> failed;   ///< "id  reason  {settings}"
  std::vector<std::string> missing;  ///< "id  {settings}"
  std::vector<std::string> failed_ids, missing_ids;
  std::string output;                ///< where the table went
  std::string rerun_local;           ///< the command that reruns just the failed and missing points
  std::string rerun_slurm;
  std::vector<std::string> columns;
};

MergeReport merge(const MergeOptions& opts);

/// One CSV field (RFC 4180): quoted when it holds a comma, quote, or line break.
std::string csv_field(const std::string& text);

}  // namespace tcsim::sweep
