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

// A NULL pointer or handle argument. guard() reports it as "<entry point>: <argument> is NULL", so the message names
// both the function and the argument.
struct null_argument : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Runs body; converts every exception into a status and the thread-local error message. fn is the entry point's
// name: call it as guard(__func__, [&] { ... }).
template <typename F> int guard(const char *fn, F &&body) {
  try {
    body();
    return 0;
  } catch (const null_argument &e) {
    set_error(std::string(fn) + ": " + e.what());
  } catch (const c10::Error &e) {
    set_error(e.what_without_backtrace());
  } catch (const std::exception &e) {
    set_error(e.what());
  } catch (...) {
    set_error("unknown C++ exception");
  }
  return 1;
}

// Argument checks, used through ARG(x) so that the error names the argument as it is spelled in the signature:
//   ARG(t)    a gt_tensor handle that must not be NULL, as the at::Tensor it holds;
//   ARG(out)  a pointer that must not be NULL (an out-pointer, a buffer, an array), unchanged.
// Every handle argument and every pointer an entry point reads or writes goes through ARG (or through dims() and
// list(), which check theirs); out-pointers are checked before any result is computed or written.
inline at::Tensor &arg(gt_tensor h, const char *name) {
  if (!h.ptr) throw null_argument(std::string(name) + " is a NULL tensor handle");
  return *static_cast<at::Tensor *>(h.ptr);
}
template <typename P> inline P *arg(P *p, const char *name) {
  if (!p) throw null_argument(std::string(name) + " is NULL");
  return p;
}
#define ARG(x) ::gt::arg((x), #x)

// Optional tensor argument: a null handle means "absent".
inline std::optional<at::Tensor> opt(gt_tensor h) {
  if (!h.ptr) return std::nullopt;
  return *static_cast<at::Tensor *>(h.ptr);
}

// Writes a new handle (owned by the caller) to an out-pointer; pass it as put(ARG(out), t).
inline void put(gt_tensor *out, at::Tensor t) {
  if (!out) throw null_argument("an output pointer is NULL");  // a backstop: callers check with ARG(out)
  out->ptr = new at::Tensor(std::move(t));
}

inline at::Scalar S(gt_scalar s) {
  switch (s.kind) {
  case 0: return at::Scalar(s.f);
  case 1: return at::Scalar(s.i);
  case 2: return at::Scalar(s.i != 0);
  default: throw std::invalid_argument("bad scalar kind");
  }
}

// The dtypes of the C API (ghm_torch.h): c10::ScalarType values, in both directions.
inline bool api_dtype(at::ScalarType st) {
  switch (st) {
  case at::kByte: case at::kChar: case at::kShort: case at::kInt: case at::kLong: case at::kHalf: case at::kFloat:
  case at::kDouble: case at::kBool: case at::kBFloat16:
    return true;
  default:
    return false;
  }
}

inline at::ScalarType dtype(int32_t code) {
  bool known = code >= 0 && code < static_cast<int32_t>(at::ScalarType::NumOptions);
  if (known && api_dtype(static_cast<at::ScalarType>(code))) return static_cast<at::ScalarType>(code);
  throw std::invalid_argument("unsupported dtype code " + std::to_string(code));
}

// The code of a tensor's dtype; a dtype the API has no code for (complex, quantized, float8, uint16, ...) is an error
// that names it, never a wrong code.
inline int32_t dtype_code(at::ScalarType st) {
  if (!api_dtype(st)) throw std::invalid_argument(std::string("unsupported dtype ") + c10::toString(st));
  return static_cast<int32_t>(st);
}

// Device types of the C API: 0 CPU, 1 CUDA.
inline at::Device device(int32_t type, int32_t index) {
  if (type == 0) return at::Device(at::kCPU);
  if (type == 1) return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
  throw std::invalid_argument("unsupported device type " + std::to_string(type));
}

// The code of a tensor's device type; any other device (meta, mps, xpu, ...) is an error that names it.
inline int32_t device_type_code(const at::Device &d) {
  if (d.is_cpu()) return 0;
  if (d.is_cuda()) return 1;
  throw std::invalid_argument("unsupported device type " + c10::DeviceTypeName(d.type(), /*lower_case=*/true));
}

// A list of n int64 values; p may be NULL only when n is 0. name: the argument, for the error message.
inline at::IntArrayRef dims(const int64_t *p, int32_t n, const char *name) {
  if (n < 0) throw std::invalid_argument(std::string("negative length of ") + name);
  if (n > 0) arg(p, name);
  return at::IntArrayRef(p, static_cast<size_t>(n));
}

inline at::TensorOptions options(int32_t dt, int32_t dev_type, int32_t dev_index) {
  return at::TensorOptions().dtype(dtype(dt)).device(device(dev_type, dev_index));
}

} // namespace gt
