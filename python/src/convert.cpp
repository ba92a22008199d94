// Python <-> tmath conversions: dtypes, devices, shapes, axes, scalars, nested
// lists, DLPack/buffer-protocol arrays (zero-copy import and export), item/tolist,
// and indexing.
#include <climits>
#include <complex>
#include <cstring>

#include "common.h"

namespace tmpy {

PyTypeObject* g_tensor_type = nullptr;

void throw_type_error(const std::string& msg) { throw nb::type_error(msg.c_str()); }
void throw_value_error(const std::string& msg) { throw nb::value_error(msg.c_str()); }

namespace {

std::string py_type_name(nb::handle h) { return nb::type_name(h.type()).c_str(); }

[[noreturn]] void throw_overflow(const std::string& msg) {
  PyErr_SetString(PyExc_OverflowError, msg.c_str());
  throw nb::python_error();
}

// Strong references, never released (module-lifetime singletons; no destructor
// runs after the interpreter is finalised).
PyObject* g_dtype_objects[tmath::kNumDTypes] = {};

std::optional<DType> dtype_from_dlpack(nb::dlpack::dtype d) {
  using C = nb::dlpack::dtype_code;
  if (d.lanes != 1) return std::nullopt;
  switch (static_cast<C>(d.code)) {
    case C::Bool:
      if (d.bits == 8) return tmath::bool_;
      break;
    case C::Int:
      if (d.bits == 8) return tmath::int8;
      if (d.bits == 16) return tmath::int16;
      if (d.bits == 32) return tmath::int32;
      if (d.bits == 64) return tmath::int64;
      break;
    case C::UInt:
      if (d.bits == 8) return tmath::uint8;
      if (d.bits == 16) return tmath::uint16;
      if (d.bits == 32) return tmath::uint32;
      if (d.bits == 64) return tmath::uint64;
      break;
    case C::Float:
      if (d.bits == 16) return tmath::float16;
      if (d.bits == 32) return tmath::float32;
      if (d.bits == 64) return tmath::float64;
      break;
    case C::Bfloat:
      if (d.bits == 16) return tmath::bfloat16;
      break;
    case C::Complex:
      if (d.bits == 64) return tmath::complex64;
      if (d.bits == 128) return tmath::complex128;
      break;
    default:
      break;
  }
  return std::nullopt;
}

nb::dlpack::dtype dlpack_dtype(DType dt) {
  using C = nb::dlpack::dtype_code;
  C code = C::Float;
  switch (tmath::kind(dt)) {
    case tmath::DTypeKind::Bool: code = C::Bool; break;
    case tmath::DTypeKind::SignedInt: code = C::Int; break;
    case tmath::DTypeKind::UnsignedInt: code = C::UInt; break;
    case tmath::DTypeKind::Float: code = dt == tmath::bfloat16 ? C::Bfloat : C::Float; break;
    case tmath::DTypeKind::Complex: code = C::Complex; break;
  }
  return nb::dlpack::dtype{static_cast<uint8_t>(code), static_cast<uint8_t>(tmath::itemsize(dt) * 8), 1};
}

// ---- nested sequences ------------------------------------------------------
// KUInt: an int in [2**63, 2**64) (nested sequences only), stored as its uint64 bits.
enum Kind : int { KBool = 0, KInt = 1, KFloat = 2, KComplex = 3, KUInt = 4 };

struct Leaf {
  Kind kind;
  int64_t i;
  double re, im;
};

bool is_seq(nb::handle h) { return PyList_Check(h.ptr()) || PyTuple_Check(h.ptr()); }

// Reads one Python scalar (bool, int, float, complex, NumPy scalar, 0-d tensor). Ints
// above int64 are refused unless `allow_uint` (then up to 2**64 - 1, as KUInt).
bool read_scalar(nb::handle h, Leaf& out, const char* op, bool allow_uint = false) {
  PyObject* o = h.ptr();
  if (PyBool_Check(o)) {
    out = {KBool, o == Py_True ? 1 : 0, 0, 0};
    return true;
  }
  if (PyLong_Check(o)) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow > 0 && allow_uint) {
      const unsigned long long u = PyLong_AsUnsignedLongLong(o);
      if (!PyErr_Occurred()) {
        out = {KUInt, static_cast<int64_t>(u), 0, 0};
        return true;
      }
      PyErr_Clear();
      throw_overflow("[" + std::string(op) + "] Python int too large for uint64");
    }
    if (overflow) throw_overflow("[" + std::string(op) + "] Python int too large for int64");
    out = {KInt, v, 0, 0};
    return true;
  }
  if (PyFloat_Check(o)) {
    out = {KFloat, 0, PyFloat_AS_DOUBLE(o), 0};
    return true;
  }
  if (PyComplex_Check(o)) {
    out = {KComplex, 0, PyComplex_RealAsDouble(o), PyComplex_ImagAsDouble(o)};
    return true;
  }
  if (is_tensor(h)) {
    const Tensor& t = tensor_ref(h);
    if (t.ndim() != 0) return false;
    nb::object v = item(t);
    return read_scalar(v, out, op, allow_uint);
  }
  // NumPy scalars (np.float32(1), np.int8(3), np.bool_(True), ...).
  if (nb::hasattr(h, "dtype") && nb::hasattr(h, "item") && !nb::hasattr(h, "__len__")) {
    nb::object v = h.attr("item")();
    if (PyBool_Check(v.ptr()) || PyLong_Check(v.ptr()) || PyFloat_Check(v.ptr()) || PyComplex_Check(v.ptr()))
      return read_scalar(v, out, op, allow_uint);
  }
  return false;
}

struct Nested {
  Shape shape;
  std::vector<Leaf> leaves;
  Kind kind = KBool;      // the widest of bool, int, float, complex seen
  bool has_uint = false;  // an int in [2**63, 2**64) seen

  // NumPy 2's promotion of the leaves: int64 with uint64 gives float64, bool with
  // uint64 gives uint64 ([1, 2**63] is float64, [True, 2**63] uint64).
  Kind result() const {
    if (!has_uint) return kind;
    return kind == KBool ? KUInt : kind == KInt ? KFloat : kind;
  }
};

