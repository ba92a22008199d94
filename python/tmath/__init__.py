"""tmath: a tensor math engine with lazy evaluation and pluggable backends.

NumPy / Python Array API style functions over :class:`tmath.Tensor`. Ops are
recorded lazily and evaluated on demand (``eval()``, ``item()``, ``tolist()``,
``numpy()``, ``repr()``); ``with tmath.eager():`` evaluates every op at once.

The compiled part is ``tmath._tmath`` (nanobind); this module re-exports it and
adds the thin Python conveniences (aliases, methods, context managers).
"""

from __future__ import annotations

import builtins as _builtins
import sys as _sys

from . import _tmath
from ._tmath import *  # noqa: F401,F403
from ._tmath import (  # noqa: F401  (names not covered by *)
    Tensor,
    Device,
    dtype,
    random,
    linalg,
    _dtype_from_name,
    _EagerScope,
    _AutocastScope,
)

_sys.modules[__name__ + ".random"] = random  # `import tmath.random` works
_sys.modules[__name__ + ".linalg"] = linalg  # `import tmath.linalg` works

from ._autodiff import (  # noqa: E402,F401
    grad,
    value_and_grad,
    vjp,
    jvp,
    jacobian,
    jacrev,
    jacfwd,
    hessian,
    hvp,
    stop_gradient,
    custom_vjp,
    custom_jvp,
    checkpoint,
)

__version__ = "0.1.0"
# The Array API standard version this namespace follows (coverage: docs/python.md).
__array_api_version__ = "2023.12"

bool = _tmath.bool_  # noqa: A001  (Array API name; builtins.bool stays reachable as builtins.bool)

# ---- dtype groups and helpers ------------------------------------------------------
_all_dtypes = (bool_, int8, int16, int32, int64, uint8, uint16, uint32, uint64,  # noqa: F405
               float16, bfloat16,  # noqa: F405
               float32, float64, complex64, complex128)  # noqa: F405
_kinds = {
    "bool": ("bool",),
    "signed integer": ("signed integer",),
    "unsigned integer": ("unsigned integer",),
    "integral": ("signed integer", "unsigned integer"),
    "real floating": ("real floating",),
    "complex floating": ("complex floating",),
    "numeric": ("signed integer", "unsigned integer", "real floating", "complex floating"),
}


def isdtype(dtype, kind) -> "_builtins.bool":  # noqa: F821
    """Array API isdtype: whether `dtype` is of `kind` (a name, a dtype or a tuple of them)."""
    if isinstance(kind, tuple):
        return _builtins.any(isdtype(dtype, k) for k in kind)
    if isinstance(kind, str):
        if kind not in _kinds:
            raise ValueError(f"[isdtype] unknown kind {kind!r}")
        return dtype.kind in _kinds[kind]
    return dtype == kind


def result_type(*arrays_and_dtypes):
    """Array API result_type over tensors and dtypes (Python scalars are not taken)."""
    if not arrays_and_dtypes:
        raise ValueError("[result_type] at least one array or dtype is required")
    dts = [a.dtype if isinstance(a, Tensor) else a for a in arrays_and_dtypes]
    out = dts[0]
    for d in dts[1:]:
        out = promote_types(out, d)  # noqa: F405
    return out if isinstance(out, dtype) else _dtype_from_name(str(out))


def can_cast(from_, to) -> "_builtins.bool":  # noqa: F821
    """True when promoting `from_` with `to` gives `to` (safe cast)."""
    f = from_.dtype if isinstance(from_, Tensor) else from_
    return promote_types(f, to) == to  # noqa: F405


# ---- context managers ------------------------------------------------------------------
def eager(on: "_builtins.bool" = True):  # noqa: F821
    """Context manager: evaluate every op when it is recorded (this thread)."""
    return _EagerScope(on)


def autocast(dtype=None, enabled: "_builtins.bool" = True):  # noqa: F821
    """Context manager: float32 matmul-class ops run in `dtype` (bfloat16 by default) on this thread."""
    return _AutocastScope(dtype, enabled)


