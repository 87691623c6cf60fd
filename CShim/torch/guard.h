// Shared helpers of the torch shim: the exception guard, handle conversion, argument conversion.
#pragma once
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/util/Exception.h>
#include <cstring>
#include <stdexcept>
#include <string>
#include "ghm_torch.h"

namespace gt {

void set_error(const std::string &msg);

// Runs body; converts every exception into a status and the thread-local error message.
template <typename F> int guard(F &&body) {
  try {
    body();
    return 0;
  } catch (const c10::Error &e) {
    set_error(e.what_without_backtrace());
  } catch (const std::exception &e) {
    set_error(e.what());
  } catch (...) {
    set_error("unknown C++ exception");
  }
  return 1;
}

inline at::Tensor &T(gt_tensor h) {
  if (!h.ptr) throw std::invalid_argument("null tensor handle");
  return *static_cast<at::Tensor *>(h.ptr);
}

// Optional tensor argument: a null handle means "absent".
inline std::optional<at::Tensor> opt(gt_tensor h) {
  if (!h.ptr) return std::nullopt;
  return *static_cast<at::Tensor *>(h.ptr);
}

inline void put(gt_tensor *out, at::Tensor t) {
  if (!out) throw std::invalid_argument("null output pointer");
  out->ptr = new at::Tensor(std::move(t));
}

inline void need(const void *p, const char *what) {
  if (!p) throw std::invalid_argument(std::string("null pointer argument: ") + what);
}

inline at::Scalar S(gt_scalar s) {
  switch (s.kind) {
  case 0: return at::Scalar(s.f);
  case 1: return at::Scalar(s.i);
  case 2: return at::Scalar(s.i != 0);
  default: throw std::invalid_argument("bad scalar kind");
  }
}

inline at::ScalarType dtype(int32_t code) {
  switch (code) {
  case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 11: case 15:
    return static_cast<at::ScalarType>(code);
  default: throw std::invalid_argument("unsupported dtype code " + std::to_string(code));
  }
}

inline at::Device device(int32_t type, int32_t index) {
  if (type == 0) return at::Device(at::kCPU);
  if (type == 1) return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
  throw std::invalid_argument("unsupported device type " + std::to_string(type));
}

inline at::IntArrayRef dims(const int64_t *p, int32_t n) {
  if (n < 0) throw std::invalid_argument("negative dimension count");
  if (n > 0) need(p, "shape");
  return at::IntArrayRef(p, static_cast<size_t>(n));
}

inline at::TensorOptions options(int32_t dt, int32_t dev_type, int32_t dev_index) {
  return at::TensorOptions().dtype(dtype(dt)).device(device(dev_type, dev_index));
}

} // namespace gt
