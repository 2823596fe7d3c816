#include "workloads/schedule.hpp"

#include <algorithm>
#include <cctype>
#include <deque>
#include <limits>
#include <map>
#include <stdexcept>

#include "core/error.hpp"
#include "workloads/plan.hpp"

namespace tcsim::workloads {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

PipelineSchedule empty_schedule(const char* name, int64_t pp, int64_t m, int64_t chunks, bool bidir) {
  PipelineSchedule s;
  s.name = name;
  s.pp = pp;
  s.micro_batches = m;
  s.chunks_per_stage = chunks;
  s.bidirectional = bidir;
  s.positions = bidir ? pp : pp * chunks;
  s.stages.resize(static_cast<size_t>(pp));
  return s;
}

PipeStep step(int64_t mb, int64_t chunk, Pass p, bool overlap = false) {
  return PipeStep{static_cast<int32_t>(mb), static_cast<int32_t>(chunk), p, overlap};
}

// GPipe: every forward, then every backward (in micro-batch order).
PipelineSchedule build_gpipe(int64_t pp, int64_t m, int64_t, const PassDurations&) {
  auto s = empty_schedule("gpipe", pp, m, 1, false);
  for (int64_t st = 0; st < pp; ++st) {
    for (int64_t i = 0; i < m; ++i) s.stages[st].push_back(step(i, 0, Pass::F));
    for (int64_t i = 0; i < m; ++i) s.stages[st].push_back(step(i, 0, Pass::BW));
  }
  return s;
}

// 1F1B (PipeDream-Flush): pp-s-1 warm-up forwards, then one forward one backward, then
// the remaining backwards.
PipelineSchedule build_1f1b(int64_t pp, int64_t m, int64_t, const PassDurations&) {
  auto s = empty_schedule("1f1b", pp, m, 1, false);
  for (int64_t st = 0; st < pp; ++st) {
    const int64_t warm = std::min(pp - st - 1, m);
    auto& out = s.stages[st];
    for (int64_t i = 0; i < warm; ++i) out.push_back(step(i, 0, Pass::F));
    for (int64_t i = 0; i < m - warm; ++i) {
      out.push_back(step(warm + i, 0, Pass::F));
      out.push_back(step(i, 0, Pass::BW));
    }
    for (int64_t i = m - warm; i < m; ++i) out.push_back(step(i, 0, Pass::BW));
  }
  return s;
}

// Megatron-LM interleaved 1F1B (schedules.py forward_backward_pipelining_with_interleaving):
// virtual micro-step k maps to chunk (k mod pp·v) / pp (reversed for backward) and
// micro-batch (k / (pp·v))·pp + k mod pp; warm-up (pp-s-1)·2 + (v-1)·pp micro-steps.
PipelineSchedule build_interleaved(int64_t pp, int64_t m, int64_t v, const PassDurations&) {
  v = std::max<int64_t>(1, v);
  auto s = empty_schedule("interleaved-1f1b", pp, m, v, false);
  const int64_t total = m * v, group = pp * v;
  auto chunk_of = [&](int64_t k, bool fwd) {
    int64_t c = (k % group) / pp;
    return fwd ? c : v - 1 - c;
  };
  auto mb_of = [&](int64_t k) { return (k / group) * pp + k % pp; };
  for (int64_t st = 0; st < pp; ++st) {
    int64_t warm = m == pp ? total : std::min(total, (pp - st - 1) * 2 + (v - 1) * pp);
    auto& out = s.stages[st];
    for (int64_t k = 0; k < warm; ++k) out.push_back(step(mb_of(k), chunk_of(k, true), Pass::F));
    for (int64_t i = 0; i < total - warm; ++i) {
      out.push_back(step(mb_of(warm + i), chunk_of(warm + i, true), Pass::F));
      out.push_back(step(mb_of(i), chunk_of(i, false), Pass::BW));
    }
    for (int64_t k = total - warm; k < total; ++k) out.push_back(step(mb_of(k), chunk_of(k, false), Pass::BW));
  }
  return s;
}

// ZB-H1 (Qi et al., arXiv 2401.10241 §3.1, Figure 3): the backward split into B (input
// gradients) and W (weight gradients). Stage s runs 1F1B's warm-up (pp - s forwards), then
// for each micro-batch k: B_k, W_{k-s}, F_{k+pp-s}, then the W passes still pending. The
// weight pass of stage s lags its B by s micro-batches, so the later stages, which wait
// longest for work in 1F1B, fill those waits with W. Memory: at most pp micro-batches hold
// activations (F done, W not yet) on any stage, the peak of 1F1B (its stage 0), which is
// what makes it H1 rather than H2. Uniform stages idle (pp-1)(F + B - W) with B the
// input-gradient part whenever W <= min(F, B): DeepSeek-V3 Table 2's (PP-1)(F+B-2W), whose
// B is the whole backward. The order does not depend on the durations.
PipelineSchedule build_zbh1(int64_t pp, int64_t m, int64_t, const PassDurations&) {
  auto s = empty_schedule("zb-h1", pp, m, 1, false);
  for (int64_t st = 0; st < pp; ++st) {
    auto& out = s.stages[st];
    const int64_t warm = std::min(pp - st, m);
    for (int64_t k = 0; k < warm; ++k) out.push_back(step(k, 0, Pass::F));
    for (int64_t k = 0; k < m; ++k) {
      out.push_back(step(k, 0, Pass::B));
      if (k - st >= 0) out.push_back(step(k - st, 0, Pass::W));
      if (k + pp - st < m) out.push_back(step(k + pp - st, 0, Pass::F));
    }
    for (int64_t k = std::max<int64_t>(0, m - st); k < m; ++k) out.push_back(step(k, 0, Pass::W));
  }
  return s;
}

// DualPipe (DeepSeek-V3 §3.2.1), following the eight phases of the reference
// implementation (github.com/deepseek-ai/DualPipe, dualpipe.py, DualPipe.step).
PipelineSchedule build_dualpipe(int64_t pp, int64_t m, int64_t, const PassDurations&) {
  auto s = empty_schedule("dualpipe", pp, m, 2, true);
  const int64_t half = pp / 2, half_m = m / 2;
  for (int64_t r = 0; r < pp; ++r) {
    auto& out = s.stages[r];
    const int64_t hr = std::min(r, pp - 1 - r);
    const int second = r >= half ? 1 : 0;
    const bool middle = r == half - 1 || r == half;
    int64_t nf[2] = {0, 0}, nb[2] = {0, 0};
    std::deque<PipeStep> wq;
    auto dir = [&](int phase) { return phase ^ second; };
    auto mb_id = [&](int d, int64_t i) { return d == 0 ? i : half_m + i; };
    auto fwd = [&](int phase, bool overlap = false) {
      int d = dir(phase);
      out.push_back(step(mb_id(d, nf[d]++), d, Pass::F, overlap));
    };
    auto bwd = [&](int phase, bool zb) {
      int d = dir(phase);
      int64_t mb = mb_id(d, nb[d]++);
      if (zb) {
        out.push_back(step(mb, d, Pass::B));
        wq.push_back(step(mb, d, Pass::W));
      } else {
        out.push_back(step(mb, d, Pass::BW));
      }
    };
    auto weight = [&] {
      if (wq.empty()) throw std::logic_error("dualpipe: weight pass without a pending W");
      out.push_back(wq.front());
      wq.pop_front();
    };
    auto fb = [&](int p0, int p1) {
      fwd(p0, true);
      bwd(p1, false);
    };
    for (int64_t i = 0; i < (half - hr - 1) * 2; ++i) fwd(0);                 // 1: nF0
    for (int64_t i = 0; i < hr + 1; ++i) { fwd(0); fwd(1); }                  // 2: nF0F1
    for (int64_t i = 0; i < half - hr - 1; ++i) { bwd(1, true); weight(); fwd(1); }  // 3: nB1W1F1
    const int64_t s4 = half_m - pp + hr + 1;                                  // 4: nF0B1F1B0
    for (int64_t i = 0; i < s4; ++i) {
      if (i == 0 && middle) {
        fwd(0);
        bwd(1, false);
      } else {
        fb(0, 1);
      }
      fb(1, 0);
    }
    for (int64_t i = 0; i < half - hr - 1; ++i) { bwd(1, false); fb(1, 0); }  // 5: nB1F1B0
    bool zb = false;                                                          // 6: nB1B0
    for (int64_t i = 0; i < hr + 1; ++i) {
      if (i == (hr + 1) / 2 && hr % 2 == 1) zb = true;
      bwd(1, zb);
      if (i == (hr + 1) / 2 && hr % 2 == 0) zb = true;
      bwd(0, zb);
    }
    for (int64_t i = 0; i < half - hr - 1; ++i) { weight(); bwd(0, true); }   // 7: nWB0
    while (!wq.empty()) weight();                                             // 8: nW
  }
  return s;
}

}  // namespace