void fill_nested(nb::handle h, size_t depth, Nested& n, const char* op) {
  if (depth == n.shape.size()) {
    Leaf l{};
    if (is_seq(h))
      throw_value_error("[" + std::string(op) + "] ragged nested sequence: a sequence where a scalar was expected at depth " +
                        std::to_string(depth));
    if (!read_scalar(h, l, op, true))
      throw_type_error("[" + std::string(op) + "] cannot convert an element of type '" + py_type_name(h) +
                       "' to a tensor element");
    if (l.kind == KUInt) n.has_uint = true;
    else if (l.kind > n.kind) n.kind = l.kind;
    n.leaves.push_back(l);
    return;
  }
  if (!is_seq(h))
    throw_value_error("[" + std::string(op) + "] ragged nested sequence: expected a sequence of length " +
                      std::to_string(n.shape[depth]) + " at depth " + std::to_string(depth) + ", got '" +
                      py_type_name(h) + "'");
  Py_ssize_t len = PySequence_Fast_GET_SIZE(h.ptr());
  if (len != n.shape[depth])
    throw_value_error("[" + std::string(op) + "] ragged nested sequence: length " + std::to_string(len) +
                      " at depth " + std::to_string(depth) + " where " + std::to_string(n.shape[depth]) +
                      " was expected");
  PyObject** items = PySequence_Fast_ITEMS(h.ptr());
  for (Py_ssize_t i = 0; i < len; ++i) fill_nested(nb::handle(items[i]), depth + 1, n, op);
}

DType natural_dtype(Kind k) {
  switch (k) {
    case KBool: return tmath::bool_;
    case KInt: return tmath::int64;
    case KFloat: return tmath::float32;
    case KUInt: return tmath::uint64;
    default: return tmath::complex64;
  }
}

// A leaf's value as a double (uint64 bits read unsigned).
double leaf_real(const Leaf& l) {
  if (l.kind == KFloat || l.kind == KComplex) return l.re;
  if (l.kind == KUInt) return static_cast<double>(static_cast<uint64_t>(l.i));
  return static_cast<double>(l.i);
}

Tensor from_nested(nb::handle h, std::optional<DType> dtype, const char* op) {
  Nested n;
  // Shape from the first elements.
  nb::handle cur = h;
  bool has_array_leaf = false;
  while (is_seq(cur)) {
    Py_ssize_t len = PySequence_Fast_GET_SIZE(cur.ptr());
    n.shape.push_back(len);
    if (len == 0) break;
    cur = nb::handle(PySequence_Fast_ITEMS(cur.ptr())[0]);
    // A sequence of arrays/tensors (not scalars): stack them.
    if (!is_seq(cur) && ((is_tensor(cur) && tensor_ref(cur).ndim() > 0) ||
                         (nb::hasattr(cur, "__len__") && (nb::hasattr(cur, "__dlpack__") || PyObject_CheckBuffer(cur.ptr())))))
      has_array_leaf = true;
  }
  if (has_array_leaf) {
    std::vector<Tensor> parts;
    for (nb::handle e : nb::borrow<nb::sequence>(h)) parts.push_back(asarray(e, dtype, std::nullopt, std::nullopt, op));
    return nogil([&] { return tmath::stack(parts, 0).eval(); });
  }
  fill_nested(h, 0, n, op);
  const Kind kind = n.result();
  // [] -> float32, the default floating dtype; ints with uint64-only ints -> float64
  // (the promotion of int64 with uint64), not the default float32.
  DType dt = n.leaves.empty() ? tmath::float32 : natural_dtype(kind);
  if (n.has_uint && n.kind == KInt) dt = tmath::float64;
  if (dtype) dt = *dtype;
  Tensor src;
  size_t count = n.leaves.size();
  if (kind == KComplex) {
    std::vector<std::complex<double>> v(count);
    for (size_t i = 0; i < count; ++i)
      v[i] = std::complex<double>(leaf_real(n.leaves[i]),
                                  n.leaves[i].kind == KComplex ? n.leaves[i].im : 0.0);
    src = tmath::from_data(v.data(), n.shape, tmath::complex128, tmath::kCPU);
  } else if (kind == KFloat) {
    std::vector<double> v(count);
    for (size_t i = 0; i < count; ++i) v[i] = leaf_real(n.leaves[i]);
    src = tmath::from_data(v.data(), n.shape, tmath::float64, tmath::kCPU);
  } else if (kind == KUInt) {
    std::vector<uint64_t> v(count);
    for (size_t i = 0; i < count; ++i) v[i] = static_cast<uint64_t>(n.leaves[i].i);
    src = tmath::from_data(v.data(), n.shape, tmath::uint64, tmath::kCPU);
  } else if (kind == KInt) {
    std::vector<int64_t> v(count);
    for (size_t i = 0; i < count; ++i) v[i] = n.leaves[i].i;
    src = tmath::from_data(v.data(), n.shape, tmath::int64, tmath::kCPU);
  } else {
    std::vector<uint8_t> v(count);
    for (size_t i = 0; i < count; ++i) v[i] = n.leaves[i].i ? 1 : 0;
    src = tmath::from_data(v.data(), n.shape, tmath::bool_, tmath::kCPU);
  }
  if (src.dtype() == dt) return src;
  return nogil([&] { return tmath::astype(src, dt).eval(); });
}

}  // namespace

nb::object dtype_object(DType dt) {
  PyObject* o = g_dtype_objects[static_cast<int>(dt)];
  return o ? nb::borrow(o) : nb::cast(PyDType{dt});  // after atexit: a fresh (equal) object
}

// ---- dtypes, devices, shapes ---------------------------------------------------
std::optional<DType> to_dtype(nb::handle h, const char* op) {
  if (h.is_none()) return std::nullopt;
  if (nb::isinstance<PyDType>(h)) return nb::inst_ptr<PyDType>(h)->dt;
  if (nb::isinstance<nb::str>(h)) return tmath::dtype_from_name(nb::cast<std::string>(h));
  PyObject* o = h.ptr();
  if (o == reinterpret_cast<PyObject*>(&PyBool_Type)) return tmath::bool_;
  if (o == reinterpret_cast<PyObject*>(&PyLong_Type)) return tmath::int64;
  if (o == reinterpret_cast<PyObject*>(&PyFloat_Type)) return tmath::float64;
  if (o == reinterpret_cast<PyObject*>(&PyComplex_Type)) return tmath::complex128;
  // NumPy dtypes and scalar types (np.float32, np.dtype('int8')).
  try {
    nb::module_ np = nb::module_::import_("numpy");
    nb::object d = np.attr("dtype")(h);
    return tmath::dtype_from_name(nb::cast<std::string>(d.attr("name")));
  } catch (const nb::python_error&) {
  } catch (const tmath::DTypeError&) {
  }
  throw_type_error("[" + std::string(op) + "] not a dtype: object of type '" + py_type_name(h) + "'");
}

