// Tensor creation, conversion, views, indexing, shape ops and lazy evaluation.
#include <atomic>
#include <numeric>
#include <optional>

#include "test_util.h"

using namespace tmath;
using tt::make;
using tt::read;

namespace {

std::vector<double> iota(int64_t n, double start = 0.0) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = start + static_cast<double>(i);
  return v;
}

// Python slice semantics, computed independently: the selected indices of a length-n axis.
std::vector<int64_t> py_slice(int64_t n, std::optional<int64_t> start, std::optional<int64_t> stop,
                              int64_t step) {
  int64_t lo, hi;
  if (step > 0) {
    lo = 0;
    hi = n;
  } else {
    lo = -1;
    hi = n - 1;
  }
  auto adjust = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t x = *v;
    if (x < 0) x += n;
    return std::clamp(x, lo, hi);
  };
  int64_t b = adjust(start, step > 0 ? 0 : n - 1);
  int64_t e = adjust(stop, step > 0 ? n : -1);
  std::vector<int64_t> r;
  if (step > 0)
    for (int64_t i = b; i < e; i += step) r.push_back(i);
  else
    for (int64_t i = b; i > e; i += step) r.push_back(i);
  return r;
}

bool inside(const void* p, const void* base, size_t nbytes) {
  auto pc = static_cast<const char*>(p), bc = static_cast<const char*>(base);
  return pc >= bc && pc < bc + nbytes;
}

}  // namespace

// ---- creation -----------------------------------------------------------------

TEST(TensorCreate, ZerosOnesFull) {
  for (DType dt : tt::all_dtypes()) {
    Tensor z = zeros({2, 3}, dt);
    EXPECT_EQ(z.shape(), (Shape{2, 3}));
    EXPECT_EQ(z.dtype(), dt);
    EXPECT_EQ(z.size(), 6);
    EXPECT_EQ(z.ndim(), 2);
    EXPECT_EQ(z.device(), kCPU);
    EXPECT_TRUE(tt::all_equal(z, std::vector<double>(6, 0.0))) << tt::name_of(dt);
    Tensor o = ones({4}, dt);
    EXPECT_TRUE(tt::all_equal(o, std::vector<double>(4, 1.0))) << tt::name_of(dt);
  }
  Tensor f = full({2, 2}, 3.5, float64);
  EXPECT_EQ(f.dtype(), float64);
  EXPECT_TRUE(tt::all_equal(f, {3.5, 3.5, 3.5, 3.5}));
  EXPECT_TRUE(tt::all_equal(full({3}, -7, int16), {-7, -7, -7}));
  EXPECT_TRUE(tt::all_close_c(full({2}, std::complex<double>(1, -2), complex128),
                              {{1, -2}, {1, -2}}, tt::Tol{}));
  // Default dtype from the value kind.
  EXPECT_EQ(full({2}, 3).dtype(), int64);
  EXPECT_EQ(full({2}, 2.5).dtype(), float32);
  EXPECT_EQ(full({2}, true).dtype(), bool_);
  EXPECT_EQ(full({2}, std::complex<double>(1, 1)).dtype(), complex64);
  Tensor like = full_like(f, 2);
  EXPECT_EQ(like.dtype(), float64);
  EXPECT_EQ(like.shape(), f.shape());
  EXPECT_TRUE(tt::all_equal(like, {2, 2, 2, 2}));
  EXPECT_TRUE(tt::all_equal(zeros_like(f), {0, 0, 0, 0}));
  EXPECT_TRUE(tt::all_equal(ones_like(full({3}, 5, int8)), {1, 1, 1}));
  EXPECT_EQ(ones_like(full({3}, 5, int8)).dtype(), int8);
}

TEST(TensorCreate, EmptyAndScalarShapes) {
  Tensor e = zeros({0});
  EXPECT_EQ(e.size(), 0);
  EXPECT_EQ(e.ndim(), 1);
  EXPECT_NO_THROW(e.eval());
  EXPECT_EQ(read(e).size(), 0u);
  Tensor e3 = ones({2, 0, 3}, int32);
  EXPECT_EQ(e3.size(), 0);
  EXPECT_EQ(e3.shape(), (Shape{2, 0, 3}));
  EXPECT_EQ(sum(e3).size(), 1);
  EXPECT_EQ(tt::read1(sum(e3)), 0.0);
  EXPECT_EQ(sum(e3, {1}).shape(), (Shape{2, 3}));
  Tensor s = full({}, 4.0, float32);
  EXPECT_EQ(s.ndim(), 0);
  EXPECT_EQ(s.size(), 1);
  EXPECT_EQ(s.item<float>(), 4.0f);
  Tensor u = empty({5, 2}, float64);
  EXPECT_EQ(u.shape(), (Shape{5, 2}));
  EXPECT_EQ(u.dtype(), float64);
  EXPECT_NO_THROW(u.eval());
  Tensor u0 = empty({0, 4});
  EXPECT_EQ(u0.size(), 0);
  EXPECT_EQ(concatenate({u0, zeros({1, 4})}, 0).shape(), (Shape{1, 4}));
}

