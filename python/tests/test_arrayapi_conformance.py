"""Array API standard (2023.12) conformance of the functions tmath's namespace claims.

The signature table below is the standard's (2023.12, with the linalg extension; the
2024.12 additions tmath has are checked against 2024.12). When array-api-strict is
installed, the table itself is checked against that reference implementation's
signatures. For every function of the table that `tmath.__array_namespace__()` has:

- the signature: parameter names, positional-only / keyword-only kinds and defaults,
  with the leniency of the standard's own test suite (a positional-only parameter may
  also be accepted by keyword);
- for elementwise functions, reductions and a set of manipulation, creation, searching,
  sorting and set functions: result dtype (type promotion rules), result shape and values
  against NumPy 2's functions of the same name, on hypothesis-generated inputs (dtypes,
  broadcasting shapes, nan, inf, -0.0, empty arrays).

`python tests/test_arrayapi_conformance.py` prints the covered and missing lists
(docs/python.md carries them).
"""
from __future__ import annotations

import ast
import inspect
import math
import re
import warnings
from inspect import Parameter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tmath as tm

xp = tm.Tensor.__array_namespace__(tm.zeros(()))

# ---- the standard's signatures -------------------------------------------------------------
# name -> parameter list, as written in the standard (2023.12).
_UNARY = ("abs acos acosh asin asinh atan atanh bitwise_invert ceil conj cos cosh exp expm1 floor imag "
          "isfinite isinf isnan log log1p log2 log10 logical_not negative positive real round sign "
          "signbit sin sinh square sqrt tan tanh trunc").split()
_BINARY = ("add atan2 bitwise_and bitwise_left_shift bitwise_or bitwise_right_shift bitwise_xor copysign "
           "divide equal floor_divide greater greater_equal hypot less less_equal logaddexp logical_and "
           "logical_or logical_xor maximum minimum multiply not_equal pow remainder subtract").split()
SPEC = {n: "x, /" for n in _UNARY}
SPEC.update({n: "x1, x2, /" for n in _BINARY})
SPEC.update({
    # creation
    "arange": "start, /, stop=None, step=1, *, dtype=None, device=None",
    "asarray": "obj, /, *, dtype=None, device=None, copy=None",
    "empty": "shape, *, dtype=None, device=None",
    "empty_like": "x, /, *, dtype=None, device=None",
    "eye": "n_rows, n_cols=None, /, *, k=0, dtype=None, device=None",
    "from_dlpack": "x, /, *, device=None, copy=None",
    "full": "shape, fill_value, *, dtype=None, device=None",
    "full_like": "x, /, fill_value, *, dtype=None, device=None",
    "linspace": "start, stop, /, num, *, dtype=None, device=None, endpoint=True",
    "meshgrid": "*arrays, indexing='xy'",
    "ones": "shape, *, dtype=None, device=None",
    "ones_like": "x, /, *, dtype=None, device=None",
    "tril": "x, /, *, k=0",
    "triu": "x, /, *, k=0",
    "zeros": "shape, *, dtype=None, device=None",
    "zeros_like": "x, /, *, dtype=None, device=None",
    # data types
    "astype": "x, dtype, /, *, copy=True, device=None",
    "can_cast": "from_, to, /",
    "finfo": "type, /",
    "iinfo": "type, /",
    "isdtype": "dtype, kind",
    "result_type": "*arrays_and_dtypes",
    # elementwise with extra parameters
    "clip": "x, /, min=None, max=None",
    # indexing, inspection
    "take": "x, indices, /, *, axis=None",
    "__array_namespace_info__": "",
    # linear algebra (main namespace)
    "matmul": "x1, x2, /",
    "matrix_transpose": "x, /",
    "tensordot": "x1, x2, /, *, axes=2",
    "vecdot": "x1, x2, /, *, axis=-1",
    # manipulation
    "broadcast_arrays": "*arrays",
    "broadcast_to": "x, /, shape",
    "concat": "arrays, /, *, axis=0",
    "expand_dims": "x, /, *, axis=0",
    "flip": "x, /, *, axis=None",
    "moveaxis": "x, source, destination, /",
    "permute_dims": "x, /, axes",
    "repeat": "x, repeats, /, *, axis=None",
    "reshape": "x, /, shape, *, copy=None",
    "roll": "x, /, shift, *, axis=None",
    "squeeze": "x, /, axis",
    "stack": "arrays, /, *, axis=0",
    "tile": "x, repetitions, /",
    "unstack": "x, /, *, axis=0",
    # searching
    "argmax": "x, /, *, axis=None, keepdims=False",
    "argmin": "x, /, *, axis=None, keepdims=False",
    "nonzero": "x, /",
    "searchsorted": "x1, x2, /, *, side='left', sorter=None",
    "where": "condition, x1, x2, /",
    # sets
    "unique_all": "x, /",
    "unique_counts": "x, /",
    "unique_inverse": "x, /",
    "unique_values": "x, /",
    # sorting
    "argsort": "x, /, *, axis=-1, descending=False, stable=True",
    "sort": "x, /, *, axis=-1, descending=False, stable=True",
    # statistics
    "cumulative_sum": "x, /, *, axis=None, dtype=None, include_initial=False",
    "max": "x, /, *, axis=None, keepdims=False",
    "mean": "x, /, *, axis=None, keepdims=False",
    "min": "x, /, *, axis=None, keepdims=False",
    "prod": "x, /, *, axis=None, dtype=None, keepdims=False",
    "std": "x, /, *, axis=None, correction=0.0, keepdims=False",
    "sum": "x, /, *, axis=None, dtype=None, keepdims=False",
    "var": "x, /, *, axis=None, correction=0.0, keepdims=False",
    # utility
    "all": "x, /, *, axis=None, keepdims=False",
    "any": "x, /, *, axis=None, keepdims=False",
})
# The linalg extension (2023.12).
SPEC_LINALG = {
    "cholesky": "x, /, *, upper=False",
    "cross": "x1, x2, /, *, axis=-1",
    "det": "x, /",
    "diagonal": "x, /, *, offset=0",
    "eigh": "x, /",
    "eigvalsh": "x, /",
    "inv": "x, /",
    "matmul": "x1, x2, /",
    "matrix_norm": "x, /, *, keepdims=False, ord='fro'",
    "matrix_power": "x, n, /",
    "matrix_rank": "x, /, *, rtol=None",
    "matrix_transpose": "x, /",
    "outer": "x1, x2, /",
    "pinv": "x, /, *, rtol=None",
    "qr": "x, /, *, mode='reduced'",
    "slogdet": "x, /",
    "solve": "x1, x2, /",
    "svd": "x, /, *, full_matrices=True",
    "svdvals": "x, /",
    "tensordot": "x1, x2, /, *, axes=2",
    "trace": "x, /, *, offset=0, dtype=None",
    "vecdot": "x1, x2, /, *, axis=-1",
    "vector_norm": "x, /, *, axis=None, keepdims=False, ord=2",
}
# Functions added by 2024.12 (checked when present; tmath declares 2023.12).
SPEC_2024 = {
    "count_nonzero": "x, /, *, axis=None, keepdims=False",
    "cumulative_prod": "x, /, *, axis=None, dtype=None, include_initial=False",
    "diff": "x, /, *, axis=-1, n=1, prepend=None, append=None",
    "nextafter": "x1, x2, /",
    "reciprocal": "x, /",
    "take_along_axis": "x, indices, /, *, axis=-1",
}
CONSTANTS = ("e", "inf", "nan", "newaxis", "pi")
DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float32", "float64", "complex64", "complex128")