DType to_dtype_or(nb::handle h, DType def, const char* op) { return to_dtype(h, op).value_or(def); }

std::optional<Device> to_device(nb::handle h, const char* op) {
  if (h.is_none()) return std::nullopt;
  if (nb::isinstance<Device>(h)) return *nb::inst_ptr<Device>(h);
  if (nb::isinstance<nb::str>(h)) return Device(std::string_view(nb::cast<std::string>(h)));
  throw_type_error("[" + std::string(op) + "] device must be a tmath.Device or a string such as 'cpu', got '" +
                   py_type_name(h) + "'");
}

Device to_device_or_default(nb::handle h, const char* op) {
  auto d = to_device(h, op);
  return d ? *d : tmath::default_device();
}

static int64_t to_int(nb::handle h, const char* op, const char* what) {
  if (PyBool_Check(h.ptr()) || !PyIndex_Check(h.ptr()))
    throw_type_error("[" + std::string(op) + "] " + what + " must be an integer, got '" + py_type_name(h) + "'");
  nb::object i = nb::steal(PyNumber_Index(h.ptr()));
  if (!i.is_valid()) throw nb::python_error();
  int overflow = 0;
  long long v = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
  if (overflow) throw_value_error("[" + std::string(op) + "] " + what + " out of range");
  return v;
}

std::vector<int> to_axes(nb::handle h, const char* op) {
  std::vector<int> axes;
  if (h.is_none()) return axes;
  if (is_seq(h)) {
    for (nb::handle e : nb::borrow<nb::sequence>(h)) axes.push_back(static_cast<int>(to_int(e, op, "axis")));
    if (axes.empty()) throw_value_error("[" + std::string(op) + "] axis=() is not supported (reduces over no axis)");
    return axes;
  }
  axes.push_back(static_cast<int>(to_int(h, op, "axis")));
  return axes;
}

Shape to_shape(nb::handle h, const char* op) {
  Shape s;
  if (is_seq(h)) {
    for (nb::handle e : nb::borrow<nb::sequence>(h)) s.push_back(to_int(e, op, "shape entry"));
    return s;
  }
  s.push_back(to_int(h, op, "shape"));
  return s;
}

tmath::Scalar to_scalar(nb::handle h, const char* op) {
  Leaf l{};
  if (!read_scalar(h, l, op))
    throw_type_error("[" + std::string(op) + "] expected a Python scalar, got '" + py_type_name(h) + "'");
  switch (l.kind) {
    case KBool: return tmath::Scalar(l.i != 0);
    case KInt: return tmath::Scalar(l.i);
    case KFloat: return tmath::Scalar(l.re);
    default: return tmath::Scalar(std::complex<double>(l.re, l.im));
  }
}

// ---- arrays ---------------------------------------------------------------------
std::shared_ptr<tmath::Backend> device_backend(Device d, const char* op) {
  for (auto& b : tmath::backends())
    if (b->device_type() == d.type && b->available()) return b;
  std::string why;
  for (auto& b : tmath::backends())
    if (b->device_type() == d.type) why = ": " + b->info().reason;
  throw tmath::DeviceError("[" + std::string(op) + "] no available tmath backend for " + d.str() + why);
}

namespace {

constexpr int kDLCPU = 1;
constexpr int kDLCUDA = 2;
// DLPack's stream value for the legacy default CUDA stream (also cudaStreamLegacy).
constexpr uintptr_t kLegacyStream = 1;

// Wraps an imported ndarray (kept alive until the tensor's storage dies) as a tensor on `dev`.
// `be` (device memory): before the producer's memory is released, the legacy default stream,
// where PyTorch's and CuPy's allocators reuse freed blocks by default, waits for the engine's
// queued work on it.
Tensor wrap_ndarray(nb::ndarray<nb::ro>&& arr, Device dev, std::shared_ptr<tmath::Backend> be,
                    const char* op) {
  auto dt = dtype_from_dlpack(arr.dtype());
  if (!dt)
    throw tmath::DTypeError("[" + std::string(op) + "] unsupported element type (DLPack code " +
                            std::to_string(arr.dtype().code) + ", " + std::to_string(arr.dtype().bits) + " bits)");
  Shape shape(arr.ndim());
  tmath::Strides strides(arr.ndim());
  for (size_t i = 0; i < arr.ndim(); ++i) {
    shape[i] = static_cast<int64_t>(arr.shape(i));
    strides[i] = arr.stride(i);
  }
  void* data = const_cast<void*>(arr.data());
  auto* keep = new nb::ndarray<nb::ro>(std::move(arr));
  auto deleter = [keep, be, dev](void*) {
    if (be) {
      try {
        be->order_with_stream(dev, kLegacyStream, true);
      } catch (...) {  // CUDA shutting down: nothing left to order
      }
    }
    if (!Py_IsInitialized()) return;  // interpreter gone: leak rather than crash
    PyGILState_STATE s = PyGILState_Ensure();
    delete keep;
    PyGILState_Release(s);
  };
  try {
    return tmath::from_blob(data, shape, *dt, std::move(strides), deleter, dev);
  } catch (const tmath::Error&) {  // from_blob did not take ownership
    delete keep;
    throw;
  }
}

// Zero-copy import of a CUDA producer. Its __dlpack__ gets stream=<the engine's stream>, so
// the producer makes the engine's later work wait for its own pending work (DLPack spec).
Tensor import_cuda(nb::handle h, int index, const char* op) {
  using namespace nb::literals;
  Device dev(tmath::DeviceType::CUDA, index);
  auto be = device_backend(dev, op);
  uintptr_t stream = nogil([&] { return be->native_stream(dev); });  // validates the index
  nb::object dlpack = h.attr("__dlpack__");
  nb::object cap;
  bool ordered = true;
  try {
    cap = dlpack("stream"_a = stream, "max_version"_a = nb::make_tuple(1, 0));
  } catch (nb::python_error& e) {
    if (!e.matches(PyExc_TypeError)) throw;
    try {  // a producer predating max_version
      cap = dlpack("stream"_a = stream);
    } catch (nb::python_error& e2) {
      if (!e2.matches(PyExc_TypeError)) throw;
      cap = dlpack();  // no stream argument: the producer assumes the legacy default stream
      ordered = false;
    }
  }
  nb::ndarray<nb::ro> arr;
  if (!nb::try_cast(cap, arr, false))
    throw tmath::UnsupportedError("[" + std::string(op) + "] '" + py_type_name(h) +
                                  "'.__dlpack__() did not return a readable DLPack capsule");
  if (arr.device_type() != kDLCUDA || arr.device_id() != index)
    throw tmath::DeviceError("[" + std::string(op) + "] '" + py_type_name(h) + "' reports device (2, " +
                             std::to_string(index) + ") but its capsule is on (" +
                             std::to_string(arr.device_type()) + ", " + std::to_string(arr.device_id()) + ")");
  if (!ordered) nogil([&] { be->order_with_stream(dev, kLegacyStream, false); return 0; });
  return wrap_ndarray(std::move(arr), dev, std::move(be), op);
}

}  // namespace

