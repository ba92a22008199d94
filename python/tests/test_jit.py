"""Fusion and compile from Python, against NumPy and the unfused engine."""
import numpy as np
import pytest

import tmath as tm


def chain10(x):
    for _ in range(5):
        x = tm.tanh(x * 1.01 + 0.5)
    return x


def chain10_np(x):
    for _ in range(5):
        x = np.tanh(x * np.float32(1.01) + np.float32(0.5))
    return x


def test_chain_fuses_into_one_kernel_and_matches_unfused(rng):
    a = rng.standard_normal((64, 50)).astype(np.float32)
    x = tm.asarray(a)
    tm.reset_jit_stats()
    fused = chain10(x).numpy()
    s = tm.jit_stats()
    assert s["fused_kernels"] == 1
    assert s["fused_ops"] == 15
    assert s["queued_ops"] == 0 and s["queue_launches"] == 0  # the CUDA queue only
    tm.set_jit_enabled(False)
    try:
        assert not tm.jit_enabled()
        unfused = chain10(x).numpy()
    finally:
        tm.set_jit_enabled(True)
    np.testing.assert_array_equal(fused, unfused)
    np.testing.assert_allclose(fused, chain10_np(a), rtol=2e-6, atol=2e-6)


def test_compile_traces_once_per_signature(rng):
    calls = []

    def f(x, y):
        calls.append(1)
        return tm.exp(x) * y + 1.0, x - y

    g = tm.compile(f)
    a = rng.standard_normal((8, 3)).astype(np.float32)
    b = rng.standard_normal((8, 3)).astype(np.float32)
    for _ in range(3):
        u, v = g(tm.asarray(a), tm.asarray(b))
    assert len(calls) == 1 and g.traces == 1
    np.testing.assert_allclose(u.numpy(), np.exp(a) * b + 1.0, rtol=1e-6)
    np.testing.assert_allclose(v.numpy(), a - b, rtol=1e-6)
    g(tm.asarray(a[:4]), tm.asarray(b[:4]))  # new shape: a second trace
    assert g.traces == 2


def test_compile_single_output_and_errors(rng):
    g = tm.compile(lambda x: chain10(x))
    a = rng.standard_normal(100).astype(np.float32)
    np.testing.assert_allclose(g(tm.asarray(a)).numpy(), chain10_np(a), rtol=2e-6, atol=2e-6)
    with pytest.raises(TypeError):
        tm.compile(3)
    bad = tm.compile(lambda x: 3)
    with pytest.raises(TypeError, match=r"\[compile\]"):
        bad(tm.asarray(a))
    reads = tm.compile(lambda x: x * float(x.sum().item()))
    with pytest.raises(ValueError, match=r"\[compile\]"):
        reads(tm.asarray(a))


def test_kernel_cache_dir_is_reported():
    assert isinstance(tm.kernel_cache_dir(), str)
