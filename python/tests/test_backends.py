"""Backend registry, selection and the on-demand torch backend from Python."""
import numpy as np
import pytest

import tmath


def _entry(name):
    return next((b for b in tmath.backends() if b["name"] == name), None)


@pytest.fixture
def priority():
    saved = tmath.backend_priority()
    yield
    tmath.set_backend_priority(saved)


def test_backends_lists_cpu_first_class_entries():
    cpu = _entry("cpu")
    assert cpu is not None and cpu["available"] and cpu["built"]
    assert cpu["device_type"] == "cpu"
    assert "OpenBLAS" in cpu["libraries"]
    names = [b["name"] for b in tmath.backends()]
    assert names == tmath.backend_priority()


def test_load_backend_rejects_unknown_names():
    with pytest.raises(ValueError, match="load_backend"):
        tmath.load_backend("no-such-backend")
    assert tmath.load_backend("cpu") is True


def test_fallback_policy_round_trip_and_bad_value():
    saved = tmath.fallback_policy()
    try:
        tmath.set_fallback_policy("error")
        assert tmath.fallback_policy() == "error"
        with pytest.raises(ValueError, match="set_fallback_policy"):
            tmath.set_fallback_policy("sometimes")
        assert tmath.fallback_policy() == "error"
    finally:
        tmath.set_fallback_policy(saved)


def test_torch_backend_matches_numpy(priority):
    entry = _entry("torch")
    if entry is None or not entry["built"]:
        pytest.skip("torch backend not built here")
    assert tmath.load_backend("torch") is True
    entry = _entry("torch")
    assert entry["available"] and "LibTorch" in entry["libraries"]
    tmath.set_backend_priority(["torch"])
    assert tmath.backend_priority()[0] == "torch"
    rng = np.random.default_rng(3)
    a = rng.standard_normal((33, 17)).astype(np.float32)
    b = rng.standard_normal((17, 9)).astype(np.float32)
    tmath.reset_dispatch_stats()
    x, y = tmath.asarray(a), tmath.asarray(b)
    h = tmath.tanh(x @ y + 0.5)
    s = tmath.softmax(h, axis=-1)
    got = np.asarray(tmath.sum(s * h, axis=0))
    hn = np.tanh(a @ b + 0.5)
    sn = np.exp(hn - hn.max(-1, keepdims=True))
    sn /= sn.sum(-1, keepdims=True)
    np.testing.assert_allclose(got, (sn * hn).sum(0), rtol=2e-5, atol=2e-6)
    assert tmath.dispatch_stats()["fallbacks"] == 0
