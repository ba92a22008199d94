// Keys and samplers (front-end); kernels fill outputs from the Philox stream.
#include "tmath/random.h"

#include <cmath>
#include <mutex>

#include "core/ops_internal.h"
#include "core/philox.h"
#include "tmath/error.h"

namespace tmath::random {

namespace {
// Key derivation uses counter words 2..3 (never used by the sampling stream,
// whose blocks have zero there) so derived keys never collide with samples.
Key derive(Key k, uint32_t a, uint32_t b, uint32_t tag) {
  philox::Block in{{a, b, tag, 0x6b657921u}};
  philox::Block o = philox::philox4x32_10(in, k.k0, k.k1);
  return Key{o.w[0], o.w[1]};
}

std::mutex g_mu;
Key g_key = key(0);
uint64_t g_counter = 0;

void check_shape(const Shape& shape, const char* op) {
  for (auto d : shape)
    if (d < 0) throw ValueError(std::string("[") + op + "] negative dimension in shape " + detail::shape_str(shape));
}

Tensor sample(OpCode op, Key k, const Shape& shape, DType dt, double a, double b, Device device,
              const char* name) {
  check_shape(shape, name);
  RandomArgs args{k.k0, k.k1, a, b};
  return detail::make_node(shape, dt, device, std::make_shared<RandomPrim>(op, args), {});
}
}  // namespace

Key key(uint64_t seed) {
  return Key{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
}

std::vector<Key> split(Key k, int n) {
  if (n < 0) throw ValueError("[split] number of keys must be non-negative");
  std::vector<Key> r;
  r.reserve(n);
  for (int i = 0; i < n; ++i) r.push_back(derive(k, static_cast<uint32_t>(i), 0, 1));
  return r;
}

Key fold_in(Key k, uint64_t data) {
  return derive(k, static_cast<uint32_t>(data), static_cast<uint32_t>(data >> 32), 2);
}

void seed(uint64_t s) {
  std::lock_guard<std::mutex> lk(g_mu);
  g_key = key(s);
  g_counter = 0;
}

Key next_key() {
  std::lock_guard<std::mutex> lk(g_mu);
  return fold_in(g_key, g_counter++);
}

Tensor uniform(Key k, const Shape& shape, DType dtype, double low, double high, Device device) {
  if (!is_floating(dtype))
    throw DTypeError("[uniform] dtype must be a float dtype, got " + std::string(dtype_name(dtype)));
  if (!(low <= high)) throw ValueError("[uniform] low must be <= high");
  return sample(OpCode::RandomUniform, k, shape, dtype, low, high, device, "uniform");
}

Tensor normal(Key k, const Shape& shape, DType dtype, double mean, double stddev, Device device) {
  if (!is_floating(dtype))
    throw DTypeError("[normal] dtype must be a float dtype, got " + std::string(dtype_name(dtype)));
  if (!(stddev >= 0)) throw ValueError("[normal] stddev must be non-negative");
  return sample(OpCode::RandomNormal, k, shape, dtype, mean, stddev, device, "normal");
}

Tensor bits(Key k, const Shape& shape, Device device) {
  return sample(OpCode::RandomBits, k, shape, int64, 0, 0, device, "bits");
}

Tensor integers(Key k, const Shape& shape, int64_t low, int64_t high, DType dtype, Device device) {
  if (!is_integral(dtype))
    throw DTypeError("[integers] dtype must be an integer dtype, got " + std::string(dtype_name(dtype)));
  if (high <= low) throw ValueError("[integers] high must be greater than low");
  uint64_t range = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
  if (range > (uint64_t{1} << 32)) {
    // Wide ranges: scale a 53-bit uniform (bias < range / 2^53), clamped below high.
    Tensor u = uniform(k, shape, float64, 0.0, 1.0, device);
    Tensor r = astype(floor(u * static_cast<double>(range)), int64) + low;
    return astype(minimum(r, high - 1), dtype);
  }
  // Multiply-shift maps a 32-bit word to [0, range) with bias < range / 2^32.
  Tensor w = bits(k, shape, device);
  Tensor r = floor_divide(w * static_cast<int64_t>(range), int64_t{1} << 32) + low;
  return astype(r, dtype);
}

Tensor bernoulli(Key k, const Shape& shape, double p, Device device) {
  if (!(p >= 0 && p <= 1)) throw ValueError("[bernoulli] p must be in [0, 1]");
  return less(uniform(k, shape, float64, 0.0, 1.0, device), p);
}

Tensor uniform(const Shape& shape, DType dtype, double low, double high) {
  return uniform(next_key(), shape, dtype, low, high);
}

Tensor normal(const Shape& shape, DType dtype, double mean, double stddev) {
  return normal(next_key(), shape, dtype, mean, stddev);
}

}  // namespace tmath::random