std::optional<Tensor> import_array(nb::handle h, const char* op) {
  bool has_dlpack = nb::hasattr(h, "__dlpack__");
  if (!has_dlpack && !PyObject_CheckBuffer(h.ptr())) return std::nullopt;
  if (has_dlpack && nb::hasattr(h, "__dlpack_device__")) {
    nb::object d = h.attr("__dlpack_device__")();
    if (!PyTuple_Check(d.ptr()) || PyTuple_GET_SIZE(d.ptr()) != 2)
      throw_type_error("[" + std::string(op) + "] __dlpack_device__() must return a (device_type, device_id) tuple");
    int type = nb::cast<int>(nb::handle(PyTuple_GET_ITEM(d.ptr(), 0)));
    if (type == kDLCUDA) return import_cuda(h, nb::cast<int>(nb::handle(PyTuple_GET_ITEM(d.ptr(), 1))), op);
    if (type != kDLCPU)
      throw tmath::UnsupportedError("[" + std::string(op) + "] DLPack import from device type " + std::to_string(type) +
                                    " is not supported (CPU and CUDA only)");
  }
  nb::ndarray<nb::ro> arr;
  if (!nb::try_cast(h, arr, false)) return std::nullopt;
  if (arr.device_type() != nb::device::cpu::value)
    throw tmath::UnsupportedError("[" + std::string(op) + "] DLPack import from device type " +
                                  std::to_string(arr.device_type()) + " is not supported (CPU and CUDA only)");
  return wrap_ndarray(std::move(arr), tmath::kCPU, nullptr, op);
}

Tensor asarray(nb::handle h, std::optional<DType> dtype, std::optional<bool> copy,
               std::optional<Device> device, const char* op) {
  Tensor t;
  bool shared = false;  // may alias memory owned by someone else (or `h` itself)
  if (is_tensor(h)) {
    t = tensor_ref(h);
    shared = true;
  } else if (is_seq(h)) {
    t = from_nested(h, dtype, op);
  } else if (PyBool_Check(h.ptr()) || PyLong_Check(h.ptr()) || PyFloat_Check(h.ptr()) ||
             PyComplex_Check(h.ptr())) {
    tmath::Scalar s = to_scalar(h, op);
    DType dt = dtype.value_or(s.kind() == tmath::Scalar::Kind::Bool    ? tmath::bool_
                              : s.kind() == tmath::Scalar::Kind::Int   ? tmath::int64
                              : s.kind() == tmath::Scalar::Kind::Float ? tmath::float32
                                                                       : tmath::complex64);
    t = nogil([&] { return tmath::full({}, s, dt, tmath::kCPU).eval(); });
  } else if (auto a = import_array(h, op)) {
    t = *a;
    shared = true;
  } else if (nb::hasattr(h, "__array__")) {
    nb::object arr = nb::module_::import_("numpy").attr("asarray")(h);
    auto a2 = import_array(arr, op);
    if (!a2) throw_type_error("[" + std::string(op) + "] cannot convert '" + py_type_name(h) + "' to a tensor");
    t = *a2;
    shared = true;
  } else {
    throw_type_error("[" + std::string(op) + "] cannot convert object of type '" + py_type_name(h) +
                     "' to a tensor (expected a tensor, scalar, nested sequence or an object with __dlpack__, "
                     "the buffer protocol or __array__)");
  }
  bool need_copy = false;
  if (dtype && t.dtype() != *dtype) need_copy = true;
  if (device && !(t.device() == *device)) need_copy = true;
  if (copy && !*copy && need_copy)
    throw_value_error("[" + std::string(op) + "] copy=False but a copy is needed (dtype or device change)");
  if (copy && *copy && shared && !need_copy) {
    return nogil([&] { return tmath::copy(t).eval(); });
  }
  if (need_copy) {
    return nogil([&] {
      Tensor r = t;
      if (dtype && r.dtype() != *dtype) r = tmath::astype(r, *dtype);
      if (device && !(r.device() == *device)) r = tmath::to_device(r, *device);
      return r.eval();
    });
  }
  return t;
}

namespace {
// Weakly typed 0-d constants of recently used Python floats and ints (x * 2.0 in
// a loop makes no new tensor per call). Entries are evaluated, immutable CPU
// scalars; the cache holds a reference, so their buffers are never donated.
// Guarded by the GIL (to_tensor runs with it held). Never freed: no tensor
// destructor runs during static destruction, after the engine is gone.
struct ScalarEntry {
  int kind = -1;  // 0 float, 1 int
  uint64_t bits = 0;
  Tensor t;
};
constexpr size_t kScalarCache = 64;
ScalarEntry* scalar_cache() {
  static auto* cache = new ScalarEntry[kScalarCache];
  return cache;
}
template <class T>
Tensor cached_scalar(T v, int kind) {
  uint64_t b;
  std::memcpy(&b, &v, sizeof(b));
  uint64_t hsh = (b ^ (b >> 31) ^ (b >> 47)) * 0x9E3779B97F4A7C15ull;
  ScalarEntry& e = scalar_cache()[(hsh >> 58) & (kScalarCache - 1)];
  if (e.kind == kind && e.bits == b) return e.t;
  e.t = Tensor(tmath::Scalar(v));
  e.kind = kind;
  e.bits = b;
  return e.t;
}
}  // namespace

