// Torch shim, part 2: neural-network ops, histograms, NMS and autograd.
#include "guard.h"

using gt::guard;
using gt::put;

// NMS with mmcv CPU semantics (see the header).
template <typename scalar_t>
static void nms_kernel(const at::Tensor &boxes, const at::Tensor &order, double thr, std::vector<int64_t> &keep) {
  int64_t n = boxes.size(0);
  auto b = boxes.accessor<scalar_t, 2>();
  auto o = order.accessor<int64_t, 1>();
  std::vector<scalar_t> area(n);
  for (int64_t i = 0; i < n; ++i) area[i] = (b[i][2] - b[i][0]) * (b[i][3] - b[i][1]);
  std::vector<uint8_t> suppressed(n, 0);
  for (int64_t oi = 0; oi < n; ++oi) {
    int64_t i = o[oi];
    if (suppressed[i]) continue;
    keep.push_back(i);
    scalar_t ix1 = b[i][0], iy1 = b[i][1], ix2 = b[i][2], iy2 = b[i][3], ia = area[i];
    for (int64_t oj = oi + 1; oj < n; ++oj) {
      int64_t j = o[oj];
      if (suppressed[j]) continue;
      scalar_t w = std::max<scalar_t>(0, std::min(ix2, b[j][2]) - std::max(ix1, b[j][0]));
      scalar_t h = std::max<scalar_t>(0, std::min(iy2, b[j][3]) - std::max(iy1, b[j][1]));
      scalar_t inter = w * h;
      scalar_t ovr = inter / (ia + area[j] - inter);
      if (ovr > thr) suppressed[j] = 1;
    }
  }
}

// The same greedy NMS with tensor ops on the boxes' own device (no copy to the host): the pairwise IoU of the
// score-sorted boxes with the kernel's arithmetic, sup[i][j] = (i < j and IoU > thr), then keep = "no kept box
// before me suppresses me" iterated from all-true to its fixed point. That recursion has one solution (by induction
// over the sorted order), the greedy one, reached after at most (longest suppression chain + 1) rounds. An undefined
// tensor (the caller falls back to the kernel) above 16384 boxes or after 64 rounds.
static at::Tensor nms_matrix(const at::Tensor &bx, const at::Tensor &sc, double thr) {
  int64_t n = bx.size(0);
  if (n == 0) return at::empty({0}, bx.options().dtype(at::kLong));
  if (n > 16384) return at::Tensor();
  auto order = std::get<1>(sc.sort(0, /*descending=*/true));
  auto b = bx.index_select(0, order);
  auto x1 = b.select(1, 0), y1 = b.select(1, 1), x2 = b.select(1, 2), y2 = b.select(1, 3);
  auto area = (x2 - x1) * (y2 - y1);
  auto w = (at::minimum(x2.unsqueeze(1), x2.unsqueeze(0)) - at::maximum(x1.unsqueeze(1), x1.unsqueeze(0))).clamp_min(0);
  auto h = (at::minimum(y2.unsqueeze(1), y2.unsqueeze(0)) - at::maximum(y1.unsqueeze(1), y1.unsqueeze(0))).clamp_min(0);
  auto inter = w * h;
  auto iou = inter / ((area.unsqueeze(1) + area.unsqueeze(0)) - inter);
  auto sup = (iou > thr).triu(1);
  auto keep = at::ones({n}, bx.options().dtype(at::kBool));
  for (int round = 0; round < 64; ++round) {
    auto next = (sup & keep.unsqueeze(1)).any(0).logical_not();
    if (at::equal(next, keep)) return order.masked_select(keep);
    keep = next;
  }
  return at::Tensor();
}

extern "C" {

int gt_conv2d(gt_tensor x, gt_tensor w, gt_tensor b, const int64_t stride[2], const int64_t padding[2],
              const int64_t dilation[2], int64_t groups, gt_tensor *out) {
  return guard(__func__, [&] {
    ARG(stride);
    ARG(padding);
    ARG(dilation);
    put(ARG(out), at::conv2d(ARG(x), ARG(w), gt::opt(b), at::IntArrayRef(stride, 2), at::IntArrayRef(padding, 2),
                             at::IntArrayRef(dilation, 2), groups));
  });
}

int gt_batch_norm(gt_tensor x, gt_tensor w, gt_tensor b, gt_tensor rmean, gt_tensor rvar, int32_t training,
                  double momentum, double eps, gt_tensor *out) {
  return guard(__func__, [&] {
    ARG(out);  // before training mode updates the running statistics
    put(out, at::batch_norm(ARG(x), gt::opt(w), gt::opt(b), gt::opt(rmean), gt::opt(rvar), training != 0, momentum, eps,
                            /*cudnn_enabled=*/true));
  });
}

int gt_max_pool2d(gt_tensor x, const int64_t kernel[2], const int64_t stride[2], const int64_t padding[2],
                  const int64_t dilation[2], int32_t ceil_mode, gt_tensor *out) {
  return guard(__func__, [&] {
    ARG(kernel);
    ARG(stride);
    ARG(padding);
    ARG(dilation);
    put(ARG(out), at::max_pool2d(ARG(x), at::IntArrayRef(kernel, 2), at::IntArrayRef(stride, 2),
                                 at::IntArrayRef(padding, 2), at::IntArrayRef(dilation, 2), ceil_mode != 0));
  });
}

int gt_upsample_nearest2d(gt_tensor x, int64_t out_h, int64_t out_w, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), at::upsample_nearest2d(ARG(x), {out_h, out_w})); });
}

