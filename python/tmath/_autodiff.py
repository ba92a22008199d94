"""Automatic differentiation (JAX-style signatures over the C++ transforms).

``grad(f, argnums=0)(*args)``, ``value_and_grad``, ``vjp(f, *primals)`` ->
``(out, vjp_fn)``, ``jvp(f, primals, tangents)``, ``jacobian``/``jacrev``/``jacfwd``,
``hessian``, ``hvp``, ``stop_gradient``, ``custom_vjp``, ``custom_jvp``,
``checkpoint``. See docs/autodiff.md.
"""

from __future__ import annotations

import functools as _functools

from . import _tmath

stop_gradient = _tmath.stop_gradient


def _as_tensor(x):
    if isinstance(x, _tmath.Tensor):
        return x
    return _tmath.asarray(x)


def _norm_argnums(argnums, n):
    single = isinstance(argnums, int)
    nums = [argnums] if single else list(argnums)
    return single, nums


def value_and_grad(fun, argnums=0):
    """fun(*args) -> scalar; returns a function giving (value, gradient(s))."""

    @_functools.wraps(fun)
    def wrapped(*args):
        single, nums = _norm_argnums(argnums, len(args))
        targs = [_as_tensor(a) for a in args]
        value, grads = _tmath._value_and_grad(fun, targs, nums)
        return value, (grads[0] if single else tuple(grads))

    return wrapped


def grad(fun, argnums=0):
    """Gradient of a scalar fun with respect to args[argnums] (int or tuple)."""
    vg = value_and_grad(fun, argnums)

    @_functools.wraps(fun)
    def wrapped(*args):
        return vg(*args)[1]

    return wrapped


def vjp(fun, *primals):
    """(fun(*primals), vjp_fn); vjp_fn(cotangent(s)) returns a tuple, one per primal."""
    box = {}

    def f(*a):
        r = fun(*a)
        box["single"] = isinstance(r, _tmath.Tensor)
        return r

    outs, pull = _tmath._vjp(f, [_as_tensor(p) for p in primals])
    single = box.get("single", False)

    def vjp_fn(cotangents):
        cts = [cotangents] if single else list(cotangents)
        return pull(cts)

    return (outs[0] if single else outs), vjp_fn


def jvp(fun, primals, tangents):
    """(fun(*primals), output tangent(s)) for tangents of the primals."""
    box = {}

    def f(*a):
        r = fun(*a)
        box["single"] = isinstance(r, _tmath.Tensor)
        return r

    outs, tans = _tmath._jvp(f, [_as_tensor(p) for p in primals],
                             [None if t is None else _as_tensor(t) for t in tangents])
    if box.get("single", False):
        return outs[0], tans[0]
    return outs, tans


def jacobian(fun, x, mode="reverse"):
    """d fun(x) / dx, shape fun(x).shape + x.shape; mode 'reverse' or 'forward'."""
    if mode not in ("reverse", "forward"):
        raise ValueError(f"[jacobian] mode must be 'reverse' or 'forward', got {mode!r}")
    return _tmath._jacobian(fun, _as_tensor(x), mode == "forward")


def jacrev(fun):
    return lambda x: jacobian(fun, x, "reverse")


def jacfwd(fun):
    return lambda x: jacobian(fun, x, "forward")


def hessian(fun, x):
    """Second derivatives of a scalar fun at x: shape x.shape + x.shape."""
    return _tmath._hessian(fun, _as_tensor(x))


def hvp(fun, x, v):
    """Hessian-vector product H(x) v (jvp of grad; the hessian is never formed)."""
    return _tmath._hessian(fun, _as_tensor(x), _as_tensor(v))


def custom_vjp(fun, bwd):
    """fun with a reverse rule bwd(primals, outputs, cotangents) -> one cotangent per primal."""
    box = {}

    def f(*a):
        r = fun(*a)
        box["single"] = isinstance(r, _tmath.Tensor)
        return r

    native = _tmath._custom_vjp(f, bwd)

    @_functools.wraps(fun)
    def call(*args):
        outs = native([_as_tensor(a) for a in args])
        return outs[0] if box.get("single", False) else outs

    return call


def custom_jvp(fun, jvp_rule):
    """fun with a forward rule jvp_rule(primals, tangents) -> one tangent per output."""
    box = {}

    def f(*a):
        r = fun(*a)
        box["single"] = isinstance(r, _tmath.Tensor)
        return r

    native = _tmath._custom_jvp(f, jvp_rule)

    @_functools.wraps(fun)
    def call(*args):
        outs = native([_as_tensor(a) for a in args])
        return outs[0] if box.get("single", False) else outs

    return call


def checkpoint(fun):
    """fun whose intermediates are recomputed in the backward pass instead of kept."""
    box = {}

    def f(*a):
        r = fun(*a)
        box["single"] = isinstance(r, _tmath.Tensor)
        return r

    native = _tmath._checkpoint(f)

    @_functools.wraps(fun)
    def call(*args):
        outs = native([_as_tensor(a) for a in args])
        return outs[0] if box.get("single", False) else outs

    return call


__all__ = ["grad", "value_and_grad", "vjp", "jvp", "jacobian", "jacrev", "jacfwd", "hessian",
           "hvp", "stop_gradient", "custom_vjp", "custom_jvp", "checkpoint"]
