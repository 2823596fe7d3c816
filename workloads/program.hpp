// The program: what every rank of a training step does, as an op DAG per lane.
//
// Hardware-independent: FLOPs, bytes and groups of ranks only. The generator
// (workloads/generator.hpp) and the Chakra importer produce this structure; sim/ executes
// it without caring where it came from.
//
// Folding. A lane is the program of one or more physical ranks that do exactly the same
// thing (e.g. every rank of one pipeline stage when routing is uniform). The executor runs
// each lane once, but a collective or send issued by a lane moves the bytes of *every*
// rank the lane stands for, so the fabric carries the load of the whole cluster. An
// unfolded program has one lane per rank.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace tcsim::workloads {

/// Which stream an op runs on. Ops on one stream of a lane run one at a time in issue
/// order; different streams overlap as their dependencies allow. Cpu: host-side ops of
/// imported traces (Chakra is_cpu_op), which overlap GPU kernels as in ASTRA-sim.
enum class Stream : uint8_t { Compute, TpComm, EpComm, PpComm, DpComm, CpComm, Memory, Cpu };
inline constexpr int kStreamCount = 8;

enum class OpKind : uint8_t { Compute, Collective, Send, Recv, Memory };

enum class CollectiveType : uint8_t { AllReduce, AllGather, ReduceScatter, AllToAll, Broadcast, Reduce };

enum class Precision : uint8_t { BF16, FP8, FP32, FP16 };

/// What a compute op is, for the efficiency curves of the cost model.
enum class ComputeClass : uint8_t {
  Gemm,         ///< dense matmul (attention projections, dense FFN, LM head)
  ExpertGemm,   ///< grouped expert matmul (smaller, less efficient)
  Attention,    ///< softmax(QK^T)V core (flash attention)
  Elementwise,  ///< norms, activations, router, optimizer: memory bound
  Fixed,        ///< duration given by a trace (Chakra duration_micros)
};

/// Communication category for breakdowns ("where the time went").
enum class CommCategory : uint8_t {
  TpAllReduce, TpAllGather, TpReduceScatter, EpAllToAll, PpP2P, DpAllReduce, DpReduceScatter,
  DpAllGather, CpExchange, Other,
  EmbAllReduce,  ///< tied word-embedding gradients between the first and last pipeline stage
};
inline constexpr int kCommCategoryCount = 11;
/// Stable snake_case name used in JSON ("ep_all_to_all", "dp_all_reduce", ...).
const char* to_string(CommCategory c);
const char* to_string(CollectiveType t);
const char* to_string(Stream s);
const char* to_string(Precision p);
const char* to_string(ComputeClass c);

// Members ordered so that they pack into 40 bytes (an op into 64): S1 holds 145,040 ops,
// and in analytical fidelity touching their memory is a large part of a run.
struct ComputeOp {
  double flops = 0;          ///< FLOP of one rank
  double hbm_bytes = 0;      ///< bytes read+written from HBM by one rank
  /// GEMM shape (M x N x K; 0 when unknown): carried to and from Chakra traces, not used by
  /// the cost model. 32 bits: GEMM dimensions of one rank's kernels are far below 2^32
  /// (the Chakra reader refuses larger ones).
  uint32_t m = 0, n = 0, k = 0;
  ComputeClass cls = ComputeClass::Gemm;
  Precision precision = Precision::BF16;
  double fixed_seconds = -1;  ///< >= 0: duration fixed by a trace, ignore flops
};

struct CollectiveOp {
  CollectiveType type = CollectiveType::AllReduce;
  uint32_t comm = 0;   ///< index into Program::comms
  /// Buffer size per rank in bytes, nccl-tests convention: all_reduce/broadcast/reduce:
  /// the buffer; all_gather: the output; reduce_scatter: the input; all_to_all: total
  /// sent by one rank (split evenly unless `matrix` is set).
  double bytes = 0;
  /// Optional uneven all-to-all: bytes from group member i to member j, row-major
  /// (group_size^2), identical for every group of the communicator. Not owned: it points
  /// into Program::matrices (Program::add_matrix), which the program and its copies share.
  /// A plain pointer keeps the op trivially copyable (see Op).
  const std::vector<double>* matrix = nullptr;
  /// Node-limited routing: at most this many distinct nodes per sender (0 = no limit).
  uint32_t max_nodes = 0;
};

