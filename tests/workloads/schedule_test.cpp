// Pipeline schedules: structure, and idle time on uniform stages against the closed forms
// of DeepSeek-V3 Table 2 (arXiv 2412.19437; shared/reference/models.md):
//   1F1B and GPipe (PP-1)(F+B); interleaved 1F1B (PP-1)(F+B)/v (Narayanan et al. §2.2.2);
//   ZB1P (PP-1)(F+B-2W); DualPipe (PP/2-1)(F&B+B-3W),
// where B is the whole backward (input + weight gradients) and W its weight part. Here
// F&B = F + B (compute only, nothing to overlap). 1F1B/GPipe/interleaved hold for any F, B,
// W. ZB-H1 (Qi et al.'s order, arXiv 2401.10241 Fig. 3) matches its form for any durations
// with W <= min(F, B_input). DualPipe (the reference implementation's order) matches its
// form whenever F = B_input and W <= F; at F != B_input the form is neither an upper nor a
// lower bound (worked examples below, workloads/README.md).
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
      // Unequal passes where the closed forms hold: ZB-H1 with W <= min(F, B_input),
      // DualPipe with F = B_input.
      {"zb-h1", 4, 8, 1, 2, 2, 1},       {"zb-h1", 8, 24, 1, 1, 1.5, 0.5},   {"zb-h1", 4, 8, 1, 2, 1, 1},
      {"dualpipe", 8, 16, 1, 2, 2, 1},   {"dualpipe", 8, 16, 1, 1, 1, 0.5},  {"dualpipe", 16, 40, 1, 2, 2, 1},
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

// Idle of a schedule on uniform stages with the given pass durations (makespan - work).
double idle_of(const Case& c) {
  auto s = build_schedule(c.name, c.pp, c.m, c.v, {c.f, c.b, c.w});
  auto t = simulate_schedule(s, [&](int64_t, const PipeStep& x) { return step_seconds(c, x); });
  return t.makespan - static_cast<double>(c.m) * (c.f + c.b + c.w);
}

TEST(PipelineSchedule, ZeroBubbleH1HoldsNoMoreMicroBatchesThan1F1B) {
  // ZB-H1's defining bound (Qi et al. §3.1): peak memory that of 1F1B, whose stage 0 holds
  // pp micro-batches. Counted until W (a micro-batch's activations stay until its weight
  // gradients are computed): at most pp on every stage; until B, 1F1B's pp - s. A placement
  // that pushes every W to the end of the step (and so idles only (pp-1)max(F, B_input))
  // holds all m micro-batches instead.
  for (auto [pp, m] : std::vector<std::pair<int64_t, int64_t>>{{4, 8}, {8, 24}, {2, 4}}) {
    auto s = build_schedule("zb-h1", pp, m, 1, {2, 2, 1});
    for (int64_t st = 0; st < pp; ++st) {
      int64_t until_w = 0, until_b = 0, max_w = 0, max_b = 0;
      for (const auto& x : s.stages[static_cast<size_t>(st)]) {
        if (x.pass == Pass::F) ++until_w, ++until_b;
        if (x.pass == Pass::B) --until_b;
        if (x.pass == Pass::W) --until_w;
        max_w = std::max(max_w, until_w);
        max_b = std::max(max_b, until_b);
      }
      EXPECT_EQ(max_w, pp) << "pp=" << pp << " stage " << st;
      EXPECT_EQ(max_b, pp - st) << "pp=" << pp << " stage " << st;
    }
  }
}

TEST(PipelineSchedule, ZeroBubbleH1WorkedExampleAtUnequalPasses) {
  // pp = 2, m = 4, F = 2, B_input = 2, W = 1 (Table 2's B = 3). Qi et al.'s order, each step
  // started when its stage is free and its input is there:
  //   stage 0: F0[0,2] F1[2,4] B0[6,8] W0[8,9] F2[9,11] B1[11,13] W1[13,14] F3[14,16]
  //            B2[16,18] W2[18,19] B3[20,22] W3[22,23]
  //   stage 1: F0[2,4] B0[4,6] F1[6,8] B1[8,10] W0[10,11] F2[11,13] B2[13,15] W1[15,16]
  //            F3[16,18] B3[18,20] W2[20,21] W3[21,22]
  // Makespan 23, work 4 x (2+2+1) = 20: idle 3 = (pp-1)(F+B-2W) = 1 x (2+3-2). Stage 0
  // waits [4,6] for stage 1's B0 (B_input) and [19,20] for its B3 (F - W: stage 1 runs
  // F3 B3 = F + B_input after its W1 while stage 0 runs W2 after B2).
  // Pushing every W to the end instead (B first, else F within 1F1B's warm-up bound, else
  // W) gives stage 0: F0 F1 B0[6,8] F2 B1 F3 B2[14,16] W0 W1 B3[18,20] W2 W3 and stage 1:
  // F0[2,4] B0 F1 B1 F2 B2 F3 B3[16,18] W0..W3[18,22]: makespan 22, idle 2 =
  // (pp-1) max(F, B_input), below the closed form only because all 4 micro-batches hold
  // their activations until the end (ZB-H1 holds at most pp = 2).
  const Case c{"zb-h1", 2, 4, 1, 2, 2, 1};
  EXPECT_NEAR(idle_of(c), closed_form(c), 1e-9);
  EXPECT_NEAR(idle_of(c), 3.0, 1e-9);
  auto s = build_schedule("zb-h1", 2, 4, 1);
  std::string order0;
  for (const auto& x : s.stages[0]) order0 += std::string(to_string(x.pass)) + std::to_string(x.mb) + " ";
  EXPECT_EQ(order0, "F0 F1 B0 W0 F2 B1 W1 F3 B2 W2 B3 W3 ");
}

