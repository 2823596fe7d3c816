// Pipeline schedules: structure, and idle time on uniform stages against the closed forms
// of DeepSeek-V3 Table 2 (arXiv 2412.19437; shared/reference/models.md):
//   1F1B and GPipe (PP-1)(F+B); interleaved 1F1B (PP-1)(F+B)/v (Narayanan et al. §2.2.2);
//   ZB1P (PP-1)(F+B-2W); DualPipe (PP/2-1)(F&B+B-3W),
// where B is the whole backward (input + weight gradients) and W its weight part. Here
// F&B = F + B (compute only, nothing to overlap). The zero-bubble closed forms are derived
// for F = B_input = W (Qi et al. arXiv 2401.10241 §3; DualPipe's Table 2 uses the same
// unit): we check them there, and 1F1B/GPipe/interleaved for any F, B, W.
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.hpp"
#include "tests/sim/sim_test_util.hpp"
#include "workloads/schedule.hpp"

namespace tcsim::workloads {
namespace {

struct Case {
  const char* name;
  int64_t pp, m, v;
  double f, b, w;  // b: input-gradient part
};

double closed_form(const Case& c) {
  const double F = c.f, B = c.b + c.w, W = c.w, pp = static_cast<double>(c.pp);
  const std::string n = c.name;
  if (n == "gpipe" || n == "1f1b") return (pp - 1) * (F + B);
  if (n == "interleaved-1f1b") return (pp - 1) * (F + B) / static_cast<double>(c.v);
  if (n == "zb-h1") return (pp - 1) * (F + B - 2 * W);
  if (n == "dualpipe") return (pp / 2 - 1) * ((F + B) + B - 3 * W);
  return -1;
}

// Durations of a step: a chunk of an interleaved stage holds 1/v of its layers.
double step_seconds(const Case& c, const PipeStep& s) {
  const double k = std::string(c.name) == "interleaved-1f1b" ? 1.0 / static_cast<double>(c.v) : 1.0;
  switch (s.pass) {
    case Pass::F: return k * c.f;
    case Pass::B: return k * c.b;
    case Pass::W: return k * c.w;
    case Pass::BW: return k * (c.b + c.w);
  }
  return 0;
}

std::vector<Case> cases() {
  return {
      {"gpipe", 4, 8, 1, 1, 1, 1},       {"gpipe", 4, 8, 1, 2, 3, 1},        {"1f1b", 4, 8, 1, 1, 1, 1},
      {"1f1b", 8, 16, 1, 2, 3, 1},       {"interleaved-1f1b", 4, 8, 2, 1, 1, 1}, {"interleaved-1f1b", 4, 16, 4, 2, 3, 1},
      {"zb-h1", 4, 8, 1, 1, 1, 1},       {"zb-h1", 8, 24, 1, 1, 1, 1},       {"dualpipe", 4, 8, 1, 1, 1, 1},
      {"dualpipe", 8, 16, 1, 1, 1, 1},   {"dualpipe", 16, 40, 1, 1, 1, 1},
  };
}

TEST(PipelineSchedule, EveryRegisteredScheduleHasABuilderAndACitation) {
  EXPECT_EQ(schedule_builders().size(), 5u);
  for (const auto& b : schedule_builders()) {
    EXPECT_GT(std::string(b.citation).size(), 5u) << b.name;
    EXPECT_GT(std::string(b.description).size(), 5u) << b.name;
  }
}

TEST(PipelineSchedule, EveryMicroBatchRunsForwardAndBackwardOnEveryChunk) {
  for (const auto& c : cases()) {
    auto s = build_schedule(c.name, c.pp, c.m, c.v, {c.f, c.b, c.w});
    EXPECT_NO_THROW(check_schedule(s)) << c.name;
  }
}

TEST(PipelineSchedule, IdleTimeMatchesClosedFormsInTheListSimulation) {
  // Idle per stage = makespan - work (uniform stages: every stage has the same work,
  // m (F + B)); tolerance 1e-9 (the list simulation is exact arithmetic on these units).
  for (const auto& c : cases()) {
    auto s = build_schedule(c.name, c.pp, c.m, c.v, {c.f, c.b, c.w});
    auto t = simulate_schedule(s, [&](int64_t, const PipeStep& x) { return step_seconds(c, x); });
    const double work = static_cast<double>(c.m) * (c.f + c.b + c.w);
    EXPECT_NEAR(t.makespan - work, closed_form(c), 1e-9)
        << c.name << " pp=" << c.pp << " m=" << c.m << " v=" << c.v << " F=" << c.f << " B=" << c.b << " W=" << c.w;
  }
}

TEST(PipelineSchedule, DualPipeHoldsTwoChunksAndOverlapsForwardWithBackward) {
  auto s = build_schedule("dualpipe", 8, 16, 1);
  EXPECT_EQ(s.chunks_per_stage, 2);
  EXPECT_TRUE(s.bidirectional);
  int overlapped = 0;
  for (const auto& st : s.stages[3])
    if (st.overlap_next) ++overlapped;
  EXPECT_GT(overlapped, 0);
  // Direction 1 enters at the last stage.
  EXPECT_EQ(s.place(1, 0).stage, 7);
  EXPECT_EQ(s.place(1, 0).chunk, 1);
}

TEST(PipelineSchedule, RejectsTooFewMicroBatchesAndUnknownNames) {
  EXPECT_THROW(build_schedule("1f1b", 8, 4, 1), core::InputError);
  EXPECT_THROW(build_schedule("dualpipe", 8, 8, 1), core::InputError);
  EXPECT_THROW(build_schedule("dualpipe", 6, 13, 1), core::InputError);
  EXPECT_THROW(build_schedule("interleaved-1f1b", 4, 6, 2), core::InputError);
  try {
    build_schedule("zb-h2", 4, 8, 1);
    ADD_FAILURE();
  } catch (const core::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("dualpipe"), std::string::npos);
  }
}

// The same schedules through the real executor: a compute-only program (one lane per
// stage, one Fixed-duration compute op per step, zero-byte Send/Recv between stages) on an
// 8-GPU H100 node. Each step's duration is exact (Fixed class); p2p costs the link latency
// only (zero bytes are skipped), so the tolerance is 1% of the step.
Case cs_;  // the case being built (durations of its steps)

Program schedule_program(const Case& c, double unit) {
  auto s = build_schedule(c.name, c.pp, c.m, c.v, {c.f, c.b, c.w});
  auto timing = simulate_schedule(s, [&](int64_t, const PipeStep& x) { return step_seconds(c, x); });
  Program p;
  p.world_size = static_cast<int>(c.pp);
  for (int64_t st = 0; st < c.pp; ++st) p.lanes.push_back(Lane{{static_cast<int>(st)}, {}});
  const int64_t P = s.positions;
  // p2p order per lane: by the list simulation's time, then by tag (as the generator does).
  for (int64_t st = 0; st < c.pp; ++st) {
    struct Ev {
      double t;
      int cls;
      uint32_t tag;
      size_t step;
      int kind;  // 0 compute, 1 recv, 2 send
      uint32_t peer;
    };
    std::vector<Ev> evs;
    const auto& steps = s.stages[st];
    for (size_t i = 0; i < steps.size(); ++i) {
      const auto& x = steps[i];
      const int64_t pos = s.position(st, x.chunk);
      const int dir = s.chunk_direction(x.chunk);
      if (!(i > 0 && steps[i - 1].overlap_next)) evs.push_back({timing.steps[st][i].start, 1, 0, i, 0, 0});
      auto end_of = [&](Pass pass, int64_t p) {
        const ChunkPlace pl = s.place(dir, p);
        const auto& os = s.stages[pl.stage];
        for (size_t j = 0; j < os.size(); ++j)
          if (os[j].mb == x.mb && os[j].chunk == pl.chunk && (os[j].pass == pass || (pass == Pass::B && os[j].pass == Pass::BW)))
            return timing.steps[pl.stage][j].end;
        return -1.0;
      };
      auto tag = [&](bool grad, int64_t from) { return static_cast<uint32_t>((x.mb * 2 + (grad ? 1 : 0)) * P + from); };
      if (x.pass == Pass::F) {
        if (pos > 0) evs.push_back({end_of(Pass::F, pos - 1), 0, tag(false, pos - 1), i, 1, static_cast<uint32_t>(s.place(dir, pos - 1).stage)});
        if (pos < P - 1) evs.push_back({end_of(Pass::F, pos), 0, tag(false, pos), i, 2, static_cast<uint32_t>(s.place(dir, pos + 1).stage)});
      } else if (x.pass != Pass::W) {
        if (pos < P - 1) evs.push_back({end_of(Pass::B, pos + 1), 0, tag(true, pos + 1), i, 1, static_cast<uint32_t>(s.place(dir, pos + 1).stage)});
        if (pos > 0) evs.push_back({end_of(Pass::B, pos), 0, tag(true, pos), i, 2, static_cast<uint32_t>(s.place(dir, pos - 1).stage)});
      }
    }
    std::stable_sort(evs.begin(), evs.end(), [](const Ev& a, const Ev& b) { return std::tie(a.t, a.cls, a.tag) < std::tie(b.t, b.cls, b.tag); });
    auto& ops = p.lanes[st].ops;
    std::vector<uint32_t> recv_of(steps.size(), UINT32_MAX), last_of(steps.size(), UINT32_MAX);
    std::vector<std::vector<uint32_t>> recvs(steps.size());
    for (const auto& e : evs) {
      Op op;
      op.label = p.label(e.kind == 0 ? "step" : e.kind == 1 ? "recv" : "send");
      if (e.kind == 0) {
        const size_t n = steps[e.step].overlap_next ? 2 : 1;
        for (size_t k = 0; k < n; ++k) {
          Op c;
          c.kind = OpKind::Compute;
          c.compute.cls = ComputeClass::Fixed;
          c.compute.fixed_seconds = unit * step_seconds(cs_, steps[e.step + k]);
          c.label = op.label;
          for (uint32_t r : recvs[e.step + k]) c.deps.push_back(r);
          ops.push_back(c);
          last_of[e.step + k] = static_cast<uint32_t>(ops.size() - 1);
        }
        continue;
      }
      op.kind = e.kind == 1 ? OpKind::Recv : OpKind::Send;
      op.stream = Stream::PpComm;
      op.p2p.peer_lane = e.peer;
      op.p2p.tag = e.tag;
      op.p2p.bytes = 0;
      if (e.kind == 2) op.deps.push_back(last_of[e.step]);
      ops.push_back(op);
      if (e.kind == 1) recvs[e.step].push_back(static_cast<uint32_t>(ops.size() - 1));
    }
  }
  validate(p, "schedule test");
  return p;
}

TEST(PipelineSchedule, IdleTimeMatchesClosedFormsOnTheExecutor) {
  auto xml = simtest::make_platform("H100", 2);
  const double unit = 1e-3;  // 1 ms per unit of F
  for (const auto& c : std::vector<Case>{{"1f1b", 4, 8, 1, 1, 1, 1}, {"gpipe", 4, 8, 1, 2, 3, 1},
                                         {"interleaved-1f1b", 4, 8, 2, 1, 1, 1}, {"zb-h1", 4, 8, 1, 1, 1, 1},
                                         {"dualpipe", 8, 16, 1, 1, 1, 1}}) {
    cs_ = c;
    Program p = schedule_program(c, unit);
    auto r = simtest::in_child([&] { return std::vector<double>{simtest::run_program(xml, p).step_time}; });
    const double work = unit * static_cast<double>(c.m) * (c.f + c.b + c.w);
    const double expected = unit * closed_form(c);
    EXPECT_NEAR(r.at(0) - work, expected, 0.01 * (work + expected)) << c.name;
  }
}

}  // namespace
}  // namespace tcsim::workloads
