#include "sim/closed_form.hpp"

#include <algorithm>
#include <map>
#include <unordered_map>

namespace tcsim::sim {
namespace sg = simgrid::s4u;

double ClosedForm::phase(const Phase& ph, std::vector<std::pair<sg::Link*, double>>& carried) {
  std::unordered_map<sg::Link*, double> load;
  std::vector<sg::Link*> route;
  double latency = 0;
  for (const auto& t : ph.transfers) {
    route.clear();
    double lat = 0;
    platform_.route(t.src, t.dst, route, &lat);
    latency = std::max(latency, lat);
    for (sg::Link* l : route) {
      double& b = load[l];
      b = l->get_sharing_policy() == sg::Link::SharingPolicy::FATPIPE ? std::max(b, t.bytes) : b + t.bytes;
    }
  }
  double transfer = 0;
  const double reps = static_cast<double>(ph.repeat);
  for (const auto& [l, b] : load) {
    transfer = std::max(transfer, b * ph.byte_scale / l->get_bandwidth());
    carried.emplace_back(l, b * ph.byte_scale * reps);
  }
  return reps * (latency + transfer);
}

Evaluation ClosedForm::collective(const std::vector<std::shared_ptr<const std::vector<Phase>>>& groups,
                                  const std::string& algorithm) {
  Evaluation ev;
  std::unordered_map<sg::Link*, size_t> owner;  // link -> first group that uses it
  ev.algorithm = algorithm;
  size_t gi = 0;
  for (const auto& phases : groups) {
    ++gi;
    if (phases->empty()) continue;
    double chain = 0;
    const size_t first = ev.link_bytes.size();
    for (const auto& ph : *phases) chain += phase(ph, ev.link_bytes);
    for (size_t e = first; e < ev.link_bytes.size(); ++e) {
      auto [it, fresh] = owner.emplace(ev.link_bytes[e].first, gi);
      if (!fresh && it->second != gi) ev.groups_disjoint = false;
    }
    ev.duration = std::max(ev.duration, chain);
  }
  // Merge the per-phase entries per link.
  std::map<sg::Link*, double> merged;
  for (const auto& [l, b] : ev.link_bytes) merged[l] += b;
  ev.link_bytes.assign(merged.begin(), merged.end());
  return ev;
}

Evaluation ClosedForm::send(const Phase& ph) {
  Evaluation ev;
  ev.duration = phase(ph, ev.link_bytes);
  return ev;
}

}  // namespace tcsim::sim