TEST(TensorCreate, ArangeIntegers) {
  Tensor a = arange(5);
  EXPECT_EQ(a.dtype(), int64);
  EXPECT_TRUE(tt::all_equal(a, {0, 1, 2, 3, 4}));
  EXPECT_TRUE(tt::all_equal(arange(2, 10, 3), {2, 5, 8}));
  EXPECT_TRUE(tt::all_equal(arange(10, 0, -3), {10, 7, 4, 1}));
  EXPECT_TRUE(tt::all_equal(arange(-2, 3), {-2, -1, 0, 1, 2}));
  EXPECT_EQ(arange(5, 0).size(), 0);
  EXPECT_EQ(arange(0, 5, -1).size(), 0);
  Tensor ai = arange(0, 6, 2, int32);
  EXPECT_EQ(ai.dtype(), int32);
  EXPECT_TRUE(tt::all_equal(ai, {0, 2, 4}));
  EXPECT_TRUE(tt::all_equal(arange(4, float64), {0, 1, 2, 3}));
  EXPECT_EQ(arange(4, float64).dtype(), float64);
}

TEST(TensorCreate, ArangeFloatSteps) {
  Tensor a = arange(0.0, 1.0, 0.25);
  EXPECT_EQ(a.dtype(), float32);
  EXPECT_TRUE(tt::all_close(a, {0.0, 0.25, 0.5, 0.75}));
  // Length ceil((stop - start) / step), values start + i*step.
  Tensor b = arange(1.0, 0.0, -0.3, float64);
  EXPECT_EQ(b.size(), 4);
  EXPECT_TRUE(tt::all_close(b, {1.0, 0.7, 0.4, 0.1}));
  Tensor c = arange(0.5, 3, 1);
  EXPECT_EQ(c.dtype(), float32);
  EXPECT_TRUE(tt::all_close(c, {0.5, 1.5, 2.5}));
  Tensor d = arange(0.0, 1.0, 0.1, float64);
  EXPECT_EQ(d.size(), 10);
  std::vector<double> want;
  for (int i = 0; i < 10; ++i) want.push_back(0.1 * i);
  EXPECT_TRUE(tt::all_close(d, want));
}

TEST(TensorCreate, Linspace) {
  EXPECT_TRUE(tt::all_close(linspace(0, 1, 5), {0, 0.25, 0.5, 0.75, 1.0}));
  EXPECT_TRUE(tt::all_close(linspace(0, 1, 5, false), {0, 0.2, 0.4, 0.6, 0.8}));
  EXPECT_TRUE(tt::all_close(linspace(2, -2, 3, true, float64), {2, 0, -2}));
  EXPECT_EQ(linspace(2, -2, 3, true, float64).dtype(), float64);
  EXPECT_TRUE(tt::all_close(linspace(3, 7, 1), {3}));
  EXPECT_EQ(linspace(0, 1, 0).size(), 0);
  // Endpoint is exact.
  Tensor l = linspace(0.0, 0.3, 7, true, float64);
  EXPECT_EQ(read(l).back(), 0.3);
  std::vector<double> want(101);
  for (int i = 0; i <= 100; ++i) want[i] = -1.0 + 3.0 * i / 100.0;
  EXPECT_TRUE(tt::all_close(linspace(-1, 2, 101, true, float64), want));
}

TEST(TensorCreate, Eye) {
  EXPECT_TRUE(tt::all_equal(eye(3), {1, 0, 0, 0, 1, 0, 0, 0, 1}));
  Tensor e = eye(3, 4, 1);
  EXPECT_EQ(e.shape(), (Shape{3, 4}));
  EXPECT_TRUE(tt::all_equal(e, {0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}));
  EXPECT_TRUE(tt::all_equal(eye(3, std::nullopt, -1), {0, 0, 0, 1, 0, 0, 0, 1, 0}));
  EXPECT_TRUE(tt::all_equal(eye(2, 3, 5), {0, 0, 0, 0, 0, 0}));
  Tensor ei = eye(2, 2, 0, int32);
  EXPECT_EQ(ei.dtype(), int32);
  EXPECT_TRUE(tt::all_equal(ei, {1, 0, 0, 1}));
  EXPECT_TRUE(tt::all_equal(eye(4, 2, -2), {0, 0, 0, 0, 1, 0, 0, 1}));
}

TEST(TensorCreate, FromDataCopies) {
  std::vector<float> host = {1, 2, 3, 4, 5, 6};
  Tensor t = from_data(host.data(), {2, 3}, float32);
  t.eval();
  EXPECT_NE(t.data_ptr(), static_cast<void*>(host.data()));
  host[0] = 100;
  EXPECT_TRUE(tt::all_equal(t, {1, 2, 3, 4, 5, 6}));
  Tensor v = from_vector(std::vector<int16_t>{7, -8, 9});
  EXPECT_EQ(v.dtype(), int16);
  EXPECT_EQ(v.shape(), (Shape{3}));
  EXPECT_TRUE(tt::all_equal(v, {7, -8, 9}));
  Tensor m = from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2});
  EXPECT_EQ(m.shape(), (Shape{2, 2}));
}

TEST(TensorCreate, FromBlobDoesNotCopy) {
  std::vector<float> host = {1, 2, 3, 4, 5, 6};
  Tensor t = from_blob(host.data(), {2, 3}, float32);
  t.eval();
  EXPECT_TRUE(t.is_evaluated());
  EXPECT_EQ(t.data_ptr(), static_cast<void*>(host.data()));
  EXPECT_EQ(t.data<float>(), host.data());
  host[4] = -50;
  EXPECT_TRUE(tt::all_equal(t, {1, 2, 3, 4, -50, 6}));
  EXPECT_EQ(t.index({1, 1}).item<float>(), -50.0f);
}