# What tmath does not have yet (kept equal to the namespace by test_missing_list_is_current).
KNOWN_MISSING = set()
KNOWN_MISSING_DTYPES = set()
# Signatures that differ from the standard on purpose (NumPy-compatible linalg), checked to
# stay exactly these.
KNOWN_SIGNATURE_DEVIATIONS = {
    "linalg.qr": "mode is positional-or-keyword (numpy.linalg.qr), not keyword-only",
    "linalg.svd": "full_matrices is positional-or-keyword (numpy.linalg.svd), not keyword-only",
}
# Engine kernels without complex support: the values tests use real floating inputs.
NO_COMPLEX = set()
# Spec functions that exist but are restricted (values tests skip the unsupported part).
PARTIAL = {
    **{n: "no complex dtypes" for n in sorted(NO_COMPLEX)},
    "argsort": "host NumPy", "sort": "host NumPy", "searchsorted": "host NumPy",
    "unique_all": "host NumPy", "unique_counts": "host NumPy", "unique_inverse": "host NumPy",
    "unique_values": "host NumPy", "nonzero": "host NumPy",
}


def _spec_sig(params: str) -> inspect.Signature:
    return _parse_def(f"def f({params}): pass")


def _parse_def(src: str, defaults=()) -> inspect.Signature:
    fn = ast.parse(src).body[0]
    a = fn.args

    def value(node):
        if node is None:
            return Parameter.empty
        if isinstance(node, ast.Name) and node.id.startswith("__nbdef"):
            return defaults[int(node.id[7:])]
        try:
            return ast.literal_eval(node)
        except ValueError:
            return ast.unparse(node)

    params = []
    pos = a.posonlyargs + a.args
    pos_defaults = [None] * (len(pos) - len(a.defaults)) + list(a.defaults)
    for i, (p, d) in enumerate(zip(pos, pos_defaults)):
        kind = Parameter.POSITIONAL_ONLY if i < len(a.posonlyargs) else Parameter.POSITIONAL_OR_KEYWORD
        params.append(Parameter(p.arg, kind, default=value(d)))
    if a.vararg:
        params.append(Parameter(a.vararg.arg, Parameter.VAR_POSITIONAL))
    for p, d in zip(a.kwonlyargs, a.kw_defaults):
        params.append(Parameter(p.arg, Parameter.KEYWORD_ONLY, default=value(d)))
    if a.kwarg:
        params.append(Parameter(a.kwarg.arg, Parameter.VAR_KEYWORD))
    return inspect.Signature(params)


def tm_signature(fn) -> inspect.Signature:
    """inspect.Signature of a Python function or a nanobind function (from __nb_signature__)."""
    nbs = getattr(fn, "__nb_signature__", None)
    if nbs is None:
        if isinstance(fn, type):
            return inspect.signature(fn.__init__).replace(
                parameters=list(inspect.signature(fn.__init__).parameters.values())[1:])
        return inspect.signature(fn)
    text, _doc, defaults = nbs[0]
    text = re.sub(r"\\(\d+)", r"__nbdef\1", text)
    text = re.sub(r"\)\s*->.*$", ")", text, flags=re.S)
    return _parse_def(text + ": pass", defaults or ())


def _namespace(name):
    return (xp.linalg, SPEC_LINALG[name[7:]]) if name.startswith("linalg.") else (xp, None)


