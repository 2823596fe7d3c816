// Names of the extra attributes tcsim writes into Chakra files (ignored by other tools) so a
// written program reads back with the facts Chakra has no field for, and metadata helpers.
#pragma once

#include <optional>
#include <string>

#include "workloads/chakra/et_def.pb.h"

namespace tcsim::workloads::chakra {

// Node attributes.
inline constexpr const char* kStream = "tcsim_stream";            ///< string, to_string(Stream)
inline constexpr const char* kCategory = "tcsim_category";        ///< string, to_string(CommCategory)
inline constexpr const char* kClass = "tcsim_class";              ///< string, to_string(ComputeClass)
inline constexpr const char* kPrecision = "tcsim_precision";      ///< string, to_string(Precision)
inline constexpr const char* kFixedSeconds = "tcsim_fixed_seconds";  ///< double: exact duration
inline constexpr const char* kFlops = "tcsim_flops";              ///< double: exact FLOP (num_ops is rounded)
inline constexpr const char* kHbmBytes = "tcsim_hbm_bytes";       ///< double: exact bytes (tensor_size is rounded)
inline constexpr const char* kM = "tcsim_m";
inline constexpr const char* kN = "tcsim_n";
inline constexpr const char* kK = "tcsim_k";
inline constexpr const char* kMaxNodes = "tcsim_max_nodes";       ///< uint32
inline constexpr const char* kMatrix = "tcsim_a2a_matrix";        ///< double_list, group_size^2
// GlobalMetadata attributes.
inline constexpr const char* kTokensPerStep = "tcsim_tokens_per_step";
inline constexpr const char* kModelFlopsPerStep = "tcsim_model_flops_per_step";
inline constexpr const char* kProgramPrecision = "tcsim_precision";
inline constexpr const char* kPgCommPrefix = "tcsim_pg_comm.";    ///< + pg_name -> communicator name
inline constexpr const char* kLane = "tcsim_lane";                ///< lane the file was unfolded from
inline constexpr const char* kReplica = "tcsim_replica";          ///< index of the rank within its lane

inline const ChakraProtoMsg::AttributeProto* meta_attr(const ChakraProtoMsg::GlobalMetadata& m, const std::string& name) {
  for (const auto& a : m.attr())
    if (a.name() == name) return &a;
  return nullptr;
}
inline std::optional<std::string> meta_string(const ChakraProtoMsg::GlobalMetadata& m, const std::string& name) {
  const auto* a = meta_attr(m, name);
  if (a && a->has_string_val()) return a->string_val();
  return std::nullopt;
}
inline std::optional<double> meta_double(const ChakraProtoMsg::GlobalMetadata& m, const std::string& name) {
  const auto* a = meta_attr(m, name);
  if (a && a->has_double_val()) return a->double_val();
  return std::nullopt;
}

}  // namespace tcsim::workloads::chakra
