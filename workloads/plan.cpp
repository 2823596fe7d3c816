#include "workloads/plan.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <numeric>
#include <sstream>

#include "core/error.hpp"
#include "workloads/model.hpp"

namespace tcsim::workloads {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}
std::string str(int64_t v) { return std::to_string(v); }

std::vector<std::string> split_order(const std::string& order) {
  std::vector<std::string> out;
  std::stringstream ss(order);
  std::string tok;
  while (std::getline(ss, tok, '-')) out.push_back(lower(tok));
  return out;
}

/// Smallest multiple of `step` that is >= v.
int64_t round_up(int64_t v, int64_t step) { return step <= 0 ? v : (v + step - 1) / step * step; }

}  // namespace

// ---------------------------------------------------------------------------------------
// Schedules

const std::vector<ScheduleInfo>& pipeline_schedules() {
  static const std::vector<ScheduleInfo> v = {
      {"gpipe", "all forwards, then all backwards; holds every micro-batch's activations",
       "Huang et al., GPipe, arXiv 1811.06965", false, false},
      {"1f1b", "one-forward-one-backward (PipeDream-Flush); bubble (pp-1)(F+B)",
       "Narayanan et al., arXiv 2104.04473 §2.2.1", false, false},
      {"interleaved-1f1b", "1F1B over virtual_stages chunks per rank; bubble /virtual_stages",
       "Narayanan et al., arXiv 2104.04473 §2.2.2", true, false},
      {"zb-h1", "zero-bubble H1: backward split into input-grad B and weight-grad W; bubble (pp-1)(F+B-2W)",
       "Qi et al., Zero Bubble Pipeline Parallelism, arXiv 2401.10241", false, false},
      {"dualpipe", "bidirectional, overlaps a forward and a backward chunk; bubble (pp/2-1)(F&B+B-3W)",
       "DeepSeek-V3, arXiv 2412.19437 §3.2.1, Table 2", false, true},
  };
  return v;
}

const ScheduleInfo* find_schedule(const std::string& name) {
  const std::string l = lower(name);
  for (const auto& s : pipeline_schedules()) {
    if (l == s.name) return &s;
  }
  return nullptr;
}

int64_t min_micro_batches(const std::string& schedule, int64_t pp) {
  if (pp <= 1) return 1;
  const std::string l = lower(schedule);
  if (l == "gpipe") return 1;
  if (l == "dualpipe") return 2 * pp;  // DualPipe's reference implementation: chunks >= 2 * ranks
  return pp;                           // 1f1b, zb-h1, interleaved: warm-up fills every stage
}

std::vector<int64_t> divisors(int64_t n) {
  std::vector<int64_t> out;
  for (int64_t i = 1; i <= n; ++i) {
    if (n % i == 0) out.push_back(i);
  }
  return out;
}

std::string divisors_text(int64_t n) {
  std::string out;
  for (auto d : divisors(n)) out += (out.empty() ? "" : ", ") + str(d);
  return out;
}

// ---------------------------------------------------------------------------------------
// Defaults and checks

