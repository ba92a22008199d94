"""Autodiff from Python: transforms against NumPy finite differences and analytic formulas."""

import numpy as np
import pytest

import tmath as tm


def fd_grad(f, x, h=1e-6):
    """Central finite differences of a scalar NumPy function (float64)."""
    x = np.asarray(x, dtype=np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        p, m = x.copy(), x.copy()
        p[i] += h
        m[i] -= h
        g[i] = (f(p) - f(m)) / (2 * h)
    return g


def T(a, dtype=tm.float64):
    return tm.asarray(np.asarray(a), dtype=dtype)


def test_grad_matches_finite_differences(rng):
    x = rng.normal(size=(3, 4))
    w = rng.normal(size=(4, 2))

    def f_tm(a, b):
        return tm.sum(tm.tanh(tm.matmul(a, b)) ** 2)

    def f_np(a, b):
        return np.sum(np.tanh(a @ b) ** 2)

    gx, gw = tm.grad(f_tm, argnums=(0, 1))(T(x), T(w))
    np.testing.assert_allclose(gx.numpy(), fd_grad(lambda a: f_np(a, w), x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gw.numpy(), fd_grad(lambda b: f_np(x, b), w), rtol=1e-6, atol=1e-8)
    v, g = tm.value_and_grad(f_tm)(T(x), T(w))
    assert abs(v.item() - f_np(x, w)) < 1e-12
    np.testing.assert_allclose(g.numpy(), gx.numpy())


@pytest.mark.parametrize("dtype,tol", [(tm.float32, 2e-3), (tm.float16, 5e-2)])
def test_grad_low_precision(rng, dtype, tol):
    x = rng.uniform(0.5, 1.5, size=(5,))
    xr = T(x, dtype).numpy().astype(np.float64)
    g = tm.grad(lambda a: tm.sum(tm.log(a) * a))(T(x, dtype))
    assert g.dtype == dtype
    np.testing.assert_allclose(g.numpy().astype(np.float64), np.log(xr) + 1, rtol=tol, atol=tol)


def test_vjp_and_jvp(rng):
    x = rng.normal(size=(4,))
    out, pull = tm.vjp(lambda a: tm.sin(a) * a, T(x))
    np.testing.assert_allclose(out.numpy(), np.sin(x) * x)
    ct = rng.normal(size=(4,))
    (g,) = pull(T(ct))
    np.testing.assert_allclose(g.numpy(), ct * (np.cos(x) * x + np.sin(x)), rtol=1e-12)
    t = rng.normal(size=(4,))
    y, ty = tm.jvp(lambda a: tm.sin(a) * a, (T(x),), (T(t),))
    np.testing.assert_allclose(ty.numpy(), t * (np.cos(x) * x + np.sin(x)), rtol=1e-12)


def test_jacobian_and_hessian(rng):
    A = rng.normal(size=(3, 3))
    x = rng.normal(size=(3,))
    f = lambda v: tm.matmul(T(A), tm.exp(v))  # noqa: E731
    want = A * np.exp(x)[None, :]
    np.testing.assert_allclose(tm.jacobian(f, T(x)).numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(tm.jacfwd(f)(T(x)).numpy(), want, rtol=1e-12)
    # f(x) = sum(x^3) + x0 x1: H = diag(6x) + [[0,1],[1,0]] block.
    h = tm.hessian(lambda v: tm.sum(v ** 3) + v[0] * v[1], T(x))
    H = np.diag(6 * x)
    H[0, 1] += 1
    H[1, 0] += 1
    np.testing.assert_allclose(h.numpy(), H, rtol=1e-12, atol=1e-12)
    v = rng.normal(size=(3,))
    np.testing.assert_allclose(tm.hvp(lambda z: tm.sum(z ** 3) + z[0] * z[1], T(x), T(v)).numpy(),
                               H @ v, rtol=1e-12, atol=1e-12)


def test_grad_of_grad():
    f = lambda x: tm.sum(tm.sin(x))  # noqa: E731
    x = T(0.4)
    assert abs(tm.grad(tm.grad(f))(x).item() + np.sin(0.4)) < 1e-12
    assert abs(tm.grad(tm.grad(tm.grad(f)))(x).item() + np.cos(0.4)) < 1e-12


def test_stop_gradient_and_where_safe():
    x = T([-1.0, 4.0])
    g = tm.grad(lambda a: tm.sum(a * tm.stop_gradient(a)))(x)
    np.testing.assert_allclose(g.numpy(), [-1.0, 4.0])

    def safe_sqrt(a):
        pos = a > 0
        return tm.sum(tm.where(pos, tm.sqrt(tm.where(pos, a, tm.ones_like(a))), tm.zeros_like(a)))

    np.testing.assert_allclose(tm.grad(safe_sqrt)(x).numpy(), [0.0, 0.25])


def test_custom_rules_and_checkpoint(rng):
    softplus = tm.custom_vjp(lambda a: tm.log1p(tm.exp(a)),
                             lambda p, o, c: (c[0] * tm.sigmoid(p[0]),))
    g = tm.grad(lambda a: tm.sum(softplus(a)))(T([1000.0, 0.0]))
    np.testing.assert_allclose(g.numpy(), [1.0, 0.5])
    twice = tm.custom_jvp(lambda a: tm.sin(a), lambda p, t: (tm.cos(p[0]) * t[0] * 2.0,))
    _, t = tm.jvp(twice, (T([0.3]),), (T([1.0]),))
    np.testing.assert_allclose(t.numpy(), [2 * np.cos(0.3)])
    x = rng.normal(size=(4, 8))
    w = rng.normal(size=(8, 8)) / 3
    block = tm.checkpoint(lambda h, W: tm.tanh(tm.matmul(h, W)))
    loss_ck = lambda a, W: tm.sum(block(block(a, W), W) ** 2)  # noqa: E731
    loss = lambda a, W: tm.sum(tm.tanh(tm.matmul(tm.tanh(tm.matmul(a, W)), W)) ** 2)  # noqa: E731
    g1 = tm.grad(loss_ck, argnums=(0, 1))(T(x), T(w))
    g0 = tm.grad(loss, argnums=(0, 1))(T(x), T(w))
    for a, b in zip(g1, g0):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-12)


def test_errors():
    x = T([1.0, 2.0])
    with pytest.raises(ValueError, match=r"^\[grad\]"):
        tm.grad(lambda a: a * 2)(x)
    with pytest.raises(TypeError, match=r"^\[grad\]"):
        tm.grad(lambda a: tm.sum(a))(T([1, 2], tm.int64))
    with pytest.raises(ValueError, match=r"^\[jvp\]"):
        tm.jvp(lambda a: a, (x,), (T([1.0, 2.0, 3.0]),))
    with pytest.raises(ValueError, match=r"^\[jacobian\]"):
        tm.jacobian(lambda a: a, x, mode="sideways")
    with pytest.raises(NotImplementedError, match=r"^\[qr\]"):
        tm.grad(lambda a: tm.sum(tm.linalg.qr(a, mode="complete")[1]))(T(np.ones((3, 2)) + np.eye(3, 2)))
    np.testing.assert_allclose(x.numpy(), [1.0, 2.0])


def test_grad_through_qr_and_svd(rng):
    """Gradients through the factors of qr and svd against NumPy finite differences."""
    x = rng.normal(size=(4, 3))
    c = np.arange(1.0, 4.0)

    def f_tm(a):
        q, r = tm.linalg.qr(a)
        u, s, vh = tm.linalg.svd(a, full_matrices=False)
        # Sign-invariant in the singular vectors: U diag(c) U^T and U diag(s^2) Vh.
        return (tm.sum(q * q * q) + tm.sum(tm.sin(r))
                + tm.sum(tm.matmul(u * T(c), tm.matrix_transpose(u)) ** 2)
                + tm.sum(tm.matmul(u * s ** 2, vh) * a))

    def f_np(a):
        q, r = np.linalg.qr(a)
        u, s, vh = np.linalg.svd(a, full_matrices=False)
        return (np.sum(q ** 3) + np.sum(np.sin(r)) + np.sum(((u * c) @ u.T) ** 2)
                + np.sum(((u * s ** 2) @ vh) * a))

    assert abs(f_tm(T(x)).item() - f_np(x)) < 1e-10
    g = tm.grad(f_tm)(T(x))
    np.testing.assert_allclose(g.numpy(), fd_grad(f_np, x), rtol=1e-6, atol=1e-8)
