// Distributed collectives over c10d (ghm_torch.h, "distributed collectives"): a TCPStore rendezvous hosted by rank 0,
// ProcessGroupGloo for CPU tensors and, in a CUDA build that has it, ProcessGroupNCCL for CUDA tensors.
//
// Built with GHM_HAVE_GLOO only when Gloo's headers were found (CMakeLists.txt); otherwise every entry point exists
// and reports why distributed training is not available. Gloo's types reach this file only as shared_ptrs created
// inside libtorch (Options::create_default), so the shim instantiates no gloo:: code of its own: the headers may come
// from another Gloo version than the one compiled into libtorch (Tests/TorchTests/DistributedTests checks with nm).
#include "guard.h"
#include <chrono>
#include <map>
#include <utility>
#include <vector>

#ifdef GHM_HAVE_GLOO
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef GHM_HAVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

using namespace gt;

namespace {

void write_string(const std::string &s, char *buf, size_t cap, bool required) {
  if (cap == 0 && !required) return;
  arg(buf, "buf");
  if (cap < s.size() + 1) throw std::invalid_argument("buffer too small");
  std::memcpy(buf, s.c_str(), s.size() + 1);
}

#ifdef GHM_HAVE_GLOO

struct Group {
  int rank = 0, size = 1;
  std::chrono::milliseconds timeout{0};
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> gloo;
  c10::intrusive_ptr<c10d::Backend> nccl;  // null unless built with NCCL and CUDA is present
};

Group &group(gt_process_group pg) {
  if (!pg.ptr) throw null_argument("pg is a NULL process group handle");
  return *static_cast<Group *>(pg.ptr);
}

// The backend for tensors on this device.
c10d::Backend &backend_for(Group &g, const at::Device &d) {
  if (d.is_cpu()) return *g.gloo;
  if (d.is_cuda()) {
    if (g.nccl) return *g.nccl;
    throw std::invalid_argument("CUDA tensors need NCCL, which this shim was built without");
  }
  throw std::invalid_argument("unsupported device type " + c10::DeviceTypeName(d.type(), /*lower_case=*/true));
}

// Waits for a collective; its failure (a dead peer, a timeout) becomes an exception naming the op and this rank.
void finish(const Group &g, const c10::intrusive_ptr<c10d::Work> &work, const char *op) {
  try {
    work->wait();
  } catch (const c10::Error &e) {
    throw std::runtime_error(std::string(op) + " failed on rank " + std::to_string(g.rank) + " of " +
                             std::to_string(g.size) + ": " + e.what_without_backtrace());
  } catch (const std::exception &e) {
    throw std::runtime_error(std::string(op) + " failed on rank " + std::to_string(g.rank) + " of " +
                             std::to_string(g.size) + ": " + e.what());
  }
}

// The tensors grouped by (device, dtype), each group in argument order: one bucket, one collective.
std::vector<std::vector<at::Tensor>> buckets(const gt_tensor *tensors, int32_t n) {
  if (n < 0) throw std::invalid_argument("negative length of tensors");
  if (n > 0) arg(tensors, "tensors");
  std::map<std::pair<std::string, int>, size_t> index;
  std::vector<std::vector<at::Tensor>> out;
  for (int32_t i = 0; i < n; i++) {
    if (!tensors[i].ptr) throw null_argument("tensors[" + std::to_string(i) + "] is a NULL tensor handle");
    const at::Tensor &t = *static_cast<at::Tensor *>(tensors[i].ptr);
    dtype_code(t.scalar_type());
    auto key = std::make_pair(t.device().str(), static_cast<int>(t.scalar_type()));
    auto [it, fresh] = index.emplace(key, out.size());
    if (fresh) out.emplace_back();
    out[it->second].push_back(t);
  }
  return out;
}

int64_t total_numel(const std::vector<at::Tensor> &ts) {
  int64_t n = 0;
  for (const auto &t : ts) n += t.numel();
  return n;
}

// One contiguous buffer holding a bucket's elements (the tensor itself when the bucket is one contiguous tensor).
at::Tensor flatten(const std::vector<at::Tensor> &ts) {
  if (ts.size() == 1 && ts[0].is_contiguous()) return ts[0].view({-1});
  at::Tensor flat = at::empty({total_numel(ts)}, ts[0].options());
  int64_t off = 0;
  for (const auto &t : ts) {
    flat.narrow(0, off, t.numel()).view(t.sizes()).copy_(t);
    off += t.numel();
  }
  return flat;
}

void unflatten(const at::Tensor &flat, const std::vector<at::Tensor> &ts) {
  if (ts.size() == 1 && ts[0].is_contiguous()) return;  // reduced in place
  int64_t off = 0;
  for (auto t : ts) {
    t.copy_(flat.narrow(0, off, t.numel()).view(t.sizes()));
    off += t.numel();
  }
}

// Runs a collective over each bucket of the tensors, in place. call(backend, buffers) starts it.
template <typename F> void bucketed(Group &g, const gt_tensor *tensors, int32_t n, const char *op, F call) {
  at::NoGradGuard no_grad;
  for (const auto &bucket : buckets(tensors, n)) {
    std::vector<at::Tensor> bufs{flatten(bucket)};
    finish(g, call(backend_for(g, bufs[0].device()), bufs), op);
    unflatten(bufs[0], bucket);
  }
}

#endif // GHM_HAVE_GLOO

} // namespace