TEST(PipelineSchedule, DualPipeAtUnequalForwardAndInputBackwardDiffersFromTable2) {
  // The order follows the reference implementation (dualpipe.py DualPipe.step, phases 1-8),
  // so its idle on uniform stages is whatever that order gives; Table 2's
  // (PP/2-1)(F&B+B-3W) reproduces it exactly when F = B_input and W <= F (cases() above).
  // pp = 4, m = 8 (micro-batches 0-3 enter at stage 0, 4'-7' at stage 3), F&B = F + B.
  //
  // F = 1, B_input = 2, W = 1 (B = 3): Table 2 gives 1 x (4 + 3 - 3) = 4. Traced:
  //   stage 0: F0[0,1] F1[1,2] F2[2,3] F4'[3,4] B4'[4,6] W4'[6,7] F5'[7,8] F3&BW5'[8,12]
  //            F6'&BW0[13,17] BW6'[17,20] F7'&BW1[21,25] BW7'[25,28] B2[28,30] W2[30,31]
  //            B3[32,34] W3[34,35]
  //   stage 1: F0[1,2] F4'[2,3] F1[3,4] F5'[4,5] F2[5,6] BW4'[6,9] F6'&BW0[9,13]
  //            F3&BW5'[13,17] F7'&BW1[17,21] BW6'[21,24] BW2[24,27] B7'[28,30] B3[30,32]
  //            W7'[32,33] W3[33,34]
  // Stage 0 waits [12,13] and [20,21] for stage 1's pairs (F6', F7') and [31,32] for its
  // B3: makespan 35, work 8 x 4 = 32, idle 3 < 4.
  //
  // F = 2, B_input = 1, W = 1 (B = 2): Table 2 gives 1 x (4 + 2 - 3) = 3. Traced:
  //   stage 0: F0[0,2] F1[2,4] F2[4,6] F4'[6,8] B4'[8,9] W4'[9,10] F5'[10,12]
  //            F3&BW5'[12,16] F6'&BW0[18,22] BW6'[22,24] F7'&BW1[26,30] BW7'[30,32]
  //            B2[32,33] W2[33,34] B3[34,35] W3[35,36]
  //   stage 1: F0[2,4] F4'[4,6] F1[6,8] F5'[8,10] F2[10,12] BW4'[12,14] F6'&BW0[14,18]
  //            F3&BW5'[18,22] F7'&BW1[22,26] BW6'[26,28] BW2[28,30] B7'[32,33] B3[33,34]
  //            W7'[34,35] W3[35,36]
  // Stage 0 waits [16,18] and [24,26] (F each) for stage 1's pairs: makespan 36, work
  // 8 x 4 = 32, idle 4 > 3. Stages 2 and 3 mirror stages 1 and 0.
  // In both, stage 0 waits F twice for stage 1's F&B pairs (stage 1's first pair ends at
  // F + 5F + B + (F + B): five warm-up forwards and a backward after starting F late;
  // stage 0's at 4F + B_input + W + F + (F + B), one F earlier) and B_input - W at the end:
  // 2F + B_input - W = 3 and 4. Table 2 at PP = 4 is F + 2 B_input - W: it counts F +
  // B_input for the two pair waits, the same only at F = B_input.
  const Case below{"dualpipe", 4, 8, 1, 1, 2, 1}, above{"dualpipe", 4, 8, 1, 2, 1, 1};
  EXPECT_NEAR(idle_of(below), 3.0, 1e-9);
  EXPECT_NEAR(closed_form(below), 4.0, 1e-9);
  EXPECT_NEAR(idle_of(above), 4.0, 1e-9);
  EXPECT_NEAR(closed_form(above), 3.0, 1e-9);
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
