import numpy as np
import pytest

import tmath as tm
from conftest import check

UNARY_FLOAT = {
    "exp": np.exp, "expm1": np.expm1, "log1p": np.log1p, "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "floor": np.floor,
    "ceil": np.ceil, "round": np.round, "abs": np.abs, "negative": np.negative, "square": np.square,
    "sign": np.sign,
}
UNARY_POS = {"log": np.log, "log2": np.log2, "log10": np.log10, "sqrt": np.sqrt,
             "reciprocal": np.reciprocal, "rsqrt": lambda a: 1 / np.sqrt(a)}


@pytest.mark.parametrize("name", sorted(UNARY_FLOAT))
@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_unary(name, dt, rng):
    a = (rng.standard_normal((4, 5)) * 2).astype(dt)
    rtol = 1e-5 if dt == "float32" else 1e-12
    with np.errstate(invalid="ignore"):  # log1p(x < -1) is NaN in both
        expected = UNARY_FLOAT[name](a)
    check(getattr(tm, name)(tm.asarray(a)), expected, rtol=rtol, atol=1e-6)


@pytest.mark.parametrize("name", sorted(UNARY_POS))
def test_unary_positive_domain(name, rng):
    a = rng.uniform(0.1, 10, (3, 7)).astype(np.float32)
    check(getattr(tm, name)(tm.asarray(a)), UNARY_POS[name](a), rtol=1e-5)


def test_unary_misc(rng):
    a = rng.uniform(-0.9, 0.9, 10).astype(np.float64)
    check(tm.asin(a), np.arcsin(a), rtol=1e-12)
    check(tm.arccos(a), np.arccos(a), rtol=1e-12)
    check(tm.erf(tm.asarray(a)), np.array([__import__("math").erf(v) for v in a]), rtol=1e-12)
    check(tm.sigmoid(a), 1 / (1 + np.exp(-a)), rtol=1e-12)
    check(tm.relu(a), np.maximum(a, 0))
    check(tm.silu(a), a / (1 + np.exp(-a)), rtol=1e-12)
    x = np.array([1.0, np.nan, np.inf, -np.inf], dtype=np.float32)
    check(tm.isnan(x), np.isnan(x))
    check(tm.isinf(x), np.isinf(x))
    check(tm.isfinite(x), np.isfinite(x))
    check(tm.logical_not(np.array([True, False])), np.array([False, True]))
    z = np.array([1 + 2j, -3 - 4j], dtype=np.complex64)
    check(tm.abs(z), np.abs(z))
    check(tm.real(z), z.real)
    check(tm.imag(z), z.imag)
    check(tm.conj(z), np.conj(z))
    check(tm.exp(np.array([1, 2], np.int32)), np.exp(np.array([1, 2], np.float32)))  # int -> float32


