// tmath.Tensor: properties, conversions, operators, indexing, DLPack.
#include "common.h"

namespace tmpy {

using namespace nb::literals;

namespace {

using BinFn = Tensor (*)(const Tensor&, const Tensor&);

// Converts the other operand of a binary operator; false when its type is not
// one tmath converts (the operator then returns NotImplemented).
bool operand(nb::handle h, Tensor& out, const char* op) {
  PyObject* o = h.ptr();
  if (Py_TYPE(o) == g_tensor_type) {
    out = tensor_ref(h);
    return true;
  }
  if (PyFloat_Check(o) || PyLong_Check(o) || PyComplex_Check(o) || is_tensor(h) || PyList_Check(o) ||
      PyTuple_Check(o) || nb::hasattr(h, "__dlpack__") || PyObject_CheckBuffer(o) || nb::hasattr(h, "__array__")) {
    out = to_tensor(h, op);
    return true;
  }
  return false;
}

// The GIL stays held for small evaluated operands (common.h); matmul bounds its work differently.
template <BinFn F>
bool small_operands(const Tensor& a, const Tensor& b) {
  if constexpr (F == &tmath::matmul) return small_matmul(a, b);
  else return small_binary(a, b);
}

template <BinFn F>
nb::object binop(const Tensor& a, nb::handle b) {
  Tensor tb;
  if (!operand(b, tb, "operator")) return nb::borrow(Py_NotImplemented);
  Tensor r = nogil_unless(small_operands<F>(a, tb), [&] { return F(a, tb); });
  return nb::cast(std::move(r));
}

template <BinFn F>
nb::object rbinop(const Tensor& a, nb::handle b) {
  Tensor tb;
  if (!operand(b, tb, "operator")) return nb::borrow(Py_NotImplemented);
  Tensor r = nogil_unless(small_operands<F>(tb, a), [&] { return F(tb, a); });
  return nb::cast(std::move(r));
}

nb::tuple shape_tuple(const Tensor& t) {
  const Shape& s = t.shape();
  PyObject* tup = PyTuple_New(static_cast<Py_ssize_t>(s.size()));
  for (size_t i = 0; i < s.size(); ++i) PyTuple_SET_ITEM(tup, i, PyLong_FromLongLong(s[i]));
  return nb::steal<nb::tuple>(tup);
}

// The stream argument of __dlpack__ for a CUDA producer (DLPack spec): None means the
// legacy default stream (1); -1 asks for no ordering (nullopt); 0 is ambiguous and refused.
std::optional<uintptr_t> consumer_stream(nb::handle s, const char* op) {
  if (s.is_none()) return uintptr_t{1};
  if (PyBool_Check(s.ptr()) || !PyLong_Check(s.ptr()))
    throw nb::type_error(("[" + std::string(op) + "] stream must be an int or None, got '" +
                          std::string(nb::type_name(s.type()).c_str()) + "'")
                             .c_str());
  int overflow = 0;
  long long v = PyLong_AsLongLongAndOverflow(s.ptr(), &overflow);
  if (overflow > 0) {
    unsigned long long u = PyLong_AsUnsignedLongLong(s.ptr());
    if (PyErr_Occurred()) throw nb::python_error();
    return static_cast<uintptr_t>(u);
  }
  if (overflow == 0 && v == -1) return std::nullopt;
  if (overflow < 0 || v <= 0)
    throw nb::value_error(("[" + std::string(op) + "] stream=" + std::string(nb::repr(s).c_str()) +
                           " is not a valid CUDA stream (DLPack: None, -1, 1, 2 or a stream handle)")
                              .c_str());
  return static_cast<uintptr_t>(v);
}

Tensor scalar_of(const Tensor& t, const char* op) {
  if (t.size() != 1)
    throw nb::type_error((std::string("[") + op + "] only a tensor with one element converts to a Python scalar, got " +
                          std::to_string(t.size()) + " elements")
                             .c_str());
  return t;
}

// Buffer protocol (memoryview(t), np.frombuffer): a view of the evaluated CPU
// buffer, no copy. Shape and byte strides live in view->internal.
const char* buffer_format(DType dt) {
  switch (dt) {
    case tmath::bool_: return "?";
    case tmath::int8: return "b";
    case tmath::int16: return "h";
    case tmath::int32: return "i";
    case tmath::int64: return "q";
    case tmath::uint8: return "B";
    case tmath::uint16: return "H";
    case tmath::uint32: return "I";
    case tmath::uint64: return "Q";
    case tmath::float16: return "e";
    case tmath::float32: return "f";
    case tmath::float64: return "d";
    case tmath::complex64: return "Zf";
    case tmath::complex128: return "Zd";
    default: return nullptr;  // bfloat16 has no struct format
  }
}

int tensor_getbuffer(PyObject* self, Py_buffer* view, int flags) {
  try {
    Tensor t = *nb::inst_ptr<Tensor>(self);
    const char* fmt = buffer_format(t.dtype());
    if (!fmt) {
      PyErr_SetString(PyExc_BufferError, "[buffer] bfloat16 has no buffer-protocol format (use __dlpack__)");
      return -1;
    }
    if (t.device().type != tmath::DeviceType::CPU) {
      PyErr_SetString(PyExc_BufferError, "[buffer] only CPU tensors export the buffer protocol");
      return -1;
    }
    {
      nb::gil_scoped_release g;
      t.eval();
    }
    int nd = t.ndim();
    auto* dims = static_cast<Py_ssize_t*>(PyMem_Malloc(sizeof(Py_ssize_t) * (2 * nd + 1)));
    if (!dims) {
      PyErr_NoMemory();
      return -1;
    }
    const auto& st = t.strides();
    Py_ssize_t isz = static_cast<Py_ssize_t>(t.itemsize());
    for (int i = 0; i < nd; ++i) {
      dims[i] = static_cast<Py_ssize_t>(t.shape()[i]);
      dims[nd + i] = static_cast<Py_ssize_t>(st[i]) * isz;
    }
    view->buf = t.data_ptr();
    view->obj = Py_NewRef(self);  // the wrapper keeps the tensor (and its buffer) alive
    view->len = static_cast<Py_ssize_t>(t.nbytes());
    view->itemsize = isz;
    view->readonly = 0;
    view->format = (flags & PyBUF_FORMAT) ? const_cast<char*>(fmt) : nullptr;
    view->ndim = nd;
    view->shape = dims;
    view->strides = dims + nd;
    view->suboffsets = nullptr;
    view->internal = dims;
    bool contiguous = t.is_contiguous();
    if ((flags & PyBUF_ANY_CONTIGUOUS) == PyBUF_ANY_CONTIGUOUS || (flags & PyBUF_C_CONTIGUOUS) == PyBUF_C_CONTIGUOUS ||
        (flags & PyBUF_STRIDES) != PyBUF_STRIDES) {
      if (!contiguous) {
        PyMem_Free(dims);
        Py_CLEAR(view->obj);
        PyErr_SetString(PyExc_BufferError, "[buffer] tensor is not contiguous (use numpy() or copy())");
        return -1;
      }
      if ((flags & PyBUF_STRIDES) != PyBUF_STRIDES) view->strides = nullptr;
    }
    if ((flags & PyBUF_ND) != PyBUF_ND) view->shape = nullptr;
    return 0;
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_BufferError, e.what());
    return -1;
  }
}

void tensor_releasebuffer(PyObject*, Py_buffer* view) { PyMem_Free(view->internal); }

PyType_Slot tensor_slots[] = {
    {Py_bf_getbuffer, reinterpret_cast<void*>(tensor_getbuffer)},
    {Py_bf_releasebuffer, reinterpret_cast<void*>(tensor_releasebuffer)},
    {0, nullptr},
};

}  // namespace

