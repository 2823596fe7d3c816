#include "workloads/multimodal.hpp"

#include <cmath>
#include <map>
#include <random>

#include "core/error.hpp"
#include "workloads/model.hpp"

namespace tcsim::workloads {

std::vector<MicroBatchImages> sample_images(const config::ModelSpec& m, int64_t micro_batches, int64_t samples, uint64_t seed) {
  std::vector<MicroBatchImages> out(static_cast<size_t>(std::max<int64_t>(0, micro_batches)));
  if (!m.has_vision() || m.vision().layers() <= 0) return out;
  using core::InputError;
  const auto& d = m.images();
  const bool given = m.has_images();
  if (d.images_per_sample() < 0) throw InputError("model.images.images_per_sample", "must be >= 0");
  if (d.kind() == config::ImageDistribution::UNIFORM && (d.images_min() < 0 || d.images_max() < d.images_min())) {
    throw InputError("model.images.images_max", "need 0 <= images_min <= images_max, got " + std::to_string(d.images_min()) + ".." +
                                                    std::to_string(d.images_max()));
  }
  std::vector<int64_t> res(d.resolutions().begin(), d.resolutions().end());
  if (res.empty()) res.push_back(m.vision().image_size());
  std::vector<double> w(d.resolution_weights().begin(), d.resolution_weights().end());
  if (w.empty()) w.assign(res.size(), 1.0);
  if (w.size() != res.size()) {
    throw InputError("model.images.resolution_weights", "has " + std::to_string(w.size()) + " values for " + std::to_string(res.size()) +
                                                            " resolutions; give one weight per resolution or none");
  }
  // Cost of one image per resolution: the encoder at that image size.
  struct Cost {
    double patches, tokens, flops;
  };
  std::vector<Cost> cost;
  for (int64_t r : res) {
    if (r <= 0 || r % m.vision().patch_size() != 0) {
      throw InputError("model.images.resolutions", std::to_string(r) + " px is not a positive multiple of the patch size " +
                                                       std::to_string(m.vision().patch_size()));
    }
    config::ModelSpec mm = m;
    mm.mutable_vision()->set_image_size(r);
    cost.push_back({static_cast<double>(image_patches(mm)), static_cast<double>(image_tokens(mm)), vision_flops_per_image(mm)});
  }
  std::mt19937_64 rng(seed ^ 0x6d756c74696d6f64ULL);  // "multimod": a stream apart from routing's
  std::discrete_distribution<size_t> pick(w.begin(), w.end());
  std::poisson_distribution<int64_t> poisson(d.images_per_sample() > 0 ? d.images_per_sample() : 1.0);
  std::uniform_int_distribution<int64_t> uniform(d.images_min(), std::max(d.images_min(), d.images_max()));
  for (auto& mb : out) {
    for (int64_t s = 0; s < samples; ++s) {
      int64_t n = 1;
      if (given) {
        switch (d.kind()) {
          case config::ImageDistribution::FIXED: n = std::llround(d.images_per_sample()); break;
          case config::ImageDistribution::POISSON: n = d.images_per_sample() > 0 ? poisson(rng) : 0; break;
          case config::ImageDistribution::UNIFORM: n = uniform(rng); break;
          default: break;
        }
      }
      for (int64_t i = 0; i < n; ++i) {
        const Cost& c = cost[res.size() == 1 ? 0 : pick(rng)];
        mb.images++;
        mb.patches += c.patches;
        mb.tokens += c.tokens;
        mb.encoder_flops += c.flops;
      }
    }
  }
  return out;
}

}  // namespace tcsim::workloads