# ---- NumPy-style aliases ---------------------------------------------------------------
arcsin = asin  # noqa: F405
arccos = acos  # noqa: F405
arctan = atan  # noqa: F405
arctan2 = atan2  # noqa: F405
power = pow  # noqa: F405
absolute = abs  # noqa: F405
mod = remainder  # noqa: F405
concatenate = concat  # noqa: F405
conjugate = conj  # noqa: F405
cumsum = cumulative_sum  # noqa: F405
cumprod = cumulative_prod  # noqa: F405
bitwise_not = bitwise_invert  # noqa: F405
invert = bitwise_invert  # noqa: F405
left_shift = bitwise_left_shift  # noqa: F405
right_shift = bitwise_right_shift  # noqa: F405


def positive(x):
    """+x (a copy-free identity for tensors)."""
    return asarray(x)  # noqa: F405


def vecdot(x1, x2, /, *, axis=-1):
    """Array API vecdot: sum(conj(x1) * x2, axis) in the promoted dtype of x1 and x2."""
    return linalg.vecdot(x1, x2, axis=axis)


def matrix_transpose(x, /):
    """Swaps the last two axes."""
    return asarray(x).mT  # noqa: F405


# ---- Tensor methods (thin wrappers over the functions above) ---------------------------------
def _shape_args(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return shape


def _method(fn):
    def m(self, *args, **kwargs):
        return fn(self, *args, **kwargs)

    m.__name__ = fn.__name__
    m.__doc__ = fn.__doc__
    return m


for _name in ("sum", "prod", "mean", "max", "min", "any", "all", "std", "var", "argmax", "argmin",
              "logsumexp", "flatten", "squeeze", "flip", "swapaxes", "moveaxis", "expand_dims",
              "broadcast_to", "permute_dims", "take", "clip", "round", "abs", "conj", "real", "imag",
              "softmax", "log_softmax", "cumulative_sum", "cumulative_prod", "tril", "triu"):
    setattr(Tensor, _name, _method(globals()[_name]))
del _name

Tensor.reshape = lambda self, *shape: reshape(self, _shape_args(shape))  # noqa: F405
Tensor.transpose = lambda self, *axes: transpose(self, _shape_args(axes) or None)  # noqa: F405
Tensor.permute = lambda self, *axes: permute_dims(self, _shape_args(axes))  # noqa: F405
Tensor.cumsum = lambda self, axis=None: cumulative_sum(self, axis=axis)  # noqa: F405
Tensor.to = lambda self, device: self.to_device(device)
Tensor.__array_namespace__ = lambda self, /, *, api_version=None: __import__("tmath")
Tensor.__iter__ = lambda self: (self[i] for i in range(len(self)))


# ---- constants --------------------------------------------------------------------------
import math as _math  # noqa: E402

e = _math.e
pi = _math.pi
inf = _math.inf
nan = _math.nan
newaxis = None


# ---- Array API functions composed from engine ops ------------------------------------------
def astype(x, dtype, /, *, copy=True, device=None):
    """Array API astype: `x` converted to `dtype` (a new tensor unless copy=False and nothing changes)."""
    x = asarray(x)  # noqa: F405
    r = x.astype(dtype, copy=copy)
    return r if device is None else r.to_device(device)


def _is_float(x):
    return x.dtype.kind in ("real floating", "complex floating")


def trunc(x, /):
    """Rounds toward zero."""
    x = asarray(x)  # noqa: F405
    if not _is_float(x):
        return x
    return where(x < 0, ceil(x), floor(x))  # noqa: F405


def signbit(x, /):
    """True where the sign bit is set (including -0.0)."""
    x = asarray(x)  # noqa: F405
    if not _is_float(x):
        return x < 0
    return (x < 0) | ((x == 0) & (reciprocal(x) < 0))  # noqa: F405


def copysign(x1, x2, /):
    """|x1| with the sign of x2 (in the promoted dtype of x1 and x2)."""
    x1, x2 = asarray(x1), asarray(x2)  # noqa: F405
    dt = result_type(x1, x2)
    if x1.dtype != dt:
        x1 = x1.astype(dt)
    return where(signbit(x1) != signbit(x2), -x1, x1)  # noqa: F405


def logaddexp(x1, x2, /):
    """log(exp(x1) + exp(x2)) without overflow."""
    x1, x2 = asarray(x1), asarray(x2)  # noqa: F405
    m = maximum(x1, x2)  # noqa: F405
    return where(x1 == x2, m + _math.log(2.0), m + log1p(exp(-abs(x1 - x2))))  # noqa: F405


def roll(x, /, shift, *, axis=None):
    """Elements shifted along `axis` (flattened when None), wrapping around."""
    x = asarray(x)  # noqa: F405
    if axis is None:
        return roll(reshape(x, (-1,)), shift, axis=0).reshape(x.shape)  # noqa: F405
    shifts = shift if isinstance(shift, (tuple, list)) else (shift,)
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    if len(shifts) != len(axes):
        raise ValueError("[roll] shift and axis must have the same length")
    for s, ax in zip(shifts, axes):
        n = x.shape[ax]
        if n == 0:
            continue
        s %= n
        if s:
            lead = (slice(None),) * (ax % x.ndim)
            x = concat([x[lead + (slice(n - s, None),)], x[lead + (slice(0, n - s),)]], axis=ax)  # noqa: F405
    return x


def tile(x, repetitions, /):
    """x repeated `repetitions` times along each axis."""
    x = asarray(x)  # noqa: F405
    reps = tuple(repetitions)
    nd = _builtins.max(x.ndim, len(reps))
    reps = (1,) * (nd - len(reps)) + reps
    shape = (1,) * (nd - x.ndim) + x.shape
    x = reshape(x, shape)  # noqa: F405
    # Interleave a new axis of size r before each axis, broadcast, then merge.
    expanded = reshape(x, tuple(v for s in shape for v in (1, s)))  # noqa: F405
    target = tuple(v for r, s in zip(reps, shape) for v in (r, s))
    return reshape(broadcast_to(expanded, target), tuple(r * s for r, s in zip(reps, shape)))  # noqa: F405


def meshgrid(*arrays, indexing="xy"):
    """Coordinate tensors from 1-d tensors ('xy' or 'ij' indexing)."""
    if indexing not in ("xy", "ij"):
        raise ValueError("[meshgrid] indexing must be 'xy' or 'ij'")
    xs = [reshape(asarray(a), (-1,)) for a in arrays]  # noqa: F405
    n = len(xs)
    shape = [x.shape[0] for x in xs]
    if indexing == "xy" and n >= 2:
        shape[0], shape[1] = shape[1], shape[0]
    out = []
    for i, x in enumerate(xs):
        pos = i
        if indexing == "xy" and n >= 2 and i < 2:
            pos = 1 - i
        s = [1] * n
        s[pos] = x.shape[0]
        out.append(broadcast_to(reshape(x, tuple(s)), tuple(shape)))  # noqa: F405
    return out


def unstack(x, /, *, axis=0):
    """Tuple of the slices of x along `axis`."""
    x = asarray(x)  # noqa: F405
    ax = axis % x.ndim
    lead = (slice(None),) * ax
    return tuple(x[lead + (i,)] for i in range(x.shape[ax]))


def count_nonzero(x, /, *, axis=None, keepdims=False):
    return sum(astype(asarray(x) != 0, int64), axis=axis, keepdims=keepdims)  # noqa: F405


def diff(x, /, *, axis=-1, n=1, prepend=None, append=None):
    """n-th discrete difference along `axis`."""
    x = asarray(x)  # noqa: F405
    parts = [p for p in (prepend, x, append) if p is not None]
    if len(parts) > 1:
        x = concat([asarray(p) for p in parts], axis=axis)  # noqa: F405
    ax = axis % x.ndim
    lead = (slice(None),) * ax
    for _ in range(n):
        x = x[lead + (slice(1, None),)] - x[lead + (slice(None, -1),)]
    return x


def nonzero(x, /):
    """Indices of the non-zero elements (data-dependent shape: evaluates x and counts on the host)."""
    import numpy as _np

    return tuple(asarray(i.astype(_np.int64)) for i in _np.nonzero(asarray(x).numpy()))  # noqa: F405


def isclose(x1, x2, /, *, rtol=1e-5, atol=1e-8, equal_nan=False):
    x1, x2 = asarray(x1), asarray(x2)  # noqa: F405
    r = abs(x1 - x2) <= atol + rtol * abs(x2)  # noqa: F405
    r = r | (x1 == x2)
    if equal_nan:
        r = r | (isnan(x1) & isnan(x2))  # noqa: F405
    return r


def allclose(x1, x2, /, *, rtol=1e-5, atol=1e-8, equal_nan=False) -> "_builtins.bool":
    return _builtins.bool(all(isclose(x1, x2, rtol=rtol, atol=atol, equal_nan=equal_nan)).item())  # noqa: F405


class finfo:
    """Machine limits of a floating dtype (Array API finfo)."""

    def __init__(self, type_):
        dt = type_.dtype if isinstance(type_, Tensor) else type_
        if not isinstance(dt, dtype):
            dt = _dtype_from_name(str(dt) if not hasattr(dt, "name") else dt.name)
        if dt.kind == "complex floating":
            dt = float32 if dt == complex64 else float64  # noqa: F405
        if dt.kind != "real floating":
            raise ValueError(f"[finfo] not a floating dtype: {dt}")
        self.dtype = dt
        if dt == bfloat16:  # noqa: F405
            self.bits, self.eps, self.max, self.min = 16, 2.0 ** -7, 3.3895313892515355e38, -3.3895313892515355e38
            self.smallest_normal = 2.0 ** -126
        else:
            import numpy as _np

            fi = _np.finfo(dt.name)
            self.bits, self.eps = fi.bits, float(fi.eps)
            self.max, self.min, self.smallest_normal = float(fi.max), float(fi.min), float(fi.smallest_normal)

    def __repr__(self):
        return f"finfo(dtype={self.dtype.name}, bits={self.bits}, eps={self.eps}, max={self.max})"


class iinfo:
    """Limits of an integer dtype (Array API iinfo)."""

    def __init__(self, type_):
        dt = type_.dtype if isinstance(type_, Tensor) else type_
        if not isinstance(dt, dtype):
            dt = _dtype_from_name(str(dt) if not hasattr(dt, "name") else dt.name)
        if dt.kind not in ("signed integer", "unsigned integer"):
            raise ValueError(f"[iinfo] not an integer dtype: {dt}")
        self.dtype = dt
        self.bits = dt.itemsize * 8
        if dt.kind == "unsigned integer":
            self.min, self.max = 0, 2 ** self.bits - 1
        else:
            self.min, self.max = -(2 ** (self.bits - 1)), 2 ** (self.bits - 1) - 1

    def __repr__(self):
        return f"iinfo(dtype={self.dtype.name}, min={self.min}, max={self.max})"


class _NamespaceInfo:
    """Array API inspection (__array_namespace_info__())."""

    def capabilities(self):
        return {"boolean indexing": True, "data-dependent shapes": True, "max dimensions": None}

    def default_device(self):
        return default_device()  # noqa: F405

    def devices(self):
        return [Device("cpu")]

    def default_dtypes(self, *, device=None):
        return {"real floating": float32, "complex floating": complex64,  # noqa: F405
                "integral": int64, "indexing": int64}  # noqa: F405

    def dtypes(self, *, device=None, kind=None):
        ds = [d for d in _all_dtypes if kind is None or isdtype(d, kind)]
        return {d.name: d for d in ds}


def __array_namespace_info__():
    return _NamespaceInfo()


arcsinh = asinh  # noqa: F405
arccosh = acosh  # noqa: F405
arctanh = atanh  # noqa: F405


def repeat(x, repeats, /, *, axis=None):
    """Each element repeated along `axis` (flattened when None): `repeats` times for an
    int, or repeats[i] times for element i with a 1-d integer array of counts (length 1
    or the axis length). The counts are read on the host: they set the output's shape."""
    x = asarray(x)  # noqa: F405
    if axis is None:
        x = reshape(x, (-1,))  # noqa: F405
        axis = 0
    if x.ndim == 0:
        raise ShapeError("[repeat] cannot repeat a 0-d tensor along an axis")  # noqa: F405
    ax = axis % x.ndim
    if not isinstance(repeats, int):
        import numpy as _np

        counts = asarray(repeats)  # noqa: F405
        if counts.ndim == 0:
            repeats = int(counts)
        else:
            if not isdtype(counts.dtype, "integral"):
                raise TypeError(f"[repeat] repeats must be integers, got {counts.dtype}")
            c = _np.asarray(counts.to_device("cpu").numpy()).astype(_np.int64)
            n = x.shape[ax]
            if c.ndim != 1 or c.shape[0] not in (1, n):
                raise ShapeError(  # noqa: F405
                    f"[repeat] repeats must be 1-d with length 1 or {n}, got shape {tuple(c.shape)}")
            if (c < 0).any():
                raise InvalidArgumentError("[repeat] repeats must be non-negative")  # noqa: F405
            idx = _np.repeat(_np.arange(n, dtype=_np.int64), _np.broadcast_to(c, (n,)))
            return take(x, asarray(idx, device=x.device), axis=ax)  # noqa: F405
    if repeats < 0:
        raise InvalidArgumentError("[repeat] repeats must be non-negative")  # noqa: F405
    e = expand_dims(x, axis=ax + 1)  # noqa: F405
    shape = list(e.shape)
    shape[ax + 1] = repeats
    out = list(x.shape)
    out[ax] *= repeats
    return reshape(broadcast_to(e, tuple(shape)), tuple(out))  # noqa: F405


_cumulative_sum = cumulative_sum  # noqa: F405
_cumulative_prod = cumulative_prod  # noqa: F405


def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False):  # noqa: F811
    """Cumulative sum along `axis`; include_initial prepends the zero."""
    r = _cumulative_sum(x, axis=axis, dtype=dtype)
    if include_initial:
        ax = -1 if axis is None else axis
        shape = list(r.shape)
        shape[ax] = 1
        r = concat([zeros(tuple(shape), dtype=r.dtype), r], axis=ax)  # noqa: F405
    return r