TEST(TensorCreate, FromBlobStridedAndDeleter) {
  // Column-major 2x3 view of 6 doubles.
  std::vector<double> host = {1, 4, 2, 5, 3, 6};
  std::atomic<int> deleted{0};
  {
    Tensor t = from_blob(host.data(), {2, 3}, float64, {1, 2}, [&](void* p) {
      EXPECT_EQ(p, static_cast<void*>(host.data()));
      deleted++;
    });
    EXPECT_TRUE(tt::all_equal(t, {1, 2, 3, 4, 5, 6}));
    Tensor row = t[1];
    EXPECT_TRUE(tt::all_equal(row, {4, 5, 6}));
    EXPECT_EQ(deleted.load(), 0);
    Tensor s = sum(t, {0});
    s.eval();
    t = Tensor();
    EXPECT_EQ(deleted.load(), 0) << "row still uses the blob";
    row = Tensor();
    EXPECT_TRUE(tt::all_equal(s, {5, 7, 9}));
  }
  EXPECT_EQ(deleted.load(), 1);
}

// ---- conversion and copies ----------------------------------------------------

TEST(TensorConvert, AstypeAllPairs) {
  int pairs = 0;
  for (DType src : tt::all_dtypes()) {
    for (DType dst : tt::all_dtypes()) {
      if (tt::is_cplx(src) && !tt::is_cplx(dst)) continue;  // not specified
      std::vector<tt::cplx> vals;
      if (src == bool_) {
        vals = {0.0, 1.0, 1.0, 0.0};
      } else {
        vals = {0.0, 1.0, 2.0, 3.0, 100.0, 7.0};
        const bool can_neg = src != bool_ && !tt::is_uint(src);
        if (can_neg && !tt::is_uint(dst)) vals.insert(vals.end(), {-3.0, -100.0});
        if (!tt::is_int(src)) {
          vals.push_back(2.75);
          if (!tt::is_uint(dst)) vals.push_back(-2.75);
          vals.push_back(0.1);
        }
        if (tt::is_cplx(src)) vals.push_back({1.5, -2.25});
      }
      for (auto& v : vals) v = tt::round_to(v, src);
      std::vector<tt::cplx> want;
      for (auto v : vals) {
        if (dst == bool_)
          want.push_back(v != 0.0 ? 1.0 : 0.0);
        else if (tt::is_int(dst))
          want.push_back(static_cast<double>(static_cast<int64_t>(v.real())));  // trunc
        else
          want.push_back(tt::round_to(v, dst));
      }
      Tensor x = tt::make_c(vals, {static_cast<int64_t>(vals.size())}, src);
      Tensor y = x.astype(dst);
      EXPECT_EQ(y.dtype(), dst);
      EXPECT_TRUE(tt::all_close_c(y, want, tt::Tol{}))
          << tt::name_of(src) << " -> " << tt::name_of(dst);
      EXPECT_EQ(astype(x, dst).dtype(), dst);
      ++pairs;
    }
  }
  EXPECT_EQ(pairs, 15 * 15 - 2 * 13);  // complex -> real pairs skipped
}