extern "C" {

int gt_dist_available(int32_t *gloo, int32_t *nccl, char *reason, size_t cap) {
  return guard(__func__, [&] {
    ARG(gloo);
    ARG(nccl);
    std::string why;
#ifdef GHM_HAVE_GLOO
    *gloo = 1;
#else
    *gloo = 0;
    why = "the shim was built without Gloo's headers (install libgloo-dev, then rebuild it: make shim)";
#endif
#ifdef GHM_HAVE_NCCL
    *nccl = 1;
#else
    *nccl = 0;
    if (why.empty())
      why = "NCCL not compiled in (this libtorch has no CUDA, or its ProcessGroupNCCL.hpp does not compile here)";
#endif
    write_string(why, reason, cap, false);
  });
}

#ifdef GHM_HAVE_GLOO

int gt_dist_init(int32_t rank, int32_t world_size, const char *master_addr, int32_t master_port, int64_t timeout_ms,
                 gt_process_group *out) {
  return guard(__func__, [&] {
    ARG(master_addr);
    ARG(out);
    if (world_size < 1) throw std::invalid_argument("world size " + std::to_string(world_size) + " is not >= 1");
    if (rank < 0 || rank >= world_size)
      throw std::invalid_argument("rank " + std::to_string(rank) + " is not in [0, " + std::to_string(world_size) + ")");
    if (master_port < 1 || master_port > 65535)
      throw std::invalid_argument("master port " + std::to_string(master_port) + " is not in [1, 65535]");
    if (timeout_ms <= 0) throw std::invalid_argument("timeout " + std::to_string(timeout_ms) + " ms is not > 0");
    if (!*master_addr) throw std::invalid_argument("master address is empty");
    auto g = std::make_unique<Group>();
    g->rank = rank;
    g->size = world_size;
    g->timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(master_port);
    so.isServer = rank == 0;
    so.numWorkers = static_cast<size_t>(world_size);
    so.waitWorkers = true;
    so.timeout = g->timeout;
    try {
      g->store = c10::make_intrusive<c10d::TCPStore>(master_addr, so);
    } catch (const c10::Error &e) {
      throw std::runtime_error("rendezvous at " + std::string(master_addr) + ":" + std::to_string(master_port) +
                               " (rank " + std::to_string(rank) + " of " + std::to_string(world_size) +
                               ") failed: " + e.what_without_backtrace());
    }
    // create_default picks the transport device inside libtorch (GLOO_SOCKET_IFNAME is honoured there).
    auto opts = c10d::ProcessGroupGloo::Options::create_default(g->timeout);
    g->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(c10::make_intrusive<c10d::PrefixStore>("gloo", g->store),
                                                          rank, world_size, opts);
#ifdef GHM_HAVE_NCCL
    if (at::hasCUDA()) {
      auto nopts = c10d::ProcessGroupNCCL::Options::create();
      nopts->timeout = g->timeout;
      g->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(c10::make_intrusive<c10d::PrefixStore>("nccl", g->store),
                                                            rank, world_size, nopts);
    }
#endif
    out->ptr = g.release();
  });
}

int gt_dist_destroy(gt_process_group pg) {
  return guard(__func__, [&] { delete &group(pg); });
}

int gt_dist_backend(gt_process_group pg, char *buf, size_t cap) {
  return guard(__func__, [&] {
    Group &g = group(pg);
    write_string(g.nccl ? "gloo+nccl" : "gloo", buf, cap, true);
  });
}

int gt_dist_all_reduce_sum(gt_process_group pg, const gt_tensor *tensors, int32_t n) {
  return guard(__func__, [&] {
    Group &g = group(pg);
    bucketed(g, tensors, n, "all_reduce", [](c10d::Backend &b, std::vector<at::Tensor> &bufs) {
      c10d::AllreduceOptions o;
      o.reduceOp = c10d::ReduceOp::SUM;
      return b.allreduce(bufs, o);
    });
  });
}

int gt_dist_broadcast(gt_process_group pg, const gt_tensor *tensors, int32_t n, int32_t root) {
  return guard(__func__, [&] {
    Group &g = group(pg);
    if (root < 0 || root >= g.size)
      throw std::invalid_argument("root " + std::to_string(root) + " is not in [0, " + std::to_string(g.size) + ")");
    bucketed(g, tensors, n, "broadcast", [root](c10d::Backend &b, std::vector<at::Tensor> &bufs) {
      c10d::BroadcastOptions o;
      o.rootRank = root;
      o.rootTensor = 0;
      return b.broadcast(bufs, o);
    });
  });
}

int gt_dist_barrier(gt_process_group pg) {
  return guard(__func__, [&] {
    Group &g = group(pg);
    c10d::BarrierOptions o;
    o.timeout = g.timeout;
    finish(g, g.gloo->barrier(o), "barrier");
  });
}

#else // no Gloo: every entry point says why

static void unavailable() {
  throw std::runtime_error("distributed training is not available: the shim was built without Gloo's headers "
                           "(install libgloo-dev, then rebuild it: make shim)");
}
int gt_dist_init(int32_t, int32_t, const char *, int32_t, int64_t, gt_process_group *) {
  return guard(__func__, [] { unavailable(); });
}
int gt_dist_destroy(gt_process_group) { return guard(__func__, [] { unavailable(); }); }
int gt_dist_backend(gt_process_group, char *, size_t) { return guard(__func__, [] { unavailable(); }); }
int gt_dist_all_reduce_sum(gt_process_group, const gt_tensor *, int32_t) {
  return guard(__func__, [] { unavailable(); });
}
int gt_dist_broadcast(gt_process_group, const gt_tensor *, int32_t, int32_t) {
  return guard(__func__, [] { unavailable(); });
}
int gt_dist_barrier(gt_process_group) { return guard(__func__, [] { unavailable(); }); }

#endif // GHM_HAVE_GLOO

} // extern "C"