void bind_tensor(nb::module_& m) {
  nb::class_<Device>(m, "Device", "Where a tensor's memory lives: Device('cpu'), Device('cuda:0').")
      .def(
          "__init__", [](Device* d, const std::string& spec) { new (d) Device(std::string_view(spec)); },
          nb::arg("spec"))
      .def_prop_ro("type",
                   [](const Device& d) {
                     switch (d.type) {
                       case tmath::DeviceType::CPU: return "cpu";
                       case tmath::DeviceType::MLX: return "mlx";
                       default: return "cuda";
                     }
                   })
      .def_ro("index", &Device::index)
      .def("__str__", &Device::str)
      .def("__repr__", [](const Device& d) { return "tmath.Device('" + d.str() + "')"; })
      .def("__hash__", [](const Device& d) { return static_cast<int>(d.type) * 1024 + d.index; })
      .def("__eq__", [](const Device& d, nb::handle o) {
        if (nb::isinstance<Device>(o)) return *nb::inst_ptr<Device>(o) == d;
        if (nb::isinstance<nb::str>(o)) {
          try {
            return Device(std::string_view(nb::cast<std::string>(o))) == d;
          } catch (const tmath::Error&) {
            return false;
          }
        }
        return false;
      });

  auto cls = nb::class_<Tensor>(m, "Tensor", nb::type_slots(tensor_slots),
                                "An n-dimensional array. Ops are recorded lazily and evaluated on demand "
                                "(eval(), item(), tolist(), numpy(), repr()).");
  g_tensor_type = reinterpret_cast<PyTypeObject*>(cls.ptr());

  cls.def(nb::init<>())
      .def_prop_ro("shape", &shape_tuple)
      .def_prop_ro("dtype", [](const Tensor& t) { return dtype_object(t.dtype()); })
      .def_prop_ro("device", &Tensor::device)
      .def_prop_ro("ndim", &Tensor::ndim)
      .def_prop_ro("size", &Tensor::size)
      .def_prop_ro("itemsize", [](const Tensor& t) { return t.itemsize(); })
      .def_prop_ro("nbytes", [](const Tensor& t) { return t.nbytes(); })
      .def_prop_ro("weak_type", &Tensor::weak_type)
      .def_prop_ro("is_evaluated", &Tensor::is_evaluated)
      .def_prop_ro("T",
                   [](const Tensor& t) {
                     if (t.ndim() != 2)
                       throw tmath::ShapeError("[T] .T is only defined for 2-d tensors (use permute_dims), got " +
                                               std::to_string(t.ndim()) + "-d");
                     return tmath::transpose(t);
                   })
      .def_prop_ro("mT",
                   [](const Tensor& t) {
                     if (t.ndim() < 2) throw tmath::ShapeError("[mT] needs at least 2 dimensions");
                     return tmath::swapaxes(t, -1, -2);
                   })
      .def(
          "eval",
          [](const Tensor& t) -> const Tensor& {
            nogil([&] { t.eval(); return 0; });
            return t;
          },
          nb::rv_policy::reference_internal, "Evaluates this tensor (and what it depends on); returns self.")
      .def("item", &item, "The single element as a Python bool/int/float/complex.")
      .def("tolist", &tolist, "Nested lists of Python scalars.")
      .def("numpy", &to_numpy,
           "A NumPy array sharing this tensor's memory (CPU; bfloat16 is returned as float32, other devices copy).")
      .def(
          "__array__",
          [](const Tensor& t, nb::handle dtype, nb::handle copy) {
            nb::object a = to_numpy(t);
            if (!dtype.is_none()) a = a.attr("astype")(dtype, "copy"_a = false);
            if (copy.ptr() == Py_True) a = a.attr("copy")();
            return a;
          },
          nb::arg("dtype") = nb::none(), nb::arg("copy") = nb::none())
      .def(
          "__dlpack__",
          [](const Tensor& t, nb::kwargs kwargs) {
            Tensor src = t;
            // copy=True: export a private copy (the view exporter cannot copy itself).
            if (kwargs.contains("copy") && kwargs["copy"].ptr() == Py_True) {
              src = nogil([&] { return tmath::copy(t).eval(); });
              kwargs["copy"] = nb::none();
            }
            nb::object a = nb::cast(export_ndarray(src));  // evaluates
            if (src.device().type != tmath::DeviceType::CPU) {
              nb::object s = kwargs.contains("stream") ? nb::object(kwargs["stream"]) : nb::none();
              Device d = src.device();
              auto be = device_backend(d, "__dlpack__");
              if (std::optional<uintptr_t> stream = consumer_stream(s, "__dlpack__")) {
                nogil([&] { be->order_with_stream(d, *stream, true); return 0; });
              } else {
                // No ordering asked for, but the work that writes the tensor must at
                // least be queued on the device (not held back in a tiny-op queue).
                nogil([&] { return be->native_stream(d); });
              }
              kwargs["stream"] = nb::none();
            }
            return a.attr("__dlpack__")(**kwargs);
          },
          nb::arg("kwargs"),
          "DLPack capsule of this (evaluated) tensor; no copy. On CUDA, stream=S (DLPack: None or 1 = "
          "legacy default stream, 2 = per-thread default stream, -1 = no ordering) makes S wait for "
          "the engine's queued work, without blocking the host.")
      .def(
          "data_ptr",
          [](const Tensor& t) {
            return reinterpret_cast<uintptr_t>(nogil([&] { return tmath::device_data_ptr(t); }));
          },
          "Address of element 0 in the tensor's device memory (a device pointer on CUDA); evaluates.")
      .def("__dlpack_device__",
           [](const Tensor& t) {
             Device d = t.device();
             return nb::make_tuple(d.type == tmath::DeviceType::CPU ? 1 : 2, d.index);
           })
      .def("astype",
           [](const Tensor& t, nb::handle dtype, bool copy) {
             DType dt = *to_dtype(dtype, "astype");
             if (dt == t.dtype() && !copy) return t;
             return nogil([&] { return dt == t.dtype() ? tmath::copy(t) : tmath::astype(t, dt); });
           },
           nb::arg("dtype"), nb::arg("copy") = true)
      .def("to_device", [](const Tensor& t, nb::handle d) {
        Device dev = *to_device(d, "to_device");
        return nogil([&] { return tmath::to_device(t, dev); });
      }, nb::arg("device"))
      .def("copy", [](const Tensor& t) { return nogil([&] { return tmath::copy(t); }); })
      .def("__repr__", [](const Tensor& t) { return nogil([&] { return t.repr(); }); })
      .def("__str__", [](const Tensor& t) { return nogil([&] { return t.str(); }); })
      .def("__len__",
           [](const Tensor& t) {
             if (t.ndim() == 0) throw nb::type_error("len() of a 0-d tensor");
             return t.shape()[0];
           })
      .def("__bool__",
           [](const Tensor& t) {
             if (t.size() != 1)
               throw nb::value_error(("[__bool__] the truth value of a tensor with " + std::to_string(t.size()) +
                                      " elements is ambiguous")
                                         .c_str());
             return nb::cast<bool>(item(t));
           })
      .def("__float__",
           [](const Tensor& t) {
             Tensor s = scalar_of(t, "__float__");
             if (tmath::is_complex(s.dtype())) throw nb::type_error("[__float__] complex tensor");
             return nogil([&] { return s.item<double>(); });
           })
      .def("__int__",
           [](const Tensor& t) {
             Tensor s = scalar_of(t, "__int__");
             if (tmath::is_complex(s.dtype())) throw nb::type_error("[__int__] complex tensor");
             if (tmath::is_floating(s.dtype())) {
               nb::object f = nb::float_(nogil([&] { return s.item<double>(); }));
               return nb::steal(PyNumber_Long(f.ptr()));
             }
             return item(s);
           })
      .def("__index__",
           [](const Tensor& t) {
             if (!tmath::is_integral(t.dtype())) throw nb::type_error("[__index__] only integer tensors can be indices");
             return item(scalar_of(t, "__index__"));
           })
      .def("__complex__",
           [](const Tensor& t) {
             Tensor s = scalar_of(t, "__complex__");
             auto c = nogil([&] { return s.item<std::complex<double>>(); });
             return nb::steal(PyComplex_FromDoubles(c.real(), c.imag()));
           })
      .def("__getitem__", &getitem, nb::arg("key").none())
      // x[key] = value rebinds x to a copy with those elements replaced (tmath.put):
      // tensors that shared x's data (views, DLPack peers) keep the old values.
      .def("__setitem__", &setitem, nb::arg("key").none(), nb::arg("value").none())
      // Operators: Python scalars are weakly typed (float32 x * 2.0 -> float32).
      .def("__add__", &binop<tmath::add>, nb::is_operator())
      .def("__radd__", &rbinop<tmath::add>, nb::is_operator())
      .def("__sub__", &binop<tmath::subtract>, nb::is_operator())
      .def("__rsub__", &rbinop<tmath::subtract>, nb::is_operator())
      .def("__mul__", &binop<tmath::multiply>, nb::is_operator())
      .def("__rmul__", &rbinop<tmath::multiply>, nb::is_operator())
      .def("__truediv__", &binop<tmath::divide>, nb::is_operator())
      .def("__rtruediv__", &rbinop<tmath::divide>, nb::is_operator())
      .def("__floordiv__", &binop<tmath::floor_divide>, nb::is_operator())
      .def("__rfloordiv__", &rbinop<tmath::floor_divide>, nb::is_operator())
      .def("__mod__", &binop<tmath::remainder>, nb::is_operator())
      .def("__rmod__", &rbinop<tmath::remainder>, nb::is_operator())
      .def("__pow__", &binop<tmath::power>, nb::is_operator())
      .def("__rpow__", &rbinop<tmath::power>, nb::is_operator())
      .def("__matmul__", &binop<tmath::matmul>, nb::is_operator())
      .def("__rmatmul__", &rbinop<tmath::matmul>, nb::is_operator())
      // Bitwise (bool and integer dtypes); in-place forms (&=, <<=, ...) rebind to these results.
      .def("__and__", &binop<tmath::bitwise_and>, nb::is_operator())
      .def("__rand__", &rbinop<tmath::bitwise_and>, nb::is_operator())
      .def("__or__", &binop<tmath::bitwise_or>, nb::is_operator())
      .def("__ror__", &rbinop<tmath::bitwise_or>, nb::is_operator())
      .def("__xor__", &binop<tmath::bitwise_xor>, nb::is_operator())
      .def("__rxor__", &rbinop<tmath::bitwise_xor>, nb::is_operator())
      .def("__lshift__", &binop<tmath::bitwise_left_shift>, nb::is_operator())
      .def("__rlshift__", &rbinop<tmath::bitwise_left_shift>, nb::is_operator())
      .def("__rshift__", &binop<tmath::bitwise_right_shift>, nb::is_operator())
      .def("__rrshift__", &rbinop<tmath::bitwise_right_shift>, nb::is_operator())
      .def("__eq__", &binop<tmath::equal>, nb::is_operator())
      .def("__ne__", &binop<tmath::not_equal>, nb::is_operator())
      .def("__lt__", &binop<tmath::less>, nb::is_operator())
      .def("__le__", &binop<tmath::less_equal>, nb::is_operator())
      .def("__gt__", &binop<tmath::greater>, nb::is_operator())
      .def("__ge__", &binop<tmath::greater_equal>, nb::is_operator())
      .def("__neg__", [](const Tensor& a) { return nogil_unless(small_input(a), [&] { return tmath::neg(a); }); })
      .def("__pos__", [](const Tensor& a) { return a; })
      .def("__abs__", [](const Tensor& a) { return nogil_unless(small_input(a), [&] { return tmath::abs(a); }); })
      .def("__invert__", [](const Tensor& a) {
        return nogil_unless(small_input(a), [&] { return tmath::bitwise_invert(a); });
      });
  // NumPy: defer binary operators with tensors to Tensor's reflected methods.
  cls.attr("__array_ufunc__") = nb::none();
  // == is elementwise, so tensors are unhashable (as NumPy arrays).
  cls.attr("__hash__") = nb::none();
  cls.attr("__array_priority__") = 1000;
}

}  // namespace tmpy
