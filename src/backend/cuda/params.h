// Kernel parameter structs shared by host code and the NVRTC sources: each is
// defined once as a macro, compiled here and pasted as text into the programs
// (codegen.cpp), so both sides agree on the layout. Only 8-byte members.
#pragma once

#define TM_MAXD 8

// Elementwise: operand 0 is the output; strides in elements.
#define TM_EW_PARAMS                                                                     \
  struct EwParams {                                                                      \
    long long n;                                                                         \
    long long nd;                                                                        \
    long long shape[TM_MAXD];                                                            \
    long long stride[4][TM_MAXD];                                                        \
    unsigned long long ptr[4];                                                           \
    long long scalar_mask;      /* bit k: input k is one element (contiguous kernels) */ \
    double d0, d1;              /* arange: start, step */                                \
    unsigned long long bits[2]; /* fill: the value's bytes */                            \
  };

// Contiguous elementwise kernels (tm_c, tm_v): the small subset of EwParams they
// read, so a launch copies 48 bytes of parameters instead of about 400.
#define TM_EWC_PARAMS                                          \
  struct EwcParams {                                           \
    long long n;                                               \
    unsigned long long ptr[4];                                 \
    long long scalar_mask; /* bit k: input k is one element */ \
  };

// Fused elementwise programs (src/jit): the same layouts with room for
// TM_FMAX operands (output + up to 15 inputs).
#define TM_FMAX 16
#define TM_FW_PARAMS                                                \
  struct FwParams {                                                 \
    long long n;                                                    \
    long long nd;                                                   \
    long long shape[TM_MAXD];                                       \
    long long stride[TM_FMAX][TM_MAXD];                             \
    unsigned long long ptr[TM_FMAX];                                \
    long long scalar_mask; /* bit k: input k is one element */      \
  };
#define TM_FWC_PARAMS                                          \
  struct FwcParams {                                           \
    long long n;                                               \
    unsigned long long ptr[TM_FMAX];                           \
    long long scalar_mask; /* bit k: input k is one element */ \
  };

// Reductions over arbitrary axes: output j (row-major over the kept dims) reduces
// the elements r in [0, n_red); splits > 1 writes partial results first. With
// `counter` (zeroed uint per output), the row-block kernel's last block of each
// output combines the partials itself (no second kernel) and re-zeroes it.
#define TM_RED_PARAMS                            \
  struct RedParams {                             \
    unsigned long long x, out, partial, counter; \
    long long n_out, n_red, nk, nr;              \
    long long kshape[TM_MAXD], kstride[TM_MAXD]; \
    long long rshape[TM_MAXD], rstride[TM_MAXD]; \
    long long chunk, splits;                     \
  };

// One axis (arg-reduce, scan): `lines` independent lines of n elements; line j's
// position follows the other dims (row-major), x strides ks, out strides os.
#define TM_AXIS_PARAMS                                             \
  struct AxisParams {                                              \
    unsigned long long x, out;                                     \
    long long lines, n, xa, oa, nk;                                \
    long long kshape[TM_MAXD], kstride[TM_MAXD], ostride[TM_MAXD]; \
  };

// Row kernels (softmax, layer_norm): contiguous rows of `len` elements.
#define TM_ROW_PARAMS                \
  struct RowParams {                 \
    unsigned long long x, out, w, b; \
    long long rows, len;             \
    double eps;                      \
  };

// Gather (take / take_along_axis): see take.cpp for the index decomposition.
#define TM_TAKE_PARAMS                                                        \
  struct TakeParams {                                                         \
    unsigned long long x, idx, out;                                           \
    long long n, nd, axis, axis_stride;                                       \
    long long shape[2 * TM_MAXD], xstride[2 * TM_MAXD], istride[2 * TM_MAXD]; \
    long long idx_begin, idx_end; /* take: out dims [begin, end) index idx */ \
  };

// Scatter (put / put_add): out[idx[j * is]] = / += val[j * vs] for j < n.
#define TM_PUT_PARAMS                  \
  struct PutParams {                   \
    unsigned long long out, idx, val;  \
    long long n, is, vs;               \
  };

// Philox samplers: element i of the flat output.
#define TM_RAND_PARAMS         \
  struct RandParams {          \
    unsigned long long out;    \
    long long n;               \
    unsigned long long k0, k1; \
    double a, b, hi, below;    \
    long long clamp;           \
  };

// Integer/bool matmul: out (batch, m, n) contiguous; batch dims of a and b strided.
#define TM_MM_PARAMS                                               \
  struct MmParams {                                                \
    unsigned long long a, b, out;                                  \
    long long m, n, k, ars, acs, brs, bcs, total, nb;              \
    long long bshape[TM_MAXD], astride[TM_MAXD], bstride[TM_MAXD]; \
  };

// The tiny-op queue (DeviceContext::queue_tiny): up to TM_TINY_MAX small ops run in
// order by one block. `nc` packs the element count (bits 0-31), the op's code in
// gen::tiny() (bits 32-47) and whether a or b is a single element (bits 48, 49).
// b holds the value's bits for a fill. 32 bytes per op: 120 fit in 4 KiB of parameters.
#define TM_TINY_MAX 120
#define TM_TINY_PARAMS                             \
  struct TinyOp {                                  \
    unsigned long long out, a, b;                  \
    long long nc;                                  \
  };                                               \
  struct TinyParams {                              \
    TinyOp op[TM_TINY_MAX];                        \
    long long count;                               \
  };

namespace tmath::cuda {
TM_TINY_PARAMS
TM_EW_PARAMS
TM_EWC_PARAMS
TM_FW_PARAMS
TM_FWC_PARAMS
TM_RED_PARAMS
TM_AXIS_PARAMS
TM_ROW_PARAMS
TM_TAKE_PARAMS
TM_PUT_PARAMS
TM_RAND_PARAMS
TM_MM_PARAMS
}  // namespace tmath::cuda
