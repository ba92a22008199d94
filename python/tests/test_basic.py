import math

import numpy as np
import pytest

import tmath as tm
from conftest import NP_DTYPES, check, tmdt


def test_import_and_version():
    assert tm.__array_api_version__ == "2023.12"
    assert isinstance(tm.float32, tm.dtype)
    assert tm.float32.name == "float32" and repr(tm.float32) == "tmath.float32"
    assert tm.bool is tm.bool_


def test_dtype_objects():
    assert tm.float32 == tm.float32 and tm.float32 != tm.float64
    assert tm.float32 == "float32"
    assert hash(tm.int8) == hash(tm.int8)
    assert tm.float16.itemsize == 2 and tm.complex128.itemsize == 16
    assert tm.isdtype(tm.int8, "integral") and not tm.isdtype(tm.float32, "integral")
    assert tm.isdtype(tm.float32, ("real floating", "complex floating"))
    x = tm.zeros((2,), dtype=tm.int16)
    assert x.dtype is tm.int16
    import pickle

    assert pickle.loads(pickle.dumps(tm.float32)) is tm.float32
    assert pickle.loads(pickle.dumps(tm.bool)) is tm.bool


def test_tensor_unhashable_and_none_comparison():
    t = tm.ones((3,))
    with pytest.raises(TypeError):
        hash(t)
    assert (t == None) is False and (t != None) is True  # noqa: E711
    with pytest.raises(TypeError):
        t + None


@pytest.mark.parametrize("name", NP_DTYPES)
def test_asarray_numpy_roundtrip(name, rng):
    a = (rng.standard_normal((3, 4)) * 10).astype(name)
    t = tm.asarray(a)
    assert t.dtype.name == name
    assert t.shape == (3, 4) and t.ndim == 2 and t.size == 12
    check(t, a)


def test_asarray_nested_lists():
    check(tm.asarray([[1, 2, 3], [4, 5, 6]]), np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int64))
    # Python floats give the default floating dtype float32.
    check(tm.asarray([1.5, 2.0]), np.array([1.5, 2.0], dtype=np.float32))
    check(tm.asarray([True, False]), np.array([True, False]))
    check(tm.asarray([1, 2.5]), np.array([1, 2.5], dtype=np.float32))
    check(tm.asarray([1j, 2]), np.array([1j, 2], dtype=np.complex64))
    check(tm.asarray([[1, 2]], dtype=tm.float64), np.array([[1, 2]], dtype=np.float64))
    check(tm.asarray((1, 2), dtype="int8"), np.array([1, 2], dtype=np.int8))
    check(tm.asarray([]), np.array([], dtype=np.float32))
    check(tm.asarray([[], []]), np.zeros((2, 0), dtype=np.float32))
    check(tm.asarray([np.float32(1.5), np.int64(2)]), np.array([1.5, 2.0], dtype=np.float32))
    check(tm.asarray([tm.asarray([1, 2]), tm.asarray([3, 4])]), np.array([[1, 2], [3, 4]]))
    big = 2**62
    assert tm.asarray([big]).item() == big


def test_asarray_scalars():
    t = tm.asarray(3)
    assert t.shape == () and t.dtype == tm.int64 and t.item() == 3
    assert tm.asarray(2.5).dtype == tm.float32
    assert tm.asarray(True).dtype == tm.bool
    assert tm.asarray(1 + 2j).item() == 1 + 2j
    assert tm.asarray(2.5, dtype=tm.float64).item() == 2.5


def test_array_copies(rng):
    a = rng.standard_normal(5).astype(np.float32)
    t = tm.array(a)
    a[0] = 100.0
    assert t[0].item() != 100.0
    s = tm.asarray(a)  # shares memory
    a[1] = 200.0
    assert s[1].item() == 200.0


def test_creation():
    check(tm.zeros((2, 3)), np.zeros((2, 3), dtype=np.float32))
    check(tm.ones(4, dtype=tm.int32), np.ones(4, dtype=np.int32))
    check(tm.full((2, 2), 7), np.full((2, 2), 7, dtype=np.int64))
    check(tm.full((2,), 1.5, dtype=tm.float64), np.full((2,), 1.5))
    assert tm.empty((3, 2)).shape == (3, 2)
    check(tm.arange(5), np.arange(5))
    check(tm.arange(1, 10, 3), np.arange(1, 10, 3))
    check(tm.arange(0.0, 1.0, 0.25), np.arange(0.0, 1.0, 0.25, dtype=np.float32))
    check(tm.arange(10, 0, -3), np.arange(10, 0, -3))
    check(tm.linspace(0, 1, 5), np.linspace(0, 1, 5, dtype=np.float32))
    check(tm.linspace(0, 1, 4, endpoint=False, dtype=tm.float64), np.linspace(0, 1, 4, endpoint=False))
    check(tm.eye(3), np.eye(3, dtype=np.float32))
    check(tm.eye(3, 4, k=1, dtype=tm.int64), np.eye(3, 4, k=1, dtype=np.int64))
    x = tm.asarray([[1.0, 2.0]])
    check(tm.zeros_like(x), np.zeros((1, 2), np.float32))
    check(tm.ones_like(x, dtype=tm.int8), np.ones((1, 2), np.int8))
    check(tm.full_like(x, 3), np.full((1, 2), 3, np.float32))


