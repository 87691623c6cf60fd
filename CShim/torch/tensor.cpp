// Torch shim, part 1: runtime, lifetime, creation, read-out, elementwise ops, reductions, shape and indexing.
#include "guard.h"
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <sys/mman.h>
#include <unordered_map>
#include <vector>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/DeviceAccelerator.h>
#include <ATen/autocast_mode.h>
#include <ATen/Parallel.h>
#include <torch/headeronly/version.h>

using gt::guard;
using gt::put;

namespace gt {
static thread_local std::string last_error;
void set_error(const std::string &msg) { last_error = msg; }

// A CPU allocator that keeps freed large blocks (>= 1 MiB, rounded to 2 MiB and 2 MiB-aligned, advised as huge
// pages) for reuse, up to a limit: inference allocates the same large activation sizes image after image, and
// fresh large allocations cost an mmap, page faults and an munmap each time. Small blocks are c10's alloc_cpu and
// free_cpu, as with libtorch's default allocator; one deleter serves both (raw_deallocate needs a single one).
struct CachingCPUAllocator final : at::Allocator {
  static constexpr size_t kMin = size_t(1) << 20, kAlign = size_t(2) << 20;
  size_t limit;
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void *>> free_blocks;
  std::unordered_map<void *, size_t> live;
  size_t cached = 0;
  bool installed = false;  // libtorch's current CPU allocator (the instance lives on for the blocks it handed out)

  explicit CachingCPUAllocator(size_t l) : limit(l) {}

  static CachingCPUAllocator *&instance() {
    static CachingCPUAllocator *inst = nullptr;
    return inst;
  }

  at::DataPtr allocate(size_t n) override {
    if (n < kMin) {
      void *small = c10::alloc_cpu(n);
      return {small, small, &release, at::Device(at::kCPU)};
    }
    size_t size = (n + kAlign - 1) / kAlign * kAlign;
    void *p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex);
      auto it = free_blocks.find(size);
      if (it != free_blocks.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        cached -= size;
      }
    }
    if (!p) p = fresh(size);
    {
      std::lock_guard<std::mutex> lock(mutex);
      live[p] = size;
    }
    return {p, p, &release, at::Device(at::kCPU)};
  }

  void *fresh(size_t size) {
    void *p = nullptr;
    if (posix_memalign(&p, kAlign, size) != 0) {
      trim(0);  // give the cache back to the system and try once more
      if (posix_memalign(&p, kAlign, size) != 0) throw std::bad_alloc();
    }
    madvise(p, size, MADV_HUGEPAGE);
    return p;
  }

  void trim(size_t keep) {
    std::lock_guard<std::mutex> lock(mutex);
    for (auto &kv : free_blocks) {
      while (cached > keep && !kv.second.empty()) {
        std::free(kv.second.back());
        kv.second.pop_back();
        cached -= kv.first;
      }
    }
  }

  static void release(void *p) {
    if (!p) return;
    auto *self = instance();
    std::unique_lock<std::mutex> lock(self->mutex);
    auto it = self->live.find(p);
    if (it == self->live.end()) {  // a small block
      lock.unlock();
      c10::free_cpu(p);
      return;
    }
    size_t size = it->second;
    self->live.erase(it);
    if (self->cached + size <= self->limit) {
      self->free_blocks[size].push_back(p);
      self->cached += size;
      return;
    }
    lock.unlock();
    std::free(p);
  }

  at::DeleterFnPtr raw_deleter() const override { return &release; }

  void copy_data(void *dest, const void *src, std::size_t count) const override { default_copy_data(dest, src, count); }
};
} // namespace gt