TEST(TensorConvert, AstypeOfStridedView) {
  Tensor a = make(iota(12), {3, 4}, float32);
  Tensor t = a.transpose().astype(int32);
  EXPECT_EQ(t.shape(), (Shape{4, 3}));
  EXPECT_TRUE(tt::all_equal(t, {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
}

TEST(TensorConvert, CopyIsIndependent) {
  std::vector<float> host = {1, 2, 3};
  Tensor base = from_blob(host.data(), {3}, float32);
  Tensor c = base.copy();
  c.eval();
  EXPECT_NE(c.data_ptr(), static_cast<void*>(host.data()));
  EXPECT_TRUE(c.is_contiguous());
  host[0] = 42;
  EXPECT_TRUE(tt::all_equal(c, {1, 2, 3}));
  EXPECT_TRUE(tt::all_equal(base, {42, 2, 3}));
  Tensor c2 = copy(base.index({Slice(std::nullopt, std::nullopt, -1)}));
  EXPECT_TRUE(tt::all_equal(c2, {3, 2, 42}));
  c2.eval();
  EXPECT_TRUE(c2.is_contiguous());
}

TEST(TensorConvert, HostAccessors) {
  Tensor t = make({1.5, -2.5, 3.0}, float32);
  auto v = t.to_vector<float>();
  EXPECT_EQ(v, (std::vector<float>{1.5f, -2.5f, 3.0f}));
  EXPECT_EQ(t[1].item<float>(), -2.5f);
  EXPECT_EQ(make({7}, {1}, int64).to_vector<int64_t>(), (std::vector<int64_t>{7}));
  EXPECT_EQ(make({1, 0, 1}, {3}, bool_).to_vector<bool>(), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(make({2.0}, {}, float64).item<double>(), 2.0);
  Tensor h = make({0.5, 2.0}, {2}, float16);
  auto hv = h.to_vector<Half>();
  ASSERT_EQ(hv.size(), 2u);
  EXPECT_EQ(hv[0].bits, 0x3800);
  EXPECT_EQ(hv[1].bits, 0x4000);
  auto cv = tt::make_c({{1, 2}}, {1}, complex64).to_vector<complex64_t>();
  EXPECT_EQ(cv[0], complex64_t(1, 2));
  // Non-contiguous view read back in logical order.
  Tensor m = make(iota(6), {2, 3}, int32);
  EXPECT_EQ(m.transpose().to_vector<int32_t>(), (std::vector<int32_t>{0, 3, 1, 4, 2, 5}));
  EXPECT_FALSE(t.str().empty());
  EXPECT_FALSE(t.repr().empty());
  std::ostringstream os;
  os << t;
  EXPECT_NE(os.str().find("1.5"), std::string::npos) << os.str();
}

// ---- views ----------------------------------------------------------------------

TEST(TensorView, ViewsShareStorage) {
  std::vector<float> host(24);
  std::iota(host.begin(), host.end(), 0.0f);
  Tensor base = from_blob(host.data(), {4, 6}, float32);
  const size_t nb = host.size() * sizeof(float);
  struct Case {
    const char* name;
    Tensor view;
  };
  std::vector<Case> cases = {
      {"reshape", base.reshape({2, 12})},
      {"reshape-1", reshape(base, {3, -1})},
      {"transpose", base.transpose()},
      {"permute", permute(base.reshape({2, 2, 6}), {2, 0, 1})},
      {"swapaxes", swapaxes(base, 0, 1)},
      {"slice", slice(base, 1, 1, 5, 2)},
      {"index", base.index({Slice(1, std::nullopt), Slice(std::nullopt, std::nullopt, -2)})},
      {"row", base[2]},
      {"broadcast", broadcast_to(base[0], {3, 6})},
      {"expand_dims", expand_dims(base, 1)},
      {"squeeze", squeeze(base.reshape({1, 4, 1, 6}))},
      {"flip", flip(base, Axes{1})},
      {"flip_all", flip(base)},
      {"flatten", base.flatten()},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto before = tt::read(c.view);  // evaluates
    ASSERT_TRUE(c.view.is_evaluated());
    EXPECT_TRUE(inside(c.view.data_ptr(), host.data(), nb))
        << "view data is not inside the base buffer";
  }
  // Writes to the base buffer show through every view.
  std::vector<std::vector<double>> old;
  for (auto& c : cases) old.push_back(tt::read(c.view));
  for (auto& x : host) x += 1000.0f;
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    auto now = tt::read(cases[i].view);
    ASSERT_EQ(now.size(), old[i].size());
    for (size_t j = 0; j < now.size(); ++j) EXPECT_EQ(now[j], old[i][j] + 1000.0) << j;
  }
}

TEST(TensorView, ReshapeTransposeValues) {
  Tensor a = make(iota(24), {2, 3, 4}, int32);
  EXPECT_EQ(a.reshape({4, -1}).shape(), (Shape{4, 6}));
  EXPECT_TRUE(tt::all_equal(a.reshape({6, 4})[5], {20, 21, 22, 23}));
  Tensor p = permute(a, {2, 0, 1});
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  std::vector<double> want;
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) want.push_back(i * 12 + j * 4 + k);
  EXPECT_TRUE(tt::all_equal(p, want));
  EXPECT_TRUE(tt::all_equal(a.permute({2, 0, 1}), want));
  want.clear();
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < 3; ++j)
      for (int i = 0; i < 2; ++i) want.push_back(i * 12 + j * 4 + k);
  EXPECT_TRUE(tt::all_equal(transpose(a), want));
  EXPECT_TRUE(tt::all_equal(a.transpose(), want));
  Tensor m = moveaxis(a, 0, -1);
  EXPECT_EQ(m.shape(), (Shape{3, 4, 2}));
  want.clear();
  for (int j = 0; j < 3; ++j)
    for (int k = 0; k < 4; ++k)
      for (int i = 0; i < 2; ++i) want.push_back(i * 12 + j * 4 + k);
  EXPECT_TRUE(tt::all_equal(m, want));
  // Reshape of a non-contiguous view must still give row-major order of the view.
  Tensor r = transpose(make(iota(6), {2, 3}, int32)).reshape({6});
  EXPECT_TRUE(tt::all_equal(r, {0, 3, 1, 4, 2, 5}));
  EXPECT_TRUE(tt::all_equal(flatten(transpose(make(iota(6), {2, 3}, int32))), {0, 3, 1, 4, 2, 5}));
}

TEST(TensorView, BroadcastExpandSqueezeFlip) {
  Tensor v = make({1, 2, 3}, int32);
  Tensor b = broadcast_to(v, {2, 3});
  EXPECT_EQ(b.shape(), (Shape{2, 3}));
  EXPECT_TRUE(tt::all_equal(b, {1, 2, 3, 1, 2, 3}));
  Tensor col = make({10, 20}, {2, 1}, int32);
  auto bt = broadcast_tensors({v, col});
  ASSERT_EQ(bt.size(), 2u);
  EXPECT_EQ(bt[0].shape(), (Shape{2, 3}));
  EXPECT_TRUE(tt::all_equal(bt[1], {10, 10, 10, 20, 20, 20}));
  EXPECT_EQ(broadcast_shapes({5, 1, 3}, {4, 1}), (Shape{5, 4, 3}));
  EXPECT_EQ(broadcast_shapes({}, {2}), (Shape{2}));
  EXPECT_EQ(broadcast_shapes({0, 1}, {1, 7}), (Shape{0, 7}));
  EXPECT_EQ(expand_dims(v, 0).shape(), (Shape{1, 3}));
  EXPECT_EQ(expand_dims(v, -1).shape(), (Shape{3, 1}));
  Tensor s = zeros({1, 3, 1, 2});
  EXPECT_EQ(squeeze(s).shape(), (Shape{3, 2}));
  EXPECT_EQ(s.squeeze().shape(), (Shape{3, 2}));
  EXPECT_EQ(squeeze(s, Axes{0}).shape(), (Shape{3, 1, 2}));
  EXPECT_EQ(squeeze(s, Axes{-2}).shape(), (Shape{1, 3, 2}));
  Tensor m = make(iota(6), {2, 3}, int32);
  EXPECT_TRUE(tt::all_equal(flip(m), {5, 4, 3, 2, 1, 0}));
  EXPECT_TRUE(tt::all_equal(flip(m, Axes{0}), {3, 4, 5, 0, 1, 2}));
  EXPECT_TRUE(tt::all_equal(flip(m, Axes{-1}), {2, 1, 0, 5, 4, 3}));
}

TEST(TensorIndex, SlicesMatchPythonSemantics1D) {
  const int64_t n = 10;
  Tensor a = make(iota(n), {n}, int64);
  int checked = 0;
  std::vector<std::optional<int64_t>> bounds = {std::nullopt};
  for (int64_t b = -13; b <= 13; b += 2) bounds.push_back(b);
  for (int64_t step : {1, 2, 3, -1, -2, -4, 11, -11}) {
    for (auto start : bounds) {
      for (auto stop : bounds) {
        auto want_idx = py_slice(n, start, stop, step);
        std::vector<double> want(want_idx.begin(), want_idx.end());
        Tensor s = a.index({Slice(start, stop, step)});
        ASSERT_EQ(s.shape(), (Shape{static_cast<int64_t>(want.size())}))
            << "start " << (start ? std::to_string(*start) : "None") << " stop "
            << (stop ? std::to_string(*stop) : "None") << " step " << step;
        ASSERT_TRUE(tt::all_equal(s, want))
            << "start " << (start ? std::to_string(*start) : "None") << " stop "
            << (stop ? std::to_string(*stop) : "None") << " step " << step;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 8 * 15 * 15);
  // slice() is the same thing along one axis.
  EXPECT_TRUE(tt::all_equal(slice(a, 0, -3, std::nullopt), {7, 8, 9}));
  EXPECT_TRUE(tt::all_equal(slice(a, 0, 8, 2, -3), {8, 5}));
}

TEST(TensorIndex, Slices2DWithStepsAndNegatives) {
  Tensor a = make(iota(30), {5, 6}, float32);
  Tensor s = a.index({Slice(-1, 0, -2), Slice(1, std::nullopt, 2)});
  // rows 4, 2; cols 1, 3, 5
  EXPECT_EQ(s.shape(), (Shape{2, 3}));
  EXPECT_TRUE(tt::all_equal(s, {25, 27, 29, 13, 15, 17}));
  // A view of a view.
  Tensor s2 = s.index({Slice(std::nullopt, std::nullopt, -1), -1});
  EXPECT_TRUE(tt::all_equal(s2, {17, 29}));
  EXPECT_TRUE(tt::all_equal(a[-1], {24, 25, 26, 27, 28, 29}));
  EXPECT_EQ(a.index({-2, -1}).item<float>(), 23.0f);
  EXPECT_EQ(a.index({Slice(3, 1)}).shape(), (Shape{0, 6}));
}

TEST(TensorIndex, EllipsisAndNewAxis) {
  Tensor a = make(iota(24), {2, 3, 4}, int32);
  Tensor x = a.index({ellipsis, 1});
  EXPECT_EQ(x.shape(), (Shape{2, 3}));
  EXPECT_TRUE(tt::all_equal(x, {1, 5, 9, 13, 17, 21}));
  Tensor y = a.index({newaxis, 0, ellipsis});
  EXPECT_EQ(y.shape(), (Shape{1, 3, 4}));
  EXPECT_TRUE(tt::all_equal(y, iota(12)));
  Tensor z = a.index({Slice(std::nullopt, std::nullopt, -1), newaxis, 2});
  EXPECT_EQ(z.shape(), (Shape{2, 1, 4}));
  EXPECT_TRUE(tt::all_equal(z, {20, 21, 22, 23, 8, 9, 10, 11}));
  Tensor w = a.index({1, ellipsis, newaxis});
  EXPECT_EQ(w.shape(), (Shape{3, 4, 1}));
  Tensor e = a.index({ellipsis});
  EXPECT_EQ(e.shape(), a.shape());
  Tensor m = index(a, {0, ellipsis, Slice(1, 3)});
  EXPECT_EQ(m.shape(), (Shape{3, 2}));
  EXPECT_TRUE(tt::all_equal(m, {1, 2, 5, 6, 9, 10}));
  Tensor n = a.index({Slice(), newaxis, Slice(), newaxis});
  EXPECT_EQ(n.shape(), (Shape{2, 1, 3, 1, 4}));
}

TEST(TensorIndex, TakeAndGather) {
  Tensor a = make(iota(12, 10), {3, 4}, float32);
  Tensor idx = make({0, 5, -1, 11}, {2, 2}, int64);
  Tensor flat = take(a, idx);
  EXPECT_EQ(flat.shape(), (Shape{2, 2}));
  EXPECT_TRUE(tt::all_equal(flat, {10, 15, 21, 21}));
  Tensor cols = take(a, make({3, 0, -4}, {3}, int64), 1);
  EXPECT_EQ(cols.shape(), (Shape{3, 3}));
  EXPECT_TRUE(tt::all_equal(cols, {13, 10, 10, 17, 14, 14, 21, 18, 18}));
  Tensor rows = take(a, make({2, 2}, {1, 2}, int32), 0);
  EXPECT_EQ(rows.shape(), (Shape{1, 2, 4}));
  EXPECT_TRUE(tt::all_equal(rows, {18, 19, 20, 21, 18, 19, 20, 21}));

  Tensor ia = make({2, 0, 1, 1, 0, 2, 0, 1}, {2, 4}, int64);
  Tensor g0 = take_along_axis(a, ia, 0);
  EXPECT_EQ(g0.shape(), (Shape{2, 4}));
  // out[i][j] = a[ia[i][j]][j]
  std::vector<double> want;
  auto av = read(a), iv = read(ia);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j) want.push_back(av[static_cast<int>(iv[i * 4 + j]) * 4 + j]);
  EXPECT_TRUE(tt::all_equal(g0, want));
  EXPECT_TRUE(tt::all_equal(gather(a, ia, 0), want));
  Tensor ib = make({3, 0, 1, 2, 2, 2}, {3, 2}, int64);
  Tensor g1 = take_along_axis(a, ib, 1);
  EXPECT_TRUE(tt::all_equal(g1, {13, 10, 15, 16, 20, 20}));
  EXPECT_TRUE(tt::all_equal(take_along_axis(a, ib, -1), {13, 10, 15, 16, 20, 20}));
}

TEST(TensorShape, ConcatenateStackSplit) {
  Tensor a = make(iota(6), {2, 3}, int32), b = make(iota(3, 100), {1, 3}, int32);
  Tensor c = concatenate({a, b}, 0);
  EXPECT_EQ(c.shape(), (Shape{3, 3}));
  EXPECT_TRUE(tt::all_equal(c, {0, 1, 2, 3, 4, 5, 100, 101, 102}));
  Tensor d = concatenate({a, make(iota(4, 50), {2, 2}, int32)}, -1);
  EXPECT_EQ(d.shape(), (Shape{2, 5}));
  EXPECT_TRUE(tt::all_equal(d, {0, 1, 2, 50, 51, 3, 4, 5, 52, 53}));
  Tensor s = stack({a, a + 10}, 1);
  EXPECT_EQ(s.shape(), (Shape{2, 2, 3}));
  EXPECT_TRUE(tt::all_equal(s, {0, 1, 2, 10, 11, 12, 3, 4, 5, 13, 14, 15}));
  EXPECT_EQ(stack({a, a, a}).shape(), (Shape{3, 2, 3}));
  EXPECT_EQ(stack({a, a}, -1).shape(), (Shape{2, 3, 2}));

  Tensor x = make(iota(12), {2, 6}, float32);
  auto parts = split(x, 3, 1);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[1].shape(), (Shape{2, 2}));
  EXPECT_TRUE(tt::all_equal(parts[1], {2, 3, 8, 9}));
  auto at = split(x, std::vector<int64_t>{1, 4}, -1);
  ASSERT_EQ(at.size(), 3u);
  EXPECT_EQ(at[0].shape(), (Shape{2, 1}));
  EXPECT_EQ(at[1].shape(), (Shape{2, 3}));
  EXPECT_EQ(at[2].shape(), (Shape{2, 2}));
  EXPECT_TRUE(tt::all_equal(at[2], {4, 5, 10, 11}));
  auto rows = split(x, 2);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_TRUE(tt::all_equal(rows[1], iota(6, 6)));
}

namespace {
// NumPy pad reference for one axis index.
int64_t pad_src(int64_t i, int64_t n, PadMode mode) {
  if (i >= 0 && i < n) return i;
  if (mode == PadMode::Constant) return -1;
  if (mode == PadMode::Edge) return std::clamp<int64_t>(i, 0, n - 1);
  while (i < 0 || i >= n) {  // reflect without repeating the edge
    if (i < 0) i = -i;
    if (i >= n) i = 2 * (n - 1) - i;
  }
  return i;
}
}  // namespace

TEST(TensorShape, PadModes) {
  const Shape s = {3, 4};
  Tensor a = make(iota(12, 1), s, float32);
  const std::vector<std::pair<int64_t, int64_t>> pw = {{1, 2}, {3, 1}};
  for (PadMode mode : {PadMode::Constant, PadMode::Edge, PadMode::Reflect}) {
    Tensor p = pad(a, pw, mode, -9.0);
    const Shape out = {3 + 3, 4 + 4};
    ASSERT_EQ(p.shape(), out) << static_cast<int>(mode);
    std::vector<double> want;
    for (int64_t i = 0; i < out[0]; ++i)
      for (int64_t j = 0; j < out[1]; ++j) {
        int64_t si = pad_src(i - 1, 3, mode), sj = pad_src(j - 3, 4, mode);
        want.push_back(si < 0 || sj < 0 ? -9.0 : static_cast<double>(si * 4 + sj + 1));
      }
    EXPECT_TRUE(tt::all_equal(p, want)) << "mode " << static_cast<int>(mode);
  }
  // One pair for all axes, default constant 0.
  Tensor q = pad(make({1, 2, 3}, int32), {{2, 1}});
  EXPECT_EQ(q.dtype(), int32);
  EXPECT_TRUE(tt::all_equal(q, {0, 0, 1, 2, 3, 0}));
  EXPECT_TRUE(tt::all_equal(pad(make({1, 2, 3}, int32), {{2, 2}}, PadMode::Reflect),
                            {3, 2, 1, 2, 3, 2, 1}));
  EXPECT_TRUE(
      tt::all_equal(pad(make({1, 2, 3}, int32), {{2, 1}}, PadMode::Edge), {1, 1, 1, 2, 3, 3}));
}

TEST(TensorShape, TrilTriu) {
  Tensor a = make(iota(2 * 3 * 4, 1), {2, 3, 4}, float32);
  auto av = read(a);
  for (int64_t k : {-2, -1, 0, 1, 3, 5}) {
    std::vector<double> lo, up;
    for (int b = 0; b < 2; ++b)
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 4; ++j) {
          double v = av[b * 12 + i * 4 + j];
          lo.push_back(j - i <= k ? v : 0.0);
          up.push_back(j - i >= k ? v : 0.0);
        }
    EXPECT_TRUE(tt::all_equal(tril(a, k), lo)) << "k=" << k;
    EXPECT_TRUE(tt::all_equal(triu(a, k), up)) << "k=" << k;
  }
}

