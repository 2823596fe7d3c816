// Multimodal data: how many images each sample has and at what resolution
// (config::ImageDistribution, seeded by Workload.seed), and what that costs per
// micro-batch: vision-encoder work and, with early fusion, image tokens that join the
// text sequence. Every data-parallel replica draws the same micro-batches (so replicas
// stay identical and the generator can fold them); the variation is across micro-batches.
#pragma once

#include <cstdint>
#include <vector>

#include "workloads/model.pb.h"

namespace tcsim::workloads {

struct MicroBatchImages {
  int64_t images = 0;        ///< images in the micro-batch (all its samples)
  double patches = 0;        ///< patches the vision encoder processes
  double tokens = 0;         ///< image tokens after pixel shuffle (LLM sequence / cross-attention keys)
  double encoder_flops = 0;  ///< forward FLOP of encoder + projector for these images
};

/// One entry per micro-batch (samples_per_micro_batch samples each); all zero without a
/// vision encoder. Throws core::InputError("model.images.<field>", ...) for bad
/// distributions (negative means, min > max, resolutions not a multiple of the patch).
std::vector<MicroBatchImages> sample_images(const config::ModelSpec& m, int64_t micro_batches,
                                            int64_t samples_per_micro_batch, uint64_t seed);

}  // namespace tcsim::workloads
