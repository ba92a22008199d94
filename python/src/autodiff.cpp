// tmath autodiff bindings: the transforms take Python callables. The GIL stays held
// throughout (the callables run Python code); the Python-facing signatures (argnums,
// tuples vs single tensors) live in tmath/_autodiff.py.
#include <nanobind/stl/function.h>

#include "common.h"

namespace tmpy {

using namespace nb::literals;
using tmath::TensorList;

namespace {

TensorList to_list(nb::handle h, const char* op) {
  TensorList r;
  if (is_tensor(h)) {
    r.push_back(tensor_ref(h));
    return r;
  }
  if (!nb::isinstance<nb::tuple>(h) && !nb::isinstance<nb::list>(h))
    throw nb::type_error(
        (std::string("[") + op + "] the function must return a Tensor or a tuple/list of Tensors")
            .c_str());
  for (nb::handle x : h) {
    if (x.is_none()) {
      r.emplace_back();
      continue;
    }
    r.push_back(to_tensor(x, op));
  }
  return r;
}

nb::tuple to_tuple(const TensorList& xs) {
  nb::list l;
  for (const auto& x : xs) l.append(x.defined() ? nb::cast(x) : nb::none());
  return nb::tuple(l);
}

nb::object call(const nb::object& f, const TensorList& args) {
  return f(*to_tuple(args));
}

// f(*tensors) -> Tensor | tuple of Tensors, as a C++ Function.
tmath::Function function_of(nb::object f, const char* op) {
  return [f = std::move(f), op](const TensorList& args) { return to_list(call(f, args), op); };
}

}  // namespace

void bind_autodiff(nb::module_& m) {
  m.def(
      "_value_and_grad",
      [](nb::object f, const TensorList& args, const std::vector<int>& argnums) {
        tmath::ScalarFunction sf = [f](const TensorList& a) {
          nb::object r = call(f, a);
          if (!is_tensor(r))
            throw nb::type_error("[grad] the function must return a scalar Tensor");
          return tensor_ref(r);
        };
        auto [v, g] = tmath::value_and_grad(sf, argnums)(args);
        return std::make_pair(v, g);
      },
      "f"_a, "args"_a, "argnums"_a);
  m.def(
      "_vjp",
      [](nb::object f, const TensorList& primals) {
        auto r = tmath::vjp(function_of(std::move(f), "vjp"), primals);
        std::function<nb::tuple(nb::handle)> pull = [p = r.pullback](nb::handle cts) {
          return to_tuple(p(to_list(cts, "vjp")));
        };
        return std::make_pair(to_tuple(r.outputs), pull);
      },
      "f"_a, "primals"_a);
  m.def(
      "_jvp",
      [](nb::object f, const TensorList& primals, nb::handle tangents) {
        auto [o, t] =
            tmath::jvp(function_of(std::move(f), "jvp"), primals, to_list(tangents, "jvp"));
        return std::make_pair(to_tuple(o), to_tuple(t));
      },
      "f"_a, "primals"_a, "tangents"_a);
  m.def(
      "_jacobian",
      [](nb::object f, const Tensor& x, bool forward) {
        tmath::UnaryFunction uf = [f](const Tensor& t) {
          TensorList r = to_list(f(t), "jacobian");
          if (r.size() != 1) throw nb::type_error("[jacobian] the function must return one Tensor");
          return r[0];
        };
        return tmath::jacobian(
            uf, x, forward ? tmath::JacobianMode::Forward : tmath::JacobianMode::Reverse);
      },
      "f"_a, "x"_a, "forward"_a);
  m.def(
      "_hessian",
      [](nb::object f, const Tensor& x, std::optional<Tensor> v) {
        tmath::UnaryFunction uf = [f](const Tensor& t) {
          nb::object r = f(t);
          if (!is_tensor(r))
            throw nb::type_error("[hessian] the function must return a scalar Tensor");
          return tensor_ref(r);
        };
        return v ? tmath::hvp(uf, x, *v) : tmath::hessian(uf, x);
      },
      "f"_a, "x"_a, "v"_a = nb::none());
  m.def("stop_gradient", &tmath::stop_gradient, "x"_a,
        "x as a constant: transforms see a zero derivative.");
  m.def(
      "_custom_vjp",
      [](nb::object f, nb::object bwd) {
        tmath::VjpRule rule = [bwd](const TensorList& p, const TensorList& o, const TensorList& c) {
          return to_list(bwd(to_tuple(p), to_tuple(o), to_tuple(c)), "custom_vjp");
        };
        tmath::Function g = tmath::custom_vjp(function_of(std::move(f), "custom_vjp"), rule);
        return std::function<nb::tuple(const TensorList&)>(
            [g](const TensorList& a) { return to_tuple(g(a)); });
      },
      "f"_a, "bwd"_a);
  m.def(
      "_custom_jvp",
      [](nb::object f, nb::object jvp_rule) {
        tmath::JvpRule rule = [jvp_rule](const TensorList& p, const TensorList& t) {
          return to_list(jvp_rule(to_tuple(p), to_tuple(t)), "custom_jvp");
        };
        tmath::Function g = tmath::custom_jvp(function_of(std::move(f), "custom_jvp"), rule);
        return std::function<nb::tuple(const TensorList&)>(
            [g](const TensorList& a) { return to_tuple(g(a)); });
      },
      "f"_a, "jvp"_a);
  m.def(
      "_checkpoint",
      [](nb::object f) {
        tmath::Function g = tmath::checkpoint(function_of(std::move(f), "checkpoint"));
        return std::function<nb::tuple(const TensorList&)>(
            [g](const TensorList& a) { return to_tuple(g(a)); });
      },
      "f"_a);
}

}  // namespace tmpy