extern "C" {

const char *gt_last_error(void) { return gt::last_error.c_str(); }

// ---- runtime ----
int gt_version(char *buf, size_t cap) {
  return guard(__func__, [&] {
    ARG(buf);
    std::string v = std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
                    std::to_string(TORCH_VERSION_PATCH);
    if (cap < v.size() + 1) throw std::invalid_argument("buffer too small");
    std::memcpy(buf, v.c_str(), v.size() + 1);
  });
}
int gt_cuda_is_available(int32_t *out) {
  return guard(__func__, [&] { *ARG(out) = at::hasCUDA() ? 1 : 0; });
}
int gt_cuda_device_count(int32_t *out) {
  return guard(__func__, [&] { *ARG(out) = at::hasCUDA() ? at::detail::getCUDAHooks().deviceCount() : 0; });
}
int gt_get_num_threads(int32_t *out) {
  return guard(__func__, [&] { *ARG(out) = at::get_num_threads(); });
}
int gt_set_num_threads(int32_t n) {
  return guard(__func__, [&] {
    if (n < 1) throw std::invalid_argument("thread count must be at least 1");
    at::set_num_threads(n);
  });
}
int gt_manual_seed(uint64_t seed) { return guard(__func__, [&] { at::manual_seed(seed); }); }
int gt_grad_enabled(int32_t *out) {
  return guard(__func__, [&] { *ARG(out) = at::GradMode::is_enabled() ? 1 : 0; });
}
int gt_set_grad_enabled(int32_t on) { return guard(__func__, [&] { at::GradMode::set_enabled(on != 0); }); }
int gt_enable_caching_allocator(int64_t limit_bytes) {
  return guard(__func__, [&] {
    if (limit_bytes < 0) throw std::invalid_argument("negative cache limit");
    auto *&inst = gt::CachingCPUAllocator::instance();
    if (!inst) inst = new gt::CachingCPUAllocator(static_cast<size_t>(limit_bytes));
    inst->limit = static_cast<size_t>(limit_bytes);
    inst->trim(inst->limit);
    if (!inst->installed) {
      c10::SetCPUAllocator(inst, /*priority=*/100);
      inst->installed = true;
    }
  });
}
int gt_disable_caching_allocator(void) {
  return guard(__func__, [&] {
    auto *inst = gt::CachingCPUAllocator::instance();
    if (!inst || !inst->installed) return;
    // Blocks still alive keep the caching allocator's deleter, so the instance stays; with a zero limit it frees
    // each of them on release. New allocations go to libtorch's default allocator again.
    c10::SetCPUAllocator(c10::GetDefaultCPUAllocator(), /*priority=*/100);
    inst->installed = false;
    inst->limit = 0;
    inst->trim(0);
  });
}
int gt_caching_allocator_enabled(int32_t *out) {
  return guard(__func__, [&] {
    auto *result = ARG(out);
    auto *inst = gt::CachingCPUAllocator::instance();
    *result = inst && inst->installed ? 1 : 0;
  });
}
int gt_caching_allocator_stats(int64_t *cached_bytes, int64_t *live_blocks) {
  return guard(__func__, [&] {
    auto *cached = ARG(cached_bytes);
    auto *live = ARG(live_blocks);
    auto *inst = gt::CachingCPUAllocator::instance();
    if (!inst) {
      *cached = 0;
      *live = 0;
      return;
    }
    std::lock_guard<std::mutex> lock(inst->mutex);
    *cached = static_cast<int64_t>(inst->cached);
    *live = static_cast<int64_t>(inst->live.size());
  });
}
int gt_cuda_synchronize(void) {
  return guard(__func__, [&] {
    if (!at::hasCUDA()) return;
    auto &hooks = at::detail::getCUDAHooks();
    for (c10::DeviceIndex d = 0; d < hooks.deviceCount(); ++d) hooks.deviceSynchronize(d);
  });
}
int gt_set_allow_tf32(int32_t cudnn, int32_t cublas) {
  return guard(__func__, [&] {
    if (cudnn >= 0) at::globalContext().setAllowTF32CuDNN(cudnn != 0);
    if (cublas >= 0) at::globalContext().setAllowTF32CuBLAS(cublas != 0);
  });
}
int gt_allow_tf32(int32_t *cudnn, int32_t *cublas) {
  return guard(__func__, [&] {
    *ARG(cudnn) = at::globalContext().allowTF32CuDNN() ? 1 : 0;
    *ARG(cublas) = at::globalContext().allowTF32CuBLAS() ? 1 : 0;
  });
}
int gt_accelerator_memory(int32_t device_index, int32_t reset_peak, int64_t *allocated, int64_t *peak_allocated,
                          int64_t *peak_reserved) {
  return guard(__func__, [&] {
    ARG(allocated);
    ARG(peak_allocated);
    ARG(peak_reserved);
    if (!at::accelerator::getAccelerator(false).has_value())
      throw std::invalid_argument("no accelerator (CUDA) in this libtorch or on this machine");
    auto idx = static_cast<c10::DeviceIndex>(device_index);
    if (reset_peak) at::accelerator::resetPeakStats(idx);
    auto stats = at::accelerator::getDeviceStats(idx);
    const auto agg = static_cast<size_t>(c10::CachingDeviceAllocator::StatType::AGGREGATE);
    *allocated = stats.allocated_bytes[agg].current;
    *peak_allocated = stats.allocated_bytes[agg].peak;
    *peak_reserved = stats.reserved_bytes[agg].peak;
  });
}

// ---- lifetime ----
int gt_free(gt_tensor t) {
  return guard(__func__, [&] { delete &ARG(t); });
}
int gt_shallow_copy(gt_tensor t, gt_tensor *out) { return guard(__func__, [&] { put(ARG(out), ARG(t)); }); }

// ---- creation ----
int gt_from_data(const void *data, size_t nbytes, const int64_t *shape, int32_t ndim, int32_t dtype, gt_tensor *out) {
  return guard(__func__, [&] {
    ARG(out);
    auto t = at::empty(gt::dims(shape, ndim, "shape"), at::TensorOptions().dtype(gt::dtype(dtype)));
    size_t want = static_cast<size_t>(t.numel()) * t.element_size();
    if (want != nbytes)
      throw std::invalid_argument("data has " + std::to_string(nbytes) + " bytes, shape needs " + std::to_string(want));
    if (want) std::memcpy(t.data_ptr(), ARG(data), want);
    put(out, t);
  });
}
int gt_from_storage(const void *data, size_t nbytes, int32_t dtype, gt_tensor *out_storage) {
  return guard(__func__, [&] {
    ARG(out_storage);
    auto opts = at::TensorOptions().dtype(gt::dtype(dtype));
    int64_t es = static_cast<int64_t>(c10::elementSize(gt::dtype(dtype)));
    if (static_cast<int64_t>(nbytes) % es != 0) throw std::invalid_argument("storage size is not a multiple of the element size");
    auto t = at::empty({static_cast<int64_t>(nbytes) / es}, opts);
    if (nbytes) std::memcpy(t.data_ptr(), ARG(data), nbytes);
    put(out_storage, t);
  });
}
int gt_as_strided(gt_tensor t, const int64_t *shape, const int64_t *strides, int32_t ndim, int64_t offset, gt_tensor *out) {
  return guard(__func__, [&] {
    auto &base = ARG(t);
    ARG(out);
    auto size = gt::dims(shape, ndim, "shape");
    auto stride = gt::dims(strides, ndim, "strides");
    // Bounds check before creating the view, so a bad checkpoint can never address memory outside its storage.
    if (offset < 0) throw std::invalid_argument("negative storage offset");
    int64_t last = offset;
    bool empty = false;
    for (int32_t i = 0; i < ndim; ++i) {
      if (size[i] < 0 || stride[i] < 0) throw std::invalid_argument("negative size or stride");
      if (size[i] == 0) {
        empty = true;
        continue;
      }
      int64_t span = 0;
      if (__builtin_mul_overflow(size[i] - 1, stride[i], &span) || __builtin_add_overflow(last, span, &last))
        throw std::invalid_argument("view size/stride overflow");
    }
    int64_t avail = static_cast<int64_t>(base.storage().nbytes() / base.element_size());
    if (!empty && last >= avail)
      throw std::invalid_argument("view reaches element " + std::to_string(last) + " of a storage of " +
                                  std::to_string(avail) + " elements");
    put(out, base.as_strided(size, stride, offset));
  });
}
int gt_empty(const int64_t *shape, int32_t ndim, int32_t dtype, int32_t dev_type, int32_t dev_index, gt_tensor *out) {
  return guard(__func__, [&] {
    put(ARG(out), at::empty(gt::dims(shape, ndim, "shape"), gt::options(dtype, dev_type, dev_index)));
  });
}
int gt_full(const int64_t *shape, int32_t ndim, gt_scalar value, int32_t dtype, int32_t dev_type, int32_t dev_index,
            gt_tensor *out) {
  return guard(__func__, [&] {
    put(ARG(out), at::full(gt::dims(shape, ndim, "shape"), gt::S(value), gt::options(dtype, dev_type, dev_index)));
  });
}
int gt_arange(gt_scalar start, gt_scalar end, gt_scalar step, int32_t dtype, int32_t dev_type, int32_t dev_index,
              gt_tensor *out) {
  return guard(__func__, [&] {
    put(ARG(out), at::arange(gt::S(start), gt::S(end), gt::S(step), gt::options(dtype, dev_type, dev_index)));
  });
}
int gt_linspace(double start, double end, int64_t steps, int32_t dtype, int32_t dev_type, int32_t dev_index,
                gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), at::linspace(start, end, steps, gt::options(dtype, dev_type, dev_index))); });
}
int gt_random(int32_t kind, const int64_t *shape, int32_t ndim, int32_t dtype, int32_t dev_type, int32_t dev_index,
              gt_tensor *out) {
  return guard(__func__, [&] {
    ARG(out);
    auto o = gt::options(dtype, dev_type, dev_index);
    if (kind == 0) put(out, at::randn(gt::dims(shape, ndim, "shape"), o));
    else if (kind == 1) put(out, at::rand(gt::dims(shape, ndim, "shape"), o));
    else throw std::invalid_argument("bad random kind");
  });
}
int gt_randint(int64_t low, int64_t high, const int64_t *shape, int32_t ndim, int32_t dtype, gt_tensor *out) {
  return guard(__func__, [&] {
    put(ARG(out), at::randint(low, high, gt::dims(shape, ndim, "shape"), at::TensorOptions().dtype(gt::dtype(dtype))));
  });
}
int gt_randperm(int64_t n, gt_tensor *out) { return guard(__func__, [&] { put(ARG(out), at::randperm(n)); }); }
int gt_randperms_seeded(const int64_t *ns, int32_t count, uint64_t seed, gt_tensor *outs) {
  return guard(__func__, [&] {
    // g = torch.Generator(); g.manual_seed(seed); then torch.randperm(ns[i], generator=g) in turn
    auto gen = at::detail::createCPUGenerator(seed);
    if (count < 0) throw std::invalid_argument("negative count");
    for (int32_t i = 0; i < count; ++i) put(&ARG(outs)[i], at::randperm(ARG(ns)[i], gen));
  });
}
int gt_random_(gt_tensor t, int32_t kind, double a, double b) {
  return guard(__func__, [&] {
    at::NoGradGuard ng;
    if (kind == 0) ARG(t).normal_(a, b);
    else if (kind == 1) ARG(t).uniform_(a, b);
    else throw std::invalid_argument("bad random kind");
  });
}

