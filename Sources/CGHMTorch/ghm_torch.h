/* C API over libtorch (ATen + autograd) for the GHM Swift package.
 *
 * Rules (see DESIGN.md §2):
 *  - every entry point returns 0 on success and non-zero on failure; the message of the last failure on this thread
 *    is returned by gt_last_error();
 *  - results are written through out-pointers; every tensor written to an out-pointer is a new heap handle that the
 *    caller owns and must release with gt_free();
 *  - a NULL handle (ptr NULL) or a NULL pointer argument is an error whose message names the function and the
 *    argument ("gt_shape: buf is NULL", "gt_binary: b is a NULL tensor handle"), never a crash; the exceptions are
 *    documented where they apply (optional tensors marked "may be null", arrays of length 0, gt_item's outputs);
 *  - a dtype or device the API has no code for is an error that names it, never a wrong code;
 *  - no C++ exception crosses this boundary.
 */
#ifndef GHM_TORCH_H
#define GHM_TORCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gt_tensor { void *ptr; } gt_tensor;

/* A scalar argument: kind 0 = floating (f), 1 = integral (i), 2 = boolean (i != 0). */
typedef struct gt_scalar { double f; int64_t i; int32_t kind; } gt_scalar;

/* dtype codes are c10::ScalarType values: 0 uint8, 1 int8, 2 int16, 3 int32, 4 int64, 5 float16, 6 float32,
 * 7 float64, 11 bool, 15 bfloat16. Device type: 0 CPU, 1 CUDA. gt_dtype and gt_device fail ("unsupported dtype
 * ComplexFloat", "unsupported device type meta") for a tensor of any other dtype or device. */

const char *gt_last_error(void);

/* ---- library / runtime ---- */
int gt_version(char *buf, size_t cap);               /* "2.13.0" */
int gt_cuda_is_available(int32_t *out);
int gt_cuda_device_count(int32_t *out);
int gt_get_num_threads(int32_t *out);
int gt_set_num_threads(int32_t n);
int gt_manual_seed(uint64_t seed);
int gt_grad_enabled(int32_t *out);
int gt_set_grad_enabled(int32_t on);
/* Autocast (torch.autocast) on this thread for device type 0 CPU / 1 CUDA: enter sets the dtype and enables it,
 * keeping what was there in *prev_enabled / *prev_dtype; exit restores them (and clears the cast cache when the
 * outermost autocast region ends). */
int gt_autocast_enter(int32_t device_type, int32_t dtype, int32_t *prev_enabled, int32_t *prev_dtype);
int gt_autocast_exit(int32_t device_type, int32_t prev_enabled, int32_t prev_dtype);
int gt_autocast_enabled(int32_t device_type, int32_t *out);
/* The loss scaler's two ATen kernels (torch.amp.GradScaler): unscale the grads in place by inv_scale and set
 * found_inf (0-dim float) to 1 when any is inf/NaN; update the scale (0-dim float) and the growth tracker (0-dim int)
 * from found_inf. */
int gt_amp_non_finite_check_and_unscale_(const gt_tensor *grads, int32_t n, gt_tensor found_inf, gt_tensor inv_scale);
int gt_amp_update_scale_(gt_tensor scale, gt_tensor growth_tracker, gt_tensor found_inf, double growth_factor,
                         double backoff_factor, int64_t growth_interval);
int gt_cuda_synchronize(void); /* every CUDA device of this process; no-op without CUDA */
/* TensorFloat-32 on CUDA (torch.backends.cudnn.allow_tf32 / torch.backends.cuda.matmul.allow_tf32; libtorch's
 * defaults: on for cuDNN convolutions, off for matmuls). A negative argument leaves that setting. */
int gt_set_allow_tf32(int32_t cudnn, int32_t cublas);
int gt_allow_tf32(int32_t *cudnn, int32_t *cublas);
/* The accelerator's (CUDA's) caching-allocator statistics of one device, as torch.cuda.memory_allocated /
 * max_memory_allocated / max_memory_reserved; reset_peak first resets the peaks (reset_peak_memory_stats). An error
 * without an accelerator. */
int gt_accelerator_memory(int32_t device_index, int32_t reset_peak, int64_t *allocated, int64_t *peak_allocated,
                          int64_t *peak_reserved);
/* Replaces libtorch's CPU allocator by one that keeps freed blocks of >= 1 MiB (rounded to 2 MiB, huge-page
 * advised) for reuse, holding at most limit_bytes; calling it again changes the limit. Small blocks are unaffected. */
