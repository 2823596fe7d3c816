// The program generator's class (private to workloads/generator*.cpp; the interface is
// workloads/generator.hpp). Split by theme: workloads/generator.cpp holds the entry points,
// lanes and communicator groups, pipeline sends and each lane's program from the schedule
// (events, passes, gradient reduction after backward, optimizer step, ZeRO-1/2 parameter
// all-gathers); workloads/generator_passes.cpp the per-layer work (TP/SP/CP collectives,
// attention, MoE, recompute, ZeRO-3 gathers, per-layer gradient reduction) and the segment
// of one pass of a chunk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "workloads/generator.hpp"
#include "workloads/model.hpp"
#include "workloads/multimodal.hpp"
#include "workloads/plan.hpp"
#include "workloads/schedule.hpp"
#include "workloads/segment.hpp"

namespace tcsim::workloads::generator_detail {

using segment::kGlobal;
using segment::kNone;
using segment::Seg;

inline double d(int64_t v) { return static_cast<double>(v); }

struct LaneInfo {
  int64_t stage = 0;
  int64_t e = 0;  // EP index (only meaningful with routing skew)
  std::vector<int> ranks;
};

// kEmb: the first and the last pipeline stage, whose tied word embeddings sum gradients.
// In the order of RankLayout::CommGroups.
enum Dim { kTp, kCp, kEp, kDp, kEdp, kEmb, kDims };

class Generator {
public:
  Generator(const config::Workload& w, int gpus, const GeneratorOptions& o) : w_(w), gpus_(gpus), opt_(o) {}
  Program run();

private:
  // ------------------------------------------------------------------ lanes and groups (generator.cpp)
  void make_lanes();
  uint32_t peer(uint32_t l, int64_t stage) const;
  void make_comms();

  // ------------------------------------------------------------------ op helpers
  uint32_t label(const std::string& s) {
    // try_emplace looks the name up first; emplace built a node (a copy of the name) for
    // every op and freed it again when the name was known, as it nearly always is.
    auto [it, fresh] = labels_.try_emplace(s, static_cast<uint32_t>(p_.labels.size()));
    if (fresh) p_.labels.push_back(s);
    return it->second;
  }
  Op compute_op(const std::string& name, double flops, ComputeClass cls, Precision prec, double hbm = 0) {
    Op op;
    op.kind = OpKind::Compute;
    op.stream = Stream::Compute;
    op.compute.flops = flops;
    op.compute.hbm_bytes = hbm;
    op.compute.cls = cls;
    op.compute.precision = prec;
    op.label = label(name);
    return op;
  }
  Op coll_op(const std::string& name, CollectiveType t, Dim dim, uint32_t lane, double bytes, Stream st, CommCategory cat) {
    Op op;
    op.kind = OpKind::Collective;
    op.stream = st;
    op.category = cat;
    op.coll.type = t;
    op.coll.comm = comm_of_[dim][lane];
    op.coll.bytes = bytes;
    op.label = label(name);
    return op;
  }
  bool has(Dim dim, uint32_t lane) const { return comm_of_[dim][lane] != kNone; }

  // ------------------------------------------------------------------ per-layer work (generator_passes.cpp)
  struct MbShape {
    double tokens = 0;      // per rank (after CP split)
    double seq = 0;         // sequence length seen by attention
    double img_tokens = 0;  // per rank, for cross-attention and p2p
  };
  MbShape shape(int64_t mb) const;
  double dense_layer_params_per_rank(int64_t l) const;
  double head_params_per_rank() const;
  double expert_layer_params(int64_t l) const;
  void tp_before(Seg& s, uint32_t lane, const std::string& n, double bytes);
  void tp_after(Seg& s, uint32_t lane, const std::string& n, double bytes);
  void sp_regather(Seg& s, uint32_t lane, const std::string& n, double bytes, bool overlapped);
  void zero3_gather(Seg& s, uint32_t lane, int64_t l, const std::string& dir);
  void layer_forward(Seg& s, uint32_t lane, int64_t l, const MbShape& sh, const std::string& dir, bool recompute);
  double cross_flops(const MbShape& sh) const;
  void attention_core(Seg& s, uint32_t lane, const std::string& L, double flops, const MbShape& sh, const std::string& dir,
                      double k, bool backward);
  void materialized_attention(Seg& s, const std::string& L, double full_flops, const MbShape& sh, const std::string& dir,
                              bool backward);
  bool recomputes(config::ParallelPlan::RecomputeModule mod) const;
  void selective_recompute(Seg& s, uint32_t lane, int64_t l, const LayerFlops& f, const MbShape& sh, const std::string& L);
  void moe_block(Seg& s, uint32_t lane, int64_t l, const LayerFlops& f, const MbShape& sh, const std::string& dir, bool backward,
                 double k);
  const std::vector<double>* matrix(int64_t l, double bytes, bool to_experts);
  void layer_backward(Seg& s, uint32_t lane, int64_t l, const MbShape& sh, Pass pass, bool last_mb_of_chunk);
  void grad_sync(Seg& s, uint32_t lane, int64_t l, bool last_mb_of_chunk);