config::ParallelPlan resolve_plan(const config::ModelSpec& m, const config::ParallelPlan& plan, int64_t gpus) {
  config::ParallelPlan r = plan;
  for (auto [get, set] : {std::pair{&config::ParallelPlan::tp, &config::ParallelPlan::set_tp},
                          std::pair{&config::ParallelPlan::pp, &config::ParallelPlan::set_pp},
                          std::pair{&config::ParallelPlan::ep, &config::ParallelPlan::set_ep},
                          std::pair{&config::ParallelPlan::cp, &config::ParallelPlan::set_cp},
                          std::pair{&config::ParallelPlan::virtual_stages, &config::ParallelPlan::set_virtual_stages},
                          std::pair{&config::ParallelPlan::micro_batch, &config::ParallelPlan::set_micro_batch}}) {
    if ((r.*get)() == 0) (r.*set)(1);
  }
  if (r.seq_len() == 0) r.set_seq_len(m.seq_len());
  if (r.precision().empty()) r.set_precision("bf16");
  r.set_precision(lower(r.precision()));
  if (r.schedule().empty()) r.set_schedule("1f1b");
  r.set_schedule(lower(r.schedule()));
  if (r.order().empty()) r.set_order("tp-cp-ep-dp-pp");
  if (r.optimizer_bytes_per_param() == 0) r.set_optimizer_bytes_per_param(12);
  const int64_t inner = r.tp() * r.cp() * r.pp();
  if (r.dp() == 0 && inner > 0 && gpus % inner == 0) r.set_dp(gpus / inner);
  const int64_t per_mb = r.micro_batch() * r.dp();
  if (per_mb > 0) {
    if (r.global_batch() > 0 && r.num_micro_batches() == 0 && r.global_batch() % per_mb == 0) {
      r.set_num_micro_batches(r.global_batch() / per_mb);
    } else if (r.global_batch() == 0) {
      if (r.num_micro_batches() == 0) {
        r.set_num_micro_batches(r.pp() <= 1 ? 1 : std::max<int64_t>(4 * r.pp(), min_micro_batches(r.schedule(), r.pp())));
      }
      r.set_global_batch(per_mb * r.num_micro_batches());
    }
  }
  return r;
}