int gt_enable_caching_allocator(int64_t limit_bytes);
/* Restores libtorch's default CPU allocator (blocks still alive are freed when released). */
int gt_disable_caching_allocator(void);
int gt_caching_allocator_enabled(int32_t *out);
int gt_caching_allocator_stats(int64_t *cached_bytes, int64_t *live_blocks);

/* ---- lifetime ---- */
int gt_free(gt_tensor t);                            /* a NULL handle is an error, as everywhere */
int gt_shallow_copy(gt_tensor t, gt_tensor *out);    /* a second handle to the same tensor */

/* ---- creation ---- */
int gt_from_data(const void *data, size_t nbytes, const int64_t *shape, int32_t ndim, int32_t dtype, gt_tensor *out);
/* A strided view over a copy of raw little-endian storage bytes (checkpoint loading): storage has nbytes bytes;
 * elements are dtype; the view has the given shape, strides (in elements) and offset (in elements). */
int gt_from_storage(const void *data, size_t nbytes, int32_t dtype, gt_tensor *out_storage);
int gt_as_strided(gt_tensor t, const int64_t *shape, const int64_t *strides, int32_t ndim, int64_t offset, gt_tensor *out);
int gt_empty(const int64_t *shape, int32_t ndim, int32_t dtype, int32_t dev_type, int32_t dev_index, gt_tensor *out);
int gt_full(const int64_t *shape, int32_t ndim, gt_scalar value, int32_t dtype, int32_t dev_type, int32_t dev_index, gt_tensor *out);
int gt_arange(gt_scalar start, gt_scalar end, gt_scalar step, int32_t dtype, int32_t dev_type, int32_t dev_index, gt_tensor *out);
int gt_linspace(double start, double end, int64_t steps, int32_t dtype, int32_t dev_type, int32_t dev_index, gt_tensor *out);
/* kind: 0 randn, 1 rand (uniform [0,1)); uses the global generator (gt_manual_seed). */
int gt_random(int32_t kind, const int64_t *shape, int32_t ndim, int32_t dtype, int32_t dev_type, int32_t dev_index, gt_tensor *out);
int gt_randint(int64_t low, int64_t high, const int64_t *shape, int32_t ndim, int32_t dtype, gt_tensor *out);
int gt_randperm(int64_t n, gt_tensor *out);
/* torch.randperm(ns[i], generator=g) for i in 0..<count, in turn, from one private generator seeded `seed`
   (g = torch.Generator(); g.manual_seed(seed)); the global generator is untouched. outs: `count` handles. */
int gt_randperms_seeded(const int64_t *ns, int32_t count, uint64_t seed, gt_tensor *outs);
/* in place: kind 0 normal_(a=mean, b=std), 1 uniform_(a=from, b=to) */
int gt_random_(gt_tensor t, int32_t kind, double a, double b);

/* ---- information and data ---- */
int gt_ndim(gt_tensor t, int32_t *out);
int gt_shape(gt_tensor t, int64_t *buf, int32_t cap);   /* writes min(ndim, cap) sizes; buf must not be NULL */
int gt_strides(gt_tensor t, int64_t *buf, int32_t cap);
int gt_storage_offset(gt_tensor t, int64_t *out);
int gt_numel(gt_tensor t, int64_t *out);
int gt_dtype(gt_tensor t, int32_t *out);
int gt_device(gt_tensor t, int32_t *type, int32_t *index);
int gt_is_contiguous(gt_tensor t, int32_t *out);
/* Memory format: 0 contiguous (NCHW), 1 channels-last (NHWC strides of a 4-D tensor). */
int gt_contiguous_format(gt_tensor t, int32_t format, gt_tensor *out);
int gt_is_contiguous_format(gt_tensor t, int32_t format, int32_t *out);
int gt_same_storage(gt_tensor a, gt_tensor b, int32_t *out);
int gt_data_ptr(gt_tensor t, const void **out);          /* CPU tensors only; valid while t lives */
/* Copies the elements (row-major, contiguous) of a tensor of any device/layout into dst as `dtype`; nbytes must equal
 * numel * element size of dtype. */
int gt_read(gt_tensor t, int32_t dtype, void *dst, size_t nbytes);
/* the value as a double (out_f) and/or as an int64 (out_i); either may be NULL, not both */
int gt_item(gt_tensor t, double *out_f, int64_t *out_i);

/* ---- conversion, copies ---- */
int gt_to(gt_tensor t, int32_t dtype, int32_t dev_type, int32_t dev_index, gt_tensor *out);   /* dtype -1 keeps it */
int gt_copy_(gt_tensor dst, gt_tensor src);
int gt_fill_(gt_tensor t, gt_scalar v);

