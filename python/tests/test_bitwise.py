"""Bitwise functions and operators, and nextafter, against NumPy."""
import numpy as np
import pytest

import tmath as tm

INTS = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]


def _rand(rng, dt, shape):
    info = np.iinfo(dt)
    return rng.integers(int(info.min), int(info.max), size=shape, endpoint=True, dtype=dt)


@pytest.mark.parametrize("dt", INTS)
def test_and_or_xor_invert_full_range(dt, rng):
    a, b = _rand(rng, dt, (5, 7)), _rand(rng, dt, (7,))
    ta, tb = tm.asarray(a), tm.asarray(b)
    for f, ref in ((tm.bitwise_and, np.bitwise_and), (tm.bitwise_or, np.bitwise_or),
                   (tm.bitwise_xor, np.bitwise_xor)):
        r = f(ta, tb)
        assert r.dtype.name == dt
        np.testing.assert_array_equal(r.numpy(), ref(a, b))
    np.testing.assert_array_equal(tm.bitwise_invert(ta).numpy(), np.invert(a))
    np.testing.assert_array_equal((~ta).numpy(), ~a)
    np.testing.assert_array_equal((ta & tb).numpy(), a & b)
    np.testing.assert_array_equal((ta | tb).numpy(), a | b)
    np.testing.assert_array_equal((ta ^ tb).numpy(), a ^ b)


@pytest.mark.parametrize("dt", INTS)
def test_shifts_every_count(dt, rng):
    bits = np.dtype(dt).itemsize * 8
    lo = -3 if np.dtype(dt).kind == "i" else 0
    counts = np.arange(lo, bits + 4).astype(dt)
    a = np.concatenate([_rand(rng, dt, (20,)), np.array([np.iinfo(dt).min, np.iinfo(dt).max, 0, 1], dt)])
    a2, c2 = a[:, None], counts[None, :]
    ta, tc = tm.asarray(a2), tm.asarray(c2)
    np.testing.assert_array_equal(tm.bitwise_left_shift(ta, tc).numpy(), np.left_shift(a2, c2))
    np.testing.assert_array_equal(tm.bitwise_right_shift(ta, tc).numpy(), np.right_shift(a2, c2))
    np.testing.assert_array_equal((ta << tc).numpy(), a2 << c2)
    np.testing.assert_array_equal((ta >> tc).numpy(), a2 >> c2)


def test_reflected_and_inplace_operators():
    x = tm.asarray(np.array([1, 6, 12], np.int32))
    np.testing.assert_array_equal((3 & x).numpy(), [1, 2, 0])
    np.testing.assert_array_equal((3 | x).numpy(), [3, 7, 15])
    np.testing.assert_array_equal((3 ^ x).numpy(), [2, 5, 15])
    np.testing.assert_array_equal((1 << x).numpy(), [2, 64, 4096])
    np.testing.assert_array_equal((4096 >> x).numpy(), [2048, 64, 1])
    assert (3 & x).dtype == tm.int32 and (1 << x).dtype == tm.int32  # weak Python scalars
    y = x
    y <<= 2
    y |= 1
    y >>= 1
    y &= 7
    y ^= 1
    np.testing.assert_array_equal(y.numpy(), [3, 5, 1])
    np.testing.assert_array_equal(x.numpy(), [1, 6, 12])  # tensors are immutable: x unchanged
    b = tm.asarray([True, False])
    np.testing.assert_array_equal((~b).numpy(), [False, True])
    np.testing.assert_array_equal((b ^ True).numpy(), [False, True])


def test_aliases_and_promotion():
    a, b = np.array([-1, 5], np.int8), np.array([200, 7], np.uint8)
    r = tm.bitwise_and(a, b)
    assert r.dtype == tm.int16
    np.testing.assert_array_equal(r.numpy(), np.bitwise_and(a, b))
    assert tm.bitwise_not is tm.bitwise_invert and tm.invert is tm.bitwise_invert
    np.testing.assert_array_equal(tm.left_shift(b, 1).numpy(), np.left_shift(b, 1))
    np.testing.assert_array_equal(tm.right_shift(a, 9).numpy(), np.right_shift(a, 9))


@pytest.mark.parametrize("fn", ["bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift",
                                "bitwise_right_shift"])
def test_float_operands_raise_type_error_naming_the_op(fn):
    f = tm.asarray(np.array([1.5], np.float32))
    i = tm.asarray(np.array([1], np.int32))
    with pytest.raises(TypeError, match=rf"\[{fn}\].*float32"):
        getattr(tm, fn)(i, f)
    with pytest.raises(TypeError, match=rf"\[{fn}\]"):
        getattr(tm, fn)(i, 0.5)
    np.testing.assert_array_equal(i.numpy(), [1])  # the inputs stay usable
    with pytest.raises(TypeError, match=r"\[bitwise_invert\].*complex64"):
        ~tm.asarray(np.array([1j], np.complex64))
    with pytest.raises(TypeError, match=r"\[bitwise_left_shift\].*bool"):
        tm.asarray([True]) << 1


@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_nextafter_matches_numpy(dt, rng):
    edge = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, np.finfo(dt).max, np.finfo(dt).tiny,
                     np.finfo(dt).smallest_subnormal, -np.finfo(dt).smallest_subnormal], dt)
    vals = np.concatenate([edge, rng.standard_normal(8).astype(dt)])
    a, b = vals[:, None], vals[None, :]
    r = tm.nextafter(tm.asarray(a), tm.asarray(b))
    assert r.dtype.name == dt
    with np.errstate(all="ignore"):
        want = np.nextafter(a, b)
    np.testing.assert_array_equal(r.numpy(), want)
    np.testing.assert_array_equal(np.signbit(r.numpy()), np.signbit(want))


def test_nextafter_float16_matches_numpy_in_its_own_format():
    x = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    for y in (np.float16(np.inf), np.float16(-np.inf), np.float16(1.0), np.float16(-2.0)):
        yv = np.full_like(x, y)
        got = tm.nextafter(tm.asarray(x), tm.asarray(yv)).numpy()
        with np.errstate(all="ignore"):
            want = np.nextafter(x, yv)
        np.testing.assert_array_equal(got, want)  # NaN positions compare equal
        np.testing.assert_array_equal(np.signbit(got[~np.isnan(got)]), np.signbit(want[~np.isnan(want)]))
    # x == y gives y (C's nextafter; NumPy's float16 loop returns x, which differs only at +-0).
    assert np.signbit(tm.nextafter(tm.asarray(np.float16([0.0])), tm.asarray(np.float16([-0.0]))).numpy()[0])


def test_nextafter_gradient_is_zero():
    x = tm.asarray(np.array([1.0, 2.0], np.float32))
    g = tm.grad(lambda v: tm.sum(tm.nextafter(v, 10.0) * v))(x)
    # d/dx (nextafter(x, 10) * x) with the step held fixed: nextafter(x, 10) itself.
    np.testing.assert_array_equal(g.numpy(), np.nextafter(np.array([1.0, 2.0], np.float32), np.float32(10)))