// ---- lazy evaluation --------------------------------------------------------

TEST(TensorLazy, OpsAreLazyUntilEval) {
  EagerScope lazy(false);
  EXPECT_FALSE(eager_mode());
  Tensor a = make({1, 2, 3}), b = make({10, 20, 30});
  Tensor c = a + b;
  Tensor d = exp(c * 0.0);
  EXPECT_FALSE(c.is_evaluated());
  EXPECT_FALSE(d.is_evaluated());
  EXPECT_EQ(d.shape(), (Shape{3}));  // metadata without evaluation
  EXPECT_EQ(d.dtype(), float32);
  EXPECT_FALSE(d.is_evaluated());
  d.eval();
  EXPECT_TRUE(d.is_evaluated());
  EXPECT_TRUE(tt::all_close(d, {1, 1, 1}));
  EXPECT_TRUE(tt::all_close(c, {11, 22, 33}));
  Tensor e = a * 2;
  Tensor f = a - 1;
  EXPECT_FALSE(e.is_evaluated());
  tmath::eval({e, f});
  EXPECT_TRUE(e.is_evaluated());
  EXPECT_TRUE(f.is_evaluated());
  Tensor g = sum(a);
  EXPECT_FALSE(g.is_evaluated());
  EXPECT_EQ(g.item<float>(), 6.0f);  // reading data evaluates
  EXPECT_TRUE(g.is_evaluated());
  Tensor h = a + 1;
  tmath::eval(h);
  EXPECT_TRUE(h.is_evaluated());
}

