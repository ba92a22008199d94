import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tmath as tm
from conftest import check

A = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
KEYS = [
    0, -1, 1, (0, 1), (1, 2, 3, 4), (-1, -2), slice(None), slice(1, None), slice(None, None, -1),
    slice(None, None, 2), (slice(None), slice(0, 3, 2)), (Ellipsis, 1), (Ellipsis, slice(None, None, -2)),
    (0, Ellipsis, 2), None, (None, 0), (slice(None), None, 1), (1, None, Ellipsis, None),
    (slice(-3, -1), slice(5, 0, -2)), (slice(10, 20),), (), (0, slice(None), slice(None), 1),
]


@pytest.mark.parametrize("key", KEYS, ids=[repr(k) for k in KEYS])
def test_basic_indexing(key):
    check(tm.asarray(A)[key], A[key])


def test_integer_array_and_mask_indexing():
    a = np.arange(12, dtype=np.int32).reshape(4, 3)
    t = tm.asarray(a)
    check(t[tm.asarray([3, 0, -1])], a[[3, 0, -1]])
    check(t[[1, 1]], a[[1, 1]])
    check(t[np.array([2])], a[np.array([2])])
    mask = a % 2 == 0
    check(t[tm.asarray(mask)], a[mask])
    rows = np.array([True, False, True, False])
    check(t[rows], a[rows])


@pytest.mark.parametrize("key", [
    (slice(None), [0, 2]), (Ellipsis, [3, 0, -1]), (slice(1, None), np.array([0, -1])),
    (slice(None), slice(None), [3]), ([1, 0], Ellipsis), (slice(None, None, -1), [2, 2, 0]),
    (Ellipsis, [[0, 1], [2, 3]]),
], ids=repr)
def test_one_array_among_slices(key):
    check(tm.asarray(A)[key], A[key])
    with pytest.raises(IndexError):
        tm.asarray(A)[(slice(None), [0, 3])]


def test_index_errors():
    t = tm.asarray(A)
    with pytest.raises(IndexError):
        t[2]
    with pytest.raises(IndexError):
        t[0, 0, 0, 0, 0]
    with pytest.raises(IndexError):
        t[tm.asarray([0, 5])]
    with pytest.raises(IndexError):
        t[0, -4]
    with pytest.raises(TypeError):
        t["a"]
    with pytest.raises(TypeError):
        t[1.5]
    with pytest.raises(ValueError):
        t[::0]
    with pytest.raises(IndexError):
        t[2] = 1.0


def _slices(n):
    idx = st.one_of(st.none(), st.integers(-n - 2, n + 2))
    step = st.one_of(st.none(), st.integers(-3, 3).filter(lambda s: s != 0))
    return st.builds(slice, idx, idx, step)


@st.composite
def index_keys(draw, shape):
    key = []
    ndim_used = 0
    for n in shape:
        if draw(st.booleans()):
            key.append(draw(st.integers(-n, n - 1)))
        else:
            key.append(draw(_slices(n)))
        ndim_used += 1
        if draw(st.integers(0, 5)) == 0:
            key.append(None)
    cut = draw(st.integers(0, len(key)))
    key = key[:cut]
    if draw(st.booleans()) and not any(k is Ellipsis for k in key):
        key.insert(draw(st.integers(0, len(key))), Ellipsis)
    return tuple(key)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_indexing_property(data):
    shape = data.draw(st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple))
    a = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    key = data.draw(index_keys(shape))
    try:
        expected = a[key]
    except IndexError:
        with pytest.raises(IndexError):
            tm.asarray(a)[key]
        return
    check(tm.asarray(a)[key], expected)


# ---- advanced indexing: every NumPy combination --------------------------------------

B = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
ADVANCED_KEYS = [
    ([0, 2], [1, 3]),                                   # two arrays, broadcast together
    ([[0], [2]], [1, 3]),                               # (2, 1) with (2,): (2, 2)
    (0, slice(None), [1, 4]),                           # int and array apart: block in front
    (slice(None), 1, [0, 4, 2]),                        # int next to the array: block in place
    ([1, 2], None, [0, 3]),                             # None between arrays: in front
    (None, [1, 2], [0, 3]),                             # None before adjacent arrays
    ([0, 1], Ellipsis, [2, 4]),                         # ellipsis between arrays: in front
    (Ellipsis, [1, 2], [0, 4]),
    (None, 0, Ellipsis, 2, [1, 3]),                     # an ellipsis of no axis still separates
    (slice(1, None), [[0, 1], [3, 2]], slice(None, None, -2)),
    (np.array([True, False, True]), slice(None), 2),    # mask inside a tuple
    (slice(None), np.array([True, False, True, True]), [0, 1, 4]),
    (np.array([[True, False, True, False]] * 3),),     # 2-d mask on the leading axes
    (np.array([[True, False, True, False]] * 3), [1, 0, 4, 2, 3, 1]), # mask + array
    (1, np.array([[True, False, True, False, True]] * 4)),
    (True,), (False,), (None, True, 0),
    (-1, [-1, 0], -2),
    ([], slice(None)),
    (np.array([], dtype=np.int64), 0),
    ([[0, 1, 2]], Ellipsis, [[0], [4]]),
]


def _key_ids(k):
    return repr(k).replace("\n", "")[:60]


@pytest.mark.parametrize("key", ADVANCED_KEYS, ids=[_key_ids(k) for k in ADVANCED_KEYS])
def test_advanced_indexing(key):
    try:
        expected = B[key]
    except IndexError:
        with pytest.raises(IndexError):
            tm.asarray(B)[key]
        return
    check(tm.asarray(B)[key], expected)


def test_advanced_indexing_errors():
    t = tm.asarray(B)
    with pytest.raises(IndexError):  # arrays that do not broadcast together
        t[[0, 1], [0, 1, 2]]
    with pytest.raises(IndexError):  # mask of the wrong length
        t[np.array([True, False])]
    with pytest.raises(IndexError):
        t[0, [0, 9]]
    with pytest.raises(IndexError):
        t[..., 0, ...]
    with pytest.raises(TypeError):
        t[[0.5, 1.0], 0]


@st.composite
def mixed_keys(draw, shape):
    """Keys with ints, slices, None, an ellipsis, integer arrays and boolean masks."""
    key = []
    axis = 0
    while axis < len(shape):
        n = shape[axis]
        kind = draw(st.integers(0, 5))
        if kind == 0:
            key.append(draw(st.integers(-n, n - 1)))
        elif kind == 1:
            key.append(draw(_slices(n)))
        elif kind in (2, 3):
            k = draw(st.integers(1, 3))
            dims = draw(st.sampled_from([(k,), (1, k), (k, 1)]))
            vals = draw(st.lists(st.integers(-n, n - 1), min_size=int(np.prod(dims)),
                                 max_size=int(np.prod(dims))))
            key.append(np.array(vals, dtype=np.int64).reshape(dims))
        elif kind == 4:
            key.append(np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n))))
        else:
            key.append(None)
            continue
        axis += 1
        if draw(st.integers(0, 6)) == 0:
            key.append(None)
    key = key[:draw(st.integers(0, len(key)))]
    if draw(st.booleans()):
        key.insert(draw(st.integers(0, len(key))), Ellipsis)
    return tuple(key)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_advanced_indexing_property(data):
    shape = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple))
    a = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    key = data.draw(mixed_keys(shape))
    try:
        expected = a[key]
    except IndexError:
        with pytest.raises(IndexError):
            tm.asarray(a)[key]
        return
    check(tm.asarray(a)[key], expected)


# ---- __setitem__ ------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.data())
def test_setitem_property(data):
    shape = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple))
    a = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    key = data.draw(st.one_of(index_keys(shape), mixed_keys(shape)))
    try:
        sel = a[key]
    except IndexError:
        t = tm.asarray(a)
        with pytest.raises(IndexError):
            t[key] = 1.0
        check(t, a)  # left intact
        return
    # A scalar, or values of the selection's shape (or a broadcastable trailing part).
    form = data.draw(st.integers(0, 2))
    if form == 0:
        value = -7.5
    elif form == 1:
        value = -1.0 - np.arange(sel.size, dtype=np.float32).reshape(sel.shape)
    else:
        value = -2.0 - np.arange(sel.shape[-1], dtype=np.float32) if sel.ndim else np.float32(-2.0)
    expected = a.copy()
    expected[key] = value
    t = tm.asarray(a)
    t[key] = value if not isinstance(value, np.ndarray) else tm.asarray(value)
    check(t, expected)


