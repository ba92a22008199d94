"""uint16, uint32 and uint64 against NumPy: creation, wrap-around arithmetic, promotion,
casts, reductions, DLPack and buffer round trips, tolist/item and iinfo."""
import numpy as np
import pytest

import tmath as tm

UINTS = ["uint16", "uint32", "uint64"]


def _vals(dt):
    info = np.iinfo(dt)
    return np.array([0, 1, 2, 7, 100, int(info.max) // 3, int(info.max) - 1, int(info.max)], dtype=dt)


@pytest.mark.parametrize("dt", UINTS)
def test_dtype_objects(dt):
    d = getattr(tm, dt)
    assert d.name == dt and d.kind == "unsigned integer"
    assert d.itemsize == np.dtype(dt).itemsize
    assert tm.isdtype(d, "unsigned integer") and tm.isdtype(d, "integral") and not tm.isdtype(d, "signed integer")
    info = tm.iinfo(d)
    assert (info.min, info.max, info.bits) == (0, int(np.iinfo(dt).max), np.iinfo(dt).bits)
    assert tm.astype(tm.ones((2,)), dt).dtype == d
    assert tm.asarray([1], dtype=np.dtype(dt)).dtype == d  # NumPy dtypes name them too


@pytest.mark.parametrize("dt", UINTS)
def test_creation(dt):
    d = getattr(tm, dt)
    np.testing.assert_array_equal(tm.zeros((2, 3), dtype=d).numpy(), np.zeros((2, 3), dt))
    np.testing.assert_array_equal(tm.ones((4,), dtype=d).numpy(), np.ones(4, dt))
    np.testing.assert_array_equal(tm.full((3,), 9, dtype=d).numpy(), np.full(3, 9, dt))
    r = tm.arange(0, 10, 3, dtype=d)
    assert r.dtype == d
    np.testing.assert_array_equal(r.numpy(), np.arange(0, 10, 3, dtype=dt))
    t = tm.asarray([[1, 2], [3, 4]], dtype=d)
    assert t.dtype == d and t.numpy().dtype == np.dtype(dt)
    np.testing.assert_array_equal(t.numpy(), np.array([[1, 2], [3, 4]], dt))
    np.testing.assert_array_equal(tm.eye(3, dtype=d).numpy(), np.eye(3, dtype=dt))


@pytest.mark.parametrize("dt", UINTS)
def test_wrap_around_arithmetic(dt):
    a, b = _vals(dt), _vals(dt)[::-1].copy()
    ta, tb = tm.asarray(a), tm.asarray(b)
    with np.errstate(all="ignore"):
        for got, want in (((ta + tb), a + b), ((ta - tb), a - b), ((ta * tb), a * b), ((-ta), -a),
                          (tm.square(ta), np.square(a)), (tm.abs(ta), np.abs(a)),
                          (tm.maximum(ta, tb), np.maximum(a, b)), (tm.minimum(ta, tb), np.minimum(a, b)),
                          ((ta + 5), a + np.array(5, dt)), ((ta * 3), a * np.array(3, dt))):
            assert got.dtype.name == dt
            np.testing.assert_array_equal(got.numpy(), want)
    for got, want in ((ta == tb, a == b), (ta < tb, a < b), (ta >= tb, a >= b)):
        np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize("dt", UINTS)
def test_division_remainder_and_power(dt):
    a = _vals(dt)
    b = np.array([1, 2, 3, 7, 9, 5, 2, 3], dtype=dt)
    ta, tb = tm.asarray(a), tm.asarray(b)
    np.testing.assert_array_equal((ta // tb).numpy(), a // b)
    np.testing.assert_array_equal((ta % tb).numpy(), a % b)
    assert (ta // tb).dtype.name == dt
    e = np.array([0, 1, 2, 3, 2, 1, 0, 2], dtype=dt)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(tm.pow(ta, tm.asarray(e)).numpy(), np.power(a, e))
    # Integer division by zero gives 0, as for the engine's other integer dtypes.
    z = tm.asarray(np.zeros(8, dt))
    np.testing.assert_array_equal((ta // z).numpy(), np.zeros(8, dt))
    np.testing.assert_array_equal((ta % z).numpy(), np.zeros(8, dt))
    q = tm.asarray(a) / tm.asarray(b)
    assert q.dtype.kind == "real floating"
    np.testing.assert_allclose(q.numpy(), a.astype(np.float64) / b, rtol=1e-6)


@pytest.mark.parametrize("a", ["bool", "int8", "int16", "int32", "int64", "uint8"] + UINTS)
@pytest.mark.parametrize("b", UINTS)
def test_promotion_matches_numpy(a, b):
    want = np.promote_types(a, b).name
    da, db = getattr(tm, "bool_" if a == "bool" else a), getattr(tm, b)
    assert tm.promote_types(da, db).name == want
    assert tm.result_type(db, da).name == want
    x, y = np.array([1, 0, 1], a), np.array([3, 2, 1], b)
    got = tm.asarray(x) + tm.asarray(y)
    assert got.dtype.name == want
    np.testing.assert_array_equal(got.numpy(), x + y)


def test_promotion_spot_checks():
    assert tm.promote_types(tm.uint8, tm.int8) == tm.int16
    assert tm.promote_types(tm.uint16, tm.int16) == tm.int32
    assert tm.promote_types(tm.uint32, tm.int32) == tm.int64
    assert tm.promote_types(tm.uint64, tm.int8) == tm.float64
    assert tm.promote_types(tm.uint16, tm.uint64) == tm.uint64
    assert tm.can_cast(tm.uint16, tm.int32) and not tm.can_cast(tm.uint32, tm.int32)


@pytest.mark.parametrize("dt", UINTS)
def test_casts(dt):
    f = np.array([0.0, 1.0, 2.75, 1000.5, 65535.0], np.float64)
    np.testing.assert_array_equal(tm.astype(tm.asarray(f), dt).numpy(), f.astype(dt))
    a = _vals(dt)
    np.testing.assert_array_equal(tm.astype(tm.asarray(a), tm.float64).numpy(), a.astype(np.float64))
    np.testing.assert_array_equal(tm.astype(tm.asarray(a), tm.uint8).numpy(), a.astype(np.uint8))
    np.testing.assert_array_equal(tm.astype(tm.asarray(a), tm.int64).numpy(), a.astype(np.int64))
    i = np.array([-1, -2, 5], np.int64)
    np.testing.assert_array_equal(tm.astype(tm.asarray(i), dt).numpy(), i.astype(dt))  # wraps
    np.testing.assert_array_equal(tm.astype(tm.asarray(a), tm.bool_).numpy(), a.astype(bool))


@pytest.mark.parametrize("dt", UINTS)
def test_reductions(dt):
    a = np.arange(1, 13, dtype=dt).reshape(3, 4)
    t = tm.asarray(a)
    np.testing.assert_array_equal(tm.sum(t, axis=1).numpy(), a.sum(axis=1))
    np.testing.assert_array_equal(tm.prod(t, axis=0).numpy(), a.prod(axis=0))
    assert tm.max(t).item() == 12 and tm.min(t).item() == 1
    assert tm.argmax(t).item() == 11
    np.testing.assert_allclose(tm.mean(tm.astype(t, tm.float64)).numpy(), a.mean())
    # uint64 sums stay uint64 and wrap like NumPy's.
    if dt == "uint64":
        big = np.array([2**63, 2**63 + 5, 7], np.uint64)
        s = tm.sum(tm.asarray(big))
        assert s.dtype == tm.uint64 and s.item() == int(big.sum())
        assert tm.max(tm.asarray(big)).item() == 2**63 + 5


@pytest.mark.parametrize("dt", UINTS)
def test_dlpack_and_buffer_round_trip(dt):
    a = _vals(dt)
    t = tm.from_dlpack(a)
    assert t.dtype.name == dt
    b = np.from_dlpack(t)
    assert b.dtype == a.dtype
    np.testing.assert_array_equal(b, a)
    m = memoryview(t)
    assert np.dtype(m.format) == np.dtype(dt) and m.itemsize == np.dtype(dt).itemsize
    np.testing.assert_array_equal(np.frombuffer(m, dtype=dt), a)
    np.testing.assert_array_equal(np.asarray(t), a)


@pytest.mark.parametrize("dt", UINTS)
def test_tolist_item_and_repr(dt):
    a = _vals(dt)
    t = tm.asarray(a)
    assert t.tolist() == [int(v) for v in a]
    assert all(type(v) is int for v in t.tolist())
    assert t[-1].item() == int(np.iinfo(dt).max)
    assert int(t[-1]) == int(np.iinfo(dt).max)
    assert str(int(np.iinfo(dt).max)) in repr(t)
    assert tm.asarray(a.reshape(2, 4)).tolist() == a.reshape(2, 4).tolist()


@pytest.mark.parametrize("dt", UINTS)
def test_bitwise_and_logical_shifts(dt):
    a = _vals(dt)
    t = tm.asarray(a)
    bits = np.iinfo(dt).bits
    np.testing.assert_array_equal((t >> (bits - 1)).numpy(), a >> np.array(bits - 1, dt))
    np.testing.assert_array_equal((t << 1).numpy(), a << np.array(1, dt))
    np.testing.assert_array_equal((~t).numpy(), ~a)
    np.testing.assert_array_equal((t & 0xF0).numpy(), a & np.array(0xF0, dt))
