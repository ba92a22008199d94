"""DLPack exchange with JAX and MLX (the NumPy, PyTorch and CuPy peers are in
test_dlpack.py and test_dlpack_cuda.py): shared memory where the peer allows it,
values and dtypes both ways, CPU and (for JAX) CUDA.

Each peer is skipped, with the reason, where it is not installed; JAX runs on the GPU
machine (CPU and CUDA), MLX wherever its CPU wheel is installed (make test installs it).
"""
import numpy as np
import pytest

import tmath as tm

VALUES = np.array([[0, 1, 2, 3], [4, 5, 6, 7], [1, 0, 3, 2]], dtype=np.float32)


@pytest.fixture(scope="module")
def jax():
    try:
        import jax
        import jax.dlpack  # noqa: F401
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"JAX is not importable: {e}")
    return jax


@pytest.fixture(scope="module")
def mx():
    try:
        import mlx.core as mx
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"MLX is not importable: {e}")
    return mx


def _cuda_reason():
    try:
        tm.zeros((1,), device="cuda:0").eval()
    except Exception as e:  # noqa: BLE001
        return f"tmath has no available cuda backend: {e}"
    return None


# ---- JAX ----------------------------------------------------------------------------------

def _jax_device(jax, platform):
    try:
        return jax.devices(platform)[0]
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"JAX has no {platform} device: {e}")


@pytest.mark.parametrize("platform", ["cpu", "gpu"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool"])
def test_jax_to_tmath_zero_copy(jax, platform, dtype):
    if platform == "gpu" and _cuda_reason():
        pytest.skip(_cuda_reason())
    jax.config.update("jax_enable_x64", True)
    dev = _jax_device(jax, platform)
    host = VALUES % 2 == 1 if dtype == "bool" else VALUES.astype(dtype)
    x = jax.device_put(jax.numpy.asarray(host), dev)
    t = tm.from_dlpack(x)
    assert t.dtype.name == dtype
    assert str(t.device) == ("cpu" if platform == "cpu" else "cuda:0")
    assert t.data_ptr() == x.unsafe_buffer_pointer()  # no copy
    np.testing.assert_array_equal(t.numpy(), host)
    # The engine computes on it where it lives, without changing the producer's values.
    if dtype != "bool":
        np.testing.assert_array_equal((t * 2).numpy(), host * 2)
    np.testing.assert_array_equal(np.asarray(x), host)


@pytest.mark.parametrize("platform", ["cpu", "gpu"])
def test_tmath_to_jax(jax, platform):
    if platform == "gpu" and _cuda_reason():
        pytest.skip(_cuda_reason())
    _jax_device(jax, platform)
    t = tm.asarray(VALUES, device="cpu" if platform == "cpu" else "cuda:0") + 1.0
    t.eval()
    x = jax.dlpack.from_dlpack(t)
    assert x.unsafe_buffer_pointer() == t.data_ptr()  # JAX aliases the engine's buffer
    np.testing.assert_array_equal(np.asarray(x), VALUES + 1.0)
    np.testing.assert_array_equal(np.asarray(jax.numpy.sum(x)), (VALUES + 1.0).sum())


# ---- MLX ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int64", "uint8", "bool"])
def test_mlx_to_tmath_zero_copy(mx, dtype):
    vals = VALUES % 2 == 1 if dtype == "bool" else VALUES
    x = mx.array(vals).astype(getattr(mx, "bool_" if dtype == "bool" else dtype))
    mx.eval(x)
    t = tm.from_dlpack(x)
    assert t.dtype.name == dtype
    # MLX's CPU memory is the buffer behind its buffer protocol: the same address.
    if dtype != "bfloat16":  # NumPy has no bfloat16 to view it with
        assert t.data_ptr() == np.asarray(memoryview(x)).__array_interface__["data"][0]
    got = t.astype(tm.float32).numpy() if dtype == "bfloat16" else t.numpy()
    np.testing.assert_array_equal(got, vals.astype(got.dtype))


def test_tmath_to_mlx(mx):
    t = tm.asarray(VALUES) * 3.0
    x = mx.array(t)  # MLX owns its arrays: it copies through the buffer protocol
    np.testing.assert_array_equal(np.array(x), VALUES * 3.0)
    assert x.dtype == mx.float32
    y = mx.array(tm.asarray(np.arange(6, dtype=np.int64)).reshape((2, 3)))
    assert y.shape == (2, 3) and y.dtype == mx.int64
    np.testing.assert_array_equal(np.array(y), np.arange(6).reshape(2, 3))