int gt_bce_with_logits(gt_tensor x, gt_tensor target, gt_tensor weight, int32_t reduction, gt_tensor *out) {
  return guard(__func__, [&] {
    if (reduction < 0 || reduction > 2) throw std::invalid_argument("reduction must be 0 (none), 1 (mean) or 2 (sum)");
    put(ARG(out), at::binary_cross_entropy_with_logits(ARG(x), ARG(target), gt::opt(weight), std::nullopt, reduction));
  });
}

int gt_linear(gt_tensor x, gt_tensor w, gt_tensor b, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), at::linear(ARG(x), ARG(w), gt::opt(b))); });
}
int gt_matmul(gt_tensor a, gt_tensor b, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), at::matmul(ARG(a), ARG(b))); });
}

// ---- histograms ----
int gt_bucketize(gt_tensor a, gt_tensor boundaries, int32_t right, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), at::bucketize(ARG(a), ARG(boundaries), false, right != 0)); });
}
int gt_histc(gt_tensor a, int64_t bins, double mn, double mx, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), at::histc(ARG(a), bins, mn, mx)); });
}
int gt_bincount(gt_tensor a, gt_tensor weights, int64_t minlength, gt_tensor *out) {
  return guard(__func__, [&] { put(ARG(out), at::bincount(ARG(a), gt::opt(weights), minlength)); });
}

int gt_nms(gt_tensor boxes, gt_tensor scores, double iou_thr, int32_t method, gt_tensor *out) {
  return guard(__func__, [&] {
    ARG(out);
    auto bx = ARG(boxes).detach();
    auto sc = ARG(scores).detach();
    if (bx.dim() != 2 || bx.size(1) != 4) throw std::invalid_argument("nms: boxes must have shape (n, 4)");
    if (sc.dim() != 1 || sc.size(0) != bx.size(0)) throw std::invalid_argument("nms: scores must have shape (n)");
    if (method < 0 || method > 2) throw std::invalid_argument("nms: method must be 0 (auto), 1 (kernel) or 2 (matrix)");
    auto dev = bx.device();
    bool matrix = method == 2 || (method == 0 && !dev.is_cpu());
    if (matrix) {
      auto keep = nms_matrix(bx, sc, iou_thr);
      if (keep.defined()) {
        put(out, keep);
        return;
      }
      if (method == 2) throw std::invalid_argument("nms: the matrix version stops above 16384 boxes or 64 rounds");
    }
    auto cb = bx.to(at::kCPU).contiguous();
    auto order = std::get<1>(sc.to(at::kCPU).sort(0, /*descending=*/true)).contiguous();
    std::vector<int64_t> keep;
    keep.reserve(static_cast<size_t>(cb.size(0)));
    AT_DISPATCH_FLOATING_TYPES(cb.scalar_type(), "gt_nms", [&] { nms_kernel<scalar_t>(cb, order, iou_thr, keep); });
    auto r = at::empty({static_cast<int64_t>(keep.size())}, at::kLong);
    if (!keep.empty()) std::memcpy(r.data_ptr<int64_t>(), keep.data(), keep.size() * sizeof(int64_t));
    put(out, r.to(dev));
  });
}

// ---- autograd ----
int gt_set_requires_grad(gt_tensor t, int32_t on) {
  return guard(__func__, [&] { ARG(t).set_requires_grad(on != 0); });
}
int gt_requires_grad(gt_tensor t, int32_t *out) {
  return guard(__func__, [&] { *ARG(out) = ARG(t).requires_grad() ? 1 : 0; });
}
int gt_backward(gt_tensor t, gt_tensor grad, int32_t retain_graph) {
  return guard(__func__, [&] {
    auto &x = ARG(t);
    x.backward(gt::opt(grad).value_or(at::Tensor()), std::optional<bool>(retain_graph != 0), false);
  });
}
int gt_grad(gt_tensor t, gt_tensor *out) {
  return guard(__func__, [&] {
    auto &x = ARG(t);
    ARG(out);
    const auto &g = x.grad();
    out->ptr = g.defined() ? new at::Tensor(g) : nullptr;
  });
}
int gt_zero_grad(gt_tensor t, int32_t set_to_none) {
  return guard(__func__, [&] {
    auto &g = ARG(t).mutable_grad();
    if (!g.defined()) return;
    if (set_to_none) g.reset();
    else {
      g = g.detach();
      g.zero_();
    }
  });
}
int gt_is_leaf(gt_tensor t, int32_t *out) {
  return guard(__func__, [&] { *ARG(out) = ARG(t).is_leaf() ? 1 : 0; });
}

} // extern "C"