Tensor to_tensor(nb::handle h, const char* op) {
  PyObject* o = h.ptr();
  if (Py_TYPE(o) == g_tensor_type) return tensor_ref(h);
  if (PyFloat_CheckExact(o)) return cached_scalar<double>(PyFloat_AS_DOUBLE(o), 0);
  if (PyBool_Check(o)) return Tensor(tmath::Scalar(o == Py_True));
  if (PyLong_Check(o)) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow)
      throw_overflow("[" + std::string(op) + "] Python int too large for int64");
    return cached_scalar<int64_t>(static_cast<int64_t>(v), 1);
  }
  if (PyFloat_Check(o)) return Tensor(tmath::Scalar(PyFloat_AsDouble(o)));
  if (PyComplex_Check(o))
    return Tensor(tmath::Scalar(std::complex<double>(PyComplex_RealAsDouble(o), PyComplex_ImagAsDouble(o))));
  return asarray(h, std::nullopt, std::nullopt, std::nullopt, op);
}

std::vector<Tensor> to_tensor_list(nb::handle h, const char* op) {
  if (is_tensor(h) || !nb::isinstance<nb::sequence>(h) || nb::isinstance<nb::str>(h))
    throw_type_error("[" + std::string(op) + "] expected a sequence of tensors, got '" + py_type_name(h) + "'");
  std::vector<Tensor> out;
  for (nb::handle e : nb::borrow<nb::sequence>(h)) out.push_back(to_tensor(e, op));
  return out;
}

// ---- Tensor -> Python ---------------------------------------------------------------
nb::object item(const Tensor& t) {
  Tensor e = t;
  switch (tmath::kind(t.dtype())) {
    case tmath::DTypeKind::Bool: return nb::bool_(nogil([&] { return e.item<bool>(); }));
    case tmath::DTypeKind::SignedInt: return nb::int_(nogil([&] { return e.item<int64_t>(); }));
    case tmath::DTypeKind::UnsignedInt:  // through uint64: values above 2^63 stay positive
      return nb::steal(PyLong_FromUnsignedLongLong(nogil([&] { return e.item<uint64_t>(); })));
    case tmath::DTypeKind::Float: return nb::float_(nogil([&] { return e.item<double>(); }));
    case tmath::DTypeKind::Complex: {
      auto c = nogil([&] { return e.item<std::complex<double>>(); });
      return nb::steal(PyComplex_FromDoubles(c.real(), c.imag()));
    }
  }
  return nb::none();
}

namespace {
template <class T, class Make>
nb::object build_list(const std::vector<T>& v, const Shape& shape, size_t dim, size_t& pos, Make make) {
  if (dim == shape.size()) return make(v[pos++]);
  nb::list l;
  for (int64_t i = 0; i < shape[dim]; ++i) l.append(build_list(v, shape, dim + 1, pos, make));
  return l;
}
}  // namespace

nb::object tolist(const Tensor& t) {
  Tensor e = t;
  size_t pos = 0;
  switch (tmath::kind(t.dtype())) {
    case tmath::DTypeKind::Bool: {
      auto v = nogil([&] { return e.to_vector<bool>(); });
      return build_list(v, t.shape(), 0, pos, [](bool x) -> nb::object { return nb::bool_(x); });
    }
    case tmath::DTypeKind::SignedInt: {
      auto v = nogil([&] { return e.to_vector<int64_t>(); });
      return build_list(v, t.shape(), 0, pos, [](int64_t x) -> nb::object { return nb::int_(x); });
    }
    case tmath::DTypeKind::UnsignedInt: {
      auto v = nogil([&] { return e.to_vector<uint64_t>(); });
      return build_list(v, t.shape(), 0, pos, [](uint64_t x) -> nb::object {
        return nb::steal(PyLong_FromUnsignedLongLong(x));
      });
    }
    case tmath::DTypeKind::Float: {
      auto v = nogil([&] { return e.to_vector<double>(); });
      return build_list(v, t.shape(), 0, pos, [](double x) -> nb::object { return nb::float_(x); });
    }
    case tmath::DTypeKind::Complex: {
      auto v = nogil([&] { return e.to_vector<std::complex<double>>(); });
      return build_list(v, t.shape(), 0, pos, [](std::complex<double> x) -> nb::object {
        return nb::steal(PyComplex_FromDoubles(x.real(), x.imag()));
      });
    }
  }
  return nb::none();
}

namespace {
void release_exported(void* p) noexcept {
  delete static_cast<Tensor*>(p);
}
// A device tensor handed to a consumer: before its memory can return to the engine's
// allocator, the engine's stream waits for the work queued so far on the legacy default
// stream (where PyTorch and CuPy run by default), so the consumer's last reads come first.
void release_exported_device(void* p) noexcept {
  auto* t = static_cast<Tensor*>(p);
  try {
    device_backend(t->device(), "__dlpack__")->order_with_stream(t->device(), 1, false);
  } catch (...) {  // CUDA shutting down: nothing left to order
  }
  delete t;
}
}  // namespace

nb::ndarray<nb::array_api> export_ndarray(const Tensor& t) {
  Tensor e = t;
  void* data = nogil([&] { return tmath::device_data_ptr(e); });  // evaluates
  const Device dev = e.device();
  if (dev.type != tmath::DeviceType::CPU && dev.type != tmath::DeviceType::CUDA)
    throw tmath::UnsupportedError("[__dlpack__] export of " + dev.str() + " tensors is not supported");
  std::vector<size_t> shape(e.ndim());
  std::vector<int64_t> strides(e.ndim());
  const auto& st = e.strides();
  for (int i = 0; i < e.ndim(); ++i) {
    shape[i] = static_cast<size_t>(e.shape()[i]);
    strides[i] = st[i];
  }
  const bool cpu = dev.type == tmath::DeviceType::CPU;
  nb::capsule owner(new Tensor(e), cpu ? &release_exported : &release_exported_device);
  return nb::ndarray<nb::array_api>(data, shape.size(), shape.data(), owner, strides.data(), dlpack_dtype(e.dtype()),
                                    cpu ? nb::device::cpu::value : nb::device::cuda::value, cpu ? 0 : dev.index);
}

