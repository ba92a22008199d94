"""Zero-copy DLPack exchange with PyTorch and CuPy on CUDA: shared device pointers both
ways, writes visible both ways, strides, dtypes, import cost, stream ordering, lifetime.

Skipped (with the reason) where tmath has no available cuda backend or where PyTorch /
CuPy is missing or sees no GPU.
"""
import gc
import statistics
import time

import pytest

import tmath as tm

DEV = "cuda:0"
# dtype name -> values every library represents exactly.
VALUES = [[0, 1, 2, 3], [4, 5, 6, 7], [1, 0, 3, 2]]
DTYPES = ["float32", "float16", "bfloat16", "int64", "bool"]


def _tmath_cuda_reason():
    try:
        tm.zeros((1,), device=DEV).eval()
    except Exception as e:  # noqa: BLE001  (DeviceError, or anything a broken setup raises)
        return f"tmath has no available cuda backend: {e}"
    return None


_REASON = _tmath_cuda_reason()
if _REASON:
    pytest.skip(_REASON, allow_module_level=True)


@pytest.fixture(scope="module")
def torch():
    try:
        import torch
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"PyTorch is not importable: {e}")
    if not torch.cuda.is_available():
        pytest.skip("PyTorch sees no CUDA device")
    return torch


@pytest.fixture(scope="module")
def cupy():
    try:
        import cupy
        cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"CuPy is not importable or sees no CUDA device: {e}")
    return cupy


def tmdt(name):
    return getattr(tm, "bool_" if name == "bool" else name)


def expected(name):
    if name == "bool":
        return [[v % 2 == 1 for v in row] for row in VALUES]
    if name == "int64":
        return VALUES
    return [[float(v) for v in row] for row in VALUES]


def tolist(t):
    """A tmath tensor's values as Python scalars (bfloat16 through float32)."""
    return (t.astype(tm.float32) if t.dtype == tm.bfloat16 else t).tolist()


def torch_tensor(torch, name):
    x = torch.tensor(VALUES, device=DEV)
    return (x % 2 == 1) if name == "bool" else x.to(getattr(torch, name))


# ---- device and basic identity ------------------------------------------------------------


def test_dlpack_device_is_cuda():
    t = tm.ones((3,), device=DEV)
    assert t.__dlpack_device__() == (2, 0)
    assert tm.native_stream(DEV) > 2  # the engine's own (non-default) stream
    assert tm.native_stream("cpu") == 0
    tm.synchronize(DEV)


# ---- PyTorch ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DTYPES)
def test_import_torch_shares_pointer(torch, name):
    x = torch_tensor(torch, name)
    t = tm.from_dlpack(x)
    assert t.device == DEV and t.dtype == tmdt(name) and t.shape == (3, 4)
    assert t.data_ptr() == x.data_ptr()
    assert tolist(t) == expected(name)
    a = tm.asarray(x)
    assert a.data_ptr() == x.data_ptr()
    # Ops on the import compute on the GPU and never write into the producer's memory.
    if name != "bool":
        r = (tm.from_dlpack(x) * 2).eval()
        assert r.data_ptr() != x.data_ptr()
        assert tolist(r) == [[v * 2 for v in row] for row in expected(name)]
    assert tolist(t) == expected(name)


@pytest.mark.parametrize("name", DTYPES)
def test_export_to_torch_shares_pointer(torch, name):
    t = tm.asarray(expected(name), dtype=tmdt(name), device=DEV)
    y = torch.from_dlpack(t)
    assert y.device == torch.device("cuda", 0)
    assert y.dtype == (torch.bool if name == "bool" else getattr(torch, name))
    assert y.data_ptr() == t.data_ptr()
    assert (y.float() if name == "bfloat16" else y).cpu().tolist() == expected(name)