def cumulative_prod(x, /, *, axis=None, dtype=None, include_initial=False):  # noqa: F811
    """Cumulative product along `axis`; include_initial prepends the one."""
    r = _cumulative_prod(x, axis=axis, dtype=dtype)
    if include_initial:
        ax = -1 if axis is None else axis
        shape = list(r.shape)
        shape[ax] = 1
        r = concat([ones(tuple(shape), dtype=r.dtype), r], axis=ax)  # noqa: F405
    return r


cumsum = cumulative_sum
cumprod = cumulative_prod
Tensor.cumulative_sum = _method(cumulative_sum)
Tensor.cumulative_prod = _method(cumulative_prod)


# ---- sorting, searching and set functions (evaluated on the host) ----------------------------
# The engine has no sort kernel yet, and unique_* have data-dependent shapes: these
# evaluate their input, run NumPy on the host and return tensors on the input's device
# (as nonzero does).
import collections as _collections  # noqa: E402


def _host(x):
    x = asarray(x)  # noqa: F405
    return x, x.numpy()


def _back(a, like, dtype_=None):
    import numpy as _np

    a = _np.ascontiguousarray(a)
    r = asarray(a, dtype=dtype_)  # noqa: F405
    return r if like.device == r.device else r.to_device(like.device)


def _stable_argsort(a, axis, descending):
    import numpy as _np

    if not descending:
        return _np.argsort(a, axis=axis, kind="stable")
    # Stable descending order: sort the reversed array ascending, then undo the reversal.
    n = a.shape[axis]
    idx = _np.flip(_np.argsort(_np.flip(a, axis=axis), axis=axis, kind="stable"), axis=axis)
    return n - 1 - idx