nb::object to_numpy(const Tensor& t) {
  Tensor e = t;
  if (e.device().type != tmath::DeviceType::CPU) e = nogil([&] { return tmath::to_device(e, tmath::kCPU).eval(); });
  // NumPy has no bfloat16: hand out float32 values.
  if (e.dtype() == tmath::bfloat16) e = nogil([&] { return tmath::astype(e, tmath::float32).eval(); });
  nb::ndarray<nb::array_api> a = export_ndarray(e);
  nb::object cap = nb::cast(a);
  return nb::module_::import_("numpy").attr("from_dlpack")(cap);
}

// ---- indexing --------------------------------------------------------------------------
namespace {

bool is_basic_entry(nb::handle e) {
  PyObject* o = e.ptr();
  return PySlice_Check(o) || o == Py_None || o == Py_Ellipsis || (PyIndex_Check(o) && !PyBool_Check(o) && !is_tensor(e) &&
                                                                  !nb::hasattr(e, "__len__"));
}

std::optional<int64_t> slice_part(PyObject* p, const char* what) {
  if (p == Py_None) return std::nullopt;
  return to_int(nb::handle(p), "__getitem__", what);
}

tmath::Index to_index(nb::handle e) {
  PyObject* o = e.ptr();
  if (PySlice_Check(o)) {
    auto* s = reinterpret_cast<PySliceObject*>(o);
    auto step = slice_part(s->step, "slice step");
    if (step && *step == 0) throw_value_error("[__getitem__] slice step cannot be zero");
    return tmath::Slice(slice_part(s->start, "slice start"), slice_part(s->stop, "slice stop"), step.value_or(1));
  }
  if (o == Py_None) return tmath::newaxis;
  if (o == Py_Ellipsis) return tmath::ellipsis;
  return to_int(e, "__getitem__", "index");
}

// Integer positions of the true entries of a bool mask (row-major).
Tensor mask_positions(const Tensor& mask) {
  auto v = nogil([&] { return mask.to_vector<bool>(); });
  std::vector<int64_t> pos;
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i]) pos.push_back(static_cast<int64_t>(i));
  return tmath::from_data(pos.data(), {static_cast<int64_t>(pos.size())}, tmath::int64, tmath::kCPU);
}

// An integer index array as int64 with negatives wrapped; IndexError (through ShapeError)
// for values outside [-n, n).
Tensor checked_index_array(const Tensor& k, int64_t n, int axis, const char* op) {
  if (!tmath::is_integral(k.dtype()) && k.size() > 0)  // an empty list ([]) selects nothing
    throw tmath::DTypeError(std::string("[") + op + "] array indices must be integers or booleans, got " +
                            std::string(tmath::dtype_name(k.dtype())));
  Tensor i = tmath::astype(k, tmath::int64);
  bool bad = i.size() > 0 && nogil([&] {
    return tmath::any(tmath::logical_or(tmath::greater_equal(i, Tensor(n)), tmath::less(i, Tensor(-n)))).item<bool>();
  });
  if (bad)
    throw tmath::ShapeError(std::string("[") + op + "] index out of bounds for axis " + std::to_string(axis) +
                            " with size " + std::to_string(n));
  return tmath::where(tmath::less(i, Tensor(int64_t{0})), i + Tensor(n), i);
}

// take() with NumPy's bounds rule (take wraps negatives; out-of-range raises).
Tensor take_checked(const Tensor& t, const Tensor& k, int axis) {
  if (t.ndim() == 0) throw tmath::ShapeError("[__getitem__] cannot index a 0-d tensor with an array");
  Tensor i = checked_index_array(k, t.shape()[axis], axis, "__getitem__");
  return nogil([&] { return tmath::take(t, i, axis); });
}

// One entry of an indexing key. Slices, None and (without arrays in the key) integers
// are basic; integer and boolean arrays are advanced, and with an array present the
// integers count as advanced too (0-d arrays), as in NumPy.
struct KeyEntry {
  enum Kind { SliceE, NoneE, IntE, ArrayE, MaskE } kind;
  nb::handle h;
  Tensor arr;   // ArrayE: the indices; MaskE: the mask
  int axis = 0;  // first axis of the tensor it consumes
};