def test_device_type_names_each_kind():
    # Device objects need no backend to exist: every kind reports its own type.
    for spec, kind, index in [("cpu", "cpu", 0), ("cuda:1", "cuda", 1), ("mlx", "mlx", 0)]:
        d = tm.Device(spec)
        assert d.type == kind and d.index == index and str(d) == spec


def test_properties_and_conversions():
    t = tm.asarray([[1, 2], [3, 4]], dtype=tm.float32)
    assert t.shape == (2, 2) and t.ndim == 2 and t.size == 4 and t.itemsize == 4 and t.nbytes == 16
    assert str(t.device) == "cpu" and t.device == "cpu" and t.device == tm.Device("cpu")
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert tm.asarray([True, False]).tolist() == [True, False]
    assert tm.asarray([1, 2]).tolist() == [1, 2] and isinstance(tm.asarray([1]).tolist()[0], int)
    assert tm.asarray(5).tolist() == 5
    assert float(tm.asarray(2.5)) == 2.5 and int(tm.asarray(7)) == 7 and bool(tm.asarray(True))
    assert complex(tm.asarray(1 + 1j)) == 1 + 1j
    assert len(t) == 2
    assert [r.tolist() for r in t] == [[1.0, 2.0], [3.0, 4.0]]
    assert list(range(10))[tm.asarray(3)] == 3  # __index__
    with pytest.raises(ValueError):
        bool(t)
    with pytest.raises(TypeError):
        float(t)


def test_repr_shows_values():
    t = tm.asarray([1.5, 2.5])
    r = repr(t)
    assert "1.5" in r and "2.5" in r and "float32" in r
    lazy = tm.exp(tm.zeros((2,)))
    assert "1" in repr(lazy)


def test_eval_and_lazy():
    x = tm.asarray([1.0, 2.0])
    y = x * 2 + 1
    assert y.eval() is y
    assert y.is_evaluated
    z = tm.exp(x)
    tm.eval(z, y)
    assert z.is_evaluated
    with tm.eager():
        assert tm.eager_mode()
        w = x + 1
        assert w.is_evaluated
    check(w, np.array([2.0, 3.0], np.float32))


def test_numpy_and_array_protocol():
    t = tm.asarray([[1, 2], [3, 4]], dtype=tm.int32)
    a = np.asarray(t)
    assert a.dtype == np.int32 and a.tolist() == [[1, 2], [3, 4]]
    b = np.array(t, dtype=np.float64)
    assert b.dtype == np.float64
    # numpy() of a transposed view keeps the strides (no copy).
    tt = t.T
    assert tt.numpy().tolist() == [[1, 3], [2, 4]]
    # bfloat16 comes back as float32.
    assert tm.asarray([1.0, 2.0], dtype=tm.bfloat16).numpy().dtype == np.float32


def test_astype():
    t = tm.asarray([1.7, -2.2, 3.0])
    check(t.astype(tm.int32), np.array([1.7, -2.2, 3.0], np.float32).astype(np.int32))
    check(t.astype("float64"), np.array([1.7, -2.2, 3.0], np.float32).astype(np.float64))
    check(t.astype(np.float16), np.array([1.7, -2.2, 3.0], np.float32).astype(np.float16), rtol=1e-3)
    assert t.astype(tm.float32, copy=False) is not None


def test_random_keys():
    k = tm.random.key(0)
    a = tm.random.normal(k, (1000,))
    b = tm.random.normal(k, (1000,))
    assert np.array_equal(a.numpy(), b.numpy())
    k1, k2 = tm.random.split(k)
    assert k1 != k2
    c = tm.random.normal(k1, (1000,))
    assert not np.array_equal(a.numpy(), c.numpy())
    u = tm.random.uniform(k2, (10000,), low=2.0, high=3.0).numpy()
    assert u.min() >= 2.0 and u.max() < 3.0 and abs(u.mean() - 2.5) < 0.02
    n = tm.random.normal(tm.random.fold_in(k, 7), (20000,), dtype=tm.float64).numpy()
    assert n.dtype == np.float64 and abs(n.mean()) < 0.05 and abs(n.std() - 1) < 0.05
    i = tm.random.integers(k, (1000,), 3, 9).numpy()
    assert i.dtype == np.int64 and i.min() >= 3 and i.max() < 9
    bern = tm.random.bernoulli(k, (10000,), 0.25).numpy()
    assert bern.dtype == np.bool_ and abs(bern.mean() - 0.25) < 0.03
    assert tm.random.uniform(shape=(3,)).shape == (3,)  # default generator


def test_memory_and_policies():
    s = tm.memory_stats()
    assert "active_bytes" in s and s["allocations"] >= 0
    tm.empty_cache()
    assert tm.matmul_precision() in ("highest", "high", "medium")
    assert str(tm.default_device()) == "cpu"
    with tm.autocast(tm.bfloat16):
        assert tm.autocast_dtype() == tm.bfloat16
    assert tm.autocast_dtype() is None


def test_array_namespace():
    t = tm.asarray([1.0])
    assert t.__array_namespace__() is tm
