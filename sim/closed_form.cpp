#include "sim/closed_form.hpp"

#include <algorithm>

namespace tcsim::sim {

ClosedForm::ClosedForm(const Platform& platform) : platform_(platform) {
  const auto& links = platform.all_links();
  links_.resize(links.size());
  for (size_t i = 0; i < links.size(); ++i) {
    links_[i].bandwidth = links[i].bandwidth;
    links_[i].fatpipe = links[i].fatpipe;
  }
}

// As one L07 parallel task of the phase's transfers on an otherwise idle network takes it:
// the largest route latency, then the most loaded link's bytes over its bandwidth.
double ClosedForm::phase(const Phase& ph, uint32_t group, Evaluation& ev) {
  double latency = 0;
  ev.transfers += transfer_count(ph) * ph.repeat;
  for_each_transfer(ph, [&](int src, int dst, double bytes) {
    const double lat = platform_.for_each_hop(src, dst, [&](uint32_t id) {
      LinkState& l = links_[id];
      if (!l.in_phase) {
        l.in_phase = true;
        phase_links_.push_back(id);
      }
      l.load = l.fatpipe ? std::max(l.load, bytes) : l.load + bytes;
    });
    latency = std::max(latency, lat);
  });
  double transfer = 0;
  const double reps = static_cast<double>(ph.repeat);
  for (uint32_t id : phase_links_) {
    LinkState& l = links_[id];
    const double b = l.load;
    l.load = 0;
    l.in_phase = false;
    transfer = std::max(transfer, b * ph.byte_scale / l.bandwidth);
    // Per link, phases add up in the order they come (group by group, phase by phase).
    if (l.owner == 0) {
      l.owner = group;
      ev_links_.push_back(id);
    } else if (l.owner != group) {
      ev.groups_disjoint = false;
    }
    l.bytes += b * ph.byte_scale * reps;
  }
  phase_links_.clear();
  return reps * (latency + transfer);
}

void ClosedForm::collect(Evaluation& ev) {
  ev.link_bytes.reserve(ev_links_.size());
  for (uint32_t id : ev_links_) {
    ev.link_bytes.emplace_back(id, links_[id].bytes);
    links_[id].bytes = 0;
    links_[id].owner = 0;
  }
  ev_links_.clear();
}

Evaluation ClosedForm::collective(const std::vector<std::shared_ptr<const std::vector<Phase>>>& groups,
                                  const std::string& algorithm) {
  Evaluation ev;
  ev.algorithm = algorithm;
  uint32_t gi = 0;
  for (const auto& phases : groups) {
    ++gi;
    if (phases->empty()) continue;
    double chain = 0;
    for (const auto& ph : *phases) chain += phase(ph, gi, ev);
    ev.duration = std::max(ev.duration, chain);
  }
  collect(ev);
  return ev;
}

Evaluation ClosedForm::send(const Phase& ph) {
  Evaluation ev;
  ev.duration = phase(ph, 1, ev);
  collect(ev);
  return ev;
}

ShiftedForms::ShiftedForms(const Platform& platform) : platform_(platform) {}

void ShiftedForms::add_group(Shape& shape, const std::vector<int>& group, int base) {
  const size_t at = shape.ranks.size();
  shape.ranks.resize(at + 1 + group.size());
  int* out = shape.ranks.data() + at;
  *out++ = static_cast<int>(group.size());
  int lo = shape.lo, hi = shape.hi;
  for (int r : group) {
    const int d = r - base;
    *out++ = d;
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  shape.lo = lo;
  shape.hi = hi;
}

bool ShiftedForms::find(const Shape& shape, int base, Evaluation& out, bool links) {
  auto it = kept_.find(shape);
  if (it == kept_.end()) return false;
  for (const auto& [at, ev] : it->second) {
    const auto by = platform_.route_shift(at + shape.lo, at + shape.hi, base - at);
    if (!by.valid) continue;
    if (links && !platform_.shift_links(ev->link_bytes, by, out.link_bytes)) continue;
    out.duration = ev->duration;
    out.algorithm = ev->algorithm;
    out.groups_disjoint = ev->groups_disjoint;
    out.transfers = ev->transfers;
    return true;
  }
  return false;
}

void ShiftedForms::insert(Shape shape, int base, const Evaluation& ev) {
  kept_[std::move(shape)].emplace_back(base, &ev);
}

void EvaluationCache::bind(const Platform& platform, const std::string& selection) {
  if (platform_ == &platform && links_ == platform.all_links().size() && selection_ == selection) return;
  platform_ = &platform;
  links_ = platform.all_links().size();
  selection_ = selection;
  collectives_.clear();
  sends_.clear();
  entries_ = 0;
}

template <class Map>
const Evaluation* EvaluationCache::lookup(const Map& map, const typename Map::key_type& key) const {
  auto it = map.find(key);
  if (it == map.end()) return nullptr;
  ++hits_;
  return &it->second;
}

template <class Map>
void EvaluationCache::keep(Map& map, typename Map::key_type key, const Evaluation& ev) {
  if (entries_ + ev.link_bytes.size() > kMaxLinkEntries) {  // start afresh
    collectives_.clear();
    sends_.clear();
    entries_ = 0;
  }
  if (map.try_emplace(std::move(key), ev).second) entries_ += ev.link_bytes.size();
}

const Evaluation* EvaluationCache::find(const Collective& key) const { return lookup(collectives_, key); }
const Evaluation* EvaluationCache::find(const Send& key) const { return lookup(sends_, key); }
void EvaluationCache::insert(Collective key, const Evaluation& ev) { keep(collectives_, std::move(key), ev); }
void EvaluationCache::insert(Send key, const Evaluation& ev) { keep(sends_, std::move(key), ev); }

}  // namespace tcsim::sim