// Row-major flat positions (int64, on t's device) of the elements t[key] selects, in the
// shape of t[key]: NumPy's indexing rules, advanced indices broadcast together and placed
// where the first one is when they are adjacent in the key, else in front.
Tensor key_positions(const Tensor& t, const std::vector<nb::handle>& raw, const char* op) {
  const int nd = t.ndim();
  const Device dev = t.device();
  std::vector<KeyEntry> es;
  int consumed = 0, ellipsis_at = -1;
  bool any_array = false;
  for (nb::handle e : raw) {
    PyObject* o = e.ptr();
    if (o == Py_Ellipsis) {
      if (ellipsis_at >= 0) throw tmath::ShapeError(std::string("[") + op + "] an index can only have a single ellipsis");
      ellipsis_at = static_cast<int>(es.size());
      continue;
    }
    KeyEntry k{KeyEntry::SliceE, e, Tensor(), 0};
    if (PySlice_Check(o)) {
      consumed += 1;
    } else if (o == Py_None) {
      k.kind = KeyEntry::NoneE;
    } else if (is_basic_entry(e)) {
      k.kind = KeyEntry::IntE;
      consumed += 1;
    } else {
      k.arr = to_tensor(e, op);
      if (k.arr.dtype() == tmath::bool_) {
        k.kind = KeyEntry::MaskE;
        consumed += k.arr.ndim();
      } else {
        k.kind = KeyEntry::ArrayE;
        consumed += 1;
      }
      any_array = true;
    }
    es.push_back(k);
  }
  if (consumed > nd)
    throw tmath::ShapeError(std::string("[") + op + "] too many indices for a tensor of " + std::to_string(nd) +
                            " dimensions (" + std::to_string(consumed) + " given)");
  // The ellipsis (or the end of the key) stands for full slices over the axes left.
  const int fill = nd - consumed;
  std::vector<KeyEntry> full;
  nb::object all = nb::steal(PySlice_New(nullptr, nullptr, nullptr));
  bool filled = false;
  for (size_t i = 0; i <= es.size(); ++i) {
    if (static_cast<int>(i) == (ellipsis_at >= 0 ? ellipsis_at : static_cast<int>(es.size())) && !filled) {
      for (int f = 0; f < fill; ++f) full.push_back(KeyEntry{KeyEntry::SliceE, all, Tensor(), 0});
      filled = true;
    }
    if (i < es.size()) full.push_back(es[i]);
  }
  // Row-major strides of t and the axis each entry consumes.
  std::vector<int64_t> rs(static_cast<size_t>(nd), 1);
  for (int a = nd - 2; a >= 0; --a) rs[a] = rs[a + 1] * t.shape()[a + 1];
  int axis = 0;
  for (auto& k : full) {
    k.axis = axis;
    if (k.kind == KeyEntry::SliceE || k.kind == KeyEntry::IntE || k.kind == KeyEntry::ArrayE) axis += 1;
    else if (k.kind == KeyEntry::MaskE) axis += k.arr.ndim();
  }
  // Advanced contributions (positions times stride, in the index's own shape) and their
  // broadcast shape; where they sit among the result dims.
  int64_t base = 0;
  std::vector<Tensor> adv;
  Shape adv_shape;
  int first_adv = -1, last_adv = -1;
  for (size_t i = 0; i < full.size(); ++i) {
    KeyEntry& k = full[i];
    const bool advanced = k.kind == KeyEntry::ArrayE || k.kind == KeyEntry::MaskE || (k.kind == KeyEntry::IntE && any_array);
    if (!advanced) continue;
    if (first_adv < 0) first_adv = static_cast<int>(i);
    last_adv = static_cast<int>(i);
    Tensor c;
    if (k.kind == KeyEntry::IntE) {
      const int64_t n = t.shape()[k.axis];
      int64_t v = to_int(k.h, op, "index");
      if (v < -n || v >= n)
        throw tmath::ShapeError(std::string("[") + op + "] index " + std::to_string(v) + " is out of bounds for axis " +
                                std::to_string(k.axis) + " with size " + std::to_string(n));
      base += (v < 0 ? v + n : v) * rs[k.axis];
      continue;  // a 0-d index: broadcasts to anything, adds a constant
    }
    if (k.kind == KeyEntry::ArrayE) {
      Tensor i64 = checked_index_array(k.arr, t.shape()[k.axis], k.axis, op);
      if (!(i64.device() == dev)) i64 = tmath::to_device(i64, dev);
      c = i64 * Tensor(rs[k.axis]);
    } else {
      const Shape& ms = k.arr.shape();
      for (size_t d = 0; d < ms.size(); ++d)
        if (ms[d] != t.shape()[k.axis + static_cast<int>(d)])
          throw tmath::ShapeError(std::string("[") + op + "] boolean index did not match the tensor along axis " +
                                  std::to_string(k.axis + static_cast<int>(d)) + ": size " +
                                  std::to_string(t.shape()[k.axis + static_cast<int>(d)]) + " but the mask has " +
                                  std::to_string(ms[d]));
      Tensor pos = mask_positions(k.arr);  // flat within the mask's axes
      if (!(pos.device() == dev)) pos = tmath::to_device(pos, dev);
      // 0-d mask (x[True] / x[False]): a new axis of length 1 or 0 that moves nothing.
      c = ms.empty() ? pos * Tensor(int64_t{0}) : pos * Tensor(rs[k.axis + static_cast<int>(ms.size()) - 1]);
    }
    try {
      adv_shape = adv.empty() ? c.shape() : tmath::broadcast_shapes(adv_shape, c.shape());
    } catch (const tmath::ShapeError&) {
      throw tmath::ShapeError(std::string("[") + op + "] shape mismatch: index arrays could not be broadcast together");
    }
    adv.push_back(c);
  }
  // Adjacent: no slice, None or ellipsis between the advanced entries. As in NumPy, an
  // ellipsis separates them even when it stands for no axis (its full slices, if any,
  // start at entry ellipsis_at of `full`).
  bool adjacent = true;
  for (int i = first_adv; i >= 0 && i <= last_adv; ++i) {
    auto kd = full[static_cast<size_t>(i)].kind;
    if (kd == KeyEntry::SliceE || kd == KeyEntry::NoneE || (i > first_adv && i == ellipsis_at))
      adjacent = false;
  }
  // Result dims: one per slice/None, the advanced block at its place.
  int n_basic = 0, adv_pos = 0;
  for (size_t i = 0; i < full.size(); ++i) {
    auto kd = full[i].kind;
    if (any_array && adjacent && static_cast<int>(i) == first_adv) adv_pos = n_basic;
    if (kd == KeyEntry::SliceE || kd == KeyEntry::NoneE) ++n_basic;
  }
  if (!any_array || !adjacent) adv_pos = 0;
  const int adv_nd = any_array ? static_cast<int>(adv_shape.size()) : 0;
  const int rnd = n_basic + adv_nd;
  Shape out_shape(static_cast<size_t>(rnd), 1);
  Tensor total;
  auto accumulate = [&](Tensor c) { total = total.defined() ? total + c : c; };
  int r = 0;  // next basic result dim
  for (auto& k : full) {
    if (k.kind == KeyEntry::SliceE) {
      const int64_t n = t.shape()[k.axis];
      Py_ssize_t start, stop, step;
      if (PySlice_Unpack(k.h.ptr(), &start, &stop, &step) < 0) throw nb::python_error();
      if (step == 0) throw_value_error(std::string("[") + op + "] slice step cannot be zero");
      const Py_ssize_t len = PySlice_AdjustIndices(static_cast<Py_ssize_t>(n), &start, &stop, step);
      const int rd = r + (r >= adv_pos ? adv_nd : 0);
      out_shape[static_cast<size_t>(rd)] = len;
      Shape cs(static_cast<size_t>(rnd), 1);
      cs[static_cast<size_t>(rd)] = len;
      const int64_t st = rs[k.axis];
      Tensor c = len == 0 ? tmath::zeros({0}, tmath::int64, dev)
                          : tmath::arange(int64_t{start} * st, int64_t{start + len * step} * st, int64_t{step} * st,
                                          tmath::int64, dev);
      accumulate(tmath::reshape(c, cs));
      ++r;
    } else if (k.kind == KeyEntry::NoneE) {
      ++r;
    } else if (k.kind == KeyEntry::IntE && !any_array) {
      const int64_t n = t.shape()[k.axis];
      int64_t v = to_int(k.h, op, "index");
      if (v < -n || v >= n)
        throw tmath::ShapeError(std::string("[") + op + "] index " + std::to_string(v) + " is out of bounds for axis " +
                                std::to_string(k.axis) + " with size " + std::to_string(n));
      base += (v < 0 ? v + n : v) * rs[k.axis];
    }
  }
  for (int d = 0; d < adv_nd; ++d) out_shape[static_cast<size_t>(adv_pos + d)] = adv_shape[static_cast<size_t>(d)];
  for (const Tensor& c : adv) {
    Shape cs(static_cast<size_t>(rnd), 1);
    const int off = adv_pos + adv_nd - c.ndim();
    for (int d = 0; d < c.ndim(); ++d) cs[static_cast<size_t>(off + d)] = c.shape()[d];
    accumulate(tmath::reshape(c, cs));
  }
  Tensor b = tmath::full({}, tmath::Scalar(base), tmath::int64, dev);
  total = total.defined() ? total + b : b;
  return tmath::broadcast_to(total, out_shape);
}

