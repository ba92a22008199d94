"""uint16, uint32 and uint64 against NumPy: creation, wrap-around arithmetic, promotion,
casts, reductions, DLPack and buffer round trips, tolist/item and iinfo; and the result
dtypes and wrap-around values of sums, products and their scans of every integer dtype
and bool (uint64 for unsigned inputs, as NumPy 2 and the Array API) on each backend."""
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
    assert tm.sum(t).dtype == tm.uint64 and tm.prod(t).dtype == tm.uint64  # as NumPy 2
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


INTS_AND_BOOL = ["bool", "int8", "int16", "int32", "int64", "uint8"] + UINTS


def _full_range(rng, dt, shape):
    if dt == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, shape, dtype=dt, endpoint=True)


@pytest.fixture(params=["cpu", "torch", "mlx"])
def int_device(request):
    """Runs a test on the cpu backend, on the torch backend (first in the priority) or on
    the mlx device; yields the device to put the inputs on."""
    name = request.param
    saved = tm.backend_priority()
    entry = next((b for b in tm.backends() if b["name"] == name), None)
    if name != "cpu":
        if entry is None or not entry["built"] or not tm.load_backend(name):
            pytest.skip(f"{name} backend not available here")
        tm.set_backend_priority([name])
    try:
        yield "mlx" if name == "mlx" else "cpu"
    finally:
        tm.set_backend_priority(saved)


@pytest.mark.parametrize("dt", INTS_AND_BOOL)
def test_sum_prod_and_scans_follow_numpy(dt, int_device):
    """Default dtypes (int64 for bool and signed ints, uint64 for unsigned) and values,
    full-range inputs whose sums and products wrap around 2^64 as NumPy's do."""
    rng = np.random.default_rng(7)
    a = _full_range(rng, dt, (4, 9))
    t = tm.asarray(a, device=int_device)
    want_dt = "uint64" if np.dtype(dt).kind == "u" else "int64"
    assert np.sum(a).dtype.name == want_dt  # NumPy 2 on this platform
    for name, ref in (("sum", np.sum), ("prod", np.prod)):
        for axis in (None, 0, 1, (0, 1)):
            r = getattr(tm, name)(t, axis=axis)
            want = ref(a, axis=axis)
            assert r.dtype.name == want.dtype.name == want_dt, (name, axis, r.dtype.name)
            np.testing.assert_array_equal(np.asarray(r.to_device("cpu")), want, err_msg=f"{name} {axis}")
    for name, ref in (("cumulative_sum", np.cumulative_sum), ("cumulative_prod", np.cumulative_prod)):
        for axis in (0, 1):
            r = getattr(tm, name)(t, axis=axis)
            want = ref(a, axis=axis)
            assert r.dtype.name == want.dtype.name == want_dt, (name, axis, r.dtype.name)
            np.testing.assert_array_equal(np.asarray(r.to_device("cpu")), want, err_msg=f"{name} {axis}")
    for name, ref in (("cumsum", np.cumsum), ("cumprod", np.cumprod)):
        r = getattr(tm, name)(t)  # flattened
        want = ref(a)
        assert r.dtype.name == want.dtype.name == want_dt
        np.testing.assert_array_equal(np.asarray(r.to_device("cpu")), want, err_msg=name)


def test_unsigned_wrap_around_cases(int_device):
    def on(x):
        return tm.asarray(x, device=int_device)

    def same(r, want):
        assert r.dtype.name == want.dtype.name, (r.dtype.name, want.dtype.name)
        np.testing.assert_array_equal(np.asarray(r.to_device("cpu")), want)

    u32 = np.full(5, 2**32 - 1, np.uint32)  # the sum passes 2^32: uint64, not wrapped at 32 bits
    same(tm.sum(on(u32)), np.sum(u32))
    assert tm.sum(on(u32)).item() == 5 * (2**32 - 1)
    p = np.array([2**32 - 1, 2**32 - 1, 3], np.uint32)  # the product passes 2^64
    same(tm.prod(on(p)), np.prod(p))
    assert tm.prod(on(p)).item() == ((2**32 - 1) ** 2 * 3) % 2**64
    big = np.array([2**63, 2**63 + 5, 7], np.uint64)  # uint64 sum past 2^64
    same(tm.sum(on(big)), np.sum(big))
    assert tm.sum(on(big)).item() == 12
    u8 = np.full(10, 255, np.uint8)  # 255^9 and 255^10 pass 2^64
    same(tm.cumulative_prod(on(u8)), np.cumulative_prod(u8))
    assert tm.cumulative_prod(on(u8)).tolist() == [255**k % 2**64 for k in range(1, 11)]
    u16 = np.array([[65535, 65535], [2, 1]], np.uint16)
    same(tm.cumulative_sum(on(u16), axis=0), np.cumulative_sum(u16, axis=0))
    same(tm.sum(on(u16), axis=1, keepdims=True), np.sum(u16, axis=1, keepdims=True))