/* ---- elementwise ---- */
enum {
  GT_NEG = 0, GT_EXP, GT_LOG, GT_SQRT, GT_ABS, GT_SIGMOID, GT_RELU, GT_FLOOR, GT_CEIL, GT_ROUND, GT_SIGN,
  GT_LOGICAL_NOT, GT_DETACH, GT_CLONE, GT_CONTIGUOUS, GT_ISNAN, GT_ISFINITE, GT_LOG1P, GT_TANH, GT_RECIPROCAL,
  GT_RSQRT, GT_SQUARE, GT_ZEROS_LIKE, GT_ONES_LIKE, GT_LOG_SIGMOID, GT_EXPM1, GT_TRUNC, GT_BITWISE_NOT, GT_SIN, GT_COS,
  GT_UNARY_COUNT
};
int gt_unary(int32_t op, gt_tensor a, gt_tensor *out);
int gt_unary_(int32_t op, gt_tensor a);                    /* in place, where libtorch has the in-place form */

enum {
  GT_ADD = 0, GT_SUB, GT_MUL, GT_DIV, GT_POW, GT_MAXIMUM, GT_MINIMUM, GT_EQ, GT_NE, GT_LT, GT_LE, GT_GT, GT_GE,
  GT_LOGICAL_AND, GT_LOGICAL_OR, GT_LOGICAL_XOR, GT_REMAINDER, GT_FLOOR_DIVIDE, GT_ATAN2, GT_BITWISE_AND,
  GT_BITWISE_OR, GT_RSUB, GT_RDIV, GT_RPOW, GT_DIV_TRUNC, GT_BINARY_COUNT
};
int gt_binary(int32_t op, gt_tensor a, gt_tensor b, gt_tensor *out);
int gt_binary_(int32_t op, gt_tensor a, gt_tensor b);
/* a op s; GT_RSUB/GT_RDIV/GT_RPOW compute s op a. */
int gt_binary_scalar(int32_t op, gt_tensor a, gt_scalar s, gt_tensor *out);
int gt_binary_scalar_(int32_t op, gt_tensor a, gt_scalar s);
int gt_add_scaled(gt_tensor a, gt_tensor b, gt_scalar alpha, gt_tensor *out);   /* a + alpha*b (one kernel) */
int gt_add_scaled_(gt_tensor a, gt_tensor b, gt_scalar alpha);
/* clamp: has_min/has_max select which bound applies */
int gt_clamp(gt_tensor a, int32_t has_min, double min, int32_t has_max, double max, gt_tensor *out);
int gt_clamp_(gt_tensor a, int32_t has_min, double min, int32_t has_max, double max);
int gt_clamp_tensor(gt_tensor a, gt_tensor min, gt_tensor max, gt_tensor *out);   /* either may be null */
int gt_where(gt_tensor cond, gt_tensor a, gt_tensor b, gt_tensor *out);
int gt_masked_fill(gt_tensor a, gt_tensor mask, gt_scalar v, gt_tensor *out);
int gt_masked_fill_(gt_tensor a, gt_tensor mask, gt_scalar v);

/* ---- reductions ---- */
enum { GT_SUM = 0, GT_MEAN, GT_PROD, GT_AMAX, GT_AMIN, GT_ANY, GT_ALL, GT_NORM2, GT_COUNT_NONZERO, GT_REDUCE_COUNT };
/* ndims == 0 reduces over all dimensions. dtype -1 keeps the default result type (GT_SUM/GT_MEAN/GT_PROD only). */
int gt_reduce(int32_t op, gt_tensor a, const int64_t *dims, int32_t ndims, int32_t keepdim, int32_t dtype, gt_tensor *out);
int gt_vector_norm(gt_tensor a, double ord, gt_tensor *out);
/* kind 0 max, 1 min along dim: values and indices */
int gt_max_min_dim(int32_t kind, gt_tensor a, int64_t dim, int32_t keepdim, gt_tensor *values, gt_tensor *indices);
/* kind 0 argmax, 1 argmin; has_dim 0 flattens */
int gt_arg_max_min(int32_t kind, gt_tensor a, int32_t has_dim, int64_t dim, int32_t keepdim, gt_tensor *out);
int gt_cumsum(gt_tensor a, int64_t dim, gt_tensor *out);
int gt_topk(gt_tensor a, int64_t k, int64_t dim, int32_t largest, int32_t sorted, gt_tensor *values, gt_tensor *indices);
int gt_sort(gt_tensor a, int64_t dim, int32_t descending, int32_t stable, gt_tensor *values, gt_tensor *indices);