std::vector<nb::handle> key_entries(nb::handle key) {
  std::vector<nb::handle> entries;
  if (PyTuple_Check(key.ptr())) {
    for (nb::handle e : nb::borrow<nb::tuple>(key)) entries.push_back(e);
  } else {
    entries.push_back(key);
  }
  return entries;
}

}  // namespace

Tensor getitem(const Tensor& t, nb::handle key) {
  std::vector<nb::handle> entries = key_entries(key);
  bool basic = true;
  for (auto e : entries)
    if (!is_basic_entry(e)) basic = false;
  try {
    if (basic) {
      std::vector<tmath::Index> idx;
      idx.reserve(entries.size());
      for (auto e : entries) idx.push_back(to_index(e));
      return nogil([&] { return tmath::index(t, idx); });
    }
    // One integer array as the whole key: a gather along axis 0.
    if (entries.size() == 1) {
      Tensor k = to_tensor(entries[0], "__getitem__");
      if (k.dtype() != tmath::bool_) return take_checked(t, k, 0);
    }
    // Everything else: the flat positions of the selected elements, then one gather.
    Tensor pos = key_positions(t, entries, "__getitem__");  // reads the key: holds the GIL
    return nogil([&] { return tmath::take(tmath::reshape(t, {-1}), pos); });
  } catch (const tmath::ShapeError& e) {
    throw nb::index_error(e.what());
  }
}

void setitem(Tensor& t, nb::handle key, nb::handle value) {
  std::vector<nb::handle> entries = key_entries(key);
  Tensor pos;
  try {
    pos = key_positions(t, entries, "__setitem__");
  } catch (const tmath::ShapeError& e) {
    throw nb::index_error(e.what());
  }
  Tensor v = to_tensor(value, "__setitem__");
  Shape b;
  try {
    b = tmath::broadcast_shapes(v.shape(), pos.shape());
  } catch (const tmath::ShapeError&) {
    b.clear();
  }
  if (b != pos.shape()) {
    std::string vs, ps;
    for (auto d : v.shape()) vs += (vs.empty() ? "" : ", ") + std::to_string(d);
    for (auto d : pos.shape()) ps += (ps.empty() ? "" : ", ") + std::to_string(d);
    throw_value_error("[__setitem__] cannot broadcast a value of shape (" + vs + ") to the indexed shape (" + ps + ")");
  }
  if (!v.weak_type() && !(v.device() == t.device())) v = nogil([&] { return tmath::to_device(v, t.device()); });
  Tensor r = nogil([&] { return tmath::put(t, pos, v); });
  t = r;
}
// ---- dtype objects ------------------------------------------------------------------------
void bind_dtypes(nb::module_& m) {
  nb::class_<PyDType>(m, "dtype", "A tensor element type (tmath.float32, ...). Compare with ==.")
      .def_prop_ro("name", [](const PyDType& d) { return std::string(tmath::dtype_name(d.dt)); })
      .def_prop_ro("itemsize", [](const PyDType& d) { return tmath::itemsize(d.dt); })
      .def_prop_ro("kind",
                   [](const PyDType& d) {
                     switch (tmath::kind(d.dt)) {
                       case tmath::DTypeKind::Bool: return "bool";
                       case tmath::DTypeKind::SignedInt: return "signed integer";
                       case tmath::DTypeKind::UnsignedInt: return "unsigned integer";
                       case tmath::DTypeKind::Float: return "real floating";
                       case tmath::DTypeKind::Complex: return "complex floating";
                     }
                     return "";
                   })
      .def("__repr__", [](const PyDType& d) { return "tmath." + std::string(tmath::dtype_name(d.dt)); })
      .def("__str__", [](const PyDType& d) { return std::string(tmath::dtype_name(d.dt)); })
      .def("__hash__", [](const PyDType& d) { return static_cast<int>(d.dt) + 0x7a11; })
      .def("__eq__",
           [](const PyDType& d, nb::handle other) {
             if (nb::isinstance<PyDType>(other)) return nb::inst_ptr<PyDType>(other)->dt == d.dt;
             if (nb::isinstance<nb::str>(other)) {
               try {
                 return tmath::dtype_from_name(nb::cast<std::string>(other)) == d.dt;
               } catch (const tmath::DTypeError&) {
                 return false;
               }
             }
             return false;
           })
      // Pickled by reference to the module attribute (tmath._tmath.float32, ...).
      .def("__reduce__", [](const PyDType& d) {
        std::string name(tmath::dtype_name(d.dt));
        return name == "bool" ? std::string("bool_") : name;
      });
  for (int i = 0; i < tmath::kNumDTypes; ++i) {
    DType dt = static_cast<DType>(i);
    g_dtype_objects[i] = nb::cast(PyDType{dt}).release().ptr();
    std::string name(tmath::dtype_name(dt));
    m.attr(name == "bool" ? "bool_" : name.c_str()) = dtype_object(dt);
  }
  m.attr("bool") = dtype_object(tmath::bool_);
  // Drop the singletons at interpreter exit (before nanobind's leak check).
  nb::module_::import_("atexit").attr("register")(nb::cpp_function([]() {
    for (auto& o : g_dtype_objects) Py_CLEAR(o);
  }));
  m.def("_dtype_from_name", [](const std::string& s) { return dtype_object(tmath::dtype_from_name(s)); });
}

}  // namespace tmpy
