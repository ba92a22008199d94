// Gather kernels: take (indices along one axis) and take_along_axis. Elements
// are copied as raw bytes, so every dtype shares one code path per item size.
#include <algorithm>
#include <complex>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/thread_pool.h"
#include "tmath/error.h"

namespace tmath::cpu {
namespace {

struct Dim {
  int64_t size, stride;
};

// Merges adjacent dims that are contiguous with each other; drops size-1 dims.
std::vector<Dim> merge_dims(std::span<const int64_t> shape, std::span<const int64_t> strides,
                            size_t begin, size_t end) {
  std::vector<Dim> dims;
  for (size_t d = begin; d < end; ++d) {
    if (shape[d] == 1) continue;
    if (!dims.empty() && dims.back().stride == strides[d] * shape[d]) {
      dims.back() = {dims.back().size * shape[d], strides[d]};
    } else {
      dims.push_back({shape[d], strides[d]});
    }
  }
  return dims;
}

// Element offset of flat index i over dims (row-major).
int64_t offset_of(const std::vector<Dim>& dims, int64_t i) {
  int64_t off = 0;
  for (size_t d = dims.size(); d-- > 0;) {
    off += (i % dims[d].size) * dims[d].stride;
    i /= dims[d].size;
  }
  return off;
}

template <size_t kSize>
struct Bytes {
  unsigned char b[kSize];
};

// Calls f(Bytes<itemsize>{}) so copies are typed moves.
template <class F>
void by_itemsize(size_t size, F&& f) {
  switch (size) {
    case 1:
      return f(Bytes<1>{});
    case 2:
      return f(Bytes<2>{});
    case 4:
      return f(Bytes<4>{});
    case 8:
      return f(Bytes<8>{});
    case 16:
      return f(Bytes<16>{});
    default:
      throw UnsupportedError("[take] unsupported item size " + std::to_string(size));
  }
}

int64_t read_index(const ArrayRef& idx, int64_t off) {
  return idx.dtype == DType::Int64 ? idx.ptr<const int64_t>()[off]
                                   : static_cast<int64_t>(idx.ptr<const int32_t>()[off]);
}

[[noreturn]] void index_error(const char* name, int64_t v, int64_t n) {
  throw ShapeError(std::string("[") + name + "] index " + std::to_string(v) +
                   " is out of bounds for axis of size " + std::to_string(n));
}

void take_indices(const ArrayRef& x, const ArrayRef& idx, int axis, const ArrayRef& out) {
  const int nd = x.ndim();
  const auto ax = static_cast<size_t>(axis);
  const int64_t n_axis = x.shape[ax];
  const int64_t xs_axis = x.strides[ax];
  // Flat copy of the indices (any strides), checked once.
  const int64_t nj = idx.size();
  std::vector<int64_t> ind(static_cast<size_t>(nj));
  const std::vector<Dim> idims = merge_dims(idx.shape, idx.strides, 0, idx.shape.size());
  for (int64_t j = 0; j < nj; ++j) {
    const int64_t v = read_index(idx, offset_of(idims, j));
    if (v < 0 || v >= n_axis) index_error("take", v, n_axis);
    ind[static_cast<size_t>(j)] = v;
  }
  const std::vector<Dim> pre = merge_dims(x.shape, x.strides, 0, ax);
  const std::vector<Dim> post = merge_dims(x.shape, x.strides, ax + 1, static_cast<size_t>(nd));
  int64_t np = 1, nq = 1;
  for (const Dim& d : pre) np *= d.size;
  for (const Dim& d : post) nq *= d.size;
  if (np * nj * nq == 0) return;
  const bool post_contig = post.empty() || (post.size() == 1 && post[0].stride == 1);
  by_itemsize(itemsize(x.dtype), [&](auto tag) {
    using E = decltype(tag);
    const E* xp = x.ptr<const E>();
    E* op = out.ptr<E>();
    if (nq == 1) {  // gather single elements: loop over the indices innermost
      parallel_for(np, std::max<int64_t>(1, kGrain / nj), [&](int64_t b, int64_t e) {
        for (int64_t p = b; p < e; ++p) {
          const E* src = xp + offset_of(pre, p);
          E* dst = op + p * nj;
          for (int64_t j = 0; j < nj; ++j) dst[j] = src[ind[static_cast<size_t>(j)] * xs_axis];
        }
      });
      return;
    }
    parallel_for(np * nj, std::max<int64_t>(1, kGrain / nq), [&](int64_t b, int64_t e) {
      for (int64_t row = b; row < e; ++row) {
        const int64_t p = row / nj, j = row % nj;
        const E* src = xp + offset_of(pre, p) + ind[static_cast<size_t>(j)] * xs_axis;
        E* dst = op + row * nq;
        if (post_contig) {
          std::memcpy(dst, src, static_cast<size_t>(nq) * sizeof(E));
        } else if (post.size() == 1) {
          const int64_t s = post[0].stride;
          for (int64_t q = 0; q < nq; ++q) dst[q] = src[q * s];
        } else {
          for (int64_t q = 0; q < nq; ++q) dst[q] = src[offset_of(post, q)];
        }
      }
    });
  });
}

void take_along(const ArrayRef& x, const ArrayRef& idx, int axis, const ArrayRef& out) {
  const int nd = x.ndim();
  if (idx.ndim() != nd || out.ndim() != nd) {
    throw ShapeError("[take_along_axis] indices must have the input's rank " + std::to_string(nd) +
                     ", got " + std::to_string(idx.ndim()));
  }
  const auto ax = static_cast<size_t>(axis);
  const int64_t n_axis = x.shape[ax];
  // x strides on out's shape: the axis is indexed, other dims broadcast.
  std::vector<int64_t> xs(static_cast<size_t>(nd));
  for (size_t d = 0; d < static_cast<size_t>(nd); ++d) {
    if (idx.shape[d] != out.shape[d]) {
      throw ShapeError("[take_along_axis] indices shape does not match the output shape");
    }
    if (d == ax) {
      xs[d] = 0;
    } else if (x.shape[d] == out.shape[d]) {
      xs[d] = x.strides[d];
    } else if (x.shape[d] == 1) {
      xs[d] = 0;
    } else {
      throw ShapeError("[take_along_axis] input dim " + std::to_string(d) + " of size " +
                       std::to_string(x.shape[d]) + " does not broadcast to " +
                       std::to_string(out.shape[d]));
    }
  }
  const int64_t n = out.size();
  if (n == 0) return;
  const int64_t last = out.shape[static_cast<size_t>(nd - 1)];
  const int64_t rows = n / last;
  const int64_t xs_last = xs[static_cast<size_t>(nd - 1)];
  const int64_t is_last = idx.strides[static_cast<size_t>(nd - 1)];
  const int64_t xs_axis = x.strides[ax];
  by_itemsize(itemsize(x.dtype), [&](auto tag) {
    using E = decltype(tag);
    const E* xp = x.ptr<const E>();
    E* op = out.ptr<E>();
    parallel_for(rows, std::max<int64_t>(1, kGrain / last), [&](int64_t b, int64_t e) {
      for (int64_t row = b; row < e; ++row) {
        int64_t xo = 0, io = 0, rem = row;
        for (int d = nd - 2; d >= 0; --d) {
          const auto s = static_cast<size_t>(d);
          const int64_t c = rem % out.shape[s];
          rem /= out.shape[s];
          xo += c * xs[s];
          io += c * idx.strides[s];
        }
        E* dst = op + row * last;
        for (int64_t k = 0; k < last; ++k) {
          const int64_t v = read_index(idx, io + k * is_last);
          if (v < 0 || v >= n_axis) index_error("take_along_axis", v, n_axis);
          dst[k] = xp[xo + k * xs_last + v * xs_axis];
        }
      }
    });
  });
}

template <class T>
void put_typed(OpCode op, const ArrayRef& idx, const ArrayRef& values, const ArrayRef& out) {
  // Serial, in index order: with repeated positions put keeps the last value, and
  // put_add's sums do not depend on the thread count.
  T* o = out.ptr<T>();
  const int64_t* ip = idx.ptr<int64_t>();
  const T* vp = values.ptr<T>();
  const int64_t n = idx.shape[0], is = idx.strides[0], vs = values.strides[0];
  for (int64_t j = 0; j < n; ++j) {
    T& dst = o[ip[j * is]];
    const T v = vp[j * vs];
    if (op == OpCode::Put) {
      dst = v;
    } else if constexpr (std::is_same_v<T, bool>) {
      dst = dst || v;
    } else if constexpr (std::is_integral_v<T>) {
      using U = std::make_unsigned_t<T>;  // wraps around like the add kernel
      dst = static_cast<T>(static_cast<U>(static_cast<U>(dst) + static_cast<U>(v)));
    } else if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
      dst = T(static_cast<float>(dst) + static_cast<float>(v));
    } else {
      dst = dst + v;
    }
  }
}

}  // namespace