std::vector<PlanProblem> check_plan(const config::ModelSpec& m, const config::ParallelPlan& plan, int64_t gpus) {
  std::vector<PlanProblem> out;
  auto add = [&](std::string field, std::string msg) { out.push_back({std::move(field), std::move(msg)}); };
  if (gpus < 1) {
    add("gpus", "must be a positive number of GPUs, got " + str(gpus));
    return out;
  }
  for (auto [name, v] : {std::pair{"tp", plan.tp()}, std::pair{"pp", plan.pp()}, std::pair{"ep", plan.ep()},
                         std::pair{"cp", plan.cp()}, std::pair{"dp", plan.dp()},
                         std::pair{"virtual_stages", plan.virtual_stages()},
                         std::pair{"micro_batch", plan.micro_batch()}, std::pair{"global_batch", plan.global_batch()},
                         std::pair{"num_micro_batches", plan.num_micro_batches()}, std::pair{"seq_len", plan.seq_len()}}) {
    if (v < 0) add(std::string("plan.") + name, "must be >= 0 (0 = default), got " + str(v));
  }
  if (!out.empty()) return out;
  const config::ParallelPlan r = resolve_plan(m, plan, gpus);
  const auto& a = m.attention();
  const int64_t heads = a.heads();
  const int64_t kv = a.kind() == config::Attention::GQA ? (a.kv_heads() > 0 ? a.kv_heads() : heads) : heads;
  const ParamCounts pc = count_params(m);

  // Tensor parallelism: split heads, K/V heads (or replicate them), FFN and expert columns.
  const int64_t tp = r.tp();
  if (heads % tp != 0) {
    add("plan.tp", str(tp) + " does not divide the " + str(heads) + " attention heads; valid: " + divisors_text(heads));
  } else if (kv % tp != 0 && tp % kv != 0) {
    add("plan.tp", str(tp) + " neither divides nor is a multiple of the " + str(kv) +
                       " K/V heads; valid: divisors of " + str(heads) + " that divide or are multiples of " + str(kv));
  }
  if (pc.dense_layers > 0 && m.ffn().hidden() % tp != 0) {
    add("plan.tp", str(tp) + " does not divide ffn.hidden " + str(m.ffn().hidden()) + "; valid: " +
                       divisors_text(std::gcd(m.ffn().hidden(), heads)));
  }
  if (pc.moe_layers > 0 && expert_hidden(m) % tp != 0) {
    add("plan.tp", str(tp) + " does not divide moe.expert_hidden " + str(expert_hidden(m)) + "; valid: " +
                       divisors_text(std::gcd(expert_hidden(m), heads)));
  }

  // Pipeline: stages (x chunks) over layers.
  const int64_t pp = r.pp(), v = r.virtual_stages();
  const ScheduleInfo* sched = find_schedule(r.schedule());
  if (sched == nullptr) {
    std::string names;
    for (const auto& s : pipeline_schedules()) names += (names.empty() ? "" : ", ") + std::string(s.name);
    add("plan.schedule", "unknown schedule '" + plan.schedule() + "'; valid: " + names);
  }
  if (v > 1 && (sched == nullptr || !sched->interleaved)) {
    add("plan.virtual_stages", str(v) + " chunks per rank need schedule interleaved-1f1b (schedule is '" + r.schedule() + "')");
  }
  if (sched != nullptr && sched->interleaved && pp > 1 && v < 2) {
    add("plan.virtual_stages", "interleaved-1f1b needs virtual_stages >= 2, got " + str(v));
  }
  if (sched != nullptr && sched->interleaved && pp == 1 && v > 1) {
    // Megatron refuses it too: every chunk would hand its activations to itself.
    add("plan.virtual_stages", str(v) + " chunks per rank need pp >= 2 (one stage holds the whole model); valid: "
                               "virtual_stages 1, or pp >= 2");
  }
  const int64_t chunks = pp * v;
  if (chunks > m.layers()) {
    add(v > 1 ? "plan.virtual_stages" : "plan.pp",
        "pp x virtual_stages = " + str(chunks) + " exceeds the " + str(m.layers()) + " layers; valid pp: " +
            divisors_text(m.layers()));
  } else if (m.layers() % chunks != 0 && !r.uneven_stages()) {
    if (v > 1) {
      add("plan.virtual_stages", "pp x virtual_stages = " + str(chunks) + " does not divide the " + str(m.layers()) +
                                     " layers; valid pp x virtual_stages: " + divisors_text(m.layers()) +
                                     " (or set plan.uneven_stages=true)");
    } else {
      add("plan.pp", str(pp) + " does not divide the " + str(m.layers()) + " layers; valid: " + divisors_text(m.layers()) +
                         " (or set plan.uneven_stages=true)");
    }
  }
  if (sched != nullptr && sched->bidirectional && pp > 1 && pp % 2 != 0) {
    add("plan.pp", "dualpipe needs an even number of stages, got " + str(pp));
  }

  if (r.cp() > 1 && r.materialize_attention_scores()) {
    add("plan.materialize_attention_scores", "true needs cp = 1 (context parallelism runs ring flash attention, "
                                             "which never stores the scores); got cp = " + str(r.cp()));
  }
  // Context parallelism: causal load balancing splits the sequence into 2·cp chunks.
  const int64_t seq = r.seq_len();
  if (seq <= 0) add("plan.seq_len", "no sequence length: set plan.seq_len or model.seq_len");
  if (r.cp() > 1 && seq > 0 && seq % (2 * r.cp()) != 0) {
    add("plan.cp", str(r.cp()) + ": the sequence " + str(seq) + " must split into 2 x cp equal chunks; valid cp: " +
                       [&] {
                         std::string s;
                         for (auto d : divisors(seq / 2)) {
                           if (d > 64) break;
                           s += (s.empty() ? "" : ", ") + str(d);
                         }
                         return s;
                       }());
  }

  // World size.
  const int64_t inner = tp * r.cp() * pp;
  if (plan.dp() > 0) {
    if (inner * plan.dp() != gpus) {
      add("plan.dp", "tp x cp x pp x dp = " + str(tp) + " x " + str(r.cp()) + " x " + str(pp) + " x " + str(plan.dp()) +
                         " = " + str(inner * plan.dp()) + " ranks, but there are " + str(gpus) + " GPUs" +
                         (gpus % inner == 0 ? "; valid dp: " + str(gpus / inner) + " (or 0 to derive it)" : ""));
    }
  } else if (gpus % inner != 0) {
    add("gpus", str(gpus) + " GPUs are not a multiple of tp x cp x pp = " + str(inner) + "; use a multiple of " +
                    str(inner) + " GPUs or change plan.tp/cp/pp");
  }
  const int64_t dp = r.dp();

  // Expert parallelism: experts split over ep consecutive data-parallel ranks.
  if (r.ep() > 1) {
    if (pc.moe_layers == 0) {
      add("plan.ep", str(r.ep()) + " but the model has no routed experts; valid: 1");
    } else {
      const int64_t e = m.moe().routed_experts();
      if (e % r.ep() != 0) {
        add("plan.ep", str(r.ep()) + " does not divide the " + str(e) + " routed experts; valid: " + divisors_text(e));
      }
      if (dp > 0 && dp % r.ep() != 0) {
        add("plan.ep", str(r.ep()) + " does not divide dp = " + str(dp) +
                           " (EP groups are made of data-parallel ranks); valid: " + divisors_text(std::gcd(dp, e)));
      }
    }
  }

  if (r.zero_stage() < 0 || r.zero_stage() > 3) {
    add("plan.zero_stage", str(r.zero_stage()) + " is not a ZeRO stage; valid: 0, 1, 2, 3 (3 = FSDP)");
  }
  if (r.grad_reduce() == config::ParallelPlan::AFTER_BACKWARD && r.zero_stage() == 3) {
    add("plan.grad_reduce", "after_backward cannot apply to ZeRO-3, which reduce-scatters every micro-batch's gradients; "
                            "valid: overlapped, or plan.zero_stage 0, 1 or 2");
  }
  if (r.precision() != "bf16" && r.precision() != "fp8" && r.precision() != "fp16") {
    add("plan.precision", "unknown precision '" + plan.precision() + "'; valid: bf16, fp8, fp16");
  }
  if (r.optimizer_bytes_per_param() < 0) add("plan.optimizer_bytes_per_param", "must be >= 0 (0 = 12)");
  if (r.grad_bytes_per_param() < 0) add("plan.grad_bytes_per_param", "must be >= 0 (0 = 2; 4 = FP32 gradients)");

  // Activation storage (workloads/memory.hpp).
  if (!r.recompute_modules().empty()) {
    if (r.recompute() != config::ParallelPlan::SELECTIVE) {
      add("plan.recompute_modules", "applies to selective recompute; set plan.recompute=selective (recompute is " +
                                        lower(config::ParallelPlan::Recompute_Name(r.recompute())) + ")");
    }
    for (int i = 0; i < r.recompute_modules_size(); ++i) {
      const auto mod = r.recompute_modules(i);
      if (mod == config::ParallelPlan::MLA_UP_PROJ && a.kind() != config::Attention::MLA) {
        add("plan.recompute_modules", "mla_up_proj needs MLA attention; valid here: core_attn, layernorm" +
                                          std::string(pc.moe_layers > 0 ? ", moe_act" : ""));
      }
      if (mod == config::ParallelPlan::MOE_ACT && pc.moe_layers == 0) {
        add("plan.recompute_modules", std::string("moe_act needs MoE layers; valid here: core_attn, layernorm") +
                                          (a.kind() == config::Attention::MLA ? ", mla_up_proj" : ""));
      }
    }
  }
  for (auto [name, bits] : {std::pair{"attn_out_cache_bits", r.attn_out_cache_bits()},
                            std::pair{"moe_act_cache_bits", r.moe_act_cache_bits()}}) {
    if (bits != 0 && (bits < 8 || bits > 16)) {
      add(std::string("plan.") + name, str(bits) + " bits; valid: 0 (BF16) or 8 to 16 (8 = FP8, 12 = E5M6)");
    }
  }

  // Order: a permutation of tp, cp, dp, pp with an optional ep right before dp.
  {
    auto toks = split_order(r.order());
    std::map<std::string, int> count;
    for (const auto& t : toks) count[t]++;
    bool ok = true;
    for (const auto& t : toks) {
      if (t != "tp" && t != "cp" && t != "dp" && t != "pp" && t != "ep") ok = false;
    }
    for (const char* need : {"tp", "cp", "dp", "pp"}) ok = ok && count[need] == 1;
    ok = ok && count["ep"] <= 1;
    if (ok && count["ep"] == 1) {
      auto ep_at = std::find(toks.begin(), toks.end(), "ep");
      ok = ep_at + 1 != toks.end() && *(ep_at + 1) == "dp";
    }
    if (!ok) {
      add("plan.order", "'" + plan.order() + "' is not a rank order; write tp, cp, dp, pp once each, innermost first, "
                        "with an optional ep right before dp, e.g. tp-cp-ep-dp-pp or cp-tp-dp-pp");
    }
  }

  // Batch: global = micro_batch x dp x micro-batches per pipeline.
  if (dp > 0) {
    const int64_t per_mb = r.micro_batch() * dp;
    const std::string batch_field = plan.global_batch() > 0 ? "plan.global_batch" : "plan.num_micro_batches";
    if (plan.global_batch() > 0 && plan.global_batch() % per_mb != 0) {
      add("plan.global_batch", str(plan.global_batch()) + " sequences are not a multiple of micro_batch x dp = " +
                                   str(r.micro_batch()) + " x " + str(dp) + " = " + str(per_mb) + "; nearest valid: " +
                                   str(std::max(per_mb, plan.global_batch() / per_mb * per_mb)) + " or " +
                                   str(round_up(plan.global_batch(), per_mb)));
    } else if (plan.global_batch() > 0 && plan.num_micro_batches() > 0 &&
               plan.global_batch() != per_mb * plan.num_micro_batches()) {
      add("plan.num_micro_batches", str(plan.num_micro_batches()) + " disagrees with global_batch " +
                                        str(plan.global_batch()) + " / (micro_batch x dp = " + str(per_mb) +
                                        ") = " + str(plan.global_batch() / per_mb) + "; set only one of them");
    } else if (sched != nullptr && pp > 1) {
      const int64_t mbs = micro_batches(r);
      const int64_t need = min_micro_batches(r.schedule(), pp);
      auto fix = [&](int64_t n) {
        return plan.global_batch() > 0 ? "global_batch >= " + str(n * per_mb) : "num_micro_batches >= " + str(n);
      };
      if (mbs < need) {
        add(batch_field, str(mbs) + " micro-batches per pipeline, but schedule " + r.schedule() + " with pp=" + str(pp) +
                             " needs at least " + str(need) + "; use " + fix(need));
      } else if (sched->interleaved && mbs % pp != 0) {
        add(batch_field, str(mbs) + " micro-batches per pipeline: interleaved-1f1b needs a multiple of pp=" + str(pp) +
                             "; use " + fix(round_up(mbs, pp)) + " (a multiple of " + str(pp) + ")");
      } else if (sched->bidirectional && mbs % 2 != 0) {
        add(batch_field, str(mbs) + " micro-batches per pipeline: dualpipe needs an even number; use " + fix(mbs + 1));
      }
    }
  }
  return out;
}