def test_torch_writes_visible_both_ways(torch):
    # Import: PyTorch writes into its tensor, tmath reads the same memory.
    x = torch.zeros(8, device=DEV)
    t = tm.from_dlpack(x)
    x[3] = 5.0
    torch.cuda.synchronize()  # PyTorch's write is on its stream; DLPack orders only the hand-over
    assert t[3].item() == 5.0 and t.sum().item() == 5.0
    # Export: PyTorch writes through the exported view into tmath's buffer.
    u = tm.arange(8, dtype=tm.float32, device=DEV).eval()
    y = torch.from_dlpack(u)
    y[2] = -1.0
    torch.cuda.synchronize()
    assert u[2].item() == -1.0
    assert u.tolist() == [0.0, 1.0, -1.0, 3.0, 4.0, 5.0, 6.0, 7.0]


def test_torch_non_contiguous_strides(torch):
    base = torch.arange(24.0, device=DEV).reshape(4, 6)
    for x in (base[:, 1::2], base.t(), base[::2, ::3]):
        t = tm.from_dlpack(x)
        assert t.data_ptr() == x.data_ptr()
        assert t.tolist() == x.cpu().tolist()
        assert (t * 2).tolist() == (x * 2).cpu().tolist()
        back = torch.from_dlpack(t)  # strides survive the round trip
        assert back.data_ptr() == x.data_ptr() and back.stride() == x.stride()
    # A tmath view exports its strides and offset.
    b = tm.arange(24, device=DEV).reshape(4, 6).eval()
    v = b[:, 1::2]
    y = torch.from_dlpack(v)
    assert y.stride() == (6, 2) and y.shape == (4, 3)
    assert y.data_ptr() == b.data_ptr() + 8  # one int64 in
    assert y.cpu().tolist() == v.tolist()
    w = torch.from_dlpack(b.T)
    assert w.stride() == (1, 6) and w.data_ptr() == b.data_ptr()


def test_torch_empty_and_0d(torch):
    e = torch.empty((0, 3), device=DEV)
    t = tm.from_dlpack(e)
    assert t.shape == (0, 3) and t.device == DEV
    s = torch.tensor(2.5, device=DEV)
    ts = tm.from_dlpack(s)
    assert ts.shape == () and ts.item() == 2.5 and ts.data_ptr() == s.data_ptr()
    assert torch.from_dlpack(tm.full((), 7, device=DEV)).item() == 7


def test_torch_import_copies_on_request(torch):
    x = torch.arange(6.0, device=DEV)
    c = tm.asarray(x, copy=True)
    assert c.data_ptr() != x.data_ptr() and c.tolist() == x.cpu().tolist()
    h = tm.from_dlpack(x, device="cpu")
    assert h.device == "cpu" and h.tolist() == x.cpu().tolist()
    with pytest.raises(ValueError):
        tm.asarray(x, device="cpu", copy=False)


def _median_import_seconds(x, reps=21):
    for _ in range(5):  # warm-up: device context, first-call paths
        tm.from_dlpack(x)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        t = tm.from_dlpack(x)
        times.append(time.perf_counter() - t0)
        del t
    return statistics.median(times)


def test_import_1gib_torch_is_zero_copy_fast(torch):
    x = torch.empty(1 << 28, dtype=torch.float32, device=DEV)  # 1 GiB
    before = tm.memory_stats(DEV)["active_bytes"]
    med = _median_import_seconds(x)
    t = tm.from_dlpack(x)
    assert t.nbytes == 1 << 30 and t.data_ptr() == x.data_ptr()
    assert tm.memory_stats(DEV)["active_bytes"] == before  # no engine allocation
    assert med < 100e-6, f"median import of 1 GiB took {med * 1e6:.1f} us"


# ---- streams (DLPack spec) ------------------------------------------------------------------


def test_export_stream_argument_values(torch):
    t = tm.arange(4, device=DEV)
    side = torch.cuda.Stream()
    for s in (None, 1, 2, -1, side.cuda_stream, tm.native_stream(DEV)):
        cap = t.__dlpack__(stream=s)
        assert type(cap).__name__ == "PyCapsule"
    assert type(t.__dlpack__(stream=side.cuda_stream, max_version=(1, 0))).__name__ == "PyCapsule"
    with pytest.raises(ValueError):
        t.__dlpack__(stream=0)  # ambiguous, disallowed by the spec
    with pytest.raises(ValueError):
        t.__dlpack__(stream=-7)
    with pytest.raises(TypeError):
        t.__dlpack__(stream="1")
    with pytest.raises(BufferError):
        t.__dlpack__(dl_device=(1, 0))  # no implicit device-to-host export


