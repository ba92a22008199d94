// tmath.random: counter-based random numbers with explicit keys.
#include "common.h"

namespace tmpy {

using namespace nb::literals;
using tmath::random::Key;

namespace {
Key key_or_next(nb::handle k) {
  if (k.is_none()) return tmath::random::next_key();
  if (nb::isinstance<Key>(k)) return *nb::inst_ptr<Key>(k);
  if (PyLong_Check(k.ptr())) return tmath::random::key(nb::cast<uint64_t>(k));
  throw nb::type_error("[random] key must be a tmath.random.Key, an int seed or None");
}
}  // namespace

void bind_random(nb::module_& parent) {
  nb::module_ m = parent.def_submodule("random", "Counter-based random numbers (Philox4x32-10) with explicit keys.");
  nb::class_<Key>(m, "Key", "A random stream name. Derive new keys with split/fold_in.")
      .def_ro("k0", &Key::k0)
      .def_ro("k1", &Key::k1)
      .def("__eq__", [](const Key& a, nb::handle b) { return nb::isinstance<Key>(b) && *nb::inst_ptr<Key>(b) == a; })
      .def("__hash__", [](const Key& a) { return (static_cast<uint64_t>(a.k0) << 32) | a.k1; })
      .def("__repr__", [](const Key& a) {
        return "tmath.random.Key(" + std::to_string(a.k0) + ", " + std::to_string(a.k1) + ")";
      });
  m.def("key", &tmath::random::key, "seed"_a);
  m.def("split", [](const Key& k, int n) { return tmath::random::split(k, n); }, "key"_a, "num"_a = 2);
  m.def("fold_in", &tmath::random::fold_in, "key"_a, "data"_a);
  m.def("seed", &tmath::random::seed, "seed"_a);
  m.def("next_key", &tmath::random::next_key);
  m.def(
      "uniform",
      [](nb::handle key, nb::handle shape, nb::handle dtype, double low, double high, nb::handle device) {
        Key k = key_or_next(key);
        Shape s = to_shape(shape, "uniform");
        return tmath::random::uniform(k, s, to_dtype_or(dtype, tmath::float32, "uniform"), low, high,
                                      to_device_or_default(device, "uniform"));
      },
      "key"_a = nb::none(), "shape"_a = nb::tuple(), nb::kw_only(), "dtype"_a = nb::none(), "low"_a = 0.0,
      "high"_a = 1.0, "device"_a = nb::none());
  m.def(
      "normal",
      [](nb::handle key, nb::handle shape, nb::handle dtype, double mean, double stddev, nb::handle device) {
        Key k = key_or_next(key);
        Shape s = to_shape(shape, "normal");
        return tmath::random::normal(k, s, to_dtype_or(dtype, tmath::float32, "normal"), mean, stddev,
                                     to_device_or_default(device, "normal"));
      },
      "key"_a = nb::none(), "shape"_a = nb::tuple(), nb::kw_only(), "dtype"_a = nb::none(), "mean"_a = 0.0,
      "stddev"_a = 1.0, "device"_a = nb::none());
  m.def(
      "integers",
      [](nb::handle key, nb::handle shape, int64_t low, int64_t high, nb::handle dtype, nb::handle device) {
        Key k = key_or_next(key);
        Shape s = to_shape(shape, "integers");
        return tmath::random::integers(k, s, low, high, to_dtype_or(dtype, tmath::int64, "integers"),
                                       to_device_or_default(device, "integers"));
      },
      "key"_a, "shape"_a, "low"_a, "high"_a, nb::kw_only(), "dtype"_a = nb::none(), "device"_a = nb::none());
  m.def(
      "bernoulli",
      [](nb::handle key, nb::handle shape, double p, nb::handle device) {
        Key k = key_or_next(key);
        return tmath::random::bernoulli(k, to_shape(shape, "bernoulli"), p, to_device_or_default(device, "bernoulli"));
      },
      "key"_a, "shape"_a, "p"_a = 0.5, nb::kw_only(), "device"_a = nb::none());
  m.def(
      "bits",
      [](nb::handle key, nb::handle shape, nb::handle device) {
        Key k = key_or_next(key);
        return tmath::random::bits(k, to_shape(shape, "bits"), to_device_or_default(device, "bits"));
      },
      "key"_a, "shape"_a, nb::kw_only(), "device"_a = nb::none());
}

}  // namespace tmpy