// ---- information and data ----
int gt_ndim(gt_tensor t, int32_t *out) { return guard(__func__, [&] { *ARG(out) = (int32_t)ARG(t).dim(); }); }
int gt_shape(gt_tensor t, int64_t *buf, int32_t cap) {
  return guard(__func__, [&] {
    auto s = ARG(t).sizes();
    ARG(buf);
    for (int32_t i = 0; i < cap && i < (int32_t)s.size(); ++i) buf[i] = s[i];
  });
}
int gt_strides(gt_tensor t, int64_t *buf, int32_t cap) {
  return guard(__func__, [&] {
    auto s = ARG(t).strides();
    ARG(buf);
    for (int32_t i = 0; i < cap && i < (int32_t)s.size(); ++i) buf[i] = s[i];
  });
}
int gt_storage_offset(gt_tensor t, int64_t *out) {
  return guard(__func__, [&] { *ARG(out) = ARG(t).storage_offset(); });
}
int gt_numel(gt_tensor t, int64_t *out) { return guard(__func__, [&] { *ARG(out) = ARG(t).numel(); }); }
int gt_dtype(gt_tensor t, int32_t *out) {
  return guard(__func__, [&] { *ARG(out) = gt::dtype_code(ARG(t).scalar_type()); });
}
int gt_device(gt_tensor t, int32_t *type, int32_t *index) {
  return guard(__func__, [&] {
    auto d = ARG(t).device();
    ARG(type);
    ARG(index);
    *type = gt::device_type_code(d);  // before *index: a failed call writes nothing
    *index = d.has_index() ? d.index() : -1;
  });
}
int gt_is_contiguous(gt_tensor t, int32_t *out) {
  return guard(__func__, [&] { *ARG(out) = ARG(t).is_contiguous() ? 1 : 0; });
}