ALL_SPEC = {**SPEC, **{"linalg." + k: v for k, v in SPEC_LINALG.items()}, **SPEC_2024}


def _lookup(name):
    if name.startswith("linalg."):
        return getattr(xp.linalg, name[7:], None)
    return getattr(xp, name, None)


COVERED = sorted(n for n in ALL_SPEC if _lookup(n) is not None)
MISSING = sorted(n for n in ALL_SPEC if _lookup(n) is None)


def test_namespace_and_version():
    assert xp is tm
    assert tm.__array_api_version__ == "2023.12"
    for c in CONSTANTS:
        assert hasattr(tm, c), c
    assert tm.newaxis is None and tm.e == math.e and tm.pi == math.pi
    assert math.isinf(tm.inf) and math.isnan(tm.nan)
    for d in DTYPES:
        assert hasattr(tm, d) == (d not in KNOWN_MISSING_DTYPES), d
    info = tm.__array_namespace_info__()
    assert set(info.capabilities()) >= {"boolean indexing", "data-dependent shapes"}
    assert info.default_dtypes()["real floating"] == tm.float32
    assert "float32" in info.dtypes() and "bool" in info.dtypes()


def test_missing_list_is_current():
    """KNOWN_MISSING is exactly what the namespace lacks of the 2023.12 standard."""
    assert {n for n in MISSING if n in SPEC or n.startswith("linalg.")} == KNOWN_MISSING


def test_spec_table_matches_reference():
    """The table above against array-api-strict's signatures (the reference implementation)."""
    strict = pytest.importorskip("array_api_strict")
    for name, params in ALL_SPEC.items():
        mod = strict.linalg if name.startswith("linalg.") else strict
        ref = getattr(mod, name.split(".")[-1], None)
        if ref is None or name in ("expand_dims", "__array_namespace_info__"):
            continue  # expand_dims: array-api-strict follows 2025.12 (axis positional, no default)
        want = _spec_sig(params)
        got = inspect.signature(ref)
        kinds = [(p.kind, p.name if p.kind != Parameter.POSITIONAL_ONLY else "") for p in got.parameters.values()]
        assert kinds == [(p.kind, p.name if p.kind != Parameter.POSITIONAL_ONLY else "")
                         for p in want.parameters.values()], name


def _check_signature(name, fn, params):
    want = _spec_sig(params)
    got = tm_signature(fn)
    gp = list(got.parameters.values())
    gnames = {p.name: p for p in gp}
    wp = list(want.parameters.values())
    for i, w in enumerate(wp):
        if w.kind == Parameter.KEYWORD_ONLY:
            assert w.name in gnames, f"{name}: no keyword-only parameter {w.name!r}"
            g = gnames[w.name]
            assert g.kind == Parameter.KEYWORD_ONLY, f"{name}: {w.name!r} must be keyword-only, is {g.kind}"
        else:
            assert i < len(gp), f"{name}: missing parameter {w.name!r}"
            g = gp[i]
            if w.kind == Parameter.VAR_POSITIONAL:
                assert g.kind == Parameter.VAR_POSITIONAL, f"{name}: *{w.name} expected"
                continue
            if w.kind == Parameter.POSITIONAL_ONLY:
                # The standard's test suite allows positional-or-keyword here.
                assert g.kind in (Parameter.POSITIONAL_ONLY, Parameter.POSITIONAL_OR_KEYWORD), (name, g)
            else:
                assert g.kind == Parameter.POSITIONAL_OR_KEYWORD, f"{name}: {w.name!r} must be positional-or-keyword"
                assert g.name == w.name, f"{name}: parameter {i} is {g.name!r}, the standard says {w.name!r}"
        if w.default is not Parameter.empty:
            assert g.default is not Parameter.empty, f"{name}: {w.name!r} needs a default"
            if not (isinstance(w.default, float) and isinstance(g.default, float) and w.default == g.default):
                assert g.default == w.default or repr(g.default) == repr(w.default), \
                    f"{name}: default of {w.name!r} is {g.default!r}, the standard says {w.default!r}"
    # Extra parameters must not be required.
    for g in gp[len([w for w in wp if w.kind != Parameter.KEYWORD_ONLY]):]:
        if g.kind in (Parameter.POSITIONAL_ONLY, Parameter.POSITIONAL_OR_KEYWORD, Parameter.KEYWORD_ONLY) \
                and g.name not in {w.name for w in wp}:
            assert g.default is not Parameter.empty, f"{name}: extra required parameter {g.name!r}"


@pytest.mark.parametrize("name", [n if n not in KNOWN_SIGNATURE_DEVIATIONS else
                                  pytest.param(n, marks=pytest.mark.xfail(strict=True,
                                                                          reason=KNOWN_SIGNATURE_DEVIATIONS[n]))
                                  for n in COVERED])
def test_signature(name):
    _check_signature(name, _lookup(name), ALL_SPEC[name])


def test_positional_only_elementwise():
    """Elementwise functions take their arrays positionally only, as specified."""
    x = tm.ones((2,))
    for n in ("exp", "add", "multiply", "sqrt", "maximum"):
        with pytest.raises(TypeError):
            getattr(tm, n)(x1=x, x2=x) if n in _BINARY else getattr(tm, n)(x=x)


# ---- values: dtypes, promotion, shapes ---------------------------------------------------------
BOOL = ("bool",)
INT = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
REAL_FLOAT = ("float32", "float64")
CPLX = ("complex64", "complex128")
FLOAT = REAL_FLOAT + CPLX
REAL = INT + REAL_FLOAT
NUMERIC = REAL + CPLX