void put(OpCode op, const ArrayRef& idx, const ArrayRef& values, const ArrayRef& out) {
  const char* name = op == OpCode::Put ? "put" : "put_add";
  if (op != OpCode::Put && op != OpCode::PutAdd)
    throw UnsupportedError("[put] " + std::string(op_name(op)) + " is not a scatter op");
  if (idx.dtype != DType::Int64 || idx.ndim() != 1 || values.ndim() != 1 ||
      values.shape[0] != idx.shape[0])
    throw ShapeError(std::string("[") + name + "] expects 1-d int64 positions and values of their length");
  if (values.dtype != out.dtype)
    throw DTypeError(std::string("[") + name + "] values dtype " + std::string(dtype_name(values.dtype)) +
                     " differs from the output's " + std::string(dtype_name(out.dtype)));
  switch (out.dtype) {
    case DType::Bool: put_typed<bool>(op, idx, values, out); break;
    case DType::Int8: put_typed<int8_t>(op, idx, values, out); break;
    case DType::Int16: put_typed<int16_t>(op, idx, values, out); break;
    case DType::Int32: put_typed<int32_t>(op, idx, values, out); break;
    case DType::Int64: put_typed<int64_t>(op, idx, values, out); break;
    case DType::UInt8: put_typed<uint8_t>(op, idx, values, out); break;
    case DType::UInt16: put_typed<uint16_t>(op, idx, values, out); break;
    case DType::UInt32: put_typed<uint32_t>(op, idx, values, out); break;
    case DType::UInt64: put_typed<uint64_t>(op, idx, values, out); break;
    case DType::Float16: put_typed<Half>(op, idx, values, out); break;
    case DType::BFloat16: put_typed<BFloat16>(op, idx, values, out); break;
    case DType::Float32: put_typed<float>(op, idx, values, out); break;
    case DType::Float64: put_typed<double>(op, idx, values, out); break;
    case DType::Complex64: put_typed<complex64_t>(op, idx, values, out); break;
    case DType::Complex128: put_typed<complex128_t>(op, idx, values, out); break;
  }
}

void take(OpCode op, const ArrayRef& x, const ArrayRef& idx, int axis, const ArrayRef& out) {
  const char* name = op == OpCode::Take ? "take" : "take_along_axis";
  if (op != OpCode::Take && op != OpCode::TakeAlongAxis) {
    throw UnsupportedError("[take] " + std::string(op_name(op)) + " is not a gather op");
  }
  if (idx.dtype != DType::Int64 && idx.dtype != DType::Int32) {
    throw DTypeError(std::string("[") + name + "] indices must be int64, got " +
                     std::string(dtype_name(idx.dtype)));
  }
  if (out.dtype != x.dtype) {
    throw DTypeError(std::string("[") + name + "] output dtype " +
                     std::string(dtype_name(out.dtype)) + " differs from input dtype " +
                     std::string(dtype_name(x.dtype)));
  }
  if (axis < 0 || axis >= x.ndim()) {
    throw ShapeError(std::string("[") + name + "] axis " + std::to_string(axis) +
                     " out of range for " + std::to_string(x.ndim()) + " dims");
  }
  if (op == OpCode::Take) {
    take_indices(x, idx, axis, out);
  } else {
    take_along(x, idx, axis, out);
  }
}

}  // namespace tmath::cpu