const char* to_string(Pass p) {
  switch (p) {
    case Pass::F: return "F";
    case Pass::B: return "B";
    case Pass::W: return "W";
    case Pass::BW: return "BW";
  }
  return "?";
}

int PipelineSchedule::direction(int64_t mb) const { return bidirectional && mb >= micro_batches / 2 ? 1 : 0; }

ChunkPlace PipelineSchedule::place(int dir, int64_t pos) const {
  if (bidirectional) {
    return dir == 0 ? ChunkPlace{static_cast<int32_t>(pos), 0} : ChunkPlace{static_cast<int32_t>(pp - 1 - pos), 1};
  }
  return ChunkPlace{static_cast<int32_t>(pos % pp), static_cast<int32_t>(pos / pp)};
}

int64_t PipelineSchedule::position(int64_t stage, int64_t chunk) const {
  if (bidirectional) return chunk == 0 ? stage : pp - 1 - stage;
  return chunk * pp + stage;
}

const std::vector<ScheduleBuilder>& schedule_builders() {
  static const std::vector<ScheduleBuilder> v = [] {
    std::map<std::string, std::function<PipelineSchedule(int64_t, int64_t, int64_t, const PassDurations&)>> fns = {
        {"gpipe", build_gpipe}, {"1f1b", build_1f1b}, {"interleaved-1f1b", build_interleaved},
        {"zb-h1", build_zbh1}, {"dualpipe", build_dualpipe}};
    std::vector<ScheduleBuilder> out;
    for (const auto& info : pipeline_schedules()) {
      auto it = fns.find(info.name);
      if (it == fns.end()) throw std::logic_error(std::string("schedule without a builder: ") + info.name);
      out.push_back({info.name, info.description, info.citation, it->second});
    }
    return out;
  }();
  return v;
}