# Unary functions: name -> (input dtypes, result dtype rule, NumPy reference).
#   rule: "same" | "bool" | "real" (real dtype of a complex input)
UNARY = {
    "abs": (NUMERIC, "real", np.abs), "acos": (FLOAT, "same", np.acos), "acosh": (FLOAT, "same", np.acosh),
    "asin": (FLOAT, "same", np.asin), "asinh": (FLOAT, "same", np.asinh), "atan": (FLOAT, "same", np.atan),
    "atanh": (FLOAT, "same", np.atanh), "bitwise_invert": (BOOL + INT, "same", np.bitwise_invert),
    "ceil": (REAL, "same", np.ceil), "conj": (NUMERIC, "same", np.conj), "cos": (FLOAT, "same", np.cos),
    "cosh": (FLOAT, "same", np.cosh), "exp": (FLOAT, "same", np.exp), "expm1": (FLOAT, "same", np.expm1),
    "floor": (REAL, "same", np.floor), "imag": (CPLX, "real", np.imag),
    "isfinite": (NUMERIC, "bool", np.isfinite), "isinf": (NUMERIC, "bool", np.isinf),
    "isnan": (NUMERIC, "bool", np.isnan), "log": (FLOAT, "same", np.log), "log1p": (FLOAT, "same", np.log1p),
    "log2": (FLOAT, "same", np.log2), "log10": (FLOAT, "same", np.log10),
    "logical_not": (BOOL, "bool", np.logical_not), "negative": (NUMERIC, "same", np.negative),
    "positive": (NUMERIC, "same", np.positive), "real": (CPLX, "real", np.real),
    "round": (NUMERIC, "same", np.round), "sign": (NUMERIC, "same", np.sign),
    "signbit": (REAL_FLOAT, "bool", np.signbit), "sin": (FLOAT, "same", np.sin),
    "sinh": (FLOAT, "same", np.sinh), "square": (NUMERIC, "same", np.square), "sqrt": (FLOAT, "same", np.sqrt),
    "tan": (FLOAT, "same", np.tan), "tanh": (FLOAT, "same", np.tanh), "trunc": (REAL, "same", np.trunc),
    "reciprocal": (FLOAT, "same", np.reciprocal),
}
# Binary functions: name -> (input dtypes, result rule, NumPy reference); rule "promote" | "bool".
BINARY = {
    "add": (NUMERIC, "promote", np.add), "atan2": (REAL_FLOAT, "promote", np.atan2),
    "bitwise_and": (BOOL + INT, "promote", np.bitwise_and), "bitwise_or": (BOOL + INT, "promote", np.bitwise_or),
    "bitwise_xor": (BOOL + INT, "promote", np.bitwise_xor), "copysign": (REAL_FLOAT, "promote", np.copysign),
    # Shift counts cover negative values and counts >= the bit width (NumPy shifts every bit out).
    "bitwise_left_shift": (INT, "promote", np.left_shift), "bitwise_right_shift": (INT, "promote", np.right_shift),
    "nextafter": (REAL_FLOAT, "promote", np.nextafter),
    "divide": (FLOAT, "promote", np.divide), "equal": (NUMERIC + BOOL, "bool", np.equal),
    "floor_divide": (REAL, "promote", np.floor_divide), "greater": (REAL, "bool", np.greater),
    "greater_equal": (REAL, "bool", np.greater_equal), "hypot": (REAL_FLOAT, "promote", np.hypot),
    "less": (REAL, "bool", np.less), "less_equal": (REAL, "bool", np.less_equal),
    "logaddexp": (REAL_FLOAT, "promote", np.logaddexp), "logical_and": (BOOL, "bool", np.logical_and),
    "logical_or": (BOOL, "bool", np.logical_or), "logical_xor": (BOOL, "bool", np.logical_xor),
    "maximum": (REAL, "promote", np.maximum), "minimum": (REAL, "promote", np.minimum),
    "multiply": (NUMERIC, "promote", np.multiply), "not_equal": (NUMERIC + BOOL, "bool", np.not_equal),
    "pow": (REAL_FLOAT, "promote", np.pow), "remainder": (REAL, "promote", np.remainder),
    "subtract": (NUMERIC, "promote", np.subtract),
}
# Inputs outside the standard's required behaviour that the references disagree on are
# left out: integer division by zero and integer overflow (unspecified by the standard).
NO_ZERO_DIVISOR = {"floor_divide", "remainder"}
# NumPy's floor_divide/remainder with an infinite operand differ from the standard's special
# cases (1 // -inf: NumPy -1.0, the standard and tmath -0.0): infinities are left out there.
NO_INF = {"floor_divide", "remainder"}
# Tolerance (rtol) per real dtype for transcendental functions (ULP-level differences
# between implementations); arithmetic, comparisons and rounding are compared exactly.
EXACT = {"abs", "ceil", "conj", "floor", "imag", "isfinite", "isinf", "isnan", "logical_not", "negative",
         "positive", "real", "round", "sign", "signbit", "trunc", "bitwise_invert", "add", "subtract",
         "multiply", "equal", "not_equal", "greater", "greater_equal", "less", "less_equal", "logical_and",
         "logical_or", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor", "maximum", "minimum",
         "copysign", "floor_divide", "remainder", "square", "bitwise_left_shift", "bitwise_right_shift",
         "nextafter"}
