"""tmath.linalg against NumPy and SciPy (float64 results compared tightly, float32 with
float32 tolerances; decompositions that are unique only up to signs/phases are checked
through reconstructions and NumPy's invariants)."""
import numpy as np
import pytest
import scipy.linalg as sl

import tmath as tm
from conftest import check

la = tm.linalg


def rand(rng, *shape, dtype="float64"):
    a = rng.standard_normal(shape)
    if dtype.startswith("complex"):
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def spd(rng, n, batch=(), dtype="float64"):
    b = rand(rng, *batch, n, n, dtype=dtype)
    return (b @ np.conj(np.swapaxes(b, -1, -2)) + n * np.eye(n)).astype(dtype)


TOL = {"float32": 2e-4, "float64": 1e-10, "complex64": 2e-4, "complex128": 1e-10}


@pytest.mark.parametrize("dt", ["float32", "float64", "complex64", "complex128"])
def test_solve_inv_det_slogdet(dt, rng):
    a = rand(rng, 3, 4, 4, dtype=dt) + 4 * np.eye(4, dtype=dt)
    b = rand(rng, 3, 4, 2, dtype=dt)
    t = TOL[dt]
    check(la.solve(tm.asarray(a), tm.asarray(b)), np.linalg.solve(a, b), rtol=t, atol=t)
    check(la.inv(tm.asarray(a)), np.linalg.inv(a), rtol=t, atol=t)
    check(la.det(tm.asarray(a)), np.linalg.det(a), rtol=t, atol=t)
    sign, logabs = la.slogdet(tm.asarray(a))
    ns, nl = np.linalg.slogdet(a)
    check(sign, ns, rtol=t, atol=t)
    check(logabs, nl, rtol=t, atol=t)


@pytest.mark.parametrize("dt", ["float32", "float64", "complex128"])
def test_cholesky_eigh_eigvalsh(dt, rng):
    a = spd(rng, 5, (2,), dt)
    t = TOL[dt]
    check(la.cholesky(tm.asarray(a)), np.linalg.cholesky(a), rtol=t, atol=t * 10)
    check(la.cholesky(tm.asarray(a), upper=True), np.linalg.cholesky(a, upper=True), rtol=t,
          atol=t * 10)
    w, v = la.eigh(tm.asarray(a))
    nw, _ = np.linalg.eigh(a)
    check(w, nw, rtol=t, atol=t * 10)
    v = v.numpy()
    np.testing.assert_allclose(a @ v, v * nw[..., None, :], rtol=t * 10, atol=t * 100)
    check(la.eigvalsh(tm.asarray(a), UPLO="U"), np.linalg.eigvalsh(a, UPLO="U"), rtol=t,
          atol=t * 10)


@pytest.mark.parametrize("mode", ["reduced", "complete", "r"])
@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (2, 4, 4)])
def test_qr(mode, shape, rng):
    a = rand(rng, *shape)
    r = la.qr(tm.asarray(a), mode=mode)
    nr = np.linalg.qr(a, mode=mode)
    if mode == "r":
        np.testing.assert_allclose(np.abs(r.numpy()), np.abs(nr), atol=1e-12)
        return
    q, rr = r[0].numpy(), r[1].numpy()
    assert q.shape == nr[0].shape and rr.shape == nr[1].shape
    np.testing.assert_allclose(q @ rr, a, atol=1e-12)
    np.testing.assert_allclose(np.abs(rr), np.abs(nr[1]), atol=1e-12)