void validate_plan(const config::ModelSpec& m, const config::ParallelPlan& plan, int64_t gpus, const std::string& where) {
  auto problems = check_plan(m, plan, gpus);
  if (problems.empty()) return;
  const auto& p = problems.front();
  std::string w = where.empty() ? p.field : (where.ends_with("--set") ? where + " " : where + ": ") + p.field;
  if (p.field == "gpus" && where.ends_with("--set")) w = "--gpus";
  throw core::InputError(w, p.message);
}

// ---------------------------------------------------------------------------------------
// Helpers on resolved plans

int64_t micro_batches(const config::ParallelPlan& r) {
  const int64_t per = r.micro_batch() * r.dp();
  return per > 0 ? r.global_batch() / per : 0;
}

int64_t tokens_per_micro_batch(const config::ParallelPlan& r) {
  return r.micro_batch() * r.seq_len() / std::max<int64_t>(1, r.cp());
}

std::vector<LayerRange> chunk_layers(const config::ModelSpec& m, const config::ParallelPlan& r) {
  const int64_t n = std::max<int64_t>(1, r.pp() * r.virtual_stages());
  const int64_t base = m.layers() / n, extra = m.layers() % n;
  std::vector<LayerRange> out;
  int64_t first = 0;
  for (int64_t c = 0; c < n; ++c) {
    // Extra layers go to chunks 1..extra (never chunk 0, which also holds the embedding).
    const int64_t count = base + ((c >= 1 && c <= extra) ? 1 : 0);
    out.push_back({first, count});
    first += count;
  }
  return out;
}