RTOL = {"float32": 2e-5, "float64": 1e-12, "complex64": 2e-5, "complex128": 1e-12}
EDGE = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, math.inf, -math.inf, math.nan, 1e-30, 1e30]

SETTINGS = settings(max_examples=10, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _elements(dt, name):
    d = np.dtype(dt)
    if d.kind == "b":
        return st.booleans()
    if d.kind in "iu":
        info = np.iinfo(d)
        # Small magnitudes: products and sums stay in range (overflow is unspecified).
        lo, hi = max(int(info.min), -11), min(int(info.max), 11)
        ints = st.integers(lo, hi)
        if name.startswith("bitwise"):  # no overflow: any bit pattern, and counts past the width
            ints = st.one_of(st.integers(int(info.min), int(info.max)),
                             st.integers(max(int(info.min), -70), min(int(info.max), 70)))
        return ints.filter(lambda v: v != 0) if name in NO_ZERO_DIVISOR else ints
    width = 32 if d in (np.float32, np.complex64) else 64
    finite = st.floats(-1e3, 1e3, width=width, allow_subnormal=False)
    if d.kind == "c":
        # Complex special values (inf/nan components) are left out: their rules are
        # per-function special cases that NumPy does not follow either.
        part = st.one_of(st.sampled_from([0.0, -0.0, 1.0, -0.5, 2.0]), finite)
        return st.builds(complex, part, part)
    if name in NO_INF:
        return st.one_of(st.sampled_from([e for e in EDGE if not math.isinf(e)]), finite)
    return st.one_of(st.sampled_from(EDGE), finite)


def _array(draw, dt, shape, name):
    return draw(hnp.arrays(np.dtype(dt), shape, elements=_elements(dt, name)))


def _to_np(t):
    return np.asarray(t.numpy())


def _expected_dtype(rule, *dts):
    if rule == "bool":
        return np.dtype(bool)
    if rule == "real":
        d = np.dtype(dts[0])
        return np.dtype(np.float32) if d == np.complex64 else np.dtype(np.float64) if d.kind == "c" else d
    if rule == "same":
        return np.dtype(dts[0])
    return np.result_type(*[np.dtype(d) for d in dts])  # the standard's table for same-kind pairs


# NumPy's complex log1p is log(hypot(1 + x, y)) + i atan2(y, 1 + x): correct to an
# absolute eps only (0 for log1p(1e-70+0j)); tmath's keeps the relative accuracy, so the
# comparison there allows NumPy's absolute error.
ABS_ERROR_OF_NUMPY = {("log1p", "c")}


def _compare(name, got, want, dt):
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    if got.dtype.kind in "fc" and name not in EXACT:
        rtol = RTOL[got.dtype.name]
        atol = rtol * 1e-3 if "float32" in str(dt) or "complex64" in str(dt) else 1e-300
        if (name, np.dtype(dt).kind) in ABS_ERROR_OF_NUMPY:
            atol = 4 * np.finfo(np.dtype(dt)).eps
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol,
                                   equal_nan=True, err_msg=name)
    else:
        np.testing.assert_array_equal(got, want, err_msg=name)
        if got.dtype.kind == "f" and name in EXACT:  # the sign of zero too
            np.testing.assert_array_equal(np.signbit(got), np.signbit(want), err_msg=f"{name}: sign of zero")


shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


@pytest.mark.parametrize("name", sorted(n for n in UNARY if hasattr(tm, n)))
@SETTINGS
@given(data=st.data())
def test_unary_values(name, data):
    dts, rule, ref = UNARY[name]
    dt = data.draw(st.sampled_from([d for d in dts if name not in NO_COMPLEX or d not in CPLX]), label="dtype")
    a = _array(data.draw, dt, data.draw(shapes, label="shape"), name)
    r = getattr(tm, name)(tm.asarray(a))
    assert r.dtype.name == _expected_dtype(rule, dt).name, f"{name}({dt}) -> {r.dtype}"
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = np.asarray(ref(a)).astype(_expected_dtype(rule, dt))
    _compare(name, _to_np(r), want, dt)


def _same_kind_pair(dts, name=""):
    kinds = {"b": BOOL, "iu": INT, "f": REAL_FLOAT, "c": FLOAT}

    def mixes_uint64(d1, d2):  # uint64 with a signed int promotes to float64 (no bitwise ops)
        return {np.dtype(d1).kind, np.dtype(d2).kind} == {"i", "u"} and "uint64" in (d1, d2)

    def pair(d1):
        k = np.dtype(d1).kind
        group = next(v for key, v in kinds.items() if k in key)
        return st.tuples(st.just(d1), st.sampled_from(
            [d for d in group if d in dts and not (name.startswith("bitwise") and mixes_uint64(d1, d))]))

    return st.sampled_from(dts).flatmap(pair)


@pytest.mark.parametrize("name", sorted(n for n in BINARY if hasattr(tm, n)))
@SETTINGS
@given(data=st.data())
def test_binary_values(name, data):
    dts, rule, ref = BINARY[name]
    d1, d2 = data.draw(_same_kind_pair(dts, name), label="dtypes")
    s1, s2 = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
                       label="shapes").input_shapes
    a, b = _array(data.draw, d1, s1, name), _array(data.draw, d2, s2, name)
    if name == "divide" and "complex" in d1 + d2:  # complex division by zero: special cases left out
        b = np.where(b == 0, 1, b).astype(d2)
    r = getattr(tm, name)(tm.asarray(a), tm.asarray(b))
    want_dt = _expected_dtype(rule, d1, d2)
    assert r.dtype.name == want_dt.name, f"{name}({d1}, {d2}) -> {r.dtype}, the standard: {want_dt}"
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = np.asarray(ref(a.astype(want_dt) if rule == "promote" else a,
                              b.astype(want_dt) if rule == "promote" else b))
    _compare(name, _to_np(r), want, want_dt)