/* ---- shape and indexing ---- */
int gt_reshape(gt_tensor a, const int64_t *shape, int32_t ndim, gt_tensor *out);
int gt_view(gt_tensor a, const int64_t *shape, int32_t ndim, gt_tensor *out);
int gt_permute(gt_tensor a, const int64_t *dims, int32_t ndim, gt_tensor *out);
int gt_transpose(gt_tensor a, int64_t d0, int64_t d1, gt_tensor *out);
int gt_flatten(gt_tensor a, int64_t start, int64_t end, gt_tensor *out);
int gt_unsqueeze(gt_tensor a, int64_t dim, gt_tensor *out);
int gt_squeeze(gt_tensor a, int32_t has_dim, int64_t dim, gt_tensor *out);
int gt_expand(gt_tensor a, const int64_t *shape, int32_t ndim, gt_tensor *out);
int gt_repeat(gt_tensor a, const int64_t *reps, int32_t ndim, gt_tensor *out);
int gt_flip(gt_tensor a, const int64_t *dims, int32_t ndim, gt_tensor *out);
int gt_narrow(gt_tensor a, int64_t dim, int64_t start, int64_t length, gt_tensor *out);
int gt_slice(gt_tensor a, int64_t dim, int64_t start, int64_t end, int64_t step, gt_tensor *out);
int gt_select(gt_tensor a, int64_t dim, int64_t index, gt_tensor *out);
int gt_index_select(gt_tensor a, int64_t dim, gt_tensor index, gt_tensor *out);
int gt_gather(gt_tensor a, int64_t dim, gt_tensor index, gt_tensor *out);
int gt_scatter(gt_tensor a, int64_t dim, gt_tensor index, gt_tensor src, gt_tensor *out);
int gt_scatter_value(gt_tensor a, int64_t dim, gt_tensor index, gt_scalar v, gt_tensor *out);
int gt_scatter_add(gt_tensor a, int64_t dim, gt_tensor index, gt_tensor src, gt_tensor *out);
int gt_scatter_add_(gt_tensor a, int64_t dim, gt_tensor index, gt_tensor src);
int gt_index_add_(gt_tensor a, int64_t dim, gt_tensor index, gt_tensor src);
int gt_masked_select(gt_tensor a, gt_tensor mask, gt_tensor *out);
/* a[index] where index is a bool mask or an int64 index tensor along dim 0 (advanced indexing) */
int gt_index(gt_tensor a, gt_tensor index, gt_tensor *out);
/* a[index] = v (tensor, broadcast) / a[index] = s; accumulate adds instead */
int gt_index_put_(gt_tensor a, gt_tensor index, gt_tensor v, int32_t accumulate);
int gt_index_fill_(gt_tensor a, gt_tensor index, gt_scalar v);
int gt_nonzero(gt_tensor a, gt_tensor *out);                /* (n, ndim) int64 */
int gt_cat(const gt_tensor *ts, int32_t n, int64_t dim, gt_tensor *out);
int gt_stack(const gt_tensor *ts, int32_t n, int64_t dim, gt_tensor *out);
/* splits a into pieces of the given sizes along dim; writes n handles to outs (n == nsizes) */
int gt_split(gt_tensor a, const int64_t *sizes, int32_t nsizes, int64_t dim, gt_tensor *outs);
int gt_unique_sorted(gt_tensor a, gt_tensor *out);
int gt_pad(gt_tensor a, const int64_t *pads, int32_t npads, double value, gt_tensor *out);  /* constant pad, torch order */

/* ---- neural network ---- */
int gt_conv2d(gt_tensor x, gt_tensor w, gt_tensor b /* may be null */, const int64_t stride[2], const int64_t padding[2],
              const int64_t dilation[2], int64_t groups, gt_tensor *out);
/* running stats may be null; training updates them in place */
int gt_batch_norm(gt_tensor x, gt_tensor w, gt_tensor b, gt_tensor rmean, gt_tensor rvar, int32_t training, double momentum,
                  double eps, gt_tensor *out);
int gt_max_pool2d(gt_tensor x, const int64_t kernel[2], const int64_t stride[2], const int64_t padding[2],
                  const int64_t dilation[2], int32_t ceil_mode, gt_tensor *out);