def argsort(x, /, *, axis=-1, descending=False, stable=True):
    """Indices that sort `x` along `axis` (int64; stable; evaluates and sorts on the host)."""
    t, a = _host(x)
    if a.ndim == 0:
        raise ValueError("[argsort] x must have at least one dimension")
    return _back(_stable_argsort(a, axis, descending).astype("int64"), t)


def sort(x, /, *, axis=-1, descending=False, stable=True):
    """`x` sorted along `axis` (NaNs last; evaluates and sorts on the host)."""
    import numpy as _np

    t, a = _host(x)
    if a.ndim == 0:
        raise ValueError("[sort] x must have at least one dimension")
    if descending:
        r = _np.take_along_axis(a, _stable_argsort(a, axis, True), axis=axis)
    else:
        r = _np.sort(a, axis=axis, kind="stable")
    return _back(r, t, t.dtype)


def searchsorted(x1, x2, /, *, side="left", sorter=None):
    """Insertion indices of `x2` into the sorted 1-d `x1` (int64; evaluated on the host)."""
    import numpy as _np

    if side not in ("left", "right"):
        raise ValueError("[searchsorted] side must be 'left' or 'right'")
    t1, a1 = _host(x1)
    _, a2 = _host(x2)
    if a1.ndim != 1:
        raise ValueError("[searchsorted] x1 must be 1-d")
    s = None if sorter is None else asarray(sorter).numpy()  # noqa: F405
    return _back(_np.searchsorted(a1, a2, side=side, sorter=s).astype("int64"), t1)


