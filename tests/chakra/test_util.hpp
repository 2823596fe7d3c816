// Helpers for the Chakra tests: where the shared external traces are, temporary folders,
// and copying a trace so a test can corrupt one record of it.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>

#include "workloads/chakra/et_io.hpp"

namespace tcsim::testing {

namespace fs = std::filesystem;

inline const std::string kExternal = TCSIM_SOURCE_DIR "/../shared/external";
inline const std::string kAllReduce8 =
    kExternal + "/astra-sim/astra-sim/examples/workload/microbenchmarks/all_reduce/8npus_1MB/all_reduce";
inline const std::string kAllToAll4 =
    kExternal + "/astra-sim/astra-sim/examples/workload/microbenchmarks/all_to_all/4npus_1MB/all_to_all";
inline const std::string kRing8 = kExternal +
    "/astra-sim/astra-sim/examples/system/custom_collectives/custom_ring_allreduce_8npus_1MB/custom_allreduce";
inline const std::string kFeederTar = kExternal + "/mlcommons/chakra/tests/data/feeder_tests_trace.tar.gz";

/// A fresh folder under the system temp dir, removed with its contents at scope exit.
class TempDir {
public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "tcsim-chakra-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] std::string str() const { return path_.string(); }
  [[nodiscard]] std::string operator/(const std::string& name) const { return (path_ / name).string(); }

private:
  fs::path path_;
};

/// Copies `<src>.0.et .. <src>.<n-1>.et` to `<dst>.<r>.et`.
inline void copy_trace(const std::string& src, int n, const std::string& dst) {
  for (int r = 0; r < n; ++r)
    fs::copy_file(workloads::chakra::rank_path(src, r), workloads::chakra::rank_path(dst, r),
                  fs::copy_options::overwrite_existing);
}

/// Rewrites one rank's file of a trace after `edit` changes its parsed contents.
inline void edit_rank(const std::string& prefix, int rank, const std::function<void(workloads::chakra::EtFile&)>& edit) {
  std::string path = workloads::chakra::rank_path(prefix, rank);
  auto f = workloads::chakra::read_et_file(path);
  edit(f);
  workloads::chakra::write_et_file(path, f.meta, f.nodes);
}

/// Extracts Chakra's feeder test trace (one rank, `tests/data/chakra.0.et`) into dir and
/// returns its prefix.
inline std::string extract_feeder_trace(const TempDir& dir) {
  std::string cmd = "tar -xzf '" + kFeederTar + "' -C '" + dir.str() + "'";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("tar failed: " + cmd);
  return dir / "tests/data/chakra";
}

}  // namespace tcsim::testing