TEST(TensorLazy, EagerScopeEvaluatesAtOnce) {
  const bool before = eager_mode();
  {
    EagerScope eager(true);
    EXPECT_TRUE(eager_mode());
    Tensor a = make({1, 2, 3});
    Tensor c = a * 3 + 1;
    EXPECT_TRUE(c.is_evaluated());
    EXPECT_TRUE(sum(c).is_evaluated());
    EXPECT_TRUE(matmul(reshape(a, {1, 3}), reshape(a, {3, 1})).is_evaluated());
    EXPECT_TRUE(tt::all_close(c, {4, 7, 10}));
    {
      EagerScope lazy(false);
      EXPECT_FALSE((a + 1).is_evaluated());
    }
    EXPECT_TRUE(eager_mode());
  }
  EXPECT_EQ(eager_mode(), before);
  set_eager_mode(true);
  EXPECT_TRUE(eager_mode());
  EXPECT_TRUE((make({1.0}) + 1).is_evaluated());
  set_eager_mode(before);
}

TEST(TensorLazy, LongLoopStaysBoundedAndDoesNotOverflowStack) {
  EagerScope lazy(false);
  Tensor x = ones({256}, float32);
  x.eval();
  const uint64_t active0 = memory_stats().active_bytes;
  reset_peak_memory_stats();
  for (int i = 0; i < 10000; ++i) x = x + 1;
  x.eval();
  EXPECT_TRUE(tt::all_close(x, std::vector<double>(256, 10001.0)));
  const auto st = memory_stats();
  EXPECT_LE(st.active_bytes, active0 + 64 * 1024)
      << "memory grew over the loop (graph not released?)";
  EXPECT_LE(st.peak_bytes, active0 + 4 * 1024 * 1024) << "peak during the lazy loop";
  // Same loop evaluating each step.
  Tensor y = zeros({256}, float32);
  y.eval();
  for (int i = 0; i < 10000; ++i) {
    y = y + 1;
    y.eval();
  }
  EXPECT_TRUE(tt::all_close(y, std::vector<double>(256, 10000.0)));
  EXPECT_LE(memory_stats().active_bytes, active0 + 64 * 1024);
}

