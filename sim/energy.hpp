// What a step costs at the scale of a training run: time to train a token budget, GPU
// hours, rental cost, energy and average cluster power.
//
// Power model (per GPU, averaged over the step): the GPU draws its TDP while its compute
// stream is busy and `idle_fraction` x TDP otherwise (communication-only, pipeline
// bubbles, waiting for peers). Each node adds a fixed `node_overhead` (CPUs, NICs,
// switches, fans, storage), and the facility multiplies everything by the PUE.
//   P_cluster = PUE x (gpus x TDP x (u + idle_fraction x (1 - u)) + nodes x overhead),
//   u = compute_s / step_time_s (per-GPU busy fraction).
// Defaults, with their sources (all settable with --set):
//   sim.pue = 1.2             typical of current large AI data centres (Uptime Institute
//                             2023 survey average 1.58; hyperscalers report 1.1; estimate)
//   sim.node_overhead_w = 4600W  DGX H100 system maximum 10.2 kW (NVIDIA DGX H100
//                             datasheet) minus 8 x 700 W GPUs
//   sim.gpu_idle_fraction = 0.3  PROVISIONAL: a GPU spinning in NCCL kernels or waiting
//                             at a barrier draws roughly 25-35% of TDP (estimate; idle
//                             with nothing launched is ~10%)
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/overrides.hpp"

namespace tcsim::sim {

struct PowerModel {
  double pue = 1.2;
  double node_overhead_w = 4600;
  double gpu_idle_fraction = 0.3;
  /// Takes sim.pue, sim.node_overhead_w, sim.gpu_idle_fraction (InputError when out of range).
  static PowerModel from_overrides(core::Overrides& overrides);
  static std::vector<std::string> keys();
};

struct TrainingEstimate {
  std::optional<double> tokens;  ///< token budget (--tokens), when given
  double time_to_train_days = 0;
  double gpu_hours = 0;
  double gpu_hours_per_trillion_tokens = 0;
  double cost_usd = 0;  ///< gpu_hours x price_per_gpu_hour_usd (0 when no price)
  double price_per_gpu_hour_usd = 0;
  double energy_mwh = 0;
  double avg_cluster_power_mw = 0;
  double gpu_busy_fraction = 0;
  PowerModel power;
};

/// Parses a token count with an optional SI suffix ("14.8T", "2e12"); InputError otherwise.
double parse_tokens(const std::string& text, const std::string& where);

/// The estimate for one simulated step repeated until `tokens` are processed (or, without
/// tokens, per trillion tokens and the power only).
TrainingEstimate estimate_training(double step_time_s, double tokens_per_second, double compute_s, int gpus, int nodes,
                                   double tdp_w, double price_per_hour_usd, const PowerModel& power,
                                   std::optional<double> tokens);

nlohmann::ordered_json to_json(const TrainingEstimate& e);
TrainingEstimate training_from_json(const nlohmann::ordered_json& j);

}  // namespace tcsim::sim