int64_t stage_layer_count(const config::ModelSpec& m, const config::ParallelPlan& r, int64_t stage) {
  const auto chunks = chunk_layers(m, r);
  const int64_t pp = std::max<int64_t>(1, r.pp());
  int64_t n = 0;
  for (size_t c = 0; c < chunks.size(); ++c) {
    if (static_cast<int64_t>(c) % pp == stage) n += chunks[c].count;
  }
  const ScheduleInfo* s = find_schedule(r.schedule());
  if (s != nullptr && s->bidirectional && pp > 1) {
    // DualPipe: rank s also holds stage pp-1-s of the reverse-direction copy.
    for (size_t c = 0; c < chunks.size(); ++c) {
      if (static_cast<int64_t>(c) % pp == pp - 1 - stage) n += chunks[c].count;
    }
  }
  return n;
}

double in_flight_micro_batches(const config::ParallelPlan& r, int64_t stage) {
  const int64_t pp = std::max<int64_t>(1, r.pp());
  const double m = static_cast<double>(std::max<int64_t>(1, micro_batches(r)));
  if (pp == 1) return 1;
  const std::string s = lower(r.schedule());
  if (s == "gpipe") return m;
  if (s == "interleaved-1f1b") {
    const int64_t v = std::max<int64_t>(1, r.virtual_stages());
    const double passes = static_cast<double>((pp - stage - 1) * 2 + (v - 1) * pp + 1);
    return std::min(m * static_cast<double>(v), passes) / static_cast<double>(v);
  }
  if (s == "dualpipe") return std::min(m, static_cast<double>(pp + 1));
  return std::min(m, static_cast<double>(pp - stage));  // 1f1b, zb-h1
}