PipelineSchedule build_schedule(const std::string& name, int64_t pp, int64_t m, int64_t v, const PassDurations& d) {
  const std::string l = lower(name.empty() ? "1f1b" : name);
  pp = std::max<int64_t>(1, pp);
  for (const auto& b : schedule_builders()) {
    if (l != b.name) continue;
    const ScheduleInfo* info = find_schedule(l);
    if (m < 1) throw core::InputError("plan.num_micro_batches", "needs at least 1 micro-batch, got " + std::to_string(m));
    if (pp > 1 && m < min_micro_batches(l, pp)) {
      throw core::InputError("plan.num_micro_batches", std::to_string(m) + " micro-batches, but schedule " + l + " with pp=" +
                                                           std::to_string(pp) + " needs at least " +
                                                           std::to_string(min_micro_batches(l, pp)));
    }
    if (info != nullptr && info->bidirectional && (pp % 2 != 0 || m % 2 != 0)) {
      throw core::InputError("plan.pp", "dualpipe needs an even pp and an even number of micro-batches (pp=" + std::to_string(pp) +
                                            ", micro-batches=" + std::to_string(m) + ")");
    }
    if (info != nullptr && info->interleaved && (v < 2 || m % pp != 0)) {
      throw core::InputError("plan.virtual_stages", "interleaved-1f1b needs virtual_stages >= 2 and micro-batches a multiple of pp (v=" +
                                                        std::to_string(v) + ", micro-batches=" + std::to_string(m) + ")");
    }
    if (pp == 1 && (info == nullptr || !info->interleaved)) return build_1f1b(1, m, 1, d);  // no pipeline: F, BW per micro-batch
    return b.build(pp, m, v, d);
  }
  std::string names;
  for (const auto& b : schedule_builders()) names += (names.empty() ? "" : ", ") + std::string(b.name);
  throw core::InputError("plan.schedule", "unknown schedule '" + name + "'; valid: " + names);
}