static at::MemoryFormat memory_format(int32_t format) {
  switch (format) {
  case 0: return at::MemoryFormat::Contiguous;
  case 1: return at::MemoryFormat::ChannelsLast;
  default: throw std::invalid_argument("unknown memory format " + std::to_string(format) + " (0 contiguous, 1 channels-last)");
  }
}

int gt_contiguous_format(gt_tensor t, int32_t format, gt_tensor *out) {
  return guard(__func__, [&] {
    auto &x = ARG(t);
    auto f = memory_format(format);
    if (f == at::MemoryFormat::ChannelsLast && x.dim() != 4)
      throw std::invalid_argument("channels-last needs a 4-D tensor, got " + std::to_string(x.dim()) + "-D");
    put(ARG(out), x.contiguous(f));
  });
}

int gt_is_contiguous_format(gt_tensor t, int32_t format, int32_t *out) {
  return guard(__func__, [&] { *ARG(out) = ARG(t).is_contiguous(memory_format(format)) ? 1 : 0; });
}

static at::DeviceType autocast_device(int32_t type) {
  if (type == 0) return at::kCPU;
  if (type == 1) return at::kCUDA;
  throw std::invalid_argument("autocast device type " + std::to_string(type) + " (0 CPU, 1 CUDA)");
}

int gt_autocast_enter(int32_t device_type, int32_t dtype, int32_t *prev_enabled, int32_t *prev_dtype) {
  return guard(__func__, [&] {
    auto d = autocast_device(device_type);
    auto st = gt::dtype(dtype);
    if (st != at::kHalf && st != at::kBFloat16) throw std::invalid_argument("autocast dtype must be float16 or bfloat16");
    *ARG(prev_enabled) = at::autocast::is_autocast_enabled(d) ? 1 : 0;
    *ARG(prev_dtype) = static_cast<int32_t>(at::autocast::get_autocast_dtype(d));
    at::autocast::set_autocast_dtype(d, st);
    at::autocast::set_autocast_enabled(d, true);
    at::autocast::increment_nesting();
  });
}

int gt_autocast_exit(int32_t device_type, int32_t prev_enabled, int32_t prev_dtype) {
  return guard(__func__, [&] {
    auto d = autocast_device(device_type);
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(d, prev_enabled != 0);
    at::autocast::set_autocast_dtype(d, static_cast<at::ScalarType>(prev_dtype));
  });
}

int gt_autocast_enabled(int32_t device_type, int32_t *out) {
  return guard(__func__, [&] { *ARG(out) = at::autocast::is_autocast_enabled(autocast_device(device_type)) ? 1 : 0; });
}
int gt_same_storage(gt_tensor a, gt_tensor b, int32_t *out) {
  return guard(__func__, [&] { *ARG(out) = ARG(a).storage().is_alias_of(ARG(b).storage()) ? 1 : 0; });
}
int gt_data_ptr(gt_tensor t, const void **out) {
  return guard(__func__, [&] {
    auto &x = ARG(t);
    ARG(out);
    if (!x.device().is_cpu()) throw std::invalid_argument("data_ptr of a non-CPU tensor");
    *out = x.data_ptr();
  });
}
int gt_read(gt_tensor t, int32_t dtype, void *dst, size_t nbytes) {
  return guard(__func__, [&] {
    auto c = ARG(t).detach().to(at::kCPU, gt::dtype(dtype)).contiguous();
    size_t want = static_cast<size_t>(c.numel()) * c.element_size();
    if (want != nbytes)
      throw std::invalid_argument("read buffer has " + std::to_string(nbytes) + " bytes, tensor needs " + std::to_string(want));
    if (want) std::memcpy(ARG(dst), c.data_ptr(), want);
  });
}
int gt_item(gt_tensor t, double *out_f, int64_t *out_i) {
  return guard(__func__, [&] {
    auto &x = ARG(t);
    if (!out_f && !out_i) throw gt::null_argument("out_f and out_i are both NULL");
    auto s = x.item();
    if (out_f) *out_f = s.toDouble();
    if (out_i) *out_i = s.isFloatingPoint() ? (int64_t)s.toDouble() : s.toLong();
  });
}

// ---- conversion ----
int gt_to(gt_tensor t, int32_t dtype, int32_t dev_type, int32_t dev_index, gt_tensor *out) {
  return guard(__func__, [&] {
    auto &x = ARG(t);
    auto st = dtype < 0 ? x.scalar_type() : gt::dtype(dtype);
    put(ARG(out), x.to(gt::device(dev_type, dev_index), st));
  });
}
int gt_copy_(gt_tensor dst, gt_tensor src) { return guard(__func__, [&] { ARG(dst).copy_(ARG(src)); }); }
int gt_fill_(gt_tensor t, gt_scalar v) { return guard(__func__, [&] { ARG(t).fill_(gt::S(v)); }); }