struct P2POp {
  uint32_t peer_lane = 0;  ///< the lane on the other side
  /// Per physical rank pair. The send's is what moves; a receive's is not used (the
  /// generator leaves it 0 so that volumes count once; imported traces carry Chakra's
  /// comm_size, and the Chakra writer gives a receive its send's).
  double bytes = 0;
  uint32_t tag = 0;        ///< matches a Send with its Recv between the same lanes
};

/// The dependencies of an op: indices of earlier ops of its lane. Most ops have one or two,
/// so up to two live inside the op and only longer lists take a heap block. A
/// std::vector was one heap block per op (S1: 123,440 of them, made, touched and freed in
/// every run). Assignable from a std::vector<uint32_t> and from a braced list, iterable,
/// comparable with both.
class Deps {
public:
  using value_type = uint32_t;
  using size_type = size_t;
  using difference_type = std::ptrdiff_t;
  using reference = uint32_t&;
  using const_reference = const uint32_t&;
  using iterator = uint32_t*;
  using const_iterator = const uint32_t*;

  Deps() noexcept = default;
  Deps(std::initializer_list<uint32_t> v) { assign(v.begin(), v.end()); }
  explicit Deps(const std::vector<uint32_t>& v) { assign(v.data(), v.data() + v.size()); }
  Deps(const Deps& o) { assign(o.begin(), o.end()); }
  Deps(Deps&& o) noexcept : size_(o.size_), cap_(o.cap_), u_(o.u_) {
    o.size_ = 0;
    o.cap_ = kInline;
  }
  ~Deps() { release(); }
  Deps& operator=(const Deps& o) {
    if (this != &o) assign(o.begin(), o.end());
    return *this;
  }
  Deps& operator=(Deps&& o) noexcept {
    if (this != &o) {
      release();
      size_ = o.size_;
      cap_ = o.cap_;
      u_ = o.u_;
      o.size_ = 0;
      o.cap_ = kInline;
    }
    return *this;
  }
  Deps& operator=(std::initializer_list<uint32_t> v) {
    assign(v.begin(), v.end());
    return *this;
  }
  Deps& operator=(const std::vector<uint32_t>& v) {
    assign(v.data(), v.data() + v.size());
    return *this;
  }

  [[nodiscard]] size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  uint32_t* data() noexcept { return cap_ > kInline ? u_.heap : u_.local; }
  [[nodiscard]] const uint32_t* data() const noexcept { return cap_ > kInline ? u_.heap : u_.local; }
  uint32_t* begin() noexcept { return data(); }
  uint32_t* end() noexcept { return data() + size_; }
  [[nodiscard]] const uint32_t* begin() const noexcept { return data(); }
  [[nodiscard]] const uint32_t* end() const noexcept { return data() + size_; }
  uint32_t& operator[](size_t i) noexcept { return data()[i]; }
  const uint32_t& operator[](size_t i) const noexcept { return data()[i]; }
  void push_back(uint32_t v) {
    if (size_ == cap_) grow(2 * static_cast<size_t>(cap_));
    data()[size_++] = v;
  }
  void clear() noexcept { size_ = 0; }
  /// Keeps the first n (no-op when n >= size()).
  void truncate(size_t n) noexcept {
    if (n < size_) size_ = static_cast<decltype(size_)>(n);
  }

  friend bool operator==(const Deps& a, const Deps& b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }
  friend bool operator==(const Deps& a, const std::vector<uint32_t>& b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }

private:
  static constexpr uint32_t kInline = 2;
  void release() noexcept {
    if (cap_ > kInline) delete[] u_.heap;
    cap_ = kInline;
    size_ = 0;
  }
  // Capacity for at least n (and more than inline), keeping the contents. The floor also
  // tells GCC that the block is never empty (it warned of a copy into `new uint32_t[0]`).
  void grow(size_t n) {
    n = std::max<size_t>(n, 2 * kInline);
    auto* p = new uint32_t[n];
    std::copy(begin(), end(), p);
    if (cap_ > kInline) delete[] u_.heap;
    u_.heap = p;
    cap_ = static_cast<uint32_t>(n);
  }
  void assign(const uint32_t* first, const uint32_t* last) {
    const auto n = static_cast<size_t>(last - first);
    if (n > cap_) {
      size_ = 0;
      grow(n);
    }
    std::copy(first, last, data());
    size_ = static_cast<uint32_t>(n);
  }
  uint32_t size_ = 0;
  uint32_t cap_ = kInline;  // > kInline: the list lives in u_.heap
  union {
    uint32_t local[kInline];
    uint32_t* heap;
  } u_{};
};