// ---------------------------------------------------------------------------------------
// Rank layout

const char* to_string(ParallelDim d) {
  switch (d) {
    case ParallelDim::TP: return "tp";
    case ParallelDim::CP: return "cp";
    case ParallelDim::DP: return "dp";
    case ParallelDim::PP: return "pp";
    case ParallelDim::EP: return "ep";
    case ParallelDim::EDP: return "edp";
  }
  return "?";
}

RankLayout::RankLayout(const config::ParallelPlan& r)
    : tp_(std::max<int64_t>(1, r.tp())), cp_(std::max<int64_t>(1, r.cp())), dp_(std::max<int64_t>(1, r.dp())),
      pp_(std::max<int64_t>(1, r.pp())), ep_(std::max<int64_t>(1, r.ep())), world_(tp_ * cp_ * dp_ * pp_) {
  int64_t stride = 1;
  for (const auto& t : split_order(r.order().empty() ? "tp-cp-ep-dp-pp" : r.order())) {
    if (t == "tp") { stride_tp_ = stride; stride *= tp_; }
    else if (t == "cp") { stride_cp_ = stride; stride *= cp_; }
    else if (t == "dp") { stride_dp_ = stride; stride *= dp_; }
    else if (t == "pp") { stride_pp_ = stride; stride *= pp_; }
  }
}

RankCoord RankLayout::coord(int64_t rank) const {
  RankCoord c;
  c.tp = rank / stride_tp_ % tp_;
  c.cp = rank / stride_cp_ % cp_;
  c.dp = rank / stride_dp_ % dp_;
  c.pp = rank / stride_pp_ % pp_;
  c.ep = c.dp % ep_;
  c.edp = c.dp / ep_;
  return c;
}

int64_t RankLayout::rank(const RankCoord& c) const {
  return c.tp * stride_tp_ + c.cp * stride_cp_ + c.dp * stride_dp_ + c.pp * stride_pp_;
}

std::vector<int> RankLayout::group_of(ParallelDim d, int64_t rank) const {
  RankCoord c = coord(rank);
  std::vector<int> g;
  auto push = [&](RankCoord x) { g.push_back(static_cast<int>(this->rank(x))); };
  switch (d) {
    case ParallelDim::TP: for (int64_t i = 0; i < tp_; ++i) { auto x = c; x.tp = i; push(x); } break;
    case ParallelDim::CP: for (int64_t i = 0; i < cp_; ++i) { auto x = c; x.cp = i; push(x); } break;
    case ParallelDim::DP: for (int64_t i = 0; i < dp_; ++i) { auto x = c; x.dp = i; push(x); } break;
    case ParallelDim::PP: for (int64_t i = 0; i < pp_; ++i) { auto x = c; x.pp = i; push(x); } break;
    case ParallelDim::EP:
      for (int64_t i = 0; i < ep_; ++i) { auto x = c; x.dp = c.edp * ep_ + i; push(x); }
      break;
    case ParallelDim::EDP:
      for (int64_t i = 0; i < dp_ / ep_; ++i) { auto x = c; x.dp = i * ep_ + c.ep; push(x); }
      break;
  }
  return g;
}