  // ------------------------------------------------------------------ one pass of a chunk (generator_passes.cpp)
  // What a pass's segment depends on besides its lane: pass, chunk, last micro-batch of the
  // chunk, and the micro-batch's images (images, patches, tokens, encoder FLOP).
  using SegKey = std::tuple<int, int64_t, bool, int64_t, double, double, double>;
  Seg pass_segment(uint32_t lane, const PipeStep& st, bool last_mb_of_chunk);
  void add_gather_deps(Seg& s, size_t from);
  void vision(Seg& s, uint32_t lane, const MicroBatchImages& im, double k, const std::string& dir);
  void embedding_grads(Seg& s, uint32_t lane, double params, const std::string& what, bool last_mb);

  // ------------------------------------------------------------------ p2p (generator.cpp)
  Op p2p_op(OpKind kind, uint32_t peer_lane, double bytes, uint32_t tag, const std::string& name);
  uint32_t tag(int64_t mb, bool grad, int64_t from_pos) const;
  double boundary_bytes(int64_t mb) const;
  double p2p_bytes(int64_t mb) const;

  // ------------------------------------------------------------------ one lane (generator.cpp)
  void build_lane(uint32_t lane);
  void emit(uint32_t lane, const std::vector<const Seg*>& segs, const std::vector<std::vector<uint32_t>>& ext_of,
            const std::vector<std::pair<size_t, size_t>>& order, const std::vector<size_t>& step_ids, std::vector<uint32_t>& step_first,
            std::vector<uint32_t>& step_last);

  const config::Workload& w_;
  int gpus_;
  GeneratorOptions opt_;
  config::ModelSpec m_;
  config::ParallelPlan r_;
  int64_t tp_ = 1, cp_ = 1, pp_ = 1, dp_ = 1, ep_ = 1, v_ = 1, seq_ = 0, mbsz_ = 1, mbs_ = 1, zero_ = 0;
  bool moe_ = false, sp_ = false, skew_ = false, vision_ = false, cross_ = false;
  bool after_backward_ = false;  // plan.grad_reduce = after_backward
  bool scatter_gather_ = false;  // pipeline sends split over TP and all-gathered on receipt
  bool tied_copy_ = false;       // the last stage holds a copy of the tied word embeddings
  int64_t first_stage_ = 0, last_stage_ = 0;  // stages of the first and the last layer chunk
  double grad_bytes_ = 4;        // bytes per gradient element in the data-parallel reduction
  Precision prec_ = Precision::BF16;
  ParamCounts params_;
  std::vector<LayerRange> chunks_;
  PipelineSchedule sched_;
  ScheduleTiming timing_;
  std::vector<MicroBatchImages> images_;
  std::vector<std::vector<double>> rank_share_;
  std::map<std::tuple<int64_t, double, bool>, const std::vector<double>*> matrices_;  // into p_.matrices
  std::unique_ptr<RankLayout> layout_;
  std::vector<LaneInfo> info_;
  std::vector<uint32_t> lane_of_rank_;
  std::vector<uint32_t> comm_of_[kDims];
  std::unordered_map<std::string, uint32_t> labels_;
  Program p_;
  std::vector<uint32_t> grads_;     // gradient collectives of the current lane (lane op indices)
  size_t ops_hint_ = 0, seg_hint_ = 16;  // capacities to reserve (sizes seen so far)
  std::vector<uint32_t> gathered_;  // ZeRO-3 gathers of the current layer (segment-local)
  uint32_t prefetch_gate_ = kNone;
};

}  // namespace tcsim::workloads::generator_detail