def test_scalar_operands_are_weak():
    """Python scalars take the array's dtype (the standard's mixed array/scalar rule)."""
    for dt in ("int8", "uint8", "int32", "float32", "float64"):
        x = tm.ones((3,), dtype=dt)
        assert (x + 1).dtype.name == dt and (2 * x).dtype.name == dt
    assert (tm.ones((2,), dtype="float32") * 0.5).dtype == tm.float32
    assert (tm.ones((2,), dtype="complex64") * 2.0).dtype == tm.complex64
    assert (tm.asarray([True]) & True).dtype == tm.bool


# ---- statistical and utility functions ---------------------------------------------------------
def _axis(draw, nd):
    if nd == 0:
        return None
    return draw(st.one_of(st.none(), st.integers(-nd, nd - 1),
                          st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True).map(tuple)))


REDUCTIONS = {  # name -> (input dtypes, NumPy reference)
    "sum": (NUMERIC, np.sum), "prod": (NUMERIC, np.prod), "mean": (FLOAT, np.mean),
    "max": (REAL, np.max), "min": (REAL, np.min), "std": (REAL_FLOAT, np.std), "var": (REAL_FLOAT, np.var),
    "all": (BOOL + REAL, np.all), "any": (BOOL + REAL, np.any),
}


def _sum_dtype(name, dt):
    """The standard's default result dtype of sum/prod (no dtype= given)."""
    d = np.dtype(dt)
    if name in ("all", "any"):
        return np.dtype(bool)
    if name in ("sum", "prod") and d.kind in "iu":
        return np.dtype(np.int64) if d.kind == "i" else np.dtype(np.uint64)
    return d


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@SETTINGS
@given(data=st.data())
def test_reduction_values(name, data):
    dts, ref = REDUCTIONS[name]
    dt = data.draw(st.sampled_from(dts), label="dtype")
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), label="shape")
    a = _array(data.draw, dt, shape, name)
    if name in ("max", "min") and np.dtype(dt).kind == "f":
        a = np.where(np.isnan(a), 0, a).astype(dt)  # NaN propagation order is not compared
    if name == "prod" and np.dtype(dt).kind in "fc":
        # The standard leaves the order of a product open, and it decides whether a partial
        # product overflows or underflows (0 * 1e30 * 1e30 is 0 in NumPy's order, NaN in a
        # pairwise one): finite nonzero magnitudes are kept in [0.5, 2].
        mag = np.abs(a)
        a = np.where(np.isfinite(a) & (a != 0) & ((mag > 2) | (mag < 0.5)), np.asarray(1.25, dt), a).astype(dt)
    axis = _axis(data.draw, a.ndim)
    keep = data.draw(st.booleans(), label="keepdims")
    r = getattr(tm, name)(tm.asarray(a), axis=axis, keepdims=keep)
    want_dt = _sum_dtype(name, dt)
    with np.errstate(all="ignore"):
        want = np.asarray(ref(a, axis=axis, keepdims=keep))
    got = _to_np(r)
    assert got.shape == want.shape, f"{name}: shape"
    assert r.dtype.name == np.dtype(want_dt).name, f"{name}({dt}) -> {r.dtype}, the standard: {want_dt}"
    if got.dtype.kind in "fc":
        rtol = 1e-4 if got.dtype in (np.float32, np.complex64) else 1e-10
        np.testing.assert_allclose(got, want.astype(got.dtype), rtol=rtol, atol=rtol, equal_nan=True, err_msg=name)
    else:
        np.testing.assert_array_equal(got, want.astype(got.dtype), err_msg=name)


@SETTINGS
@given(data=st.data())
def test_argmax_argmin_cumulative_sum(data):
    dt = data.draw(st.sampled_from(REAL), label="dtype")
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), label="shape")
    a = _array(data.draw, dt, shape, "arg")
    if np.dtype(dt).kind == "f":
        a = np.where(np.isnan(a), 0, a).astype(dt)
    axis = data.draw(st.one_of(st.none(), st.integers(-a.ndim, a.ndim - 1)), label="axis")
    t = tm.asarray(a)
    for f in ("argmax", "argmin"):
        r = getattr(tm, f)(t, axis=axis)
        assert r.dtype == tm.int64
        np.testing.assert_array_equal(_to_np(r), getattr(np, f)(a, axis=axis), err_msg=f)
    cax = (axis if axis is not None else -1) if a.ndim > 1 else axis
    # Default dtype as sum's (uint64 for unsigned ints, int64 for signed ones); integers exact.
    r = tm.cumulative_sum(t, axis=cax)
    want = np.cumulative_sum(a, axis=cax)
    assert r.dtype.name == _sum_dtype("sum", dt).name == want.dtype.name, f"cumulative_sum({dt}) -> {r.dtype}"
    if want.dtype.kind in "iu":
        np.testing.assert_array_equal(_to_np(r), want, err_msg="cumulative_sum")
    r = tm.cumulative_sum(t, axis=cax, dtype=tm.float64)
    np.testing.assert_allclose(_to_np(r), np.cumulative_sum(a.astype(np.float64), axis=cax), rtol=1e-10)
    r = tm.cumulative_sum(t, axis=cax, dtype=tm.float64, include_initial=True)
    np.testing.assert_allclose(_to_np(r), np.cumulative_sum(a.astype(np.float64), axis=cax, include_initial=True),
                               rtol=1e-10)