int gt_upsample_nearest2d(gt_tensor x, int64_t out_h, int64_t out_w, gt_tensor *out);
/* reduction: 0 none, 1 mean, 2 sum; weight may be null */
int gt_bce_with_logits(gt_tensor x, gt_tensor target, gt_tensor weight, int32_t reduction, gt_tensor *out);
int gt_linear(gt_tensor x, gt_tensor w, gt_tensor b, gt_tensor *out);
int gt_matmul(gt_tensor a, gt_tensor b, gt_tensor *out);

/* ---- histograms ---- */
int gt_bucketize(gt_tensor a, gt_tensor boundaries, int32_t right, gt_tensor *out);
int gt_histc(gt_tensor a, int64_t bins, double min, double max, gt_tensor *out);
int gt_bincount(gt_tensor a, gt_tensor weights /* may be null */, int64_t minlength, gt_tensor *out);

/* ---- detection helpers ---- */
/* Greedy NMS with mmcv semantics: boxes (n,4) x1y1x2y2, scores (n); sort by score descending, a box is suppressed when
 * IoU (no +1, inter / (a_i + a_j - inter)) with a kept box is strictly greater than iou_thr. Output: kept indices
 * (int64) in descending-score order, on the boxes' device. method 0: the host kernel for CPU boxes, the tensor-op
 * ("matrix") version on the boxes' own device otherwise; 1: always the host kernel; 2: the matrix version only
 * (an error above 16384 boxes or 64 suppression rounds, where method 0 falls back to the kernel). Both give the
 * same indices. */
int gt_nms(gt_tensor boxes, gt_tensor scores, double iou_thr, int32_t method, gt_tensor *out);

/* ---- autograd ---- */
int gt_set_requires_grad(gt_tensor t, int32_t on);
int gt_requires_grad(gt_tensor t, int32_t *out);
int gt_backward(gt_tensor t, gt_tensor grad /* may be null */, int32_t retain_graph);
/* *out.ptr is NULL when the tensor has no gradient */
int gt_grad(gt_tensor t, gt_tensor *out);
int gt_zero_grad(gt_tensor t, int32_t set_to_none);
int gt_is_leaf(gt_tensor t, int32_t *out);

/* ---- distributed collectives (c10d; CShim/torch/dist.cpp) ----
 * A process group of world_size processes: Gloo for CPU tensors, NCCL for CUDA tensors where the libtorch has CUDA
 * and the shim was built with it. Rank 0 hosts the rendezvous store (a c10d TCPStore) on master_addr:master_port; the
 * others connect to it. Every collective blocks until done and fails, never hangs, when a peer dies or stays away
 * longer than timeout_ms (the message names the failure, e.g. Gloo's "Connection closed by peer"). */
typedef struct gt_process_group { void *ptr; } gt_process_group;

/* What this build of the shim can do: *gloo and *nccl are 1 when compiled in (NCCL is usable only with CUDA devices);
 * reason (may be NULL when cap is 0) gets "" or why distributed training is not available. */
int gt_dist_available(int32_t *gloo, int32_t *nccl, char *reason, size_t cap);
/* Joins (world_size ranks, 0 <= rank < world_size) and writes a new handle, released with gt_dist_destroy. */
int gt_dist_init(int32_t rank, int32_t world_size, const char *master_addr, int32_t master_port, int64_t timeout_ms,
                 gt_process_group *out);
int gt_dist_destroy(gt_process_group pg);
/* The backends this group uses, e.g. "gloo" or "gloo+nccl". */
int gt_dist_backend(gt_process_group pg, char *buf, size_t cap);
/* Sum over the ranks, in place, of n tensors (all ranks pass the same shapes and dtypes in the same order). The
 * tensors of one dtype and device travel as one flat buffer (one collective), and are copied back. */
int gt_dist_all_reduce_sum(gt_process_group pg, const gt_tensor *tensors, int32_t n);
/* Every rank's n tensors take root's values, in place; one flat buffer per dtype and device, like all-reduce. */
int gt_dist_broadcast(gt_process_group pg, const gt_tensor *tensors, int32_t n, int32_t root);
int gt_dist_barrier(gt_process_group pg);

/* ---- testing ---- */
/* For tests of the boundary only: an uninitialised 1-D tensor of n elements of any c10::ScalarType on any
 * c10::DeviceType (raw libtorch codes, e.g. 9 ComplexFloat, 27 UInt16; device 14 meta), including the ones every other
 * entry point refuses, so that tests can check that such tensors are reported as unsupported rather than misread. */
int gt_testing_empty(int32_t scalar_type, int32_t device_type, int64_t n, gt_tensor *out);

#ifdef __cplusplus
}
#endif
#endif
