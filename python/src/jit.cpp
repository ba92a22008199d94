// Fusion switches, JIT statistics and compile().
#include <nanobind/stl/unique_ptr.h>

#include "common.h"

namespace tmpy {

namespace {

// A compiled Python function: the C++ CompiledFunction calls back into Python
// (with the GIL held) only while tracing a new argument signature.
struct PyCompiled {
  nb::object fn;
  bool single = true;  // fn returned one tensor (not a tuple/list)
  std::optional<tmath::CompiledFunction> compiled;

  nb::object call(nb::args args) {
    std::vector<Tensor> in;
    in.reserve(args.size());
    for (size_t i = 0; i < args.size(); ++i) in.push_back(to_tensor(args[i], "compile"));
    std::vector<Tensor> out = (*compiled)(in);
    if (single && out.size() == 1) return nb::cast(out[0]);
    nb::list l;
    for (auto& t : out) l.append(nb::cast(t));
    return nb::tuple(l);
  }
};

}  // namespace

void bind_jit(nb::module_& m) {
  m.def("jit_enabled", &tmath::jit_enabled,
        "Whether lazy-graph fusion is on for this thread (TMATH_JIT=0 turns it off).");
  m.def("set_jit_enabled", &tmath::set_jit_enabled, nb::arg("on"),
        "Turns lazy-graph fusion on or off process-wide; results are the same either way.");
  m.def(
      "jit_stats",
      [] {
        const tmath::JitStats s = tmath::jit_stats();
        nb::dict d;
        d["fused_kernels"] = s.fused_kernels;
        d["fused_ops"] = s.fused_ops;
        d["fusion_skipped"] = s.fusion_skipped;
        d["cache_memory_hits"] = s.cache_memory_hits;
        d["cache_disk_hits"] = s.cache_disk_hits;
        d["cache_misses"] = s.cache_misses;
        d["cache_rejected"] = s.cache_rejected;
        d["compile_ms"] = s.compile_ms;
        d["traces"] = s.traces;
        d["compiled_calls"] = s.compiled_calls;
        d["graph_captures"] = s.graph_captures;
        d["graph_replays"] = s.graph_replays;
        d["graph_fallbacks"] = s.graph_fallbacks;
        d["graph_lane_ops"] = s.graph_lane_ops;
        d["queued_ops"] = s.queued_ops;
        d["queue_launches"] = s.queue_launches;
        return d;
      },
      "Fusion and kernel-cache counters (see docs/jit.md).");
  m.def("reset_jit_stats", &tmath::reset_jit_stats);
  m.def("kernel_cache_dir", &tmath::kernel_cache_dir,
        "Directory of the on-disk kernel cache ('' when disabled).");

  nb::class_<PyCompiled>(m, "CompiledFunction",
                         "A function traced once per argument signature and replayed.")
      .def("__call__", &PyCompiled::call)
      .def_prop_ro("traces", [](const PyCompiled& c) { return c.compiled->traces(); },
                   "Number of traces so far (one per distinct argument signature).");
  m.def(
      "compile",
      [](nb::object fn) {
        if (!PyCallable_Check(fn.ptr())) throw_type_error("[compile] fn must be callable");
        auto pc = std::make_unique<PyCompiled>();
        pc->fn = fn;
        PyCompiled* raw = pc.get();
        pc->compiled = tmath::compile([raw](const std::vector<Tensor>& args) {
          nb::list py_args;
          for (const auto& a : args) py_args.append(nb::cast(a));
          nb::object r = raw->fn(*nb::tuple(py_args));
          std::vector<Tensor> out;
          if (is_tensor(r)) {
            raw->single = true;
            out.push_back(tensor_ref(r));
          } else if (nb::isinstance<nb::tuple>(r) || nb::isinstance<nb::list>(r)) {
            raw->single = false;
            for (nb::handle h : r) {
              if (!is_tensor(h))
                throw_type_error("[compile] fn must return a Tensor or a tuple/list of Tensors");
              out.push_back(tensor_ref(h));
            }
          } else {
            throw_type_error("[compile] fn must return a Tensor or a tuple/list of Tensors");
          }
          return out;
        });
        return pc;
      },
      nb::arg("fn"),
      "Traces fn (a function of tensors) once per argument signature, simplifies and "
      "fuses the graph, and replays it on later calls. fn may not read tensor data.");
}

}  // namespace tmpy