// ---- testing ----
int gt_testing_empty(int32_t scalar_type, int32_t device_type, int64_t n, gt_tensor *out) {
  return guard(__func__, [&] {
    ARG(out);
    if (scalar_type < 0 || scalar_type >= static_cast<int32_t>(at::ScalarType::NumOptions))
      throw std::invalid_argument("no c10::ScalarType " + std::to_string(scalar_type));
    if (device_type < 0 || device_type >= static_cast<int32_t>(c10::COMPILE_TIME_MAX_DEVICE_TYPES))
      throw std::invalid_argument("no c10::DeviceType " + std::to_string(device_type));
    auto opts = at::TensorOptions()
                    .dtype(static_cast<at::ScalarType>(scalar_type))
                    .device(at::Device(static_cast<c10::DeviceType>(device_type)));
    put(out, at::empty({n}, opts));
  });
}

// ---- elementwise ----
static at::Tensor unary(int32_t op, const at::Tensor &a) {
  switch (op) {
  case GT_NEG: return at::neg(a);
  case GT_EXP: return at::exp(a);
  case GT_LOG: return at::log(a);
  case GT_SQRT: return at::sqrt(a);
  case GT_ABS: return at::abs(a);
  case GT_SIGMOID: return at::sigmoid(a);
  case GT_RELU: return at::relu(a);
  case GT_FLOOR: return at::floor(a);
  case GT_CEIL: return at::ceil(a);
  case GT_ROUND: return at::round(a);
  case GT_SIGN: return at::sign(a);
  case GT_LOGICAL_NOT: return at::logical_not(a);
  case GT_DETACH: return a.detach();
  case GT_CLONE: return a.clone();
  case GT_CONTIGUOUS: return a.contiguous();
  case GT_ISNAN: return at::isnan(a);
  case GT_ISFINITE: return at::isfinite(a);
  case GT_LOG1P: return at::log1p(a);
  case GT_TANH: return at::tanh(a);
  case GT_RECIPROCAL: return at::reciprocal(a);
  case GT_RSQRT: return at::rsqrt(a);
  case GT_SQUARE: return at::square(a);
  case GT_ZEROS_LIKE: return at::zeros_like(a);
  case GT_ONES_LIKE: return at::ones_like(a);
  case GT_LOG_SIGMOID: return at::log_sigmoid(a);
  case GT_EXPM1: return at::expm1(a);
  case GT_TRUNC: return at::trunc(a);
  case GT_BITWISE_NOT: return at::bitwise_not(a);
  case GT_SIN: return at::sin(a);
  case GT_COS: return at::cos(a);
  default: throw std::invalid_argument("unknown unary op " + std::to_string(op));
  }
}
static void unary_(int32_t op, at::Tensor &a) {
  switch (op) {
  case GT_NEG: a.neg_(); return;
  case GT_EXP: a.exp_(); return;
  case GT_LOG: a.log_(); return;
  case GT_SQRT: a.sqrt_(); return;
  case GT_ABS: a.abs_(); return;
  case GT_SIGMOID: a.sigmoid_(); return;
  case GT_RELU: a.relu_(); return;
  case GT_FLOOR: a.floor_(); return;
  case GT_CEIL: a.ceil_(); return;
  case GT_ROUND: a.round_(); return;
  case GT_SIGN: a.sign_(); return;
  case GT_LOG1P: a.log1p_(); return;
  case GT_TANH: a.tanh_(); return;
  case GT_RECIPROCAL: a.reciprocal_(); return;
  case GT_RSQRT: a.rsqrt_(); return;
  case GT_SQUARE: a.square_(); return;
  case GT_DETACH: a.detach_(); return;
  case GT_ZEROS_LIKE: a.zero_(); return;
  case GT_EXPM1: a.expm1_(); return;
  case GT_TRUNC: a.trunc_(); return;
  default: throw std::invalid_argument("unary op " + std::to_string(op) + " has no in-place form");
  }
}
int gt_unary(int32_t op, gt_tensor a, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), unary(op, ARG(a))); });
}
int gt_unary_(int32_t op, gt_tensor a) { return guard(__func__, [&] { unary_(op, ARG(a)); }); }

static at::Tensor binary(int32_t op, const at::Tensor &a, const at::Tensor &b) {
  switch (op) {
  case GT_ADD: return at::add(a, b);
  case GT_SUB: return at::sub(a, b);
  case GT_MUL: return at::mul(a, b);
  case GT_DIV: return at::div(a, b);
  case GT_POW: return at::pow(a, b);
  case GT_MAXIMUM: return at::maximum(a, b);
  case GT_MINIMUM: return at::minimum(a, b);
  case GT_EQ: return at::eq(a, b);
  case GT_NE: return at::ne(a, b);
  case GT_LT: return at::lt(a, b);
  case GT_LE: return at::le(a, b);
  case GT_GT: return at::gt(a, b);
  case GT_GE: return at::ge(a, b);
  case GT_LOGICAL_AND: return at::logical_and(a, b);
  case GT_LOGICAL_OR: return at::logical_or(a, b);
  case GT_LOGICAL_XOR: return at::logical_xor(a, b);
  case GT_REMAINDER: return at::remainder(a, b);
  case GT_FLOOR_DIVIDE: return at::div(a, b, "floor");
  case GT_DIV_TRUNC: return at::div(a, b, "trunc");
  case GT_ATAN2: return at::atan2(a, b);
  case GT_BITWISE_AND: return at::bitwise_and(a, b);
  case GT_BITWISE_OR: return at::bitwise_or(a, b);
  case GT_RSUB: return at::sub(b, a);
  case GT_RDIV: return at::div(b, a);
  case GT_RPOW: return at::pow(b, a);
  default: throw std::invalid_argument("unknown binary op " + std::to_string(op));
  }
}
static void binary_(int32_t op, at::Tensor &a, const at::Tensor &b) {
  switch (op) {
  case GT_ADD: a.add_(b); return;
  case GT_SUB: a.sub_(b); return;
  case GT_MUL: a.mul_(b); return;
  case GT_DIV: a.div_(b); return;
  case GT_POW: a.pow_(b); return;
  case GT_MAXIMUM: a.copy_(at::maximum(a, b)); return;
  case GT_MINIMUM: a.copy_(at::minimum(a, b)); return;
  case GT_REMAINDER: a.remainder_(b); return;
  case GT_FLOOR_DIVIDE: a.div_(b, "floor"); return;
  case GT_LOGICAL_AND: a.logical_and_(b); return;
  case GT_LOGICAL_OR: a.logical_or_(b); return;
  case GT_BITWISE_AND: a.bitwise_and_(b); return;
  case GT_BITWISE_OR: a.bitwise_or_(b); return;
  default: throw std::invalid_argument("binary op " + std::to_string(op) + " has no in-place form");
  }
}
int gt_binary(int32_t op, gt_tensor a, gt_tensor b, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), binary(op, ARG(a), ARG(b))); });
}
int gt_binary_(int32_t op, gt_tensor a, gt_tensor b) { return guard(__func__, [&] { binary_(op, ARG(a), ARG(b)); }); }