TEST(TensorLazy, SharedSubgraphInOneEval) {
  EagerScope lazy(false);
  Tensor a = make({1, 2, 3});
  Tensor common = exp(a);
  Tensor u = common + 1, v = common * 2;
  reset_dispatch_stats();
  tmath::eval({u, v});
  const auto st = dispatch_stats();
  EXPECT_GE(st.nodes_evaluated, 1u);
  EXPECT_GE(st.graph_evals, 1u);
  EXPECT_TRUE(tt::all_close(u, {std::exp(1.0) + 1, std::exp(2.0) + 1, std::exp(3.0) + 1}));
  EXPECT_TRUE(tt::all_close(v, {2 * std::exp(1.0), 2 * std::exp(2.0), 2 * std::exp(3.0)}));
}

TEST(TensorView, StridesOfViews) {
  Tensor a = make(iota(24), {2, 3, 4}, float32);
  a.eval();
  EXPECT_EQ(a.strides(), (Strides{12, 4, 1}));
  EXPECT_TRUE(a.is_contiguous());
  Tensor t = a.transpose();
  t.eval();
  EXPECT_EQ(t.strides(), (Strides{1, 4, 12}));
  EXPECT_FALSE(t.is_contiguous());
  Tensor b = broadcast_to(make({1, 2, 3}, float32), {4, 3});
  b.eval();
  EXPECT_EQ(b.strides(), (Strides{0, 1}));
  Tensor f = flip(a, Axes{2});
  f.eval();
  EXPECT_EQ(f.strides()[2], -1);
  EXPECT_EQ(f.data<float>()[0], 3.0f) << "element 0 of the flipped view";
  Tensor s = a.index({Slice(), Slice(std::nullopt, std::nullopt, 2), Slice(1, std::nullopt, 2)});
  s.eval();
  EXPECT_EQ(s.strides(), (Strides{12, 8, 2}));
  EXPECT_EQ(s.data<float>()[0], 1.0f);
  EXPECT_EQ(copy(t).is_contiguous(), true);
}

