// GPU specifications: the catalog (platforms/gpus.textproto, embedded in the binary),
// lookups, and overrides. The same `gpu.*` keys serve three purposes: `--set gpu.X=...`
// on the command line, fields of a saved variant, and the properties a GPU host carries
// in platform XML. So a spec read back from XML is exactly the spec that was written.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/overrides.hpp"
#include "core/units.hpp"

namespace tcsim::topology {

struct GpuSpec {
  std::string name;         ///< catalog name, e.g. "H800"
  std::string description;
  std::string family;       ///< calibration family: "ampere", "hopper", "blackwell", "cdna3", "ascend"
  core::FlopsPerSecond bf16_flops;  ///< dense BF16 peak
  core::FlopsPerSecond fp8_flops;   ///< dense FP8 peak (0 = not supported)
  core::Bytes hbm;                  ///< HBM capacity
  core::BytesPerSecond hbm_bw;
  core::BytesPerSecond nvlink_bw;   ///< scale-up bandwidth per direction per GPU (line rate)
  int nvlink_links = 0;
  int scaleup_domain = 8;           ///< GPUs sharing one scale-up (NVLink) domain
  core::BytesPerSecond nic_bw;      ///< scale-out NIC bandwidth per GPU per direction
  core::Watts tdp;
  double die_area_mm2 = 0;
  double price_per_hour_usd = 0;    ///< rental price per GPU-hour (0 = not published)
  int sm_count = 0;                 ///< streaming multiprocessors (for SM contention)
  bool nvls = false;                ///< NVSwitch in-network reduction (NVLink SHARP)
  std::map<std::string, std::string> sources;  ///< field key -> citation
  std::vector<std::string> uncertain;          ///< field keys whose figures sources disagree on

  /// Peak FLOP/s for a precision name ("bf16", "fp8"); FP8 falls back to BF16 when absent.
  [[nodiscard]] core::FlopsPerSecond peak(const std::string& precision) const;
};

/// All catalog entries in catalog order.
const std::vector<GpuSpec>& gpu_catalog();
/// A catalog entry by name (case-insensitive); InputError listing the known names otherwise.
GpuSpec find_gpu(const std::string& name, const std::string& where = "--gpu");
/// Applies and consumes every `gpu.*` key of overrides (e.g. gpu.nvlink_bw=200GBps).
/// Unknown gpu.* keys are errors listing the valid ones.
void apply_gpu_overrides(GpuSpec& spec, core::Overrides& overrides);
/// The settable keys ("gpu.bf16_flops", ...), in a stable order.
const std::vector<std::string>& gpu_keys();
/// The spec as key -> value-with-unit, for XML host properties and `hw show`.
std::map<std::string, std::string> to_properties(const GpuSpec& spec);
/// Builds a spec from host properties (every required key present, units checked);
/// `where` names the host for errors ("f.xml: host gpu-n0-g0").
GpuSpec from_properties(const std::map<std::string, std::string>& props, const std::string& where);

// ---- extensions beyond the foundation interface ----

/// One settable field: its key ("gpu.nvlink_bw"), what it means and the unit it takes.
struct GpuField {
  std::string key;
  std::string description;
  std::string unit;      ///< "FLOP/s", "bytes", "bytes/s", "W", "mm2", "USD/h", "count", "bool", "text"
  bool required = true;  ///< must be present in host properties
};
/// Every field in gpu_keys() order.
const std::vector<GpuField>& gpu_fields();
/// Parses a catalog (textproto of topology/hardware.proto GpuCatalog); `name` is the file
/// name used in errors. Every figure must carry its unit.
std::vector<GpuSpec> parse_gpu_catalog(const std::string& text, const std::string& name);
/// Adds the entries of a user catalog file (same schema) to gpu_catalog(); an entry with
/// an existing name replaces it. This is how a saved variant becomes a catalog entry.
void load_gpu_catalog_file(const std::string& path);
/// The spec as a catalog entry (textproto), ready to append to a catalog file.
std::string to_catalog_entry(const GpuSpec& spec);
/// Aggregate bidirectional chip-to-chip bandwidth (2 x nvlink_bw), as export rules count it.
core::BytesPerSecond interconnect_bidirectional(const GpuSpec& spec);

}  // namespace tcsim::topology