/// One op of a lane. Only the part that `kind` names is meaningful: `compute` for Compute
/// and Memory, `coll` for Collective, `p2p` for Send and Recv; readers check `kind` first.
/// The three parts share their storage (an anonymous union): side by side they made an op
/// 144 bytes, and S1's 123,440 ops are generated, copied and read on every run, where the
/// first touch of each page costs more than the work on it (docs/PERFORMANCE.md); now 64.
///
/// A default op is a compute op, and because ComputeOp's defaults are zero bits wherever
/// CollectiveOp and P2POp have fields (static_asserts below), it also reads as a default
/// CollectiveOp and P2POp: code that sets `kind = Collective` and only some of `coll`'s
/// fields gets the defaults in the others, as when the parts were separate members.
struct Op {
  // Spelt out: GCC 12 deletes the implicit default constructor here (the union's members
  // have non-trivial ones, from their default member initialisers), even with `compute{}`.
  Op() noexcept : compute() {}

  OpKind kind = OpKind::Compute;
  Stream stream = Stream::Compute;
  CommCategory category = CommCategory::Other;  ///< for communication ops
  uint32_t label = 0;                            ///< index into Program::labels
  Deps deps;                                     ///< ops of the same lane that must finish first
  union {
    ComputeOp compute;
    CollectiveOp coll;
    P2POp p2p;
  };
};

// The union needs trivially copyable parts (an op is copied and moved as bytes), and the
// default compute part must leave every field of the other two at its default, i.e. zero.
static_assert(std::is_trivially_copyable_v<ComputeOp> && std::is_trivially_copyable_v<CollectiveOp> &&
              std::is_trivially_copyable_v<P2POp>);
static_assert(std::numeric_limits<double>::is_iec559, "0.0 must be all zero bits");
static_assert(offsetof(ComputeOp, fixed_seconds) >= sizeof(CollectiveOp) && offsetof(ComputeOp, fixed_seconds) >= sizeof(P2POp),
              "the collective and p2p parts must overlap only zero-initialised compute fields (flops, hbm_bytes, m, n, k, "
              "and cls and precision, whose defaults are 0)");
static_assert(static_cast<int>(ComputeClass::Gemm) == 0 && static_cast<int>(Precision::BF16) == 0);
static_assert(sizeof(Op) <= 64, "an op grew: S1 holds 145,040 of them");

/// Groups of physical ranks that run one collective together. All groups of a
/// communicator execute each of its collectives concurrently (they are replicas).
struct Communicator {
  std::string name;                      ///< e.g. "ep", "dp", "tp", "world"
  std::vector<std::vector<int>> groups;  ///< physical ranks; each group ordered
};

struct Lane {
  std::vector<int> ranks;  ///< physical ranks this lane stands for (>= 1)
  std::vector<Op> ops;     ///< topologically ordered: deps point backwards
};

struct Program {
  int world_size = 0;
  std::vector<Lane> lanes;
  std::vector<Communicator> comms;
  std::vector<std::string> labels;  ///< op names, shared
  /// Uneven all-to-all matrices that ops point to (CollectiveOp::matrix). Each is held by
  /// shared_ptr so that it stays put when the program moves and a copy of the program
  /// keeps its ops' pointers valid.
  std::vector<std::shared_ptr<const std::vector<double>>> matrices;

  // What the step achieves, for throughput and MFU.
  double tokens_per_step = 0;        ///< tokens processed by the whole job per step
  double model_flops_per_step = 0;   ///< useful FLOP (no recompute) of the whole job
  Precision precision = Precision::BF16;
  /// MoE routing behind the all-to-alls (0 = unknown or no MoE): copies per token counted in
  /// their bytes (top-k), and the node limit per token. The executor's DeepEP-style
  /// all-to-all deduplicates copies with them (sim/collectives.hpp MoeRouting).
  int moe_top_k = 0;
  int moe_max_nodes = 0;

  /// Interns a label and returns its index.
  uint32_t label(const std::string& name);
  /// Keeps an uneven all-to-all matrix for CollectiveOp::matrix and returns it.
  const std::vector<double>* add_matrix(std::vector<double> m);
  /// Total number of ops over all lanes.
  [[nodiscard]] size_t op_count() const;
};

/// Checks structural invariants (deps backwards, comm indices valid, p2p pairs match,
/// collective counts per communicator agree between lanes). Throws InputError naming the
/// lane and op on the first problem; `source` names where the program came from.
void validate(const Program& p, const std::string& source);

}  // namespace tcsim::workloads