// A wrapped-number tensor keeps the scalar's type promotion rules (int tensor + 2 stays int, + 2.0 becomes float).
static at::Tensor scalar_tensor(const at::Tensor &like, gt_scalar s) {
  auto t = at::scalar_tensor(gt::S(s), at::TensorOptions().device(like.device()).dtype(
      s.kind == 0 ? at::kDouble : (s.kind == 1 ? at::kLong : at::kBool)));
  t.unsafeGetTensorImpl()->set_wrapped_number(true);
  return t;
}
int gt_binary_scalar(int32_t op, gt_tensor a, gt_scalar s, gt_tensor *out) {
  return guard(__func__, [&] {
    auto &x = ARG(a);
    ARG(out);
    switch (op) {
    case GT_ADD: put(out, at::add(x, gt::S(s))); return;
    case GT_SUB: put(out, at::sub(x, gt::S(s))); return;
    case GT_MUL: put(out, at::mul(x, gt::S(s))); return;
    case GT_DIV: put(out, at::div(x, gt::S(s))); return;
    case GT_POW: put(out, at::pow(x, gt::S(s))); return;
    case GT_RSUB: put(out, at::rsub(x, gt::S(s))); return;
    case GT_RPOW: put(out, at::pow(gt::S(s), x)); return;
    default: put(out, binary(op, x, scalar_tensor(x, s)));
    }
  });
}
int gt_binary_scalar_(int32_t op, gt_tensor a, gt_scalar s) {
  return guard(__func__, [&] {
    auto &x = ARG(a);
    switch (op) {
    case GT_ADD: x.add_(gt::S(s)); return;
    case GT_SUB: x.sub_(gt::S(s)); return;
    case GT_MUL: x.mul_(gt::S(s)); return;
    case GT_DIV: x.div_(gt::S(s)); return;
    case GT_POW: x.pow_(gt::S(s)); return;
    default: binary_(op, x, scalar_tensor(x, s));
    }
  });
}
int gt_add_scaled(gt_tensor a, gt_tensor b, gt_scalar alpha, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), at::add(ARG(a), ARG(b), gt::S(alpha))); });
}
int gt_add_scaled_(gt_tensor a, gt_tensor b, gt_scalar alpha) {
  return guard(__func__, [&] { ARG(a).add_(ARG(b), gt::S(alpha)); });
}
// Clamp bounds: whole numbers stay integral on integer tensors (a float bound would promote the result to float).
static std::optional<at::Scalar> bound(const at::Tensor &a, int32_t has, double v) {
  if (!has) return std::nullopt;
  if (!a.is_floating_point() && v == std::floor(v) && std::abs(v) < 9.0e15) return at::Scalar(static_cast<int64_t>(v));
  return at::Scalar(v);
}
int gt_clamp(gt_tensor a, int32_t has_min, double mn, int32_t has_max, double mx, gt_tensor *out) {
  return guard(__func__, [&] {
    auto &x = ARG(a);
    put(ARG(out), at::clamp(x, bound(x, has_min, mn), bound(x, has_max, mx)));
  });
}
int gt_clamp_(gt_tensor a, int32_t has_min, double mn, int32_t has_max, double mx) {
  return guard(__func__, [&] {
    auto &x = ARG(a);
    x.clamp_(bound(x, has_min, mn), bound(x, has_max, mx));
  });
}
int gt_clamp_tensor(gt_tensor a, gt_tensor mn, gt_tensor mx, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), at::clamp(ARG(a), gt::opt(mn), gt::opt(mx))); });
}
int gt_where(gt_tensor cond, gt_tensor a, gt_tensor b, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), at::where(ARG(cond), ARG(a), ARG(b))); });
}
int gt_masked_fill(gt_tensor a, gt_tensor mask, gt_scalar v, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), at::masked_fill(ARG(a), ARG(mask), gt::S(v))); });
}
int gt_masked_fill_(gt_tensor a, gt_tensor mask, gt_scalar v) {
  return guard(__func__, [&] { ARG(a).masked_fill_(ARG(mask), gt::S(v)); });
}

