// The program generator (workloads/generator.hpp): the entry points, lanes and
// communicator groups, pipeline sends and each lane's program from the schedule. The
// per-layer work and the segment of one pass are in workloads/generator_passes.cpp; the
// class's declaration in workloads/generator_impl.hpp.
#include "workloads/generator.hpp"

#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "core/error.hpp"
#include "core/prefault.hpp"
#include "workloads/generator_impl.hpp"
#include "workloads/model.hpp"
#include "workloads/multimodal.hpp"
#include "workloads/plan.hpp"
#include "workloads/routing.hpp"
#include "workloads/schedule.hpp"
#include "workloads/segment.hpp"

namespace tcsim::workloads {
namespace {

using core::InputError;

Precision precision_of(const std::string& p, const std::string& where) {
  if (p.empty() || p == "bf16") return Precision::BF16;
  if (p == "fp8") return Precision::FP8;
  if (p == "fp16") return Precision::FP16;
  throw InputError(where, "unknown precision '" + p + "'; valid: bf16, fp8, fp16");
}

// Tokens and model FLOPs of one step (the numerators of tokens/s and MFU): text tokens of
// the global batch, image tokens too where they enter the decoder's sequence (not with
// cross-attention), and the vision encoder's training FLOPs, once per data-parallel replica.
StepTotals totals_of(const config::ModelSpec& m, const config::ParallelPlan& r, const std::vector<MicroBatchImages>& images) {
  double image_tokens = 0, encoder = 0;
  for (const auto& im : images) image_tokens += im.tokens, encoder += im.encoder_flops;
  const bool cross = m.has_vision() && m.vision().layers() > 0 && m.vision().fusion() == config::VisionEncoder::CROSS_ATTENTION;
  const auto dp = static_cast<double>(r.dp());
  StepTotals t;
  t.tokens = static_cast<double>(r.global_batch()) * static_cast<double>(r.seq_len());
  t.model_flops = train_flops_per_token(m, r.seq_len()) * (t.tokens + (cross ? 0 : image_tokens * dp)) + 3 * encoder * dp;
  return t;
}

}  // namespace

namespace generator_detail {

Program Generator::run() {
  const std::string where = "workload " + w_.name();
  m_ = workload_model(w_, where);
  validate_plan(m_, w_.plan(), gpus_, "--set");
  r_ = resolve_plan(m_, w_.plan(), gpus_);
  tp_ = r_.tp(), cp_ = r_.cp(), pp_ = r_.pp(), dp_ = r_.dp(), ep_ = r_.ep(), v_ = r_.virtual_stages();
  moe_ = m_.has_moe() && m_.moe().routed_experts() > 0;
  if (!moe_) ep_ = 1;
  prec_ = precision_of(r_.precision(), "--set plan.precision");
  seq_ = r_.seq_len();
  mbsz_ = r_.micro_batch();
  mbs_ = micro_batches(r_);
  zero_ = r_.zero_stage();
  after_backward_ = r_.grad_reduce() == config::ParallelPlan::AFTER_BACKWARD;
  grad_bytes_ = r_.grad_bytes_per_param() > 0 ? r_.grad_bytes_per_param() : opt_.grad_bytes;
  sp_ = r_.sp() && tp_ > 1;
  scatter_gather_ = tp_ > 1 && !sp_ && pp_ > 1 && !r_.pp_full_tensor_sends();
  skew_ = moe_ && ep_ > 1 && !routing_is_uniform(m_);
  vision_ = m_.has_vision() && m_.vision().layers() > 0;
  cross_ = vision_ && m_.vision().fusion() == config::VisionEncoder::CROSS_ATTENTION;
  params_ = count_params(m_);
  chunks_ = chunk_layers(m_, r_);

  sched_ = build_schedule(r_.schedule(), pp_, mbs_, v_, PassDurations{1, 1, 1});
  for (int64_t s = 0; s < pp_; ++s)
    for (int64_t c = 0; c < sched_.chunks_per_stage; ++c) {
      if (sched_.position(s, c) == 0) first_stage_ = s;
      if (sched_.position(s, c) == sched_.positions - 1) last_stage_ = s;
    }
  // Megatron keeps a copy of tied word embeddings on the last stage for the output head
  // when it is not the first (DualPipe's first rank holds both ends).
  tied_copy_ = m_.tied_embeddings() && first_stage_ != last_stage_;
  timing_ = simulate_schedule(sched_, [](int64_t, const PipeStep& s) { return s.pass == Pass::BW ? 2.0 : 1.0; });
  images_ = sample_images(m_, mbs_, mbsz_, w_.seed());
  if (skew_) {
    for (const auto& share : expert_loads(m_, w_.seed())) rank_share_.push_back(share.empty() ? std::vector<double>{} : rank_loads(share, ep_));
  }

  layout_ = std::make_unique<RankLayout>(r_);
  p_.world_size = gpus_;
  p_.precision = prec_;
  if (m_.has_moe() && m_.moe().top_k() > 0) {
    p_.moe_top_k = static_cast<int>(m_.moe().top_k());
    p_.moe_max_nodes = static_cast<int>(std::max<int64_t>(0, m_.moe().max_nodes_per_token()));
  }
  const StepTotals totals = totals_of(m_, r_, images_);
  p_.tokens_per_step = totals.tokens;
  p_.model_flops_per_step = totals.model_flops;
  make_lanes();
  make_comms();
  for (uint32_t l = 0; l < p_.lanes.size(); ++l) {
    build_lane(l);
    ops_hint_ = std::max(ops_hint_, p_.lanes[l].ops.size());
  }
  validate(p_, where);
  return std::move(p_);
}

// ------------------------------------------------------------------ lanes and groups
void Generator::make_lanes() {
  const int64_t lanes_per_stage = skew_ ? ep_ : 1;
  auto ordered = [&](int64_t stage, int64_t e) {
    std::vector<int> ranks;
    for (int64_t dp = 0; dp < dp_; ++dp)
      for (int64_t cp = 0; cp < cp_; ++cp)
        for (int64_t tp = 0; tp < tp_; ++tp) {
          if (skew_ && dp % ep_ != e) continue;
          RankCoord c;
          c.tp = tp, c.cp = cp, c.dp = dp, c.pp = stage;
          ranks.push_back(static_cast<int>(layout_->rank(c)));
        }
    return ranks;
  };
  if (opt_.fold) {
    for (int64_t s = 0; s < pp_; ++s)
      for (int64_t e = 0; e < lanes_per_stage; ++e) info_.push_back({s, e, ordered(s, e)});
  } else {
    for (int r = 0; r < gpus_; ++r) {
      RankCoord c = layout_->coord(r);
      info_.push_back({c.pp, skew_ ? c.ep : 0, {r}});
    }
  }
  lane_of_rank_.assign(static_cast<size_t>(gpus_), 0);
  for (uint32_t l = 0; l < info_.size(); ++l) {
    p_.lanes.push_back(Lane{info_[l].ranks, {}});
    for (int r : info_[l].ranks) lane_of_rank_[static_cast<size_t>(r)] = l;
  }
}

// The lane that holds stage `stage`'s counterpart of lane l's first rank.
uint32_t Generator::peer(uint32_t l, int64_t stage) const {
  RankCoord c = layout_->coord(info_[l].ranks.front());
  c.pp = stage;
  return lane_of_rank_[static_cast<size_t>(layout_->rank(c))];
}

void Generator::make_comms() {
  static const char* names[kDims] = {"tp", "cp", "ep", "dp", "expert_dp", "embedding"};
  const int64_t sizes[kDims] = {tp_, cp_, ep_, dp_ * cp_, dp_ / ep_ * cp_, tied_copy_ ? 2 : 1};
  // One communicator per (dimension, set of lanes its groups touch).
  std::map<std::pair<int, std::vector<uint32_t>>, uint32_t> index;
  for (auto& lane_comm : comm_of_) lane_comm.assign(info_.size(), kNone);
  for (int dim = 0; dim < kDims; ++dim) {
    if (sizes[dim] <= 1) continue;
    for (auto& g : layout_->comm_groups(static_cast<RankLayout::CommGroups>(dim), first_stage_, last_stage_)) {
      // The lanes in order, each once (most groups lie in one lane: no sort then).
      std::vector<uint32_t> lanes;
      for (int r : g) {
        const uint32_t l = lane_of_rank_[static_cast<size_t>(r)];
        if (lanes.size() != 1 || lanes.front() != l) lanes.push_back(l);
      }
      if (lanes.size() > 1) {
        std::sort(lanes.begin(), lanes.end());
        lanes.erase(std::unique(lanes.begin(), lanes.end()), lanes.end());
      }
      auto [it, fresh] = index.emplace(std::make_pair(dim, lanes), static_cast<uint32_t>(p_.comms.size()));
      if (fresh) {
        const auto& li = info_[lanes.front()];
        std::string name = std::string(names[dim]) + (pp_ > 1 ? ".s" + std::to_string(li.stage) : "");
        if (skew_ && lanes.size() == 1 && opt_.fold) name += ".e" + std::to_string(li.e);
        p_.comms.push_back(Communicator{name, {}});
      }
      p_.comms[it->second].groups.push_back(std::move(g));
      for (uint32_t l : lanes) {
        uint32_t& c = comm_of_[dim][l];
        if (c != kNone && c != it->second) throw std::logic_error("generator: a lane's groups span different lane sets");
        c = it->second;
      }
    }
  }
}

// ------------------------------------------------------------------ p2p
Op Generator::p2p_op(OpKind kind, uint32_t peer_lane, double bytes, uint32_t tag, const std::string& name) {
  Op op;
  op.kind = kind;
  op.stream = Stream::PpComm;
  op.category = CommCategory::PpP2P;
  op.p2p.peer_lane = peer_lane;
  op.p2p.bytes = bytes;
  op.p2p.tag = tag;
  op.label = label(name);
  return op;
}

uint32_t Generator::tag(int64_t mb, bool grad, int64_t from_pos) const {
  return static_cast<uint32_t>((mb * 2 + (grad ? 1 : 0)) * sched_.positions + from_pos);
}

// Activation (or its gradient) crossing a stage boundary, whole, per rank.
double Generator::boundary_bytes(int64_t mb) const {
  const MbShape sh = shape(mb);
  return (sh.tokens + sh.img_tokens) * d(m_.hidden()) * 2;
}

// What each TP rank sends: its 1/tp slice with sequence parallelism, or with Megatron's
// scatter/gather (arXiv 2104.04473 sec 4.1: each TP rank sends 1/t over the fabric and the
// receiver all-gathers it over NVLink); the whole tensor with plan.pp_full_tensor_sends.
double Generator::p2p_bytes(int64_t mb) const {
  return sp_ || scatter_gather_ ? boundary_bytes(mb) / d(tp_) : boundary_bytes(mb);
}

// ------------------------------------------------------------------ one lane
void Generator::build_lane(uint32_t lane) {
  const int64_t s = info_[lane].stage;
  const auto& steps = sched_.stages[static_cast<size_t>(s)];
  const auto& times = timing_.steps[static_cast<size_t>(s)];
  const int64_t P = sched_.positions;
  auto& ops = p_.lanes[lane].ops;
  // Lanes are alike: reserving what the previous one took saves the vector's regrowth (and
  // the page faults of its copies; S1 has 123k ops of 80 bytes). The reservation is fresh
  // memory that the lane fills, so it is mapped in one call rather than page by page.
  ops.reserve(ops_hint_);
  core::prefault_for_write(ops.data(), ops.capacity() * sizeof(Op));
  grads_.clear();
  // Done times of every (mb, pos) F and backward, from the schedule's list simulation.
  std::vector<double> fend(static_cast<size_t>(mbs_ * P)), bend(static_cast<size_t>(mbs_ * P));
  for (int64_t st = 0; st < pp_; ++st) {
    for (size_t i = 0; i < sched_.stages[st].size(); ++i) {
      const auto& x = sched_.stages[st][i];
      const size_t k = static_cast<size_t>(x.mb * P + sched_.position(st, x.chunk));
      if (x.pass == Pass::F) fend[k] = timing_.steps[st][i].end;
      if (x.pass == Pass::B || x.pass == Pass::BW) bend[k] = timing_.steps[st][i].end;
    }
  }
  // Last weight-gradient step of each local chunk (its gradients are final there).
  std::vector<size_t> last_w(static_cast<size_t>(sched_.chunks_per_stage), 0);
  for (size_t i = 0; i < steps.size(); ++i)
    if (steps[i].pass == Pass::W || steps[i].pass == Pass::BW) last_w[static_cast<size_t>(steps[i].chunk)] = i;

  // Events in logical time: p2p (ordered by (time, tag) on every lane alike) before the
  // computes that start at that time.
  struct Ev {
    double t;
    int cls;  // 0 p2p, 1 compute
    uint32_t key;
    size_t step;  // compute: step index; p2p: index into p2ps
  };
  struct P2P {
    bool send;
    uint32_t peer;
    uint32_t tag;
    double bytes;
    size_t producer;  // send: the step whose output it carries
    std::string name;
    double gather = 0;  // receive with scatter/gather: the whole tensor, all-gathered over TP
  };
  std::vector<P2P> p2ps;
  std::vector<Ev> evs;
  std::map<size_t, std::vector<size_t>> recvs_of_step;  // step -> p2p indices
  for (size_t i = 0; i < steps.size(); ++i) {
    const auto& x = steps[i];
    if (i > 0 && steps[i - 1].overlap_next) {
      // second half of an overlapped pair: emitted with the first
    } else {
      evs.push_back({times[i].start, 1, 0, i});
    }
    const int64_t pos = sched_.position(s, x.chunk);
    const int dir = sched_.chunk_direction(x.chunk);
    const size_t k = static_cast<size_t>(x.mb * P + pos);
    if (x.pass == Pass::F) {
      if (pos > 0) {
        const ChunkPlace from = sched_.place(dir, pos - 1);
        p2ps.push_back({false, peer(lane, from.stage), tag(x.mb, false, pos - 1), 0, i, "recv act",
                        scatter_gather_ ? boundary_bytes(x.mb) : 0});
        evs.push_back({fend[static_cast<size_t>(x.mb * P + pos - 1)], 0, p2ps.back().tag, p2ps.size() - 1});
        recvs_of_step[i].push_back(p2ps.size() - 1);
      }
      if (pos < P - 1) {
        const ChunkPlace to = sched_.place(dir, pos + 1);
        p2ps.push_back({true, peer(lane, to.stage), tag(x.mb, false, pos), p2p_bytes(x.mb), i, "send act"});
        evs.push_back({fend[k], 0, p2ps.back().tag, p2ps.size() - 1});
      }
    } else if (x.pass == Pass::B || x.pass == Pass::BW) {
      if (pos < P - 1) {
        const ChunkPlace from = sched_.place(dir, pos + 1);
        p2ps.push_back({false, peer(lane, from.stage), tag(x.mb, true, pos + 1), 0, i, "recv grad",
                        scatter_gather_ ? boundary_bytes(x.mb) : 0});
        evs.push_back({bend[static_cast<size_t>(x.mb * P + pos + 1)], 0, p2ps.back().tag, p2ps.size() - 1});
        recvs_of_step[i].push_back(p2ps.size() - 1);
      }
      if (pos > 0) {
        const ChunkPlace to = sched_.place(dir, pos - 1);
        p2ps.push_back({true, peer(lane, to.stage), tag(x.mb, true, pos), p2p_bytes(x.mb), i, "send grad"});
        evs.push_back({bend[k], 0, p2ps.back().tag, p2ps.size() - 1});
      }
    }
  }
  std::stable_sort(evs.begin(), evs.end(), [](const Ev& a, const Ev& b) {
    return std::tie(a.t, a.cls, a.key) < std::tie(b.t, b.cls, b.key);
  });

  std::map<SegKey, Seg> segs_built;
  std::map<std::pair<const Seg*, const Seg*>, std::vector<std::pair<size_t, size_t>>> orders;
  std::vector<uint32_t> p2p_at(p2ps.size(), kNone);
  std::vector<uint32_t> step_last(steps.size(), kNone), step_first(steps.size(), kNone);
  std::map<std::tuple<int64_t, int64_t, int>, uint32_t> last_of;  // (mb, chunk, 0 F / 1 B) -> op
  for (const Ev& ev : evs) {
    if (ev.cls == 0) {
      const P2P& q = p2ps[ev.step];
      std::vector<uint32_t> deps;
      if (q.send) {
        if (step_last[q.producer] == kNone) throw std::logic_error("generator: send before its producer");
        deps.push_back(step_last[q.producer]);
      }
      Op op = p2p_op(q.send ? OpKind::Send : OpKind::Recv, q.peer, q.bytes, q.tag, q.name);
      op.deps = std::move(deps);
      ops.push_back(std::move(op));
      if (q.gather > 0) {
        // On the pipeline stream, in order with the receive: it must not hold back the TP
        // collectives of compute that does not need it.
        Op g = coll_op(q.name + " tp all-gather", CollectiveType::AllGather, kTp, lane, q.gather, Stream::PpComm,
                       CommCategory::TpAllGather);
        g.deps = {static_cast<uint32_t>(ops.size() - 1)};
        ops.push_back(std::move(g));
      }
      p2p_at[ev.step] = static_cast<uint32_t>(ops.size() - 1);
      continue;
    }
    // A compute step, or an overlapped F&B pair.
    const size_t i = ev.step;
    const bool pair = steps[i].overlap_next && i + 1 < steps.size();
    std::vector<const Seg*> segs;
    std::vector<std::vector<uint32_t>> ext_of;
    for (size_t j = i; j <= (pair ? i + 1 : i); ++j) {
      const auto& x = steps[j];
      const bool last_mb = last_w[static_cast<size_t>(x.chunk)] == j;
      // A pass's segment depends on its micro-batch only through the micro-batch's images
      // (none in text models): built once per kind of pass and emitted from there (S1: 120
      // micro-batches a lane; building spelt out every op's label again, and copying the
      // segment before emitting it was a tenth of generating the program).
      const MicroBatchImages& im = images_[static_cast<size_t>(x.mb)];
      const SegKey key{static_cast<int>(x.pass), x.chunk, last_mb, im.images, im.patches, im.tokens, im.encoder_flops};
      auto built = segs_built.find(key);
      if (built == segs_built.end()) built = segs_built.emplace(key, pass_segment(lane, x, last_mb)).first;
      const Seg& seg = built->second;
      seg_hint_ = std::max(seg_hint_, seg.ops.size());
      // External deps of the pass's first op: its receives and its own earlier passes.
      std::vector<uint32_t> ext;
      for (size_t q : recvs_of_step[j]) {
        if (p2p_at[q] == kNone) throw std::logic_error("generator: receive after its consumer");
        ext.push_back(p2p_at[q]);
      }
      if (x.pass != Pass::F) {
        auto it = last_of.find({x.mb, x.chunk, x.pass == Pass::W ? 1 : 0});
        if (it != last_of.end()) ext.push_back(it->second);
      }
      segs.push_back(&seg);
      ext_of.push_back(std::move(ext));
    }
    // The order depends on the segments only: kept per pair of them.
    auto order = orders.find({segs.front(), segs.back()});
    if (order == orders.end()) order = orders.emplace(std::make_pair(segs.front(), segs.back()), segment::emission_order(segs)).first;
    emit(lane, segs, ext_of, order->second, pair ? std::vector<size_t>{i, i + 1} : std::vector<size_t>{i}, step_first, step_last);
    for (size_t j = i; j <= (pair ? i + 1 : i); ++j) {
      const auto& x = steps[j];
      if (step_last[j] != kNone) last_of[{x.mb, x.chunk, x.pass == Pass::F ? 0 : 1}] = step_last[j];
    }
  }
  // Optimizer step after every gradient reduction and the last compute.
  std::vector<uint32_t> deps = grads_;
  if (!ops.empty()) deps.push_back(static_cast<uint32_t>(ops.size() - 1));
  double local = 0, local_experts = 0;
  for (int64_t c = 0; c < sched_.chunks_per_stage; ++c) {
    const int64_t pos = sched_.position(s, c);
    const LayerRange range = chunks_[static_cast<size_t>(pos)];
    for (int64_t l = range.first; l < range.first + range.count; ++l) {
      local += dense_layer_params_per_rank(l);
      local_experts += expert_layer_params(l) / d(tp_);
    }
    if (pos == 0) local += (params_.embedding + (vision_ ? params_.vision : 0)) / d(tp_);
    if (pos == P - 1) local += head_params_per_rank();
  }
  if (after_backward_) {
    // The whole gradient buffer in one reduction once the backward is done.
    const uint32_t after = ops.empty() ? kNone : static_cast<uint32_t>(ops.size() - 1);
    const bool rs = zero_ >= 1;
    const CollectiveType t = rs ? CollectiveType::ReduceScatter : CollectiveType::AllReduce;
    const CommCategory cat = rs ? CommCategory::DpReduceScatter : CommCategory::DpAllReduce;
    const std::string what = rs ? "grad reduce-scatter" : "grad all-reduce";
    auto reduce = [&](Dim dim, double params, const std::string& name) {
      if (params <= 0 || !has(dim, lane)) return;
      Op op = coll_op(name, t, dim, lane, params * grad_bytes_, Stream::DpComm, cat);
      if (after != kNone) op.deps = {after};
      ops.push_back(std::move(op));
      deps.push_back(static_cast<uint32_t>(ops.size() - 1));
    };
    reduce(kDp, local, what);
    reduce(kEdp, local_experts, "expert " + what);
  }
  if (has(kEmb, lane)) {
    // Tied word embeddings: the first stage's table and the last stage's copy sum their
    // (data-parallel reduced) gradients, after the backward and before the optimizer
    // (Megatron-LM train_step / finalize_model_grads: backward-embedding-all-reduce).
    Op op = coll_op("embedding grad all-reduce", CollectiveType::AllReduce, kEmb, lane,
                    d(m_.vocab()) * d(m_.hidden()) / d(tp_) * grad_bytes_, Stream::DpComm, CommCategory::EmbAllReduce);
    op.deps = deps;
    ops.push_back(std::move(op));
    deps.push_back(static_cast<uint32_t>(ops.size() - 1));
  }
  if (zero_ >= 1) {
    local /= d(dp_ * cp_);
    local_experts /= d(dp_ / ep_ * cp_);
  }
  Op opt = compute_op("optimizer step", 0, ComputeClass::Elementwise, Precision::FP32, 30.0 * (local + local_experts));
  opt.deps = deps;
  ops.push_back(std::move(opt));
  const uint32_t opt_op = static_cast<uint32_t>(ops.size() - 1);
  if (zero_ == 1 || zero_ == 2) {
    // Updated parameter shards are all-gathered (BF16) for the next step.
    if (has(kDp, lane)) {
      Op op = coll_op("param all-gather", CollectiveType::AllGather, kDp, lane, local * d(dp_ * cp_) * 2, Stream::DpComm, CommCategory::DpAllGather);
      op.deps = {opt_op};
      ops.push_back(std::move(op));
    }
    if (local_experts > 0 && has(kEdp, lane)) {
      Op op = coll_op("expert param all-gather", CollectiveType::AllGather, kEdp, lane, local_experts * d(dp_ / ep_ * cp_) * 2,
                      Stream::DpComm, CommCategory::DpAllGather);
      op.deps = {opt_op};
      ops.push_back(std::move(op));
    }
  }
}

// Appends segments to the lane in `order` (segment::emission_order: one in order, two
// interleaved layer by layer or as DualPipe's overlapped pair), the first op of segs[k]
// also depending on the lane ops ext_of[k].
void Generator::emit(uint32_t lane, const std::vector<const Seg*>& segs, const std::vector<std::vector<uint32_t>>& ext_of,
                     const std::vector<std::pair<size_t, size_t>>& order, const std::vector<size_t>& step_ids,
                     std::vector<uint32_t>& step_first, std::vector<uint32_t>& step_last) {
  auto& ops = p_.lanes[lane].ops;
  std::vector<std::vector<uint32_t>> map(segs.size());
  for (size_t k = 0; k < segs.size(); ++k) map[k].assign(segs[k]->ops.size(), kNone);
  for (auto [k, i] : order) {
    ops.push_back(segs[k]->ops[i]);
    Op& op = ops.back();
    // Segment-local dependencies become lane indices.
    for (uint32_t& dd : op.deps) dd = (dd & kGlobal) ? (dd & ~kGlobal) : map[k][dd];
    if (i == 0)
      for (uint32_t g : ext_of[k]) op.deps.push_back(g);
    // Sorted, without repeats: most ops have one or two dependencies, already in order.
    if (op.deps.size() > 1) {
      if (!std::is_sorted(op.deps.begin(), op.deps.end())) std::sort(op.deps.begin(), op.deps.end());
      op.deps.truncate(static_cast<size_t>(std::unique(op.deps.begin(), op.deps.end()) - op.deps.begin()));
    }
    map[k][i] = static_cast<uint32_t>(ops.size() - 1);
  }
  for (size_t k = 0; k < segs.size(); ++k) {
    const size_t st = step_ids[k];
    if (!segs[k]->ops.empty()) {
      step_first[st] = map[k][0];
      step_last[st] = segs[k]->last != kNone ? map[k][segs[k]->last] : map[k].back();
    } else if (!ops.empty()) {
      step_last[st] = static_cast<uint32_t>(ops.size() - 1);
    }
  }
  for (size_t k = 0; k < segs.size(); ++k)
    for (uint32_t g : segs[k]->grads) grads_.push_back(map[k][g]);
}

}  // namespace generator_detail

Program generate(const config::Workload& w, int gpus, const GeneratorOptions& options) {
  return generator_detail::Generator(w, gpus, options).run();
}

StepTotals step_totals(const config::Workload& w, int gpus) {
  const std::string where = "workload " + w.name();
  const config::ModelSpec m = workload_model(w, where);
  validate_plan(m, w.plan(), gpus, "--set");
  const config::ParallelPlan r = resolve_plan(m, w.plan(), gpus);
  return totals_of(m, r, sample_images(m, micro_batches(r), r.micro_batch(), w.seed()));
}

}  // namespace tcsim::workloads
