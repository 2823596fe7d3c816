#include "topology/export_rules.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "core/proto_util.hpp"
#include "core/quantity.hpp"
#include "topology/hardware.pb.h"

namespace tcsim::embedded {
extern const std::string_view export_rules_textproto;
}

namespace tcsim::topology {
namespace {

const pb::ExportRules& rules() {
  static const pb::ExportRules r = [] {
    pb::ExportRules msg;
    core::parse_textproto(std::string(embedded::export_rules_textproto), "platforms/export_rules.textproto", msg);
    return msg;
  }();
  return r;
}

}  // namespace

std::string ThresholdCheck::text() const { return metric + " >= " + threshold; }

double total_processing_performance(const GpuSpec& s) {
  return std::max(s.bf16_flops.value() / 1e12 * 16, s.fp8_flops.value() / 1e12 * 8);
}

std::vector<std::string> export_rule_ids() {
  std::vector<std::string> out;
  for (const auto& r : rules().rule()) out.push_back(r.id());
  return out;
}

Classification classify(const GpuSpec& spec) {
  Classification c;
  c.gpu = spec.name;
  c.tpp = total_processing_performance(spec);
  c.pd = spec.die_area_mm2 > 0 ? c.tpp / spec.die_area_mm2 : 0;
  c.interconnect_gbps = interconnect_bidirectional(spec).value() / 1e9;
  for (const auto& rule : rules().rule()) {
    RuleVerdict v;
    v.rule = rule.id();
    v.title = rule.title();
    v.source = rule.source();
    const std::string where = "platforms/export_rules.textproto: rule " + rule.id();
    // Per criterion: met when all thresholds are met. Decision:
    //  controlled     -> among met criteria, the threshold closest to failing (smallest margin ratio);
    //  not controlled -> the criterion closest to being met (its worst threshold has the largest
    //                    margin ratio), and in it the threshold that fails by the most.
    bool have = false;
    double best = 0;
    for (const auto& crit : rule.any_of()) {
      bool all_met = true;
      std::vector<ThresholdCheck> checks;
      for (const auto& t : crit.all_of()) {
        ThresholdCheck tc;
        tc.criterion = crit.name();
        tc.metric = t.metric();
        tc.threshold = t.min();
        if (t.metric() == "tpp") {
          tc.value = c.tpp;
          tc.limit = core::parse_number(t.min(), where);
        } else if (t.metric() == "pd") {
          tc.value = c.pd;
          tc.known = spec.die_area_mm2 > 0;
          tc.limit = core::parse_number(t.min(), where);
        } else if (t.metric() == "interconnect_bw") {
          tc.value = c.interconnect_gbps;
          tc.limit = core::parse_bandwidth(t.min(), where).value() / 1e9;
        } else {
          throw core::InputError(where, "unknown metric '" + t.metric() + "'; known: tpp, pd, interconnect_bw");
        }
        tc.met = tc.known && (t.strict() ? tc.value > tc.limit : tc.value >= tc.limit);
        all_met = all_met && tc.met;
        checks.push_back(tc);
      }
      if (checks.empty()) continue;
      if (all_met) {
        auto closest = *std::min_element(checks.begin(), checks.end(), [](const auto& a, const auto& b) {
          return a.margin_ratio() < b.margin_ratio();
        });
        if (!v.controlled || closest.margin_ratio() > v.deciding.margin_ratio()) v.deciding = closest;
        v.controlled = true;
      } else if (!v.controlled) {
        ThresholdCheck worst;
        bool first = true;
        for (const auto& tc : checks) {
          if (tc.met) continue;
          if (first || tc.margin_ratio() < worst.margin_ratio()) worst = tc;
          first = false;
        }
        if (!have || worst.margin_ratio() > best) {
          v.deciding = worst;
          best = worst.margin_ratio();
          have = true;
        }
      }
      v.checks.insert(v.checks.end(), checks.begin(), checks.end());
    }
    c.rules.push_back(v);
  }
  return c;
}

}  // namespace tcsim::topology
