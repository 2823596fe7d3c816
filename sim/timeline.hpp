// Chrome / Perfetto trace of one simulated step (the "Trace Event Format": opens in
// ui.perfetto.dev and chrome://tracing). One process per lane (a rank, or the ranks a
// folded lane stands for), one thread per stream, a complete event ("ph":"X") per op
// with its label as name and its kind/category as "cat", and flow arrows ("ph":"s" at
// the send, "ph":"f" at the receive) for point-to-point transfers (pipeline sends).
// Large runs keep at most `max_tracks` lanes, sampled evenly (first and last included).
// Times are microseconds of simulated time.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "sim/executor.hpp"
#include "workloads/program.hpp"

namespace tcsim::sim {

struct TimelineOptions {
  size_t max_tracks = 64;
};

nlohmann::json build_timeline(const workloads::Program& program, const ExecutionTrace& trace,
                              const TimelineOptions& options = {});

/// Writes build_timeline() to path; InputError naming --trace when it cannot be written.
void write_timeline(const std::string& path, const workloads::Program& program, const ExecutionTrace& trace,
                    const TimelineOptions& options = {});

/// Fails early (before a long simulation) when path cannot be written.
void check_trace_path(const std::string& path);

}  // namespace tcsim::sim
