#include "workloads/routing.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "core/error.hpp"
#include "workloads/model.hpp"

namespace tcsim::workloads {

bool routing_is_uniform(const config::ModelSpec& m) {
  return !m.has_routing() || m.routing().kind() == config::RoutingDistribution::UNIFORM;
}

std::vector<std::vector<double>> expert_loads(const config::ModelSpec& m, uint64_t seed) {
  std::vector<std::vector<double>> out(static_cast<size_t>(m.layers()));
  if (!m.has_moe() || m.moe().routed_experts() <= 0) return out;
  const auto E = static_cast<size_t>(m.moe().routed_experts());
  const auto& r = m.routing();
  std::vector<double> base(E, 1.0);
  if (m.has_routing() && r.kind() == config::RoutingDistribution::ZIPF) {
    if (!(r.zipf_exponent() >= 0)) {
      throw core::InputError("model.routing.zipf_exponent", "must be >= 0 (0 = uniform), got " + std::to_string(r.zipf_exponent()));
    }
    for (size_t i = 0; i < E; ++i) base[i] = 1.0 / std::pow(static_cast<double>(i + 1), r.zipf_exponent());
  } else if (m.has_routing() && r.kind() == config::RoutingDistribution::HISTOGRAM) {
    if (static_cast<size_t>(r.histogram_size()) != E) {
      throw core::InputError("model.routing.histogram", "has " + std::to_string(r.histogram_size()) + " values; give one per routed expert (" +
                                                            std::to_string(E) + ")");
    }
    for (size_t i = 0; i < E; ++i) {
      base[i] = r.histogram(static_cast<int>(i));
      if (!(base[i] >= 0)) throw core::InputError("model.routing.histogram", "value " + std::to_string(i) + " is negative");
    }
  }
  const double sum = std::accumulate(base.begin(), base.end(), 0.0);
  if (!(sum > 0)) throw core::InputError("model.routing.histogram", "all values are zero; give the relative load of each expert");
  for (auto& b : base) b /= sum;
  // One generator for the whole model: layer l's permutation depends only on the seed.
  std::mt19937_64 rng(seed);
  const bool shuffle = m.has_routing() && r.kind() == config::RoutingDistribution::ZIPF && r.shuffle_per_layer();
  std::vector<size_t> perm(E);
  std::iota(perm.begin(), perm.end(), 0);
  if (m.has_routing() && r.kind() == config::RoutingDistribution::ZIPF && !shuffle) {
    std::shuffle(perm.begin(), perm.end(), rng);  // popular experts at seeded places, same every layer
  }
  for (int64_t l = 0; l < m.layers(); ++l) {
    if (!is_moe_layer(m, l)) continue;
    if (shuffle) std::shuffle(perm.begin(), perm.end(), rng);
    std::vector<double> v(E);
    for (size_t i = 0; i < E; ++i) v[perm[i]] = base[i];
    out[static_cast<size_t>(l)] = std::move(v);
  }
  return out;
}

std::vector<double> rank_loads(const std::vector<double>& share, int64_t ep) {
  std::vector<double> out(static_cast<size_t>(std::max<int64_t>(1, ep)), 0.0);
  if (share.empty()) {
    for (auto& x : out) x = 1.0 / static_cast<double>(out.size());
    return out;
  }
  const size_t per = share.size() / out.size();
  for (size_t e = 0; e < share.size(); ++e) out[std::min(out.size() - 1, e / std::max<size_t>(1, per))] += share[e];
  return out;
}

double imbalance(const std::vector<double>& s) {
  if (s.empty()) return 1;
  const double mean = std::accumulate(s.begin(), s.end(), 0.0) / static_cast<double>(s.size());
  return mean > 0 ? *std::max_element(s.begin(), s.end()) / mean : 1;
}

}  // namespace tcsim::workloads