# ---- creation, manipulation, searching, sorting, sets -------------------------------------------
def test_creation_functions():
    assert tm.arange(5).dtype == tm.int64 and _to_np(tm.arange(1, 7, 2)).tolist() == [1, 3, 5]
    assert tm.arange(0.0, 1.0, 0.25).dtype == tm.float32 and tm.arange(0.0, 1.0, 0.25).shape == (4,)
    np.testing.assert_allclose(_to_np(tm.linspace(0, 1, 5)), np.linspace(0, 1, 5), rtol=1e-6)
    assert tm.linspace(0, 1, 4, endpoint=False).shape == (4,)
    np.testing.assert_array_equal(_to_np(tm.eye(3, 4, k=1)), np.eye(3, 4, k=1))
    for f in ("zeros", "ones", "empty"):
        z = getattr(tm, f)((2, 0, 3), dtype=tm.int32)
        assert z.shape == (2, 0, 3) and z.dtype == tm.int32
        assert getattr(tm, f + "_like")(tm.ones((2, 3)), dtype=tm.float64).dtype == tm.float64
    assert _to_np(tm.full((2,), 7, dtype=tm.int8)).tolist() == [7, 7]
    assert tm.full_like(tm.ones((2,)), 3).dtype == tm.float32
    np.testing.assert_array_equal(_to_np(tm.tril(tm.ones((3, 3)), k=-1)), np.tril(np.ones((3, 3)), k=-1))
    np.testing.assert_array_equal(_to_np(tm.triu(tm.ones((3, 3)), k=1)), np.triu(np.ones((3, 3)), k=1))
    g = tm.meshgrid(tm.arange(3), tm.arange(2), indexing="ij")
    ng = np.meshgrid(np.arange(3), np.arange(2), indexing="ij")
    for a, b in zip(g, ng):
        np.testing.assert_array_equal(_to_np(a), b)
    assert tm.asarray(np.zeros((0, 3), np.float64)).shape == (0, 3)


@SETTINGS
@given(data=st.data())
def test_manipulation_functions(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), label="shape")
    a = _array(data.draw, "float32", shape, "m")
    t = tm.asarray(a)
    nd = a.ndim
    ax = data.draw(st.integers(-nd, nd - 1), label="axis")
    perm = tuple(data.draw(st.permutations(range(nd)), label="perm"))
    eq = np.testing.assert_array_equal
    eq(_to_np(tm.permute_dims(t, perm)), np.permute_dims(a, perm))
    eq(_to_np(tm.flip(t, axis=ax)), np.flip(a, axis=ax))
    eq(_to_np(tm.flip(t)), np.flip(a))
    eq(_to_np(tm.reshape(t, (-1,))), np.reshape(a, (-1,)))
    eq(_to_np(tm.expand_dims(t, axis=ax)), np.expand_dims(a, ax))
    eq(_to_np(tm.roll(t, 2, axis=ax)), np.roll(a, 2, axis=ax))
    eq(_to_np(tm.roll(t, -1)), np.roll(a, -1))
    eq(_to_np(tm.concat([t, t], axis=ax)), np.concat([a, a], axis=ax))
    eq(_to_np(tm.concat([t, t], axis=None)), np.concat([a, a], axis=None))
    eq(_to_np(tm.stack([t, t], axis=ax)), np.stack([a, a], axis=ax))
    eq(_to_np(tm.moveaxis(t, 0, -1)), np.moveaxis(a, 0, -1))
    eq(_to_np(tm.tile(t, (2,) * nd)), np.tile(a, (2,) * nd))
    eq(_to_np(tm.repeat(t, 2, axis=ax)), np.repeat(a, 2, axis=ax))
    eq(_to_np(tm.matrix_transpose(t)) if nd >= 2 else a, np.matrix_transpose(a) if nd >= 2 else a)
    for u, v in zip(tm.unstack(t, axis=ax), np.unstack(a, axis=ax)):
        eq(_to_np(u), v)
    eq(_to_np(tm.broadcast_to(t, (2,) + shape)), np.broadcast_to(a, (2,) + shape))
    for u, v in zip(tm.broadcast_arrays(t, tm.ones((1,) * nd)), np.broadcast_arrays(a, np.ones((1,) * nd))):
        eq(_to_np(u), v)
    eq(_to_np(tm.squeeze(tm.expand_dims(t, axis=0), axis=0)), a)
    idx = np.array([0, shape[0] - 1, 0], np.int64)
    eq(_to_np(tm.take(t, tm.asarray(idx), axis=0)), np.take(a, idx, axis=0))


def test_linear_algebra_functions():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3, 4)).astype(np.float64), rng.standard_normal((2, 4, 5)).astype(np.float64)
    np.testing.assert_allclose(_to_np(tm.matmul(tm.asarray(a), tm.asarray(b))), np.matmul(a, b), rtol=1e-12)
    b2 = rng.standard_normal((3, 4, 5))
    np.testing.assert_allclose(_to_np(tm.tensordot(tm.asarray(a), tm.asarray(b2), axes=([1, 2], [0, 1]))),
                               np.tensordot(a, b2, axes=([1, 2], [0, 1])), rtol=1e-12)
    v, w = rng.standard_normal((3, 4)), rng.standard_normal((4,))
    np.testing.assert_allclose(_to_np(tm.vecdot(tm.asarray(v), tm.asarray(w))), np.vecdot(v, w), rtol=1e-12)
    c = (rng.standard_normal((3,)) + 1j * rng.standard_normal((3,))).astype(np.complex128)
    np.testing.assert_allclose(_to_np(tm.vecdot(tm.asarray(c), tm.asarray(c))), np.vecdot(c, c), rtol=1e-12)
    assert tm.linalg.matrix_transpose(tm.asarray(a)).shape == (2, 4, 3)
    assert tm.linalg.tensordot(tm.asarray(a), tm.asarray(b[0]), axes=1).shape == (2, 3, 5)