std::vector<std::vector<int>> RankLayout::groups(ParallelDim d) const {
  std::vector<std::vector<int>> out;
  std::vector<bool> seen(static_cast<size_t>(world_), false);
  for (int64_t r = 0; r < world_; ++r) {
    if (seen[static_cast<size_t>(r)]) continue;
    auto g = group_of(d, r);
    for (int x : g) seen[static_cast<size_t>(x)] = true;
    out.push_back(std::move(g));
  }
  return out;
}

std::vector<std::vector<int>> RankLayout::comm_groups(CommGroups kind, int64_t first_stage, int64_t last_stage) const {
  // Nested loops over the key, outermost first, instead of a map from (kind, key) to ranks
  // (6 map nodes per rank: S3's 16,384 ranks spent a fifth of their program's time there).
  std::vector<std::vector<int>> out;
  std::vector<int> g;
  auto add = [&](int64_t tp, int64_t cp, int64_t dp, int64_t pp) {
    g.push_back(static_cast<int>(tp * stride_tp_ + cp * stride_cp_ + dp * stride_dp_ + pp * stride_pp_));
  };
  // Each group sorted, each rank once (the strides usually give them so: no sort then),
  // its vector allocated once at its size.
  size_t size = 0;
  auto done = [&] {
    if (!std::is_sorted(g.begin(), g.end())) std::sort(g.begin(), g.end());
    g.erase(std::unique(g.begin(), g.end()), g.end());
    size = std::max(size, g.size());
    out.push_back(std::move(g));
    g = {};
    g.reserve(size);
  };
  const int64_t edp = dp_ / ep_;
  switch (kind) {
    case CommGroups::TP:
    case CommGroups::CP: {
      // The key's first coordinate is the other one of tp and cp.
      const bool tp = kind == CommGroups::TP;
      for (int64_t a = 0; a < (tp ? cp_ : tp_); ++a)
        for (int64_t dp = 0; dp < dp_; ++dp)
          for (int64_t pp = 0; pp < pp_; ++pp) {
            for (int64_t i = 0; i < (tp ? tp_ : cp_); ++i) tp ? add(i, a, dp, pp) : add(a, i, dp, pp);
            done();
          }
      break;
    }
    case CommGroups::EP:
      for (int64_t tp = 0; tp < tp_; ++tp)
        for (int64_t cp = 0; cp < cp_; ++cp)
          for (int64_t e = 0; e < edp; ++e)
            for (int64_t pp = 0; pp < pp_; ++pp) {
              for (int64_t i = 0; i < ep_; ++i) add(tp, cp, e * ep_ + i, pp);
              done();
            }
      break;
    case CommGroups::DPxCP:
    case CommGroups::EDPxCP: {
      const int64_t eps = kind == CommGroups::DPxCP ? 1 : ep_;
      for (int64_t tp = 0; tp < tp_; ++tp)
        for (int64_t pp = 0; pp < pp_; ++pp)
          for (int64_t e = 0; e < eps; ++e) {
            for (int64_t cp = 0; cp < cp_; ++cp)
              for (int64_t dp = e; dp < dp_; dp += eps) add(tp, cp, dp, pp);
            done();
          }
      break;
    }
    case CommGroups::Embedding:
      for (int64_t tp = 0; tp < tp_; ++tp)
        for (int64_t cp = 0; cp < cp_; ++cp)
          for (int64_t dp = 0; dp < dp_; ++dp) {
            add(tp, cp, dp, first_stage), add(tp, cp, dp, last_stage);
            done();
          }
      break;
  }
  return out;
}

}  // namespace tcsim::workloads