@pytest.mark.parametrize("full", [True, False])
@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (3, 5, 5)])
def test_svd(full, shape, rng):
    a = rand(rng, *shape)
    u, s, vh = la.svd(tm.asarray(a), full_matrices=full)
    nu, ns, nvh = np.linalg.svd(a, full_matrices=full)
    assert u.shape == nu.shape and vh.shape == nvh.shape
    check(s, ns, rtol=1e-12, atol=1e-12)
    k = ns.shape[-1]
    un, vn = u.numpy()[..., :k], vh.numpy()[..., :k, :]
    np.testing.assert_allclose((un * ns[..., None, :]) @ vn, a, atol=1e-12)
    check(la.svd(tm.asarray(a), compute_uv=False), ns, rtol=1e-12, atol=1e-12)
    check(la.svdvals(tm.asarray(a)), ns, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dt", ["float32", "float64", "complex64", "complex128"])
def test_eig_eigvals(dt, rng):
    a = rand(rng, 3, 6, 6, dtype=dt)
    w, v = la.eig(tm.asarray(a))
    cdt = "complex128" if dt in ("float64", "complex128") else "complex64"
    assert w.dtype.name == cdt and v.dtype.name == cdt
    w, v = w.numpy(), v.numpy()
    t = 1e-10 if cdt == "complex128" else 1e-4
    np.testing.assert_allclose(a @ v, v * w[..., None, :], atol=t)
    np.testing.assert_allclose(np.linalg.norm(v, axis=-2), 1, atol=t)
    nw = np.linalg.eigvals(a)
    np.testing.assert_allclose(np.sort_complex(la.eigvals(tm.asarray(a)).numpy()),
                               np.sort_complex(nw.astype(cdt)), atol=t * 10)


def test_lu_family(rng):
    a = rand(rng, 5, 5)
    p, l, u = la.lu(tm.asarray(a))
    sp, sl_, su = sl.lu(a)
    check(p, sp, rtol=0, atol=0)
    check(l, sl_, rtol=1e-12, atol=1e-12)
    check(u, su, rtol=1e-12, atol=1e-12)
    lu, piv = la.lu_factor(tm.asarray(a))
    slu, spiv = sl.lu_factor(a)
    check(lu, slu, rtol=1e-12, atol=1e-12)
    assert piv.dtype.name == "int32"
    np.testing.assert_array_equal(piv.numpy(), spiv)
    b = rand(rng, 5, 2)
    check(la.lu_solve((lu, piv), tm.asarray(b)), sl.lu_solve((slu, spiv), b), rtol=1e-10,
          atol=1e-12)
    # Rectangular and batched.
    r = rand(rng, 2, 6, 4)
    p, l, u = la.lu(tm.asarray(r))
    np.testing.assert_allclose(p.numpy() @ l.numpy() @ u.numpy(), r, atol=1e-12)


def test_matrix_exp(rng):
    for scale in (0.01, 1.0, 30.0):
        a = rand(rng, 4, 4) * scale / 4
        check(la.matrix_exp(tm.asarray(a)), sl.expm(a), rtol=1e-11, atol=1e-12)
    a = rand(rng, 3, 5, 5, dtype="complex128")
    check(la.matrix_exp(tm.asarray(a)), sl.expm(a), rtol=1e-11, atol=1e-12)
    a32 = rand(rng, 5, 5, dtype="float32")
    check(la.matrix_exp(tm.asarray(a32)), sl.expm(a32.astype("float64")).astype("float32"),
          rtol=2e-5, atol=2e-5)


def test_lstsq_pinv_rank_norm_cond(rng):
    a = rand(rng, 7, 3)
    b = rand(rng, 7)
    x, res, rank, s = la.lstsq(tm.asarray(a), tm.asarray(b))
    nx, nres, nrank, ns = np.linalg.lstsq(a, b)
    check(x, nx, rtol=1e-10, atol=1e-12)
    check(res, nres, rtol=1e-10, atol=1e-12)
    assert rank == nrank
    check(s, ns, rtol=1e-12, atol=1e-12)
    check(la.pinv(tm.asarray(a)), np.linalg.pinv(a), rtol=1e-10, atol=1e-12)
    d = np.diag([1.0, 1e-3, 0.0])
    assert la.matrix_rank(tm.asarray(d)).item() == np.linalg.matrix_rank(d)
    m = rand(rng, 4, 4)
    for ord in [None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf]:
        check(la.norm(tm.asarray(m), ord), np.linalg.norm(m, ord), rtol=1e-12, atol=1e-12)
    v = rand(rng, 6)
    for ord in [None, 1, 2, 3, 0, np.inf, -np.inf]:
        check(la.norm(tm.asarray(v), ord), np.linalg.norm(v, ord), rtol=1e-12, atol=1e-12)
    check(la.vector_norm(tm.asarray(m)), np.linalg.vector_norm(m), rtol=1e-12)
    check(la.vector_norm(tm.asarray(m), axis=0, ord=1), np.linalg.vector_norm(m, axis=0, ord=1),
          rtol=1e-12)
    check(la.matrix_norm(tm.asarray(m), ord="nuc"), np.linalg.matrix_norm(m, ord="nuc"),
          rtol=1e-12)
    for p in [None, 2, -2, "fro", 1, np.inf]:
        check(la.cond(tm.asarray(m), p), np.linalg.cond(m, p), rtol=1e-10)


def test_small_ops(rng):
    a = rand(rng, 2, 4, 4)
    check(la.trace(tm.asarray(a)), np.trace(a, axis1=-2, axis2=-1), rtol=1e-12)
    check(la.diagonal(tm.asarray(a), offset=1), np.diagonal(a, 1, -2, -1), rtol=0)
    check(la.matrix_power(tm.asarray(a), 3), np.linalg.matrix_power(a, 3), rtol=1e-11)
    check(la.matrix_power(tm.asarray(a + 4 * np.eye(4)), -2),
          np.linalg.matrix_power(a + 4 * np.eye(4), -2), rtol=1e-10, atol=1e-12)
    x, y = rand(rng, 3), rand(rng, 5)
    check(la.outer(tm.asarray(x), tm.asarray(y)), np.outer(x, y), rtol=1e-15)
    u, w = rand(rng, 4, 3), rand(rng, 4, 3)
    check(la.cross(tm.asarray(u), tm.asarray(w)), np.linalg.cross(u, w), rtol=1e-12, atol=1e-14)
    check(la.vecdot(tm.asarray(u), tm.asarray(w)), np.linalg.vecdot(u, w), rtol=1e-12)
    ms = [rand(rng, 3, 5), rand(rng, 5, 2), rand(rng, 2, 4)]
    check(la.multi_dot([tm.asarray(m) for m in ms]), np.linalg.multi_dot(ms), rtol=1e-12)
    t = rand(rng, 4, 4)
    bb = rand(rng, 4)
    check(la.solve_triangular(tm.asarray(t), tm.asarray(bb), lower=True),
          sl.solve_triangular(t, bb, lower=True), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
def test_low_precision_computed_in_float32(dt, rng):
    a = rand(rng, 4, 4) + 4 * np.eye(4)
    x = tm.asarray(a.astype("float32")).astype(getattr(tm, dt))
    u, s, vh = la.svd(x, full_matrices=False)
    assert u.dtype.name == dt and s.dtype.name == dt
    # The float32-recomputed residual of the rounded input meets a low-precision bound.
    a_r = x.astype(tm.float32).numpy().astype("float64")
    rec = (u.astype(tm.float32).numpy() * s.astype(tm.float32).numpy()) @ vh.astype(
        tm.float32).numpy()
    eps = 2.0 ** -8 if dt == "float16" else 2.0 ** -5
    assert np.abs(rec - a_r).max() <= 10 * eps * np.abs(a_r).max()
    w, v = la.eig(x)
    assert w.dtype.name == "complex64"
    check(la.matrix_exp(x * 0.1).astype(tm.float32), sl.expm(a_r * 0.1).astype("float32"),
          rtol=0, atol=50 * eps, dtype=False)


def test_errors():
    with pytest.raises(tm.LinAlgError, match=r"batch index \(1,\)"):
        la.inv(tm.asarray(np.array([np.eye(2), np.zeros((2, 2))]))).numpy()
    with pytest.raises(tm.LinAlgError):
        la.cholesky(tm.asarray(-np.eye(3))).numpy()
    with pytest.raises(ValueError):  # ShapeError is a ValueError
        la.eig(tm.asarray(np.ones((2, 3))))
    with pytest.raises(tm.LinAlgError, match="NaN or Inf"):
        la.svd(tm.asarray(np.array([[1.0, np.nan], [0, 1]])))[1].numpy()
    with pytest.raises(tm.LinAlgError):
        la.matrix_exp(tm.asarray(np.array([[np.inf, 0], [0, 1.0]]))).numpy()
    with pytest.raises(ValueError):
        la.qr(tm.asarray(np.eye(2)), mode="full")