@pytest.mark.parametrize("dt", ["bool", "int8", "uint8", "uint16", "uint32", "int64", "uint64", "float32", "float64"])
@pytest.mark.parametrize("src", ["int8", "uint8", "uint32", "bool"])
def test_explicit_dtype_is_the_result_dtype(src, dt, int_device):
    """dtype= gives the result in that dtype, wrapping in it as NumPy accumulates in it."""
    rng = np.random.default_rng(11)
    a = _full_range(rng, src, (3, 5))
    t = tm.asarray(a, device=int_device)
    d = tm.bool_ if dt == "bool" else getattr(tm, dt)
    for name, ref in (("sum", np.sum), ("prod", np.prod), ("cumulative_sum", np.cumulative_sum),
                      ("cumulative_prod", np.cumulative_prod)):
        r = getattr(tm, name)(t, axis=1, dtype=d)
        with np.errstate(over="ignore"):  # float32 products of uint32 values overflow to inf
            want = ref(a, axis=1, dtype=dt)
        assert r.dtype.name == want.dtype.name, (name, r.dtype.name, want.dtype.name)
        got = np.asarray(r.to_device("cpu"))
        if want.dtype.kind == "f":
            np.testing.assert_allclose(got, want, rtol=1e-6 if dt == "float32" else 1e-12)
        else:
            np.testing.assert_array_equal(got, want, err_msg=name)


@pytest.mark.parametrize("dt", ["bool", "int8", "uint8", "uint16", "int32", "uint64", "float32"])
def test_vecdot_keeps_the_promoted_dtype(dt):
    rng = np.random.default_rng(5)
    if dt == "float32":
        a, b = rng.standard_normal((2, 3, 6)).astype(dt)
    else:
        a, b = _full_range(rng, dt, (2, 3, 6))
    for f in (tm.vecdot, tm.linalg.vecdot):
        r = f(tm.asarray(a), tm.asarray(b))
        want = np.vecdot(a, b)
        assert r.dtype.name == want.dtype.name, (f, r.dtype.name, want.dtype.name)
        if dt == "float32":
            np.testing.assert_allclose(r.numpy(), want, rtol=1e-5)
        else:
            np.testing.assert_array_equal(r.numpy(), want)


@pytest.mark.parametrize("dt", ["bool", "int8", "uint8", "uint32", "uint64"])
def test_trace_follows_sum(dt):
    rng = np.random.default_rng(9)
    a = _full_range(rng, dt, (2, 4, 4))
    for kw in ({}, {"offset": 1}, {"dtype": tm.uint8}, {"dtype": tm.int16}):
        npkw = {k: (v if k != "dtype" else v.name) for k, v in kw.items()}
        r = tm.linalg.trace(tm.asarray(a), **kw)
        want = np.linalg.trace(a, **npkw)
        assert r.dtype.name == want.dtype.name, (kw, r.dtype.name, want.dtype.name)
        np.testing.assert_array_equal(r.numpy(), want)


@pytest.mark.parametrize("vals, dt", [([2**63], np.uint64), ([2**64 - 1, 5], np.float64),
                                     ([True, 2**63], np.uint64), ([1, 2**63], np.float64),
                                     ([-1, 2**63], np.float64), ([[2**63, 0], [1, 2]], np.float64),
                                     ([1.5, 2**63], np.float32), ([1j, 2**63], np.complex64)])
def test_nested_lists_with_ints_above_int64_follow_numpy(vals, dt):
    """Ints in [2**63, 2**64) make uint64 (alone or with bools) and float64 with other ints,
    as NumPy 2; with Python floats or complex the engine's default widths apply."""
    want = np.asarray(vals)
    if dt in (np.uint64, np.float64):
        assert want.dtype == dt  # NumPy agrees
    got = np.asarray(tm.asarray(vals))
    assert got.dtype == dt
    np.testing.assert_array_equal(got, want.astype(dt))


def test_nested_ints_beyond_uint64_are_refused():
    with pytest.raises(OverflowError, match="uint64"):
        tm.asarray([1, 2**64])
    with pytest.raises(OverflowError):
        tm.asarray([-(2**63) - 1])