OPS = {
    "+": (lambda a, b: a + b), "-": (lambda a, b: a - b), "*": (lambda a, b: a * b),
    "/": (lambda a, b: a / b), "//": (lambda a, b: a // b), "%": (lambda a, b: a % b),
    "**": (lambda a, b: a ** b), "<": (lambda a, b: a < b), "<=": (lambda a, b: a <= b),
    ">": (lambda a, b: a > b), ">=": (lambda a, b: a >= b), "==": (lambda a, b: a == b),
    "!=": (lambda a, b: a != b),
}


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("dt", ["float32", "float64", "int32", "int64"])
def test_binary_operators(op, dt, rng):
    a = rng.integers(1, 6, (3, 4)).astype(dt)
    b = rng.integers(1, 4, (4,)).astype(dt)  # broadcasts
    if op == "**" and dt.startswith("int"):
        b = b % 3
    f = OPS[op]
    expected = f(a, b)
    if op == "/" and dt.startswith("int"):
        expected = expected.astype(np.float32)  # tmath: int / int -> default float32
    check(f(tm.asarray(a), tm.asarray(b)), expected, rtol=1e-6)
    # Reflected form with a NumPy array on the left.
    check(f(a, tm.asarray(b)), expected, rtol=1e-6)


def test_unary_operators():
    a = np.array([-1.5, 2.0, -3.0], np.float32)
    t = tm.asarray(a)
    check(-t, -a)
    check(abs(t), abs(a))
    check(+t, a)
    m = tm.asarray([True, False])
    check(~m, np.array([False, True]))
    check(m & tm.asarray([True, True]), np.array([True, False]))
    check(m | False, np.array([True, False]))
    check(m ^ True, np.array([False, True]))


def test_binary_functions(rng):
    a = rng.standard_normal((2, 3)).astype(np.float32)
    b = rng.standard_normal((2, 3)).astype(np.float32)
    check(tm.maximum(a, b), np.maximum(a, b))
    check(tm.minimum(a, b), np.minimum(a, b))
    check(tm.atan2(a, b), np.arctan2(a, b), rtol=1e-5)
    check(tm.hypot(a, b), np.hypot(a, b), rtol=1e-6)
    check(tm.add(a, 1), a + np.float32(1))
    check(tm.pow(tm.abs(a), 0.5), np.abs(a) ** np.float32(0.5), rtol=1e-6)
    check(tm.logical_and(a > 0, b > 0), np.logical_and(a > 0, b > 0))
    check(tm.logical_or(a > 0, b > 0), np.logical_or(a > 0, b > 0))
    check(tm.logical_xor(a > 0, b > 0), np.logical_xor(a > 0, b > 0))
    check(tm.where(a > 0, a, b), np.where(a > 0, a, b))
    check(tm.where(tm.asarray(a) > 0, tm.asarray(a), 0.0), np.where(a > 0, a, np.float32(0)))
    check(tm.clip(a, -0.5, 0.5), np.clip(a, np.float32(-0.5), np.float32(0.5)))
    check(tm.clip(a, max=0.1), np.minimum(a, np.float32(0.1)))


def test_matmul(rng):
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal((4, 5)).astype(np.float32)
    check(tm.asarray(a) @ tm.asarray(b), a @ b, rtol=1e-5, atol=1e-5)
    check(tm.matmul(a, b), a @ b, rtol=1e-5, atol=1e-5)
    v = rng.standard_normal(4).astype(np.float32)
    check(tm.asarray(a) @ v, a @ v, rtol=1e-5, atol=1e-5)
    bat = rng.standard_normal((2, 3, 4)).astype(np.float64)
    check(tm.asarray(bat) @ tm.asarray(b.astype(np.float64)), bat @ b.astype(np.float64), rtol=1e-12)
    check(tm.tensordot(a, b, axes=1), np.tensordot(a, b, axes=1), rtol=1e-5, atol=1e-5)
    check(tm.tensordot(a, a, axes=([0, 1], [0, 1])), np.tensordot(a, a, axes=([0, 1], [0, 1])), rtol=1e-5)
    check(tm.einsum("ij,jk->ik", a, b), np.einsum("ij,jk->ik", a, b), rtol=1e-5, atol=1e-5)
    check(tm.outer(v, v), np.outer(v, v), rtol=1e-6)
    check(tm.dot(v, v), np.dot(v, v), rtol=1e-5)
    check(tm.vecdot(a, a), np.sum(a * a, axis=-1), rtol=1e-5)
    check(tm.asarray([[1, 2], [3, 4]]) @ tm.asarray([[1], [1]]), np.array([[3], [7]]))


@pytest.mark.parametrize("spec", ["ij->", "ii->", "ij->i", "ij,j->i", "ij,jk->ik", "ii->i"])
@pytest.mark.parametrize("dt", [np.uint8, np.int16, np.int32, np.uint32, np.int64, np.bool_])
def test_einsum_keeps_integer_and_bool_dtypes(spec, dt, rng):
    """Sums inside einsum keep the operand dtype and wrap as NumPy's einsum does."""
    hi = 2 if dt is np.bool_ else 200
    a = rng.integers(0, hi, (5, 5)).astype(dt)
    b = rng.integers(0, hi, (5, 5)).astype(dt)
    ops = (a, a[0]) if spec == "ij,j->i" else (a, b) if "," in spec else (a,)
    want = np.einsum(spec, *ops)
    got = np.asarray(tm.einsum(spec, *ops))
    assert got.dtype == want.dtype, (spec, got.dtype, want.dtype)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions(axis, keepdims, rng):
    a = rng.standard_normal((3, 4, 5)).astype(np.float64)
    t = tm.asarray(a)
    for name, f in [("sum", np.sum), ("mean", np.mean), ("max", np.max), ("min", np.min),
                    ("prod", np.prod)]:
        check(getattr(tm, name)(t, axis=axis, keepdims=keepdims), f(a, axis=axis, keepdims=keepdims),
              rtol=1e-10)
        check(getattr(t, name)(axis=axis, keepdims=keepdims), f(a, axis=axis, keepdims=keepdims), rtol=1e-10)
    check(tm.var(t, axis=axis, keepdims=keepdims), np.var(a, axis=axis, keepdims=keepdims), rtol=1e-10)
    check(tm.std(t, axis=axis, keepdims=keepdims, correction=1),
          np.std(a, axis=axis, keepdims=keepdims, ddof=1), rtol=1e-10)
    b = a > 0
    check(tm.any(b, axis=axis, keepdims=keepdims), np.any(b, axis=axis, keepdims=keepdims))
    check(tm.all(b, axis=axis, keepdims=keepdims), np.all(b, axis=axis, keepdims=keepdims))


def test_reduction_dtypes(rng):
    i8 = rng.integers(-5, 5, (4, 3)).astype(np.int8)
    check(tm.sum(i8), np.sum(i8, dtype=np.int64))  # small ints accumulate in int64
    check(tm.sum(i8, axis=0, dtype=tm.int32), np.sum(i8, axis=0, dtype=np.int32))
    check(tm.sum(np.array([True, True, False])), np.int64(2))
    f = rng.standard_normal(10).astype(np.float32)
    check(tm.sum(f, dtype=tm.float64), np.sum(f.astype(np.float64)), rtol=1e-12)


def test_arg_and_cumulative(rng):
    a = rng.standard_normal((4, 6)).astype(np.float32)
    check(tm.argmax(a), np.argmax(a))
    check(tm.argmin(a, axis=1), np.argmin(a, axis=1))
    check(tm.argmax(a, axis=0, keepdims=True), np.argmax(a, axis=0, keepdims=True))
    check(tm.cumulative_sum(a, axis=1), np.cumsum(a, axis=1), rtol=1e-5)
    check(tm.cumsum(a.ravel()), np.cumsum(a.ravel()), rtol=1e-5, atol=1e-5)
    check(tm.cumulative_prod(a, axis=0), np.cumprod(a, axis=0), rtol=1e-5)
    m = a.max(axis=1, keepdims=True)
    check(tm.logsumexp(a, axis=1), (m + np.log(np.exp(a - m).sum(axis=1, keepdims=True)))[:, 0], rtol=1e-5)


def test_shape_ops(rng):
    a = rng.standard_normal((2, 3, 4)).astype(np.float32)
    t = tm.asarray(a)
    check(tm.reshape(t, (6, 4)), a.reshape(6, 4))
    check(t.reshape(4, -1), a.reshape(4, -1))
    check(t.reshape((24,)), a.reshape(24))
    check(tm.flatten(t), a.ravel())
    check(tm.permute_dims(t, (2, 0, 1)), np.transpose(a, (2, 0, 1)))
    check(t.transpose(), a.transpose())
    check(t.transpose(1, 0, 2), a.transpose(1, 0, 2))
    check(tm.swapaxes(t, 0, 2), np.swapaxes(a, 0, 2))
    check(tm.moveaxis(t, 0, -1), np.moveaxis(a, 0, -1))
    check(tm.broadcast_to(tm.asarray([1, 2, 3]), (2, 3)), np.broadcast_to([1, 2, 3], (2, 3)))
    x, y = tm.broadcast_arrays(tm.asarray([[1], [2]]), tm.asarray([1, 2, 3]))
    assert x.shape == y.shape == (2, 3)
    assert tm.broadcast_shapes((2, 1), (3,)) == (2, 3)
    check(tm.expand_dims(t, axis=1), np.expand_dims(a, 1))
    check(tm.squeeze(tm.asarray(a[:1]), axis=0), a[0])
    check(tm.flip(t, axis=1), np.flip(a, 1))
    check(tm.flip(t), np.flip(a))
    check(tm.concat([t, t], axis=1), np.concatenate([a, a], axis=1))
    check(tm.concat([t, t], axis=None), np.concatenate([a.ravel(), a.ravel()]))
    check(tm.stack([t, t], axis=-1), np.stack([a, a], axis=-1))
    parts = tm.split(t, 2, axis=2)
    assert len(parts) == 2
    for p, q in zip(parts, np.split(a, 2, axis=2)):
        check(p, q)
    check(tm.take(t, tm.asarray([2, 0]), axis=2), np.take(a, [2, 0], axis=2))
    idx = np.argsort(a, axis=-1)
    check(tm.take_along_axis(t, tm.asarray(idx), axis=-1), np.take_along_axis(a, idx, axis=-1))
    check(tm.pad(tm.asarray(a[0]), ((1, 1), (0, 2))), np.pad(a[0], ((1, 1), (0, 2))))
    check(tm.pad(tm.asarray(a[0]), 1, mode="edge"), np.pad(a[0], 1, mode="edge"))
    check(tm.tril(t), np.tril(a))
    check(tm.triu(t, k=1), np.triu(a, k=1))
    check(t.mT, np.swapaxes(a, -1, -2))
    check(tm.asarray(a[0]).T, a[0].T)


def test_nn_ops(rng):
    a = rng.standard_normal((3, 8)).astype(np.float32)
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    check(tm.softmax(a), e / e.sum(axis=-1, keepdims=True), rtol=1e-5)
    check(tm.softmax(a, axis=0), np.exp(a) / np.exp(a).sum(axis=0, keepdims=True), rtol=1e-5)
    check(tm.log_softmax(a), np.log(e / e.sum(axis=-1, keepdims=True)), rtol=1e-5, atol=1e-5)
    w = rng.standard_normal(8).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    mu = a.mean(axis=-1, keepdims=True)
    var = a.var(axis=-1, keepdims=True)
    ref = (a - mu) / np.sqrt(var + 1e-5) * w + b
    check(tm.layer_norm(a, w, b), ref, rtol=1e-4, atol=1e-5)
    check(tm.layer_norm(a, eps=1e-3), (a - mu) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-5)
    check(tm.gelu(a, approximate=True),
          (0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a ** 3)))).astype(np.float32),
          rtol=1e-4, atol=1e-6)
    erf = np.vectorize(__import__("math").erf)
    check(tm.gelu(a), (0.5 * a * (1 + erf(a / np.sqrt(2)))).astype(np.float32), rtol=1e-5, atol=1e-6)
    # gelu_grad: g * gelu'(x) against SciPy's normal cdf/pdf (erf form) and the tanh
    # form's derivative, with g broadcast along the rows.
    from scipy.stats import norm
    x64, g = a.astype(np.float64), rng.standard_normal(8).astype(np.float32)
    check(tm.gelu_grad(g, a), (g * (norm.cdf(x64) + x64 * norm.pdf(x64))).astype(np.float32),
          rtol=1e-5, atol=1e-6)
    u = np.sqrt(2 / np.pi) * (x64 + 0.044715 * x64 ** 3)
    dt = 0.5 * (1 + np.tanh(u)) + 0.5 * x64 / np.cosh(u) ** 2 * np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * x64 ** 2)
    check(tm.gelu_grad(g, a, approximate=True), (g * dt).astype(np.float32), rtol=1e-4, atol=1e-6)
    with pytest.raises(tm.DTypeError, match="gelu_grad"):
        tm.gelu_grad(tm.asarray(np.ones(3, np.complex64)), tm.asarray(np.ones(3, np.complex64)))
