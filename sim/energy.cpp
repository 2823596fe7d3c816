#include "sim/energy.hpp"

#include <cmath>

#include "core/error.hpp"
#include "core/quantity.hpp"

namespace tcsim::sim {

std::vector<std::string> PowerModel::keys() { return {"sim.pue", "sim.node_overhead_w", "sim.gpu_idle_fraction"}; }

PowerModel PowerModel::from_overrides(core::Overrides& o) {
  PowerModel p;
  if (auto v = o.take("sim.pue")) {
    p.pue = core::parse_number(*v, o.where("sim.pue"));
    if (!(p.pue >= 1.0 && p.pue <= 5.0)) throw core::InputError(o.where("sim.pue"), "PUE must be in 1..5 (1.0 = no facility overhead), got '" + *v + "'");
  }
  if (auto v = o.take("sim.node_overhead_w")) {
    p.node_overhead_w = core::parse_watts(*v, o.where("sim.node_overhead_w")).value();
    if (!(p.node_overhead_w >= 0)) throw core::InputError(o.where("sim.node_overhead_w"), "must be >= 0W, e.g. 4600W");
  }
  if (auto v = o.take("sim.gpu_idle_fraction")) {
    p.gpu_idle_fraction = core::parse_number(*v, o.where("sim.gpu_idle_fraction"));
    if (!(p.gpu_idle_fraction >= 0 && p.gpu_idle_fraction <= 1)) {
      throw core::InputError(o.where("sim.gpu_idle_fraction"), "a fraction of TDP in 0..1, got '" + *v + "'");
    }
  }
  return p;
}

double parse_tokens(const std::string& text, const std::string& where) {
  const double t = core::parse_count(text, where);
  if (!(t > 0) || !std::isfinite(t)) throw core::InputError(where, "a positive token count such as 14.8T, 300B or 2e12, got '" + text + "'");
  return t;
}

TrainingEstimate estimate_training(double step_time_s, double tokens_per_second, double compute_s, int gpus, int nodes,
                                   double tdp_w, double price_per_hour_usd, const PowerModel& power,
                                   std::optional<double> tokens) {
  TrainingEstimate e;
  e.tokens = tokens;
  e.power = power;
  e.price_per_gpu_hour_usd = price_per_hour_usd;
  e.gpu_busy_fraction = step_time_s > 0 ? std::min(1.0, compute_s / step_time_s) : 0;
  const double u = e.gpu_busy_fraction;
  const double watts = power.pue * (gpus * tdp_w * (u + power.gpu_idle_fraction * (1 - u)) + nodes * power.node_overhead_w);
  e.avg_cluster_power_mw = watts / 1e6;
  if (tokens_per_second > 0) e.gpu_hours_per_trillion_tokens = 1e12 / tokens_per_second * gpus / 3600.0;
  if (tokens && tokens_per_second > 0) {
    const double seconds = *tokens / tokens_per_second;
    e.time_to_train_days = seconds / 86400.0;
    e.gpu_hours = seconds * gpus / 3600.0;
    e.cost_usd = e.gpu_hours * price_per_hour_usd;
    e.energy_mwh = watts * seconds / 3600.0 / 1e6;
  }
  return e;
}

nlohmann::ordered_json to_json(const TrainingEstimate& e) {
  nlohmann::ordered_json j;
  j["tokens"] = e.tokens ? nlohmann::ordered_json(*e.tokens) : nlohmann::ordered_json(nullptr);
  j["time_to_train_days"] = e.tokens ? nlohmann::ordered_json(e.time_to_train_days) : nlohmann::ordered_json(nullptr);
  j["gpu_hours"] = e.tokens ? nlohmann::ordered_json(e.gpu_hours) : nlohmann::ordered_json(nullptr);
  j["gpu_hours_per_trillion_tokens"] = e.gpu_hours_per_trillion_tokens;
  j["cost_usd"] = e.tokens ? nlohmann::ordered_json(e.cost_usd) : nlohmann::ordered_json(nullptr);
  j["price_per_gpu_hour_usd"] = e.price_per_gpu_hour_usd;
  j["energy_mwh"] = e.tokens ? nlohmann::ordered_json(e.energy_mwh) : nlohmann::ordered_json(nullptr);
  j["avg_cluster_power_mw"] = e.avg_cluster_power_mw;
  j["gpu_busy_fraction"] = e.gpu_busy_fraction;
  j["power_model"] = {{"pue", e.power.pue}, {"node_overhead_w", e.power.node_overhead_w}, {"gpu_idle_fraction", e.power.gpu_idle_fraction}};
  return j;
}

TrainingEstimate training_from_json(const nlohmann::ordered_json& j) {
  TrainingEstimate e;
  auto num = [&](const char* k) { return j.contains(k) && j[k].is_number() ? j[k].get<double>() : 0.0; };
  if (j.contains("tokens") && j["tokens"].is_number()) e.tokens = j["tokens"].get<double>();
  e.time_to_train_days = num("time_to_train_days");
  e.gpu_hours = num("gpu_hours");
  e.gpu_hours_per_trillion_tokens = num("gpu_hours_per_trillion_tokens");
  e.cost_usd = num("cost_usd");
  e.price_per_gpu_hour_usd = num("price_per_gpu_hour_usd");
  e.energy_mwh = num("energy_mwh");
  e.avg_cluster_power_mw = num("avg_cluster_power_mw");
  e.gpu_busy_fraction = num("gpu_busy_fraction");
  if (j.contains("power_model")) {
    e.power.pue = j["power_model"].value("pue", 1.2);
    e.power.node_overhead_w = j["power_model"].value("node_overhead_w", 4600.0);
    e.power.gpu_idle_fraction = j["power_model"].value("gpu_idle_fraction", 0.3);
  }
  return e;
}

}  // namespace tcsim::sim
