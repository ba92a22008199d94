"""Array API functions composed in Python (tmath/__init__.py), against NumPy."""
import threading

import numpy as np
import pytest

import tmath as tm
from conftest import check


@pytest.fixture
def a(rng):
    return rng.standard_normal((3, 4)).astype(np.float32)


def test_roll_tile_meshgrid(a):
    t = tm.asarray(a)
    check(tm.roll(t, 1, axis=1), np.roll(a, 1, axis=1))
    check(tm.roll(t, -5), np.roll(a, -5))
    check(tm.roll(t, (1, 2), axis=(0, 1)), np.roll(a, (1, 2), axis=(0, 1)))
    check(tm.tile(t, (2, 1, 3)), np.tile(a, (2, 1, 3)))
    for idx in ("xy", "ij"):
        got = tm.meshgrid(tm.arange(3), tm.arange(4), tm.arange(2), indexing=idx)
        want = np.meshgrid(np.arange(3), np.arange(4), np.arange(2), indexing=idx)
        for p, q in zip(got, want):
            check(p, q)


def test_unstack_diff_count(a):
    t = tm.asarray(a)
    for p, q in zip(tm.unstack(t, axis=1), np.moveaxis(a, 1, 0)):
        check(p, q)
    check(tm.diff(t), np.diff(a), rtol=1e-6)
    check(tm.diff(t, axis=0, n=2), np.diff(a, axis=0, n=2), rtol=1e-5, atol=1e-6)
    check(tm.count_nonzero(t > 0), np.count_nonzero(a > 0))
    check(tm.count_nonzero(t > 0, axis=1), np.count_nonzero(a > 0, axis=1))
    for p, q in zip(tm.nonzero(t > 0), np.nonzero(a > 0)):
        check(p, q)


def test_float_helpers():
    x = np.array([-2.5, -0.0, 0.0, 1.5, np.inf, -np.inf], np.float32)
    y = np.array([1.0, -1.0, 2.0, -3.0, 1.0, -1.0], np.float32)
    check(tm.trunc(x), np.trunc(x))
    check(tm.signbit(x), np.signbit(x))
    check(tm.copysign(x, y), np.copysign(x, y))
    p = np.array([1.0, -3.0, 0.0, -np.inf], np.float64)
    q = np.array([2.0, 50.0, 0.0, -np.inf], np.float64)
    check(tm.logaddexp(p, q), np.logaddexp(p, q), rtol=1e-12)
    assert tm.allclose(tm.asarray(p[:3]), p[:3])
    check(tm.isclose(x, x + 1e-7), np.isclose(x, x + np.float32(1e-7)))


def test_info_objects():
    assert tm.finfo(tm.float32).eps == np.finfo(np.float32).eps
    assert tm.finfo(tm.float64).max == np.finfo(np.float64).max
    assert tm.iinfo(tm.int16).min == -32768 and tm.iinfo(tm.uint8).max == 255
    info = tm.__array_namespace_info__()
    assert info.default_dtypes()["real floating"] == tm.float32
    assert set(info.dtypes(kind="integral")) == {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                                                 "uint64"}
    check(tm.astype(tm.asarray([1.5]), tm.int32), np.array([1], np.int32))
    check(tm.bitwise_and(tm.asarray([True, False]), True), np.array([True, False]))


def test_threads_run_concurrently_without_deadlock(rng):
    """Ops release the GIL; imported NumPy buffers are released from any thread."""
    arrays = [rng.standard_normal((64, 64)).astype(np.float32) for _ in range(4)]
    results = [None] * 4
    errors = []

    def work(i):
        try:
            acc = tm.zeros((64, 64))
            for _ in range(50):
                acc = acc + tm.from_dlpack(arrays[i]) @ tm.eye(64)
            results[i] = acc.numpy()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors
    for i in range(4):
        np.testing.assert_allclose(results[i], arrays[i] * 50, rtol=1e-4, atol=1e-3)


def test_inverse_hyperbolic_and_repeat(rng):
    x = rng.uniform(-5, 5, 50)
    check(tm.asinh(x), np.arcsinh(x), rtol=1e-12, atol=1e-15)
    check(tm.asinh(np.array([1e-10, -1e-12])), np.arcsinh([1e-10, -1e-12]), rtol=1e-12, atol=0)
    y = rng.uniform(1, 50, 50)
    check(tm.acosh(y), np.arccosh(y), rtol=1e-12)
    z = rng.uniform(-0.99, 0.99, 50)
    check(tm.atanh(z), np.arctanh(z), rtol=1e-12, atol=1e-15)
    a = np.arange(6).reshape(2, 3)
    check(tm.repeat(a, 2), np.repeat(a, 2))
    check(tm.repeat(a, 3, axis=1), np.repeat(a, 3, axis=1))
    check(tm.repeat(a, 2, axis=0), np.repeat(a, 2, axis=0))


def test_repeat_with_counts():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    check(tm.repeat(a, tm.asarray([1, 0, 3]), axis=1), np.repeat(a, [1, 0, 3], axis=1))
    check(tm.repeat(a, tm.asarray([2, 1]), axis=0), np.repeat(a, [2, 1], axis=0))
    check(tm.repeat(a, tm.asarray([2]), axis=-1), np.repeat(a, [2], axis=-1))
    check(tm.repeat(a, tm.asarray([0, 1, 2, 0, 1, 2])), np.repeat(a, [0, 1, 2, 0, 1, 2]))
    check(tm.repeat(a, tm.asarray(2), axis=0), np.repeat(a, 2, axis=0))
    check(tm.repeat(a, tm.asarray([0, 0]), axis=0), np.repeat(a, [0, 0], axis=0))
    with pytest.raises(ValueError, match="repeat"):
        tm.repeat(a, tm.asarray([1, 2]), axis=1)  # length 2 for an axis of 3
    with pytest.raises(ValueError, match="repeat"):
        tm.repeat(a, tm.asarray([1, -1, 2]), axis=1)
    with pytest.raises(TypeError, match="repeat"):
        tm.repeat(a, tm.asarray([1.0, 2.0, 3.0]), axis=1)
    with pytest.raises(ValueError, match="repeat"):
        tm.repeat(a, -1)
    check(tm.asarray(a), a)  # input unchanged


def test_cumulative_include_initial():
    a = np.arange(1, 7, dtype=np.float64).reshape(2, 3)
    check(tm.cumulative_sum(a, axis=1, include_initial=True),
          np.concatenate([np.zeros((2, 1)), np.cumsum(a, axis=1)], axis=1))
    check(tm.cumulative_prod(a, axis=0, include_initial=True),
          np.concatenate([np.ones((1, 3)), np.cumprod(a, axis=0)], axis=0))
    check(tm.cumsum(tm.asarray([1, 2, 3])), np.cumsum([1, 2, 3]))
