"""Type promotion against NumPy 2 (NEP 50), broadcasting, with hypothesis properties."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tmath as tm
from conftest import NP_DTYPES, check, tmdt

# NumPy promotes int64 with uint8 and ints with floats differently from the
# Array API lattice only where the standard leaves it open (mixed kinds): tmath
# follows the standard (any integer with a float gives that float).
def expected_promotion(a, b):
    da, db = np.dtype(a), np.dtype(b)
    if da.kind in "biu" and db.kind in "fc":
        return db.name
    if db.kind in "biu" and da.kind in "fc":
        return da.name
    return np.promote_types(da, db).name


@pytest.mark.parametrize("a", NP_DTYPES)
@pytest.mark.parametrize("b", NP_DTYPES)
def test_promote_types_matches_numpy(a, b):
    assert tm.promote_types(tmdt(a), tmdt(b)).name == expected_promotion(a, b)
    x = tm.ones((2,), dtype=tmdt(a))
    y = tm.ones((2,), dtype=tmdt(b))
    assert (x + y).dtype.name == expected_promotion(a, b)
    assert tm.result_type(x, y).name == expected_promotion(a, b)


@pytest.mark.parametrize("dt", ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                                "float16", "float32",
                                "float64", "complex64", "complex128"])
def test_python_scalars_are_weak(dt):
    """A Python scalar of the same or a lower kind takes the tensor's dtype (NEP 50 / Array API)."""
    a = np.array([1, 2, 3], dtype=dt)
    t = tm.asarray(a)
    check(t + 2, a + 2)
    check(2 * t, 2 * a)
    check(t - True, a - True)
    if np.dtype(dt).kind in "fc":
        check(t * 0.5, a * 0.5, rtol=1e-3)
        check(0.5 * t, 0.5 * a, rtol=1e-3)
    if np.dtype(dt).kind == "c":
        check(t + 1j, a + 1j)


def test_python_scalar_higher_kind():
    # int tensor with a Python float: NumPy gives float64; tmath gives its default float dtype.
    r = tm.asarray([1, 2], dtype=tm.int32) * 0.5
    assert r.dtype.kind == "real floating"
    np.testing.assert_allclose(r.numpy(), [0.5, 1.0])
    r = tm.asarray([True, False]) + 1
    assert r.dtype.kind == "signed integer"
    assert r.tolist() == [2, 1]


def test_bfloat16():
    x = tm.asarray([1.0, 2.0], dtype=tm.bfloat16)
    assert (x + 1).dtype == tm.bfloat16
    assert (x + tm.asarray([1.0], dtype=tm.float16)).dtype == tm.float32
    np.testing.assert_allclose((x * 3).numpy(), [3.0, 6.0])


shapes = st.lists(st.integers(1, 4), min_size=0, max_size=4).map(tuple)


@st.composite
def broadcastable_pair(draw):
    shape = draw(shapes)
    other = list(shape)
    for i in range(len(other)):
        if draw(st.booleans()):
            other[i] = 1
    drop = draw(st.integers(0, len(other)))
    other = tuple(other[drop:])
    if draw(st.booleans()):
        return shape, other
    return other, shape


@settings(max_examples=60, deadline=None)
@given(broadcastable_pair(), st.sampled_from(["+", "*", "-", "max"]))
def test_broadcasting_property(pair, op):
    sa, sb = pair
    rng = np.random.default_rng(0)
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    f = {"+": np.add, "*": np.multiply, "-": np.subtract, "max": np.maximum}[op]
    g = {"+": tm.add, "*": tm.multiply, "-": tm.subtract, "max": tm.maximum}[op]
    expected = f(a, b)
    got = g(tm.asarray(a), tm.asarray(b))
    assert got.shape == expected.shape
    check(got, expected)
    assert tm.broadcast_shapes(sa, sb) == np.broadcast_shapes(sa, sb)


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(NP_DTYPES), st.sampled_from(NP_DTYPES),
       st.sampled_from(["+", "*", "==", "<"]))
def test_promotion_property(a, b, op):
    x = np.array([1, 0, 1], dtype=a)
    y = np.array([1, 1, 0], dtype=b)
    if op in ("<",) and "complex" in a + b:
        return
    f = {"+": lambda p, q: p + q, "*": lambda p, q: p * q, "==": lambda p, q: p == q,
         "<": lambda p, q: p < q}[op]
    got = f(tm.asarray(x), tm.asarray(y))
    want_dtype = "bool" if op in ("==", "<") else expected_promotion(a, b)
    assert got.dtype.name == want_dtype
    np.testing.assert_allclose(got.numpy().astype(np.complex128), f(x, y).astype(np.complex128))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["int8", "int32", "int64", "float32", "float64", "complex64"]),
       st.one_of(st.integers(-100, 100), st.floats(-100, 100, allow_nan=False), st.booleans()))
def test_weak_scalar_property(dt, s):
    a = np.array([1, 2, 3], dtype=dt)
    kind_s = 0 if isinstance(s, bool) else 1 if isinstance(s, int) else 2
    kind_a = {"i": 1, "f": 2, "c": 3}[np.dtype(dt).kind]
    if kind_s > kind_a:
        return  # higher-kind scalar: covered in test_python_scalar_higher_kind
    got = tm.asarray(a) + s
    assert got.dtype.name == dt
    np.testing.assert_allclose(got.numpy(), (a + s).astype(dt), rtol=1e-6)