// ---- reductions ----
int gt_reduce(int32_t op, gt_tensor a, const int64_t *dims, int32_t ndims, int32_t keepdim, int32_t dtype,
              gt_tensor *out) {
  return guard(__func__, [&] {
    auto &x = ARG(a);
    ARG(out);
    at::OptionalIntArrayRef dimsOpt = ndims > 0 ? at::OptionalIntArrayRef(gt::dims(dims, ndims, "dims")) : std::nullopt;
    std::vector<int64_t> all;
    if (ndims == 0) for (int64_t i = 0; i < x.dim(); ++i) all.push_back(i);
    at::IntArrayRef dimsAll = ndims > 0 ? gt::dims(dims, ndims, "dims") : at::IntArrayRef(all);
    std::optional<at::ScalarType> st;
    if (dtype >= 0) st = gt::dtype(dtype);
    bool kd = keepdim != 0;
    switch (op) {
    case GT_SUM: put(out, at::sum(x, dimsOpt, kd, st)); return;
    case GT_MEAN: put(out, at::mean(x, dimsOpt, kd, st)); return;
    case GT_PROD: {
      if (ndims > 1) throw std::invalid_argument("prod reduces over one dimension or all");
      put(out, ndims == 0 ? at::prod(x, st) : at::prod(x, dims[0], kd, st));
      return;
    }
    case GT_AMAX: put(out, at::amax(x, dimsAll, kd)); return;
    case GT_AMIN: put(out, at::amin(x, dimsAll, kd)); return;
    case GT_ANY: put(out, at::any(x, dimsOpt, kd)); return;
    case GT_ALL: put(out, at::all(x, dimsOpt, kd)); return;
    case GT_NORM2: put(out, at::linalg_vector_norm(x, 2.0, dimsOpt, kd, st)); return;
    case GT_COUNT_NONZERO: put(out, at::count_nonzero(x, dimsAll)); return;
    default: throw std::invalid_argument("unknown reduction " + std::to_string(op));
    }
  });
}
int gt_vector_norm(gt_tensor a, double ord, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), at::linalg_vector_norm(ARG(a), ord)); });
}
// Two results: both out-pointers are checked before anything is computed or written.
int gt_max_min_dim(int32_t kind, gt_tensor a, int64_t dim, int32_t keepdim, gt_tensor *values, gt_tensor *indices) {
  return guard(__func__, [&] {
    auto &x = ARG(a);
    ARG(values);
    ARG(indices);
    auto r = kind == 0 ? at::max(x, dim, keepdim != 0) : at::min(x, dim, keepdim != 0);
    put(values, std::get<0>(r));
    put(indices, std::get<1>(r));
  });
}
int gt_arg_max_min(int32_t kind, gt_tensor a, int32_t has_dim, int64_t dim, int32_t keepdim, gt_tensor *out) {
  return guard(__func__, [&] {
    std::optional<int64_t> d;
    if (has_dim) d = dim;
    put(ARG(out), kind == 0 ? at::argmax(ARG(a), d, keepdim != 0) : at::argmin(ARG(a), d, keepdim != 0));
  });
}
int gt_cumsum(gt_tensor a, int64_t dim, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), at::cumsum(ARG(a), dim)); });
}
int gt_topk(gt_tensor a, int64_t k, int64_t dim, int32_t largest, int32_t sorted, gt_tensor *values, gt_tensor *indices) {
  return guard(__func__, [&] {
    auto &x = ARG(a);
    ARG(values);
    ARG(indices);
    auto r = at::topk(x, k, dim, largest != 0, sorted != 0);
    put(values, std::get<0>(r));
    put(indices, std::get<1>(r));
  });
}
int gt_sort(gt_tensor a, int64_t dim, int32_t descending, int32_t stable, gt_tensor *values, gt_tensor *indices) {
  return guard(__func__, [&] {
    auto &x = ARG(a);
    ARG(values);
    ARG(indices);
    auto r = at::sort(x, std::optional<bool>(stable != 0), dim, descending != 0);
    put(values, std::get<0>(r));
    put(indices, std::get<1>(r));
  });
}

