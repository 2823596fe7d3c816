// `tcsim model list|show` and `tcsim plan check|enumerate|search`: model presets, their
// parameter and FLOPs counts, plan validation with the memory breakdown, plan enumeration,
// and the search for the fastest plan on a cluster.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/overrides.hpp"
#include "core/proto_util.hpp"
#include "core/quantity.hpp"
#include "sim/cli/commands.hpp"
#include "sim/search.hpp"
#include "topology/gpu.hpp"
#include "workloads/enumerate.hpp"
#include "workloads/memory.hpp"
#include "workloads/model.hpp"
#include "workloads/plan.hpp"

namespace tcsim::cli {

namespace wl = tcsim::workloads;
using nlohmann::json;

namespace {

json params_json(const wl::config::ModelSpec& m) {
  const auto c = wl::count_params(m);
  const int64_t seq = m.seq_len() > 0 ? m.seq_len() : 4096;
  json j = {{"name", m.name()},
            {"description", m.description()},
            {"source", m.source()},
            {"params_total", c.total},
            {"params_active", c.active},
            {"params_mtp", c.mtp},
            {"params_vision", c.vision},
            {"seq_len", seq},
            {"train_flops_per_token", wl::train_flops_per_token(m, seq)},
            {"layers", m.layers()},
            {"moe_layers", c.moe_layers},
            {"dense_layers", c.dense_layers}};
  if (m.published_params_total() > 0) j["published_params_total"] = m.published_params_total();
  if (m.published_params_active() > 0) j["published_params_active"] = m.published_params_active();
  if (wl::image_tokens(m) > 0) {
    j["image_tokens"] = wl::image_tokens(m);
    j["vision_flops_per_image"] = wl::vision_flops_per_image(m);
  }
  return j;
}

json memory_json(const wl::MemoryBreakdown& b) {
  return {{"stage", b.stage},
          {"layers", b.layers},
          {"params", b.params},
          {"in_flight_micro_batches", b.in_flight},
          {"weights_bytes", b.weights.value()},
          {"grads_bytes", b.grads.value()},
          {"optimizer_bytes", b.optimizer.value()},
          {"activations_bytes", b.activations.value()},
          {"workspace_bytes", b.workspace.value()},
          {"comm_buffers_bytes", b.comm_buffers.value()},
          {"total_bytes", b.total.value()}};
}

std::string billions(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fB", v / 1e9);
  return buf;
}

/// A workload from --workload, or --model with an empty plan; --set keys applied.
struct Inputs {
  std::string model, workload, gpu_memory, gpu;
  int64_t gpus = 0;
  std::vector<std::string> sets;
  bool as_json = false;
};

wl::config::Workload load_inputs(const Inputs& in) {
  wl::config::Workload w;
  if (!in.workload.empty()) {
    w = wl::find_workload(in.workload, "--workload");
    if (!in.model.empty()) *w.mutable_model() = wl::find_model(in.model, "--model");
  } else if (!in.model.empty()) {
    *w.mutable_model() = wl::find_model(in.model, "--model");
    w.set_name(w.model().name());
  } else {
    throw core::InputError("command line", "give --model NAME or --workload NAME");
  }
  core::Overrides o;
  for (const auto& s : in.sets) o.add(s, "--set");
  wl::apply_workload_overrides(w, o);
  o.check_all_taken(wl::workload_override_keys());
  return w;
}

// Memory per GPU: --gpu-memory, else the HBM of --gpu from the catalog; empty when neither.
std::string memory_limit(const Inputs& in, core::Bytes& cap) {
  if (!in.gpu_memory.empty()) {
    cap = core::parse_bytes(in.gpu_memory, "--gpu-memory");
    return in.gpu_memory;
  }
  if (!in.gpu.empty()) {
    const auto spec = topology::find_gpu(in.gpu, "--gpu");
    cap = spec.hbm;
    return core::format_bytes(cap) + " (" + spec.name + " HBM)";
  }
  return {};
}

void add_common(CLI::App* c, Inputs& in, bool memory_required) {
  c->add_option("--model", in.model, "model preset (see `tcsim model list`) or a ModelSpec .textproto/.json");
  c->add_option("--workload", in.workload, "workload preset (moe-demo, dense-demo) or file; its plan is the start");
  c->add_option("--gpus", in.gpus, "number of GPUs")->required();
  c->add_option("--gpu-memory", in.gpu_memory,
                std::string("memory per GPU with unit, e.g. 80GiB") + (memory_required ? " (or --gpu)" : ""));
  c->add_option("--gpu", in.gpu, "GPU catalog name (tcsim hw list): its HBM is the memory per GPU unless --gpu-memory is given");
  c->add_option("--set", in.sets, "override: plan.tp=8, plan.recompute=full, model.moe.top_k=4, ...");
  c->add_flag("--json", in.as_json, "print JSON instead of a table");
}

}  // namespace

void register_model_commands(CLI::App& app) {
  auto* model = app.add_subcommand("model", "model presets: parameters and FLOPs");
  model->require_subcommand(1);

  auto list_json = std::make_shared<bool>(false);
  auto* list = model->add_subcommand("list", "list the model and workload presets");
  list->add_flag("--json", *list_json, "print JSON");
  list->callback([list_json] {
    json arr = json::array();
    if (!*list_json) std::printf("%-18s %10s %10s  %s\n", "model", "total", "active", "description");
    for (const auto& n : wl::model_names()) {
      const auto m = wl::find_model(n, "model list");
      const auto c = wl::count_params(m);
      if (*list_json) arr.push_back(params_json(m));
      else std::printf("%-18s %10s %10s  %s\n", n.c_str(), billions(c.total).c_str(), billions(c.active).c_str(),
                       m.description().c_str());
    }
    if (*list_json) {
      json wls = json::array();
      for (const auto& n : wl::workload_names()) wls.push_back(n);
      std::printf("%s\n", json{{"models", arr}, {"workloads", wls}}.dump(2).c_str());
    } else {
      std::printf("\nworkload presets (model + plan):");
      for (const auto& n : wl::workload_names()) std::printf(" %s", n.c_str());
      std::printf("\n");
    }
  });

  struct ShowArgs {
    std::string name;
    bool as_json = false;
    int64_t seq = 0;
  };
  auto sa = std::make_shared<ShowArgs>();
  auto* show = model->add_subcommand("show", "parameters, FLOPs per token and the spec of a model");
  show->add_option("name", sa->name, "preset name or ModelSpec file")->required();
  show->add_option("--seq-len", sa->seq, "sequence length for FLOPs (default: the model's)");
  show->add_flag("--json", sa->as_json, "print JSON (keys params_total, params_active, train_flops_per_token)");
  show->callback([sa] {
    auto m = wl::find_model(sa->name, "model show");
    if (sa->seq > 0) m.set_seq_len(sa->seq);
    json j = params_json(m);
    j["spec"] = json::parse(core::to_json(m));
    if (sa->as_json) {
      std::printf("%s\n", j.dump(2).c_str());
      return;
    }
    const auto c = wl::count_params(m);
    std::printf("%s: %s\n  source: %s\n", m.name().c_str(), m.description().c_str(), m.source().c_str());
    std::printf("  params total   %s", billions(c.total).c_str());
    if (m.published_params_total() > 0) std::printf("   (published %s)", billions(m.published_params_total()).c_str());
    std::printf("\n  params active  %s", billions(c.active).c_str());
    if (m.published_params_active() > 0) std::printf("   (published %s)", billions(m.published_params_active()).c_str());
    std::printf("\n");
    if (c.mtp > 0) std::printf("  MTP modules    %s (not in total)\n", billions(c.mtp).c_str());
    if (c.vision > 0) std::printf("  vision         %s (in total, not active); %lld tokens per image\n",
                                  billions(c.vision).c_str(), static_cast<long long>(wl::image_tokens(m)));
    std::printf("  layers         %lld (%lld MoE)\n", static_cast<long long>(m.layers()),
                static_cast<long long>(c.moe_layers));
    std::printf("  train FLOPs    %.4g per token at seq %lld (3 x forward, attention not halved)\n",
                j["train_flops_per_token"].get<double>(), static_cast<long long>(j["seq_len"].get<int64_t>()));
  });

  auto* plan = app.add_subcommand("plan", "check or enumerate parallel training plans");
  plan->require_subcommand(1);

  auto ci = std::make_shared<Inputs>();
  auto* check = plan->add_subcommand("check", "validate a plan and print its per-GPU memory breakdown");
  add_common(check, *ci, false);
  check->callback([ci] {
    const auto w = load_inputs(*ci);
    const auto m = wl::workload_model(w, "plan check");
    const auto problems = wl::check_plan(m, w.plan(), ci->gpus);
    const auto resolved = wl::resolve_plan(m, w.plan(), ci->gpus);
    json j = {{"model", m.name()}, {"gpus", ci->gpus}, {"plan", json::parse(core::to_json(resolved))}};
    json errs = json::array();
    for (const auto& p : problems) errs.push_back({{"field", p.field}, {"message", p.message}});
    std::string mem_error;
    if (problems.empty()) {
      const auto mem = wl::estimate_memory(m, w.plan(), ci->gpus);
      j["memory"] = memory_json(mem);
      if (!ci->as_json) std::printf("%s", wl::format_memory(mem).c_str());
      core::Bytes cap;
      const std::string limit = memory_limit(*ci, cap);
      if (!limit.empty()) {
        j["gpu_memory_bytes"] = cap.value();
        if (mem.total > cap) {
          mem_error = "the plan needs " + core::format_bytes(mem.total) + " per GPU, more than " + limit +
                      "; use more tp/pp/ep, a higher plan.zero_stage, plan.recompute (full, or selective with "
                      "plan.recompute_modules) or cached-activation formats (plan.attn_out_cache_bits, "
                      "plan.moe_act_cache_bits)";
          errs.push_back({{"field", ci->gpu_memory.empty() ? "--gpu" : "--gpu-memory"}, {"message", mem_error}});
        }
      }
    }
    j["valid"] = errs.empty();
    j["problems"] = errs;
    if (ci->as_json) std::printf("%s\n", j.dump(2).c_str());
    for (const auto& p : problems) {
      std::fprintf(stderr, "error: %s: %s\n", p.field == "gpus" ? "--gpus" : ("--set " + p.field).c_str(),
                   p.message.c_str());
    }
    if (!mem_error.empty())
      std::fprintf(stderr, "error: %s: %s\n", ci->gpu_memory.empty() ? "--gpu" : "--gpu-memory", mem_error.c_str());
    if (!errs.empty()) exit_code() = 2;
    else if (!ci->as_json) std::printf("plan is valid\n");
  });

  auto ei = std::make_shared<Inputs>();
  auto eo = std::make_shared<wl::EnumerateOptions>();
  auto zero = std::make_shared<std::vector<int64_t>>(std::vector<int64_t>{1});
  auto* en = plan->add_subcommand("enumerate", "list every valid plan that fits in the GPU memory");
  add_common(en, *ei, true);
  en->add_option("--max-tp", eo->max_tp, "largest tensor-parallel size tried")->capture_default_str();
  en->add_option("--max-cp", eo->max_cp, "largest context-parallel size tried (powers of two)")->capture_default_str();
  en->add_option("--zero", *zero, "ZeRO stages tried")->capture_default_str();
  en->callback([ei, eo, zero] {
    const auto w = load_inputs(*ei);
    const auto m = wl::workload_model(w, "plan enumerate");
    wl::EnumerateOptions opt = *eo;
    opt.gpus = ei->gpus;
    if (memory_limit(*ei, opt.gpu_memory).empty()) {
      throw core::InputError("plan enumerate", "give --gpu-memory SIZE (e.g. 80GiB) or --gpu NAME (its HBM)");
    }
    opt.zero_stages = *zero;
    opt.base = w.plan();
    if (ei->gpus < 1) throw core::InputError("--gpus", "must be a positive number of GPUs");
    const auto plans = wl::enumerate_plans(m, opt);
    if (ei->as_json) {
      json arr = json::array();
      for (const auto& c : plans) {
        arr.push_back({{"tp", c.plan.tp()}, {"pp", c.plan.pp()}, {"ep", c.plan.ep()}, {"cp", c.plan.cp()},
                       {"dp", c.plan.dp()}, {"zero_stage", c.plan.zero_stage()},
                       {"recompute", wl::config::ParallelPlan::Recompute_Name(c.plan.recompute())},
                       {"plan", json::parse(core::to_json(c.plan))}, {"memory", memory_json(c.memory)}});
      }
      std::printf("%s\n", json{{"model", m.name()}, {"gpus", ei->gpus}, {"plans", arr}}.dump(2).c_str());
      return;
    }
    std::printf("%4s %4s %4s %4s %6s %4s %-10s %12s\n", "tp", "pp", "ep", "cp", "dp", "zero", "recompute", "memory/GPU");
    for (const auto& c : plans) {
      std::printf("%4lld %4lld %4lld %4lld %6lld %4lld %-10s %9.2f GiB\n", static_cast<long long>(c.plan.tp()),
                  static_cast<long long>(c.plan.pp()), static_cast<long long>(c.plan.ep()),
                  static_cast<long long>(c.plan.cp()), static_cast<long long>(c.plan.dp()),
                  static_cast<long long>(c.plan.zero_stage()),
                  wl::config::ParallelPlan::Recompute_Name(c.plan.recompute()).c_str(),
                  c.memory.total.value() / 1073741824.0);
    }
    std::printf("%zu valid plans for %s on %lld GPUs with %s each\n", plans.size(), m.name().c_str(),
                static_cast<long long>(ei->gpus), ei->gpu_memory.c_str());
  });

  struct SearchOpts {
    sim::SearchRequest req;
    bool json = false;
  };
  auto so = std::make_shared<SearchOpts>();
  auto* se = plan->add_subcommand("search", "simulate every plan that fits a cluster and rank them by throughput");
  se->add_option("--workload", so->req.run.workload,
                 "workload preset or file (or a model preset): the model, and the plan fields every candidate keeps "
                 "(schedule, batch, micro-batch, precision, ...)")
      ->required();
  se->add_option("--platform", so->req.run.platform, "SimGrid platform XML");
  se->add_option("--gpu", so->req.run.gpu, "instead of --platform: build a cluster of this GPU in memory");
  se->add_option("--nodes", so->req.run.nodes, "with --gpu: number of nodes");
  se->add_option("--gpus-per-node", so->req.run.gpus_per_node, "with --gpu: GPUs per node")->capture_default_str();
  se->add_option("--fabric", so->req.run.fabric, "with --gpu: fabric name (`tcsim topo fabrics`)")->capture_default_str();
  se->add_option("--set", so->req.run.sets, "override key=value (gpu.*, model.*, plan.*, sim.*); repeatable")->take_all();
  se->add_option("--max-tp", so->req.max_tp, "largest tensor-parallel size tried")->capture_default_str();
  se->add_option("--max-cp", so->req.max_cp, "largest context-parallel size tried (powers of two)")->capture_default_str();
  se->add_option("--zero", so->req.zero_stages, "ZeRO stages tried")->capture_default_str();
  se->add_option("--schedule", so->req.schedules, "pipeline schedules tried (default: the workload's), e.g. 1f1b zb-h1");
  se->add_option("--micro-batch", so->req.micro_batches, "micro-batch sizes tried (default: the workload's)");
  se->add_option("--virtual-stages", so->req.virtual_stages, "interleaved chunks per rank tried (default: the workload's)");
  se->add_option("--top", so->req.top, "plans shown, most tokens/s first")->capture_default_str();
  se->add_option("--verify", so->req.verify, "re-simulate the best N with the flow fidelity")->capture_default_str();
  se->add_flag("--exact", so->req.exact,
               "simulate every plan's full step (default: a plan with many micro-batches per pipeline is timed from three "
               "shorter steps, extrapolated along the steady state when their slopes agree to 0.1%)");
  se->add_option("--jobs,-j", so->req.jobs,
                 "plans simulated at once, in forked workers (default: the CPUs this process may use; the ranking is the same)");
  se->add_flag("--json", so->json, "print JSON instead of a table");
  se->callback([so] {
    so->req.progress = isatty(STDERR_FILENO) != 0;
    const sim::SearchResult r = sim::search_plans(so->req);
    if (so->json) {
      std::printf("%s\n", sim::to_json(r).dump(2).c_str());
    } else {
      std::printf("%s on %d %s GPUs: %lld plans fit in memory, %lld simulated (%s fidelity); most tokens/s first\n",
                  r.model.c_str(), r.gpus, r.gpu.c_str(), static_cast<long long>(r.fitting),
                  static_cast<long long>(r.evaluated), r.fidelity.c_str());
      if (r.extrapolated > 0) {
        std::printf("%lld of them timed from three shorter steps, extrapolated along the steady state (marked ~; --exact "
                    "simulates every full step)\n",
                    static_cast<long long>(r.extrapolated));
      }
      std::printf("%4s %4s %4s %4s %4s %6s %4s %-10s %-16s %3s %2s %10s %10s %6s %12s%s\n", "rank", "tp", "pp", "ep", "cp", "dp",
                  "zero", "recompute", "schedule", "mb", "v", "memory/GPU", "step (s)", "MFU", "tokens/s",
                  so->req.verify > 0 ? "  flow step (s)" : "");
      int rank = 0;
      for (const auto& row : r.rows) {
        std::string flow;
        if (row.flow_step_time_s >= 0) {
          char buf[64];
          std::snprintf(buf, sizeof buf, "  %13.4g (%+.1f%%)", row.flow_step_time_s,
                        100.0 * (row.flow_step_time_s / row.step_time_s - 1));
          flow = buf;
        }
        const auto& p = row.plan;
        std::printf("%4d %4lld %4lld %4lld %4lld %6lld %4lld %-10s %-16s %3lld %2lld %6.2f GiB %9.4g%s %5.1f%% %12.4g%s\n", ++rank,
                    static_cast<long long>(p.tp()), static_cast<long long>(p.pp()), static_cast<long long>(p.ep()),
                    static_cast<long long>(p.cp()), static_cast<long long>(p.dp()), static_cast<long long>(p.zero_stage()),
                    wl::config::ParallelPlan::Recompute_Name(p.recompute()).c_str(), p.pp() > 1 ? p.schedule().c_str() : "-",
                    static_cast<long long>(p.micro_batch()), static_cast<long long>(std::max<int64_t>(1, p.virtual_stages())),
                    row.memory_bytes / 1073741824.0, row.step_time_s, row.simulated_micro_batches.empty() ? " " : "~",
                    100 * row.mfu, row.tokens_per_second, flow.c_str());
      }
      if (!r.skipped.empty()) std::printf("%zu fitting plans could not be generated, e.g.: %s\n", r.skipped.size(), r.skipped.front().c_str());
    }
    // Speed on stderr: stdout stays byte-identical for the same inputs.
    std::fflush(stdout);
    std::fprintf(stderr, "[tcsim] %lld plans simulated in %.2f s (%.0f plans/s)\n", static_cast<long long>(r.evaluated), r.wall_s,
                 r.wall_s > 0 ? static_cast<double>(r.evaluated) / r.wall_s : 0.0);
  });
}

}  // namespace tcsim::cli