def _heavy_tmath_ones(n=2048, rounds=6):
    a = tm.ones((n, n), device=DEV)
    for _ in range(rounds):
        a = (a @ a) / n  # stays all ones; long enough to still be queued at hand-over
    return a


def test_export_orders_consumer_stream(torch):
    # torch.from_dlpack passes its current stream: a PyTorch read queued right after the
    # hand-over must see the engine's results, without any host synchronisation by us.
    side = torch.cuda.Stream()
    for stream in (torch.cuda.current_stream(), side):
        a = _heavy_tmath_ones()
        with torch.cuda.stream(stream):
            y = torch.from_dlpack(a)
            assert bool((y == 1).all())


def test_import_orders_engine_after_producer(torch):
    x = torch.ones(2048, 2048, device=DEV)
    for _ in range(6):
        x = (x @ x) / 2048  # queued on PyTorch's stream
    t = tm.from_dlpack(x)  # no torch.cuda.synchronize(): the producer orders the engine
    assert tm.all(t == 1).item()


class _Recorder:
    """A producer that records the keyword arguments of its __dlpack__ calls."""

    def __init__(self, x):
        self.x, self.calls = x, []

    def __dlpack_device__(self):
        return self.x.__dlpack_device__()


class _Full(_Recorder):
    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        self.calls.append({"stream": stream, "max_version": max_version})
        return self.x.__dlpack__(stream=stream, max_version=max_version)


class _NoMaxVersion(_Recorder):
    def __dlpack__(self, *, stream=None):
        self.calls.append({"stream": stream})
        return self.x.__dlpack__(stream=stream)


class _NoStream(_Recorder):
    def __dlpack__(self):
        self.calls.append({})
        return self.x.__dlpack__()


def test_import_passes_engine_stream(torch):
    x = torch.arange(10.0, device=DEV)
    engine = tm.native_stream(DEV)
    p = _Full(x)
    t = tm.from_dlpack(p)
    assert p.calls[-1]["stream"] == engine and engine > 2
    assert p.calls[-1]["max_version"] is not None
    assert t.data_ptr() == x.data_ptr() and t.sum().item() == 45.0
    # Older producers: no max_version, then no stream argument at all (the engine then waits
    # for the legacy default stream itself).
    q = _NoMaxVersion(x)
    assert tm.from_dlpack(q).data_ptr() == x.data_ptr()
    assert q.calls[-1]["stream"] == engine
    r = _NoStream(x)
    assert tm.from_dlpack(r).sum().item() == 45.0
    assert r.calls == [{}]


def test_engine_stream_usable_as_external_stream(torch):
    s = torch.cuda.ExternalStream(tm.native_stream(DEV))
    with torch.cuda.stream(s):
        y = torch.full((16,), 3.0, device=DEV)
    t = tm.from_dlpack(y)  # same stream: nothing to order
    assert t.sum().item() == 48.0


# ---- lifetime -------------------------------------------------------------------------------


def test_import_outlives_producer(torch):
    x = torch.arange(1000.0, device=DEV)
    ptr = x.data_ptr()
    t = tm.from_dlpack(x)
    del x
    gc.collect()
    torch.cuda.empty_cache()
    junk = torch.full((1000,), -1.0, device=DEV)  # would land on the freed block
    assert t.data_ptr() == ptr and junk.data_ptr() != ptr
    assert t.sum().item() == sum(range(1000))
    # The producer's memory is released once the last tmath view dies.
    y = torch.empty(1 << 20, device=DEV)
    before = torch.cuda.memory_allocated()
    ty = tm.from_dlpack(y)[10:]
    del y
    gc.collect()
    assert torch.cuda.memory_allocated() == before  # still held by the tmath view
    del ty
    gc.collect()
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() == before - (1 << 22)