// ---- shape and indexing ----
int gt_reshape(gt_tensor a, const int64_t *shape, int32_t ndim, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), ARG(a).reshape(gt::dims(shape, ndim, "shape"))); });
}
int gt_view(gt_tensor a, const int64_t *shape, int32_t ndim, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), ARG(a).view(gt::dims(shape, ndim, "shape"))); });
}
int gt_permute(gt_tensor a, const int64_t *dims, int32_t ndim, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), ARG(a).permute(gt::dims(dims, ndim, "dims"))); });
}
int gt_transpose(gt_tensor a, int64_t d0, int64_t d1, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), ARG(a).transpose(d0, d1)); });
}
int gt_flatten(gt_tensor a, int64_t start, int64_t end, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), ARG(a).flatten(start, end)); });
}
int gt_unsqueeze(gt_tensor a, int64_t dim, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), ARG(a).unsqueeze(dim)); });
}
int gt_squeeze(gt_tensor a, int32_t has_dim, int64_t dim, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), has_dim ? ARG(a).squeeze(dim) : ARG(a).squeeze()); });
}
int gt_expand(gt_tensor a, const int64_t *shape, int32_t ndim, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), ARG(a).expand(gt::dims(shape, ndim, "shape"))); });
}
int gt_repeat(gt_tensor a, const int64_t *reps, int32_t ndim, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), ARG(a).repeat(gt::dims(reps, ndim, "reps"))); });
}
int gt_flip(gt_tensor a, const int64_t *dims, int32_t ndim, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), at::flip(ARG(a), gt::dims(dims, ndim, "dims"))); });
}
int gt_narrow(gt_tensor a, int64_t dim, int64_t start, int64_t length, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), ARG(a).narrow(dim, start, length)); });
}
int gt_slice(gt_tensor a, int64_t dim, int64_t start, int64_t end, int64_t step, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), ARG(a).slice(dim, start, end, step)); });
}
int gt_select(gt_tensor a, int64_t dim, int64_t index, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), ARG(a).select(dim, index)); });
}
int gt_index_select(gt_tensor a, int64_t dim, gt_tensor index, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), at::index_select(ARG(a), dim, ARG(index))); });
}
int gt_gather(gt_tensor a, int64_t dim, gt_tensor index, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), at::gather(ARG(a), dim, ARG(index))); });
}
int gt_scatter(gt_tensor a, int64_t dim, gt_tensor index, gt_tensor src, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), at::scatter(ARG(a), dim, ARG(index), ARG(src))); });
}
int gt_scatter_value(gt_tensor a, int64_t dim, gt_tensor index, gt_scalar v, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), at::scatter(ARG(a), dim, ARG(index), gt::S(v))); });
}
int gt_scatter_add(gt_tensor a, int64_t dim, gt_tensor index, gt_tensor src, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), at::scatter_add(ARG(a), dim, ARG(index), ARG(src))); });
}
int gt_scatter_add_(gt_tensor a, int64_t dim, gt_tensor index, gt_tensor src) {
  return guard(__func__, [&] { ARG(a).scatter_add_(dim, ARG(index), ARG(src)); });
}
int gt_index_add_(gt_tensor a, int64_t dim, gt_tensor index, gt_tensor src) {
  return guard(__func__, [&] { ARG(a).index_add_(dim, ARG(index), ARG(src)); });
}
int gt_masked_select(gt_tensor a, gt_tensor mask, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), at::masked_select(ARG(a), ARG(mask))); });
}
int gt_index(gt_tensor a, gt_tensor index, gt_tensor *out) {
  return guard(__func__, [&] {
    c10::List<std::optional<at::Tensor>> l;
    l.push_back(ARG(index));
    put(ARG(out), at::index(ARG(a), l));
  });
}
int gt_index_put_(gt_tensor a, gt_tensor index, gt_tensor v, int32_t accumulate) {
  return guard(__func__, [&] {
    c10::List<std::optional<at::Tensor>> l;
    l.push_back(ARG(index));
    ARG(a).index_put_(l, ARG(v), accumulate != 0);
  });
}
int gt_index_fill_(gt_tensor a, gt_tensor index, gt_scalar v) {
  return guard(__func__, [&] {
    c10::List<std::optional<at::Tensor>> l;
    l.push_back(ARG(index));
    ARG(a).index_put_(l, at::scalar_tensor(gt::S(v), ARG(a).options()));
  });
}
int gt_nonzero(gt_tensor a, gt_tensor *out) { return guard(__func__, [&] { put(ARG(out), at::nonzero(ARG(a))); }); }

// n handles; the array may be NULL only when n is 0, and each handle is checked (the error names its index).
static std::vector<at::Tensor> list(const gt_tensor *ts, int32_t n) {
  if (n < 0) throw std::invalid_argument("negative tensor count");
  if (n > 0) ARG(ts);
  std::vector<at::Tensor> v;
  v.reserve(n);
  for (int32_t i = 0; i < n; ++i) v.push_back(gt::arg(ts[i], ("ts[" + std::to_string(i) + "]").c_str()));
  return v;
}
int gt_cat(const gt_tensor *ts, int32_t n, int64_t dim, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), at::cat(list(ts, n), dim)); });
}
int gt_stack(const gt_tensor *ts, int32_t n, int64_t dim, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), at::stack(list(ts, n), dim)); });
}
int gt_split(gt_tensor a, const int64_t *sizes, int32_t nsizes, int64_t dim, gt_tensor *outs) {
  return guard(__func__, [&] {
    auto &x = ARG(a);
    auto s = gt::dims(sizes, nsizes, "sizes");
    if (nsizes > 0) ARG(outs);
    for (int32_t i = 0; i < nsizes; ++i) outs[i].ptr = nullptr;
    auto parts = at::split_with_sizes(x, s, dim);
    for (int32_t i = 0; i < nsizes; ++i) put(&outs[i], parts[i]);
  });
}
int gt_unique_sorted(gt_tensor a, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), std::get<0>(at::_unique2(ARG(a), true, false, false))); });
}
int gt_pad(gt_tensor a, const int64_t *pads, int32_t npads, double value, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), at::constant_pad_nd(ARG(a), gt::dims(pads, npads, "pads"), value)); });
}

int gt_amp_non_finite_check_and_unscale_(const gt_tensor *grads, int32_t n, gt_tensor found_inf, gt_tensor inv_scale) {
  return guard(__func__, [&] {
    auto &f = ARG(found_inf);
    at::_amp_foreach_non_finite_check_and_unscale_(list(grads, n), f, ARG(inv_scale));
  });
}

int gt_amp_update_scale_(gt_tensor scale, gt_tensor growth_tracker, gt_tensor found_inf, double growth_factor,
                         double backoff_factor, int64_t growth_interval) {
  return guard(__func__, [&] {
    auto &s = ARG(scale);
    auto &g = ARG(growth_tracker);
    at::_amp_update_scale_(s, g, ARG(found_inf), growth_factor, backoff_factor, growth_interval);
  });
}

} // extern "C"
