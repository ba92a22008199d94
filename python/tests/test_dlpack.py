"""Zero-copy exchange with NumPy through DLPack and the buffer protocol."""
import numpy as np
import pytest

import tmath as tm


def ptr(a):
    return a.__array_interface__["data"][0]


def test_from_dlpack_numpy_shares_memory():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = tm.from_dlpack(a)
    assert t.shape == (2, 3) and t.dtype == tm.float32
    back = t.numpy()
    assert ptr(back) == ptr(a)  # same data pointer
    a[0, 1] = 42.0  # NumPy write is visible in tmath
    assert t[0, 1].item() == 42.0
    back[1, 2] = -7.0  # write through the exported view is visible in NumPy
    assert a[1, 2] == -7.0


def test_from_dlpack_strided_and_offset():
    base = np.arange(40, dtype=np.float64).reshape(5, 8)
    v = base[1:4, ::3]
    t = tm.from_dlpack(v)
    np.testing.assert_array_equal(t.numpy(), v)
    np.testing.assert_array_equal((t * 2).numpy(), v * 2)
    r = base[::-1]
    np.testing.assert_array_equal(tm.from_dlpack(r).numpy(), r)


def test_from_dlpack_keeps_producer_alive():
    a = np.arange(1000, dtype=np.int32)
    t = tm.from_dlpack(a)
    del a
    import gc

    gc.collect()
    assert t.sum().item() == sum(range(1000))


def test_tensor_dlpack_export_to_numpy():
    t = tm.arange(12, dtype=tm.int64).reshape(3, 4)
    assert t.__dlpack_device__() == (1, 0)
    a = np.from_dlpack(t)
    np.testing.assert_array_equal(a, np.arange(12).reshape(3, 4))
    assert ptr(a) == ptr(t.numpy())
    # Views export with their strides.
    v = t[:, ::2]
    np.testing.assert_array_equal(np.from_dlpack(v), np.arange(12).reshape(3, 4)[:, ::2])
    assert ptr(np.from_dlpack(v)) == ptr(np.from_dlpack(t))


def test_dlpack_versioned_capsule():
    t = tm.ones((3,))
    cap = t.__dlpack__(max_version=(1, 0))
    assert type(cap).__name__ == "PyCapsule"
    cap0 = t.__dlpack__()
    assert type(cap0).__name__ == "PyCapsule"
    # copy=True exports a private copy; copy=False/None share the buffer.
    a = np.from_dlpack(t, copy=True)
    assert ptr(a) != ptr(t.numpy())
    np.testing.assert_array_equal(a, np.ones(3, np.float32))
    assert ptr(np.from_dlpack(t, copy=False)) == ptr(t.numpy())


@pytest.mark.parametrize("dt", ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                                "uint64", "float16", "float32",
                                "float64", "complex64", "complex128"])
def test_dlpack_dtypes_roundtrip(dt):
    a = (np.arange(5) % 3).astype(dt)
    t = tm.from_dlpack(a)
    assert t.dtype.name == dt
    b = np.from_dlpack(t)
    assert b.dtype == a.dtype and ptr(b) == ptr(a)
    np.testing.assert_array_equal(b, a)


def test_asarray_default_shares_and_copy_true_copies():
    a = np.ones(4, np.float32)
    assert ptr(tm.asarray(a).numpy()) == ptr(a)
    assert ptr(tm.asarray(a, copy=True).numpy()) != ptr(a)
    assert ptr(tm.from_dlpack(a, copy=True).numpy()) != ptr(a)


def test_engine_never_writes_into_imported_memory():
    a = np.ones(8, np.float32)
    r = tm.exp(tm.from_dlpack(a))  # the import is the only holder: must not be donated
    r.eval()
    np.testing.assert_array_equal(a, np.ones(8, np.float32))


def test_readonly_numpy_import():
    a = np.arange(4.0)
    a.setflags(write=False)
    t = tm.asarray(a)
    assert t.sum().item() == 6.0


def test_buffer_protocol_zero_copy():
    t = tm.arange(6, dtype=tm.float32).reshape(2, 3)
    m = memoryview(t)
    assert m.shape == (2, 3) and m.strides == (12, 4) and m.format == "f"
    assert m.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    a = np.frombuffer(t, dtype=np.float32)
    assert ptr(a) == ptr(t.numpy())
    # Strided views export their strides; consumers asking for C-contiguity get BufferError.
    mv = memoryview(t.T)
    assert mv.strides == (4, 12) and mv.tolist() == [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
    with pytest.raises(BufferError):
        np.frombuffer(t.T, dtype=np.float32)
    with pytest.raises(BufferError):
        memoryview(tm.ones((2,), dtype=tm.bfloat16))
    assert memoryview(tm.asarray([True, False])).tolist() == [True, False]
    assert memoryview(tm.asarray([1 + 2j], dtype=tm.complex128)).format == "Zd"


def test_data_ptr_and_native_stream_on_cpu():
    a = np.arange(6, dtype=np.float32)
    t = tm.from_dlpack(a)
    assert t.data_ptr() == ptr(a)
    assert t[2:].data_ptr() == ptr(a) + 8  # views keep their offset
    assert tm.native_stream("cpu") == 0  # the CPU backend queues nothing
    tm.synchronize("cpu")


def _has_cuda():
    try:
        tm.zeros((1,), device="cuda").eval()
        return True
    except tm.Error:
        return False


class _FakeProducer:
    def __init__(self, device):
        self.device = device

    def __dlpack_device__(self):
        return self.device

    def __dlpack__(self, **kwargs):
        raise AssertionError("__dlpack__ must not be called")


def test_cuda_producer_without_cuda_backend():
    if _has_cuda():
        pytest.skip("a cuda backend is available (tests/test_dlpack_cuda.py covers CUDA)")
    with pytest.raises(tm.DeviceError, match="cuda:0"):
        tm.from_dlpack(_FakeProducer((2, 0)))


def test_dlpack_import_from_unsupported_device():
    with pytest.raises(NotImplementedError, match="device type 14"):
        tm.asarray(_FakeProducer((14, 0)))  # kDLMetal
