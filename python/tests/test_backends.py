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


def test_cost_policy_measures_the_candidates_and_keeps_results(priority):
    entry = _entry("torch")
    if entry is None or not entry["built"] or not tmath.load_backend("torch"):
        pytest.skip("needs a second cpu-device backend (torch) to choose from")
    saved = tmath.selection_policy()
    with pytest.raises(ValueError, match="set_selection_policy"):
        tmath.set_selection_policy("fastest")
    try:
        tmath.set_backend_priority(["torch", "cpu"])
        tmath.set_selection_policy("cost")
        assert tmath.selection_policy() == "cost"
        tmath.reset_cost_table()
        tmath.reset_dispatch_stats()
        a = np.linspace(-3, 3, 4096, dtype=np.float32)
        x = tmath.asarray(a)
        for _ in range(8):
            np.testing.assert_allclose(np.asarray(tmath.tanh(x)), np.tanh(a), rtol=2e-6, atol=1e-6)
        rows = [r for r in tmath.cost_table() if r["op"] == "tanh" and r["dtype"] == "float32"]
        assert len(rows) == 1 and rows[0]["size_class"] == 12
        row = rows[0]
        assert set(row["ms"]) == {"torch", "cpu"}
        assert row["chosen"] == min(row["ms"], key=row["ms"].get)
        assert tmath.dispatch_stats()["cost_calibrations"] >= 6
    finally:
        tmath.set_selection_policy(saved)
        tmath.reset_cost_table()