ScheduleTiming simulate_schedule(const PipelineSchedule& s, const std::function<double(int64_t, const PipeStep&)>& duration,
                                 double lat) {
  const double inf = std::numeric_limits<double>::infinity();
  const int64_t pp = s.pp, P = s.positions, m = s.micro_batches;
  // Done times per (mb, position).
  std::vector<double> f_done(static_cast<size_t>(m * P), inf), b_done(static_cast<size_t>(m * P), inf);
  auto at = [&](int64_t mb, int64_t pos) { return static_cast<size_t>(mb * P + pos); };
  ScheduleTiming out;
  out.steps.resize(static_cast<size_t>(pp));
  out.busy.assign(static_cast<size_t>(pp), 0.0);
  std::vector<size_t> cursor(static_cast<size_t>(pp), 0);
  std::vector<double> free_at(static_cast<size_t>(pp), 0.0);
  for (int64_t st = 0; st < pp; ++st) out.steps[st].resize(s.stages[st].size());
  auto input_ready = [&](int64_t st, const PipeStep& x) -> double {
    const int64_t pos = s.position(st, x.chunk);
    switch (x.pass) {
      case Pass::F: return pos == 0 ? 0.0 : f_done[at(x.mb, pos - 1)] + lat;
      case Pass::B:
      case Pass::BW: return pos == P - 1 ? f_done[at(x.mb, pos)] : b_done[at(x.mb, pos + 1)] + lat;
      case Pass::W: return b_done[at(x.mb, pos)];
    }
    return inf;
  };
  bool progress = true;
  while (progress) {
    progress = false;
    for (int64_t st = 0; st < pp; ++st) {
      auto& steps = s.stages[st];
      while (cursor[st] < steps.size()) {
        const PipeStep& x = steps[cursor[st]];
        const bool pair = x.overlap_next && cursor[st] + 1 < steps.size();
        double ready = input_ready(st, x);
        double dur = duration(st, x);
        if (pair) {
          const PipeStep& y = steps[cursor[st] + 1];
          ready = std::max(ready, input_ready(st, y));
          dur += duration(st, y);
        }
        if (ready == inf) break;
        const double start = std::max(ready, free_at[st]);
        const double end = start + dur;
        const size_t n = pair ? 2 : 1;
        for (size_t k = 0; k < n; ++k) {
          const PipeStep& z = steps[cursor[st] + k];
          const int64_t pos = s.position(st, z.chunk);
          out.steps[st][cursor[st] + k] = {start, end};
          if (z.pass == Pass::F) f_done[at(z.mb, pos)] = end;
          if (z.pass == Pass::B || z.pass == Pass::BW) b_done[at(z.mb, pos)] = end;
        }
        out.busy[st] += dur;
        free_at[st] = end;
        out.makespan = std::max(out.makespan, end);
        cursor[st] += n;
        progress = true;
      }
    }
  }
  for (int64_t st = 0; st < pp; ++st) {
    if (cursor[st] != s.stages[st].size()) {
      throw std::logic_error("schedule " + s.name + " deadlocks at stage " + std::to_string(st) + " step " +
                             std::to_string(cursor[st]));
    }
  }
  return out;
}

void check_schedule(const PipelineSchedule& s) {
  const int64_t P = s.positions, m = s.micro_batches;
  std::vector<int> f(static_cast<size_t>(m * P), 0), b(static_cast<size_t>(m * P), 0), w(static_cast<size_t>(m * P), 0);
  for (int64_t st = 0; st < s.pp; ++st) {
    for (const auto& x : s.stages[st]) {
      if (x.mb < 0 || x.mb >= m || x.chunk < 0 || x.chunk >= s.chunks_per_stage) throw std::logic_error("step out of range");
      const int64_t pos = s.position(st, x.chunk);
      if (s.direction(x.mb) != s.chunk_direction(x.chunk)) throw std::logic_error("micro-batch on the wrong direction's chunk");
      const size_t i = static_cast<size_t>(x.mb * P + pos);
      if (x.pass == Pass::F) ++f[i];
      if (x.pass == Pass::B || x.pass == Pass::BW) {
        if (f[i] != 1) throw std::logic_error("backward before forward");
        ++b[i];
      }
      if (x.pass == Pass::W || x.pass == Pass::BW) {
        if (x.pass == Pass::W && b[i] != 1) throw std::logic_error("W before B");
        ++w[i];
      }
    }
  }
  for (int64_t mb = 0; mb < m; ++mb) {
    for (int64_t pos = 0; pos < P; ++pos) {
      const size_t i = static_cast<size_t>(mb * P + pos);
      if (f[i] != 1 || b[i] != 1 || w[i] != 1) {
        throw std::logic_error("schedule " + s.name + ": micro-batch " + std::to_string(mb) + " position " + std::to_string(pos) +
                               " has " + std::to_string(f[i]) + " F, " + std::to_string(b[i]) + " B, " + std::to_string(w[i]) + " W");
      }
    }
  }
}

}  // namespace tcsim::workloads