def test_export_outlives_tmath_tensor(torch):
    t = tm.arange(1000, device=DEV).astype(tm.float32)
    y = torch.from_dlpack(t)
    ptr = t.data_ptr()
    del t
    gc.collect()
    tm.empty_cache(DEV)
    junk = tm.full((1000,), -1.0, device=DEV).eval()
    assert junk.data_ptr() != ptr and y.data_ptr() == ptr
    assert y.sum().item() == sum(range(1000))
    # tmath's buffer returns to its allocator when the consumer drops it.
    before = tm.memory_stats(DEV)["active_bytes"]
    u = tm.zeros((1 << 20,), device=DEV).eval()
    z = torch.from_dlpack(u)
    held = tm.memory_stats(DEV)["active_bytes"]
    assert held >= before + (1 << 22)
    del u
    gc.collect()
    assert tm.memory_stats(DEV)["active_bytes"] == held
    del z
    gc.collect()
    assert tm.memory_stats(DEV)["active_bytes"] == held - (1 << 22)


# ---- CuPy -----------------------------------------------------------------------------------

CUPY_DTYPES = ["float32", "float16", "int64", "bool"]  # CuPy has no bfloat16


def cupy_array(cupy, name):
    a = cupy.asarray(VALUES)
    return (a % 2 == 1) if name == "bool" else a.astype(name)


@pytest.mark.parametrize("name", CUPY_DTYPES)
def test_import_cupy_shares_pointer(cupy, name):
    a = cupy_array(cupy, name)
    t = tm.from_dlpack(a)
    assert t.device == DEV and t.dtype == tmdt(name)
    assert t.data_ptr() == a.data.ptr
    assert t.tolist() == expected(name)
    assert tm.asarray(a).data_ptr() == a.data.ptr


@pytest.mark.parametrize("name", CUPY_DTYPES)
def test_export_to_cupy_shares_pointer(cupy, name):
    t = tm.asarray(expected(name), dtype=tmdt(name), device=DEV)
    b = cupy.from_dlpack(t)
    assert b.data.ptr == t.data_ptr()
    assert b.dtype == cupy.dtype(name)
    assert b.tolist() == expected(name)


def test_cupy_writes_strides_and_lifetime(cupy):
    a = cupy.zeros((4, 6), dtype=cupy.float32)
    v = a[:, 1::2]
    t = tm.from_dlpack(v)
    assert t.data_ptr() == v.data.ptr
    v[1, 2] = 9.0
    cupy.cuda.runtime.deviceSynchronize()
    assert t[1, 2].item() == 9.0
    u = tm.arange(6, dtype=tm.float32, device=DEV).reshape(2, 3).eval()
    b = cupy.from_dlpack(u.T)
    assert b.strides == (4, 12) and b.data.ptr == u.data_ptr()
    b[2, 1] = -3.0
    cupy.cuda.runtime.deviceSynchronize()
    assert u[1, 2].item() == -3.0
    del u
    gc.collect()
    tm.empty_cache(DEV)
    assert b.tolist() == [[0.0, 3.0], [1.0, 4.0], [2.0, -3.0]]
    ptr = a.data.ptr
    del a, v
    gc.collect()
    assert t.data_ptr() == ptr + 4 and t.tolist()[1][2] == 9.0


def test_cupy_stream_ordering(cupy):
    a = _heavy_tmath_ones()
    s = cupy.cuda.Stream(non_blocking=True)
    with s:
        b = cupy.from_dlpack(a)  # CuPy passes its current stream
        assert bool((b == 1).all())
    x = cupy.ones((2048, 2048), dtype=cupy.float32)
    for _ in range(6):
        x = (x @ x) / 2048
    assert tm.all(tm.from_dlpack(x) == 1).item()


def test_import_1gib_cupy_is_fast(cupy):
    x = cupy.empty(1 << 28, dtype=cupy.float32)
    med = _median_import_seconds(x)
    assert tm.from_dlpack(x).data_ptr() == x.data.ptr
    assert med < 100e-6, f"median import of 1 GiB took {med * 1e6:.1f} us"