UniqueAllResult = _collections.namedtuple("UniqueAllResult", ["values", "indices", "inverse_indices", "counts"])
UniqueCountsResult = _collections.namedtuple("UniqueCountsResult", ["values", "counts"])
UniqueInverseResult = _collections.namedtuple("UniqueInverseResult", ["values", "inverse_indices"])


def _unique(x, **kw):
    import numpy as _np

    t, a = _host(x)
    # NaNs are distinct (Array API); the inverse has x's shape.
    return t, a, _np.unique(a.reshape(-1), equal_nan=False, **kw)


def unique_values(x, /):
    """Sorted unique elements of `x` (flattened; every NaN distinct; evaluated on the host)."""
    t, _, v = _unique(x)
    return _back(v, t, t.dtype)


def unique_counts(x, /):
    """(values, counts) of the unique elements of `x` (evaluated on the host)."""
    t, _, (v, c) = _unique(x, return_counts=True)
    return UniqueCountsResult(_back(v, t, t.dtype), _back(c.astype("int64"), t))


def unique_inverse(x, /):
    """(values, inverse_indices): x == values[inverse_indices] (evaluated on the host)."""
    t, a, (v, inv) = _unique(x, return_inverse=True)
    return UniqueInverseResult(_back(v, t, t.dtype), _back(inv.astype("int64").reshape(a.shape), t))


def unique_all(x, /):
    """(values, indices, inverse_indices, counts) of the unique elements of `x` (evaluated on the host)."""
    t, a, (v, idx, inv, c) = _unique(x, return_index=True, return_inverse=True, return_counts=True)
    return UniqueAllResult(_back(v, t, t.dtype), _back(idx.astype("int64"), t),
                           _back(inv.astype("int64").reshape(a.shape), t), _back(c.astype("int64"), t))


# The linalg extension also carries these main-namespace functions.
linalg.matrix_transpose = matrix_transpose
linalg.tensordot = tensordot  # noqa: F405
