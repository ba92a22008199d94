// The tmath._tmath extension module: exceptions and module assembly.
#include "common.h"

namespace tmpy {

namespace {

// Python exception classes per DESIGN §6: every engine error derives from
// tmath.Error and from the builtin exception Python code expects.
PyObject* g_error = nullptr;
PyObject* g_shape = nullptr;
PyObject* g_dtype = nullptr;
PyObject* g_device = nullptr;
PyObject* g_unsupported = nullptr;
PyObject* g_oom = nullptr;
PyObject* g_linalg = nullptr;
PyObject* g_value = nullptr;

PyObject* make_error(nb::module_& m, const char* name, PyObject* base2, const char* doc) {
  std::string full = std::string("tmath.") + name;
  PyObject* bases = base2 ? PyTuple_Pack(2, g_error, base2) : PyTuple_Pack(1, PyExc_Exception);
  PyObject* e = PyErr_NewExceptionWithDoc(full.c_str(), doc, bases, nullptr);
  Py_DECREF(bases);
  if (!e) throw nb::python_error();
  m.attr(name) = nb::borrow(e);
  return e;  // keeps one reference for the translator
}

}  // namespace

void bind_errors(nb::module_& m) {
  g_error = make_error(m, "Error", nullptr, "Base class of every tmath engine error.");
  g_shape = make_error(m, "ShapeError", PyExc_ValueError, "Incompatible shapes, bad axes, out-of-range indices.");
  g_dtype = make_error(m, "DTypeError", PyExc_TypeError, "Invalid dtype or dtype combination for an op.");
  g_device = make_error(m, "DeviceError", PyExc_ValueError,
                        "Unknown/unavailable device, tensors on different devices, disallowed fallback.");
  g_unsupported = make_error(m, "UnsupportedError", PyExc_NotImplementedError,
                             "A valid request that no backend (or the binding) can run yet.");
  g_oom = make_error(m, "OutOfMemoryError", PyExc_MemoryError, "Allocation failed after the cache was freed.");
  g_linalg = make_error(m, "LinAlgError", PyExc_ValueError,
                        "Singular matrix, non-convergence, non-finite input to a decomposition.");
  g_value = make_error(m, "InvalidArgumentError", PyExc_ValueError,
                       "Any other invalid argument value (negative size, bad option string, ...).");
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const tmath::ShapeError& e) {
      PyErr_SetString(g_shape, e.what());
    } catch (const tmath::DTypeError& e) {
      PyErr_SetString(g_dtype, e.what());
    } catch (const tmath::DeviceError& e) {
      PyErr_SetString(g_device, e.what());
    } catch (const tmath::UnsupportedError& e) {
      PyErr_SetString(g_unsupported, e.what());
    } catch (const tmath::OutOfMemoryError& e) {
      PyErr_SetString(g_oom, e.what());
    } catch (const tmath::LinAlgError& e) {
      PyErr_SetString(g_linalg, e.what());
    } catch (const tmath::ValueError& e) {
      PyErr_SetString(g_value, e.what());
    } catch (const tmath::Error& e) {
      PyErr_SetString(g_error, e.what());
    } catch (const std::bad_cast&) {
      // nb::cast<T>() of an argument of the wrong Python type.
      PyErr_SetString(PyExc_TypeError, "argument of an unsupported type (conversion failed)");
    }
  });
}

void bind_linalg(nb::module_& m);  // linalg.cpp
void bind_autodiff(nb::module_& m);  // autodiff.cpp
void bind_jit(nb::module_& m);       // jit.cpp

}  // namespace tmpy

NB_MODULE(_tmath, m) {
  m.doc() = "tmath C++ engine bindings (use the tmath package).";
  // Objects still referenced at exit (dtype singletons held by user modules) are
  // not leaks worth reporting.
  nb::set_leak_warnings(false);
  tmpy::bind_errors(m);
  tmpy::bind_dtypes(m);
  tmpy::bind_tensor(m);
  tmpy::bind_ops(m);
  tmpy::bind_random(m);
  tmpy::bind_linalg(m);
  tmpy::bind_autodiff(m);
  tmpy::bind_jit(m);
}
