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
    _dtype_from_name,
    _EagerScope,
    _AutocastScope,
)

_sys.modules[__name__ + ".random"] = random  # `import tmath.random` works

__version__ = "0.1.0"
# The Array API standard version this namespace follows (coverage: docs/python.md).
__array_api_version__ = "2023.12"

bool = _tmath.bool_  # noqa: A001  (Array API name; builtins.bool stays reachable as builtins.bool)

# ---- dtype groups and helpers ------------------------------------------------------
_all_dtypes = (bool_, int8, int16, int32, int64, uint8, float16, bfloat16,  # noqa: F405
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


def isdtype(dtype_, kind) -> "_builtins.bool":  # noqa: F821
    """Array API isdtype: whether `dtype_` is of `kind` (a name, a dtype or a tuple of them)."""
    if isinstance(kind, tuple):
        return _builtins.any(isdtype(dtype_, k) for k in kind)
    if isinstance(kind, str):
        if kind not in _kinds:
            raise ValueError(f"[isdtype] unknown kind {kind!r}")
        return dtype_.kind in _kinds[kind]
    return dtype_ == kind


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


def positive(x):
    """+x (a copy-free identity for tensors)."""
    return asarray(x)  # noqa: F405


def vecdot(x1, x2, /, *, axis=-1):
    """Array API vecdot: sum(conj(x1) * x2, axis)."""
    x1 = asarray(x1)  # noqa: F405
    if x1.dtype.kind == "complex floating":
        x1 = conj(x1)  # noqa: F405
    return sum(x1 * x2, axis=axis)  # noqa: F405


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
