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
    with pytest.raises(TypeError):
        t[0] = 1.0


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
