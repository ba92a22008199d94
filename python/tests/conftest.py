import numpy as np
import pytest

import tmath as tm

# dtypes NumPy can represent, with their NumPy names.
NP_DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16",
             "float32", "float64",
             "complex64", "complex128"]


def tmdt(name):
    return getattr(tm, "bool_" if name == "bool" else name)


def check(t, expected, rtol=1e-6, atol=1e-6, dtype=True):
    """Compares a tmath tensor with a NumPy array: shape, dtype (by name) and values."""
    assert isinstance(t, tm.Tensor), type(t)
    expected = np.asarray(expected)
    got = t.numpy()
    assert got.shape == expected.shape, (got.shape, expected.shape)
    if dtype:
        assert t.dtype.name == expected.dtype.name, (t.dtype.name, expected.dtype.name)
    if expected.dtype.kind in "fc":
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, expected)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