def test_setitem_semantics():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = tm.asarray(a)
    alias = t
    view = t[1]
    t[1, ::2] = 100.0
    t[[0, 2], [3, 0]] = tm.asarray([-1.0, -2.0])
    t[t > 10] = 0.0
    expected = a.copy()
    expected[1, ::2] = 100.0
    expected[[0, 2], [3, 0]] = [-1.0, -2.0]
    expected[expected > 10] = 0.0
    check(t, expected)
    assert alias is t  # the same Python object sees the update
    check(view, a[1])  # a tensor taken before keeps its values (no aliasing of views)
    # Values are cast to the tensor's dtype, as in NumPy.
    i = tm.asarray(np.arange(4, dtype=np.int32))
    i[1] = 7.9
    check(i, np.array([0, 7, 2, 3], dtype=np.int32))
    # Repeated positions: the last value wins on the CPU, as in NumPy.
    r = tm.asarray(np.zeros(3, np.float32))
    r[[1, 1, 1]] = tm.asarray([1.0, 2.0, 3.0])
    check(r, np.array([0, 3, 0], np.float32))


def test_setitem_errors_leave_the_tensor_intact():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = tm.asarray(a)
    with pytest.raises(ValueError):
        t[0] = tm.asarray([1.0, 2.0, 3.0])  # (3,) into (4,)
    with pytest.raises(IndexError):
        t[3, 0] = 1.0
    with pytest.raises(IndexError):
        t[[0, 5]] = 1.0
    with pytest.raises(TypeError):
        t[0] = "text"
    check(t, a)


def test_setitem_gradient():
    x = np.array([1.0, 2.0, 3.0], np.float64)

    def f(v):
        w = v * 1.0
        w[1] = v[0] * 3.0
        return tm.sum(w * w)

    g = tm.grad(f)(tm.asarray(x))
    # f = x0^2 + (3 x0)^2 + x2^2
    check(g, np.array([20.0, 0.0, 6.0]))


def test_put_and_put_add():
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    idx = np.array([[0, -1], [5, 5]])
    got = tm.put(tm.asarray(a), tm.asarray(idx), tm.asarray([[10.0, 20.0], [30.0, 30.0]]))
    want = a.copy()
    np.put(want, idx, [10.0, 20.0, 30.0, 30.0])
    check(got, want)
    got = tm.put_add(tm.asarray(a), tm.asarray(idx), 1.5)
    want = a.copy().ravel()
    np.add.at(want, idx.ravel() % 12, 1.5)
    check(got, want.reshape(3, 4))
    check(tm.asarray(a), a)  # the input is unchanged
    with pytest.raises(tm.ShapeError, match="put"):
        tm.put(tm.asarray(a), tm.asarray([12]), 0.0)
    with pytest.raises(tm.ShapeError, match="put"):
        tm.put(tm.asarray(a), tm.asarray([0, 1]), tm.asarray([1.0, 2.0, 3.0]))


def _cuda_reason():
    try:
        tm.zeros((1,), device="cuda:0").eval()
    except Exception as e:  # noqa: BLE001
        return f"tmath has no available cuda backend: {e}"
    return None


@pytest.mark.skipif(_cuda_reason() is not None, reason=str(_cuda_reason()))
@pytest.mark.parametrize("key", ADVANCED_KEYS, ids=[_key_ids(k) for k in ADVANCED_KEYS])
def test_advanced_indexing_and_setitem_on_cuda(key):
    try:
        expected = B[key]
    except IndexError:
        return
    t = tm.asarray(B, device="cuda:0")
    got = t[key]
    assert str(got.device) == "cuda:0"
    check(got, expected)
    want = B.copy()
    want[key] = -1.0 - np.arange(expected.size, dtype=np.float32).reshape(expected.shape)
    t[key] = tm.asarray(-1.0 - np.arange(expected.size, dtype=np.float32).reshape(expected.shape))
    assert str(t.device) == "cuda:0"
    check(t, want)
    acc = tm.put_add(tm.asarray(B, device="cuda:0"), tm.asarray([0, 5, 5, -1]), 2.0)
    flat = B.copy().ravel()
    np.add.at(flat, [0, 5, 5, 59], 2.0)
    check(acc, flat.reshape(B.shape))