TEST(TensorBasics, MetadataAndHandles) {
  Tensor a = zeros({2, 3, 4}, int16);
  EXPECT_EQ(a.shape(-1), 4);
  EXPECT_EQ(a.shape(0), 2);
  EXPECT_EQ(a.shape(-3), 2);
  EXPECT_EQ(a.itemsize(), 2u);
  EXPECT_EQ(a.nbytes(), 48u);
  EXPECT_TRUE(a.defined());
  EXPECT_FALSE(Tensor().defined());
  Tensor b = a;
  EXPECT_EQ(a.id(), b.id()) << "copies of a handle share the node";
  EXPECT_NE(a.id(), a.copy().id());
  Tensor c = a.to(kCPU);
  EXPECT_EQ(c.device(), kCPU);
  EXPECT_TRUE(tt::all_equal(to_device(make({1, 2}), kCPU), {1, 2}));
  if (!std::getenv("TMATH_DEVICE")) {
    EXPECT_EQ(default_device(), kCPU);
  }
  set_default_device(kCPU);
  EXPECT_EQ(default_device(), kCPU);
  EXPECT_EQ(zeros({1}).device(), kCPU);
  EXPECT_FALSE(Scalar(2.5).str().empty());
  EXPECT_TRUE(Tensor(3).weak_type());
}

// ---- from_blob on a device, device_data_ptr (DLPack interop) --------------------

TEST(TensorCreate, FromBlobWithDeviceCpu) {
  std::vector<float> host = {0, 1, 2, 3, 4, 5};
  std::atomic<int> deleted{0};
  {
    auto count = [&](void* p) {
      EXPECT_EQ(p, static_cast<void*>(host.data()));
      deleted++;
    };
    Tensor t = from_blob(host.data(), {2, 3}, float32, {}, count, kCPU);
    EXPECT_EQ(t.device(), kCPU);
    EXPECT_EQ(device_data_ptr(t), static_cast<void*>(host.data()));
    EXPECT_EQ(device_data_ptr(t[1]), static_cast<void*>(host.data() + 3))
        << "views keep their offset";
    Tensor e = exp(t);
    e.eval();
    EXPECT_NE(device_data_ptr(e), static_cast<void*>(host.data())) << "never written in place";
    EXPECT_TRUE(tt::all_equal(t, {0, 1, 2, 3, 4, 5}));
    EXPECT_EQ(deleted.load(), 0);
  }
  EXPECT_EQ(deleted.load(), 1);
  EXPECT_THROW(device_data_ptr(Tensor()), ValueError);
  // A backend without queues: no stream handle, ordering is a no-op (synchronize).
  auto cpu = get_backend("cpu");
  ASSERT_TRUE(cpu);
  EXPECT_EQ(cpu->native_stream(kCPU), 0u);
  EXPECT_NO_THROW(cpu->order_with_stream(kCPU, 1, true));
  EXPECT_NO_THROW(cpu->order_with_stream(kCPU, 1, false));
}

TEST(TensorCreate, FromBlobOnCudaDevice) {
  const Device dev("cuda:0");
  bool cuda = false;
  for (auto& b : backends())
    if (b->name() == "cuda" && b->available()) cuda = true;
  std::atomic<int> deleted{0};
  auto count = [&](void*) { deleted++; };
  if (!cuda) {
    // No CUDA backend: refused with DeviceError, and the deleter is not run.
    float dummy[2] = {0, 0};
    EXPECT_THROW(from_blob(dummy, {2}, float32, {}, count, dev), DeviceError);
    EXPECT_EQ(deleted.load(), 0);
    GTEST_SKIP() << "no available cuda backend: only the refusal was tested";
  }
  // Wrap device memory the engine owns elsewhere; the wrapper shares it, never frees it.
  Tensor owner = arange(int64_t{0}, int64_t{6}, int64_t{1}, float32, dev);
  void* p = device_data_ptr(owner);
  ASSERT_NE(p, nullptr);
  {
    Tensor w = from_blob(p, {2, 3}, float32, {}, count, dev);
    EXPECT_EQ(w.device(), dev);
    EXPECT_EQ(device_data_ptr(w), p);
    EXPECT_EQ(device_data_ptr(w[1]), static_cast<void*>(static_cast<float*>(p) + 3));
    EXPECT_TRUE(tt::all_equal(w, {0, 1, 2, 3, 4, 5}));
    Tensor wt = from_blob(p, {3, 2}, float32, {1, 3}, {}, dev);  // transposed view
    EXPECT_TRUE(tt::all_equal(wt, {0, 3, 1, 4, 2, 5}));
    EXPECT_TRUE(tt::all_equal(exp(w) - exp(owner.reshape({2, 3})), {0, 0, 0, 0, 0, 0}));
    EXPECT_EQ(deleted.load(), 0);
  }
  EXPECT_EQ(deleted.load(), 1);
  auto be = get_backend("cuda");
  EXPECT_NE(be->native_stream(dev), 0u);
  EXPECT_NO_THROW(be->order_with_stream(dev, 1, true));   // legacy default stream waits
  EXPECT_NO_THROW(be->order_with_stream(dev, 1, false));  // engine waits
  be->synchronize(dev);
  EXPECT_TRUE(tt::all_equal(owner, {0, 1, 2, 3, 4, 5}));
}
