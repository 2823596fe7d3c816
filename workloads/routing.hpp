// MoE routing skew: how the routed tokens of a MoE layer spread over experts and hence
// over the ranks of an expert-parallel group (config::RoutingDistribution, seeded by
// Workload.seed). Uniform routing keeps every EP rank's program identical (the generator
// folds them); any skew makes per-rank dispatch volumes and expert work differ.
#pragma once

#include <cstdint>
#include <vector>

#include "workloads/model.pb.h"

namespace tcsim::workloads {

/// True when the model's routing is uniform (no routing field, or kind UNIFORM).
bool routing_is_uniform(const config::ModelSpec& m);

/// Share of the routed tokens each expert receives in every main-model MoE layer:
/// result[layer] has routed_experts values summing to 1 (empty for dense layers).
/// Throws core::InputError for a histogram of the wrong length or negative values.
std::vector<std::vector<double>> expert_loads(const config::ModelSpec& m, uint64_t seed);

/// Sums expert shares into EP-rank shares: experts are split into ep contiguous blocks
/// (expert e lives on EP rank e / (experts / ep)).
std::vector<double> rank_loads(const std::vector<double>& expert_share, int64_t ep);

/// max / mean of the rank shares (1 = balanced).
double imbalance(const std::vector<double>& rank_share);

}  // namespace tcsim::workloads