@SETTINGS
@given(data=st.data())
def test_searching_sorting_sets(data):
    dt = data.draw(st.sampled_from(("int32", "float32", "float64")), label="dtype")
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=5), label="shape")
    a = _array(data.draw, dt, shape, "s")
    t = tm.asarray(a)
    desc = data.draw(st.booleans(), label="descending")
    axis = data.draw(st.integers(-a.ndim, a.ndim - 1), label="axis")
    r = tm.sort(t, axis=axis, descending=desc)
    assert r.dtype.name == dt and r.shape == a.shape
    want = np.sort(a, axis=axis, kind="stable")
    np.testing.assert_array_equal(_to_np(r), np.flip(np.sort(np.flip(a, axis), axis=axis), axis) if desc else want)
    i = tm.argsort(t, axis=axis, descending=desc)
    assert i.dtype == tm.int64
    sorted_vals = np.take_along_axis(a, _to_np(i), axis=axis)
    np.testing.assert_array_equal(sorted_vals, _to_np(r))
    if not desc:
        np.testing.assert_array_equal(_to_np(i), np.argsort(a, axis=axis, kind="stable"))
    flat = np.sort(a.reshape(-1))
    for side in ("left", "right"):
        np.testing.assert_array_equal(_to_np(tm.searchsorted(tm.asarray(flat), t, side=side)),
                                      np.searchsorted(flat, a, side=side))
    # Sets (NaNs distinct; the standard leaves the order open, tmath sorts).
    uv = _to_np(tm.unique_values(t))
    np.testing.assert_array_equal(np.sort(uv), np.sort(np.unique_values(a)))
    ua = tm.unique_all(t)
    v, idx, inv, cnt = np.unique(a.reshape(-1), return_index=True, return_inverse=True, return_counts=True,
                                 equal_nan=False)
    for f, want in (("values", v), ("indices", idx), ("inverse_indices", inv.reshape(a.shape)), ("counts", cnt)):
        np.testing.assert_array_equal(_to_np(getattr(ua, f)), want, err_msg=f)
    assert ua.inverse_indices.shape == a.shape and ua.counts.dtype == tm.int64
    np.testing.assert_array_equal(_to_np(ua.values)[_to_np(ua.inverse_indices)], a)
    np.testing.assert_array_equal(_to_np(tm.unique_counts(t).counts), cnt)
    np.testing.assert_array_equal(_to_np(tm.unique_inverse(t).inverse_indices), inv.reshape(a.shape))
    nz = tm.nonzero(t)
    for u, v in zip(nz, np.nonzero(a)):
        np.testing.assert_array_equal(_to_np(u), v)
    c = tm.asarray(a > 0)
    np.testing.assert_array_equal(_to_np(tm.where(c, t, tm.zeros_like(t))), np.where(a > 0, a, 0))


def test_data_type_functions():
    assert tm.result_type(tm.int8, tm.uint8) == tm.int16
    assert tm.result_type(tm.float32, tm.complex64, tm.float64) == tm.complex128
    assert tm.can_cast(tm.int8, tm.int16) and not tm.can_cast(tm.int64, tm.int8)
    assert tm.isdtype(tm.float32, "real floating") and tm.isdtype(tm.int8, ("integral", "bool"))
    assert not tm.isdtype(tm.uint8, "signed integer") and tm.isdtype(tm.complex64, "numeric")
    assert tm.finfo(tm.float32).eps == np.finfo(np.float32).eps and tm.finfo(tm.float64).bits == 64
    assert tm.iinfo(tm.int8).min == -128 and tm.iinfo(tm.uint8).max == 255
    x = tm.ones((2,), dtype=tm.int32)
    assert tm.astype(x, tm.float64).dtype == tm.float64
    assert tm.astype(x, tm.int32, copy=False) is x or tm.astype(x, tm.int32, copy=False).dtype == tm.int32


def test_abs_of_negative_zero():
    assert not np.signbit(_to_np(tm.abs(tm.asarray([-0.0])))[0])


def _listing():
    lines = [f"Array API {tm.__array_api_version__}: {len([n for n in COVERED if n in SPEC])} of {len(SPEC)} "
             f"main-namespace functions, {len([n for n in COVERED if n.startswith('linalg.')])} of "
             f"{len(SPEC_LINALG)} linalg functions, {len([n for n in COVERED if n in SPEC_2024])} of "
             f"{len(SPEC_2024)} 2024.12 additions"]
    lines.append("covered: " + ", ".join(n + ("*" if n in PARTIAL else "") for n in COVERED))
    lines.append("missing: " + ", ".join(MISSING + sorted(KNOWN_MISSING_DTYPES)))
    lines.append("* partial: " + "; ".join(f"{k}: {v}" for k, v in sorted(PARTIAL.items())))
    return "\n".join(lines)


if __name__ == "__main__":
    print(_listing())
