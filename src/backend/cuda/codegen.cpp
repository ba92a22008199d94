#include "backend/cuda/codegen.h"

#include <cstdio>
#include <limits>
#include <string>
#include <unordered_set>

#include "backend/cuda/params.h"
#include "tmath/error.h"

#define TM_STR(...) #__VA_ARGS__
#define TM_XSTR(...) TM_STR(__VA_ARGS__)

namespace tmath::cuda::gen {
namespace {

using O = OpCode;

// The prelude in sections: a program gets the base and only the sections whose
// names its text uses (with_prelude), so NVRTC parses less per program.
const char* const kBase = R"(
typedef signed char i8; typedef short i16; typedef int i32; typedef long long i64;
typedef unsigned char u8; typedef unsigned short u16; typedef unsigned int u32;
typedef unsigned long long u64;
struct b8_t { u8 v; };
struct f16_t { u16 v; };
struct bf16_t { u16 v; };
struct __align__(8) c64_t { float re, im; };
struct __align__(16) c128_t { double re, im; };
template <class R> struct cplx { R re, im; };
typedef cplx<float> cf;
typedef cplx<double> cd;
template <class T, int N> struct alignas(sizeof(T) * N) Pack { T v[N]; };

#define TM_DI __device__ __forceinline__
TM_DI float tm_h2f(u16 h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
TM_DI u16 tm_f2h(float f) { u16 h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
TM_DI float tm_bf2f(u16 b) { return __uint_as_float(((u32)b) << 16); }
TM_DI u16 tm_f2bf(float f) {
  u32 u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (u16)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (u16)(u >> 16);
}

TM_DI bool ld(b8_t x) { return x.v != 0; }
TM_DI i8 ld(i8 x) { return x; }
TM_DI i16 ld(i16 x) { return x; }
TM_DI i32 ld(i32 x) { return x; }
TM_DI i64 ld(i64 x) { return x; }
TM_DI u8 ld(u8 x) { return x; }
TM_DI u16 ld(u16 x) { return x; }
TM_DI u32 ld(u32 x) { return x; }
TM_DI u64 ld(u64 x) { return x; }
TM_DI float ld(f16_t x) { return tm_h2f(x.v); }
TM_DI float ld(bf16_t x) { return tm_bf2f(x.v); }
TM_DI float ld(float x) { return x; }
TM_DI double ld(double x) { return x; }
TM_DI cf ld(c64_t x) { cf z; z.re = x.re; z.im = x.im; return z; }
TM_DI cd ld(c128_t x) { cd z; z.re = x.re; z.im = x.im; return z; }

template <class S> struct St { template <class C> static TM_DI S of(C v) { return (S)v; } };
template <> struct St<b8_t> { static TM_DI b8_t of(bool v) { b8_t r; r.v = v ? 1 : 0; return r; } };
template <> struct St<f16_t> { static TM_DI f16_t of(float v) { f16_t r; r.v = tm_f2h(v); return r; } };
template <> struct St<bf16_t> { static TM_DI bf16_t of(float v) { bf16_t r; r.v = tm_f2bf(v); return r; } };
template <> struct St<c64_t> { static TM_DI c64_t of(cf v) { c64_t r; r.re = v.re; r.im = v.im; return r; } };
template <> struct St<c128_t> { static TM_DI c128_t of(cd v) { c128_t r; r.re = v.re; r.im = v.im; return r; } };

TM_DI float tm_inf(float) { return __int_as_float(0x7f800000); }
TM_DI double tm_inf(double) { return __longlong_as_double(0x7ff0000000000000LL); }
)";

// Complex arithmetic (operators on cplx<R> and the c_* functions).
const char* const kComplex = R"(
template <class R> TM_DI cplx<R> mk(R a, R b) { cplx<R> z; z.re = a; z.im = b; return z; }
template <class R> TM_DI cplx<R> operator+(cplx<R> a, cplx<R> b) { return mk(a.re + b.re, a.im + b.im); }
template <class R> TM_DI cplx<R> operator-(cplx<R> a, cplx<R> b) { return mk(a.re - b.re, a.im - b.im); }
template <class R> TM_DI cplx<R> operator-(cplx<R> a) { return mk(-a.re, -a.im); }
template <class R> TM_DI cplx<R> operator*(cplx<R> a, cplx<R> b) {
  return mk(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re);
}
template <class R> TM_DI cplx<R> operator/(cplx<R> a, cplx<R> b) {  // Smith's algorithm
  if (fabs(b.re) >= fabs(b.im)) {
    if (b.re == (R)0) return mk(a.re / fabs(b.re), a.im / fabs(b.re));
    const R r = b.im / b.re, d = b.re + b.im * r;
    return mk((a.re + a.im * r) / d, (a.im - a.re * r) / d);
  }
  const R r = b.re / b.im, d = b.re * r + b.im;
  return mk((a.re * r + a.im) / d, (a.im * r - a.re) / d);
}
template <class R> TM_DI bool operator==(cplx<R> a, cplx<R> b) { return a.re == b.re && a.im == b.im; }
template <class R> TM_DI bool operator!=(cplx<R> a, cplx<R> b) { return !(a == b); }
template <class R> TM_DI R c_abs(cplx<R> z) { return hypot(z.re, z.im); }
template <class R> TM_DI cplx<R> c_exp(cplx<R> z) {
  const R e = exp(z.re);
  return mk(e * cos(z.im), e * sin(z.im));
}
template <class R> TM_DI cplx<R> c_log(cplx<R> z) { return mk(log(c_abs(z)), atan2(z.im, z.re)); }
template <class R> TM_DI cplx<R> c_sqrt(cplx<R> z) {
  if (z.re == (R)0 && z.im == (R)0) return mk((R)0, z.im);
  const R t = sqrt((fabs(z.re) + c_abs(z)) / (R)2);
  if (z.re >= (R)0) return mk(t, z.im / ((R)2 * t));
  return mk(fabs(z.im) / ((R)2 * t), copysign(t, z.im));
}
template <class R> TM_DI cplx<R> c_sin(cplx<R> z) { return mk(sin(z.re) * cosh(z.im), cos(z.re) * sinh(z.im)); }
template <class R> TM_DI cplx<R> c_cos(cplx<R> z) { return mk(cos(z.re) * cosh(z.im), -(sin(z.re) * sinh(z.im))); }
template <class R> TM_DI cplx<R> c_sinh(cplx<R> z) { return mk(sinh(z.re) * cos(z.im), cosh(z.re) * sin(z.im)); }
template <class R> TM_DI cplx<R> c_cosh(cplx<R> z) { return mk(cosh(z.re) * cos(z.im), sinh(z.re) * sin(z.im)); }
template <class R> TM_DI cplx<R> c_tanh(cplx<R> z) {
  if (fabs(z.re) > (R)20) return mk(copysign((R)1, z.re), copysign((R)0, sin((R)2 * z.im)));
  const R d = cosh((R)2 * z.re) + cos((R)2 * z.im);
  return mk(sinh((R)2 * z.re) / d, sin((R)2 * z.im) / d);
}
template <class R> TM_DI cplx<R> c_tan(cplx<R> z) {  // tan(z) = -i tanh(iz)
  const cplx<R> t = c_tanh(mk(-z.im, z.re));
  return mk(t.im, -t.re);
}
template <class R> TM_DI cplx<R> c_recip(cplx<R> z) { return mk((R)1, (R)0) / z; }
template <class R> TM_DI cplx<R> c_sign(cplx<R> z) {
  if (z.re == (R)0 && z.im == (R)0) return mk((R)0, (R)0);
  const R a = c_abs(z);
  return mk(z.re / a, z.im / a);
}
template <class R> TM_DI cplx<R> c_pow(cplx<R> a, cplx<R> b) {
  if (a.re == (R)0 && a.im == (R)0)
    return (b.re == (R)0 && b.im == (R)0) ? mk((R)1, (R)0) : mk((R)0, (R)0);
  return c_exp(b * c_log(a));
}
template <class R> TM_DI bool c_isnan(cplx<R> z) { return isnan(z.re) || isnan(z.im); }
template <class R> TM_DI bool c_isinf(cplx<R> z) { return isinf(z.re) || isinf(z.im); }
template <class R> TM_DI bool c_isfinite(cplx<R> z) { return isfinite(z.re) && isfinite(z.im); }
)";

// Integer and real helpers (CPU semantics).
const char* const kIntHelpers = R"(
template <class T> TM_DI bool tm_signed() { return (T)(-1) < (T)0; }
template <class T> TM_DI T tm_neg_wrap(T a) { return (T)(0ULL - (u64)(i64)a); }
template <class T> TM_DI T tm_idiv(T a, T b) {
  if (b == (T)0) return (T)0;
  if (tm_signed<T>() && b == (T)(-1)) return tm_neg_wrap(a);
  return (T)(a / b);
}
template <class T> TM_DI T tm_floordiv(T a, T b) {
  if (b == (T)0) return (T)0;
  if (tm_signed<T>()) {
    if (b == (T)(-1)) return tm_neg_wrap(a);
    const T q = (T)(a / b);
    return (T)(((a % b) != 0 && ((a < (T)0) != (b < (T)0))) ? q - 1 : q);
  }
  return (T)(a / b);
}
template <class T> TM_DI T tm_irem(T a, T b) {
  if (b == (T)0) return (T)0;
  if (tm_signed<T>()) {
    if (b == (T)(-1)) return (T)0;
    const T r = (T)(a % b);
    return (T)((r != 0 && ((r < (T)0) != (b < (T)0))) ? r + b : r);
  }
  return (T)(a % b);
}
// Products of u16 in u32 (wrapping), not in the int u16 promotes to.
template <class T> TM_DI T tm_wide(T x) { return x; }
TM_DI u32 tm_wide(u16 x) { return (u32)x; }
template <class T> TM_DI T tm_ipow(T base, T ex) {
  if (tm_signed<T>() && ex < (T)0) {
    if (base == (T)1) return (T)1;
    if (base == (T)(-1)) return (ex & 1) ? (T)(-1) : (T)1;
    return (T)0;
  }
  T r = (T)1;
  while (ex) {
    if (ex & 1) r = (T)(tm_wide(r) * tm_wide(base));
    base = (T)(tm_wide(base) * tm_wide(base));
    ex = (T)(ex >> 1);
  }
  return r;
}
// Shifts with NumPy's results for every count: a count that is negative or >= the bit
// width shifts every bit out (0; -1 for >> of a negative signed value).
template <class T> TM_DI bool tm_shift_out(T c) { return (u64)(i64)c >= (u64)(sizeof(T) * 8); }
template <class T> TM_DI T tm_shl(T a, T c) { return tm_shift_out(c) ? (T)0 : (T)((u64)a << (int)c); }
template <class T> TM_DI T tm_shr(T a, T c) {
  if (tm_shift_out(c)) return (tm_signed<T>() && a < (T)0) ? (T)(-1) : (T)0;
  return (T)(a >> (int)c);
}
template <class R> TM_DI R tm_frem(R a, R b) {
  R r = fmod(a, b);
  if (r != (R)0 && ((r < (R)0) != (b < (R)0))) r += b;
  return r;
}
TM_DI bool tm_truthy(bool x) { return x; }
template <class T> TM_DI bool tm_truthy(T x) { return x != (T)0; }
template <class R> TM_DI bool tm_truthy(cplx<R> z) { return z.re != (R)0 || z.im != (R)0; }
template <class T> TM_DI bool tm_isnan(T x) { return x != x; }
)";

// nextafter in each float format's own bits (the CPU kernel's next_bits): a NaN
// operand gives NaN, a == b gives b, zero steps to the smallest subnormal with b's sign.
const char* const kNextafter = R"(
template <class U> TM_DI U tm_next_bits(U x, U y, U sign) {
  const U mag = (U)~sign;
  const U ax = x & mag, ay = y & mag;
  if (x == y || (ax == 0 && ay == 0)) return y;
  if (ax == 0) return (U)((y & sign) | 1u);
  const bool xneg = (x & sign) != 0, yneg = (y & sign) != 0;
  const bool up = xneg ? (!yneg || ay < ax) : (!yneg && ay > ax);
  return up != xneg ? (U)(x + 1u) : (U)(x - 1u);
}
TM_DI float tm_nextafter(float a, float b) {
  if (a != a || b != b) return __int_as_float(0x7fc00000);
  return __uint_as_float(tm_next_bits<u32>(__float_as_uint(a), __float_as_uint(b), 0x80000000u));
}
TM_DI double tm_nextafter(double a, double b) {
  if (a != a || b != b) return __longlong_as_double(0x7ff8000000000000LL);
  return __longlong_as_double((long long)tm_next_bits<u64>(
      (u64)__double_as_longlong(a), (u64)__double_as_longlong(b), 0x8000000000000000ULL));
}
TM_DI f16_t tm_nextafter(f16_t a, f16_t b) {
  f16_t r;
  r.v = ((a.v & 0x7fffu) > 0x7c00u || (b.v & 0x7fffu) > 0x7c00u)
            ? (u16)0x7e00u : tm_next_bits<u16>(a.v, b.v, (u16)0x8000u);
  return r;
}
TM_DI bf16_t tm_nextafter(bf16_t a, bf16_t b) {
  bf16_t r;
  r.v = ((a.v & 0x7fffu) > 0x7f80u || (b.v & 0x7fffu) > 0x7f80u)
            ? (u16)0x7fc0u : tm_next_bits<u16>(a.v, b.v, (u16)0x8000u);
  return r;
}
)";

// Warp shuffles for every accumulator type.
const char* const kShuffles = R"(
#define TM_SHFL(NAME, FN)                                                               \
  TM_DI int NAME(int v, int d) { return FN(0xffffffffu, v, d); }                        \
  TM_DI bool NAME(bool v, int d) { return FN(0xffffffffu, (int)v, d) != 0; }            \
  TM_DI i8 NAME(i8 v, int d) { return (i8)FN(0xffffffffu, (int)v, d); }                 \
  TM_DI i16 NAME(i16 v, int d) { return (i16)FN(0xffffffffu, (int)v, d); }              \
  TM_DI u8 NAME(u8 v, int d) { return (u8)FN(0xffffffffu, (int)v, d); }                 \
  TM_DI u16 NAME(u16 v, int d) { return (u16)FN(0xffffffffu, (int)v, d); }              \
  TM_DI u32 NAME(u32 v, int d) { return FN(0xffffffffu, v, d); }                        \
  TM_DI u64 NAME(u64 v, int d) { return FN(0xffffffffu, v, d); }                        \
  TM_DI i64 NAME(i64 v, int d) { return FN(0xffffffffu, v, d); }                        \
  TM_DI float NAME(float v, int d) { return FN(0xffffffffu, v, d); }                    \
  TM_DI double NAME(double v, int d) { return FN(0xffffffffu, v, d); }                  \
  template <class R> TM_DI cplx<R> NAME(cplx<R> v, int d) {                             \
    return mk(NAME(v.re, d), NAME(v.im, d));                                            \
  }
TM_SHFL(tm_shfl_down, __shfl_down_sync)
TM_SHFL(tm_shfl_up, __shfl_up_sync)
TM_SHFL(tm_shfl_xor, __shfl_xor_sync)
)";

// Names whose use pulls in a prelude section. Complex programs also name their
// storage or arithmetic types (operators on cplx<R> have no name of their own).
const char* const kComplexNames[] = {
    "c64_t", "c128_t",  "cf",     "cd",    "mk",      "c_abs",   "c_exp",
    "c_log", "c_sqrt",  "c_sin",  "c_cos", "c_sinh",  "c_cosh",  "c_tanh",
    "c_tan", "c_recip", "c_sign", "c_pow", "c_isnan", "c_isinf", "c_isfinite"};
const char* const kIntHelperNames[] = {"tm_signed", "tm_neg_wrap", "tm_idiv",   "tm_floordiv",
                                       "tm_irem",   "tm_ipow",     "tm_frem",   "tm_truthy",
                                       "tm_isnan",  "tm_shl",      "tm_shr"};
const char* const kShuffleNames[] = {"tm_shfl_down", "tm_shfl_up", "tm_shfl_xor"};

struct ParamsText {
  const char* name;
  const char* text;
};
const ParamsText kParams[] = {
    {"EwParams", TM_XSTR(TM_EW_PARAMS)},     {"EwcParams", TM_XSTR(TM_EWC_PARAMS)},
    {"FwParams", TM_XSTR(TM_FW_PARAMS)},     {"FwcParams", TM_XSTR(TM_FWC_PARAMS)},
    {"RedParams", TM_XSTR(TM_RED_PARAMS)},   {"AxisParams", TM_XSTR(TM_AXIS_PARAMS)},
    {"RowParams", TM_XSTR(TM_ROW_PARAMS)},   {"TakeParams", TM_XSTR(TM_TAKE_PARAMS)},
    {"RandParams", TM_XSTR(TM_RAND_PARAMS)}, {"MmParams", TM_XSTR(TM_MM_PARAMS)},
    {"TinyParams", TM_XSTR(TM_TINY_PARAMS)}, {"PutParams", TM_XSTR(TM_PUT_PARAMS)}};

std::string build_prelude() {
  std::string s = "// tmath CUDA kernels (generated)\n";
  for (const auto& p : kParams) s.append(p.text).append("\n");
  s.append(kBase).append(kComplex).append(kIntHelpers).append(kNextafter).append(kShuffles);
  return s;
}

// ---- dtype names ------------------------------------------------------------------

const char* stor(DType dt) {
  switch (dt) {
    case DType::Bool:
      return "b8_t";
    case DType::Int8:
      return "i8";
    case DType::Int16:
      return "i16";
    case DType::Int32:
      return "i32";
    case DType::Int64:
      return "i64";
    case DType::UInt8:
      return "u8";
    case DType::UInt16:
      return "u16";
    case DType::UInt32:
      return "u32";
    case DType::UInt64:
      return "u64";
    case DType::Float16:
      return "f16_t";
    case DType::BFloat16:
      return "bf16_t";
    case DType::Float32:
      return "float";
    case DType::Float64:
      return "double";
    case DType::Complex64:
      return "c64_t";
    case DType::Complex128:
      return "c128_t";
  }
  return "?";
}

// Arithmetic type of a dtype's values.
const char* calc(DType dt) {
  switch (dt) {
    case DType::Bool:
      return "bool";
    case DType::Float16:
    case DType::BFloat16:
      return "float";
    case DType::Complex64:
      return "cf";
    case DType::Complex128:
      return "cd";
    default:
      return stor(dt);
  }
}

// The dtype whose storage equals the arithmetic type (f16/bf16 -> float32).
DType calc_dtype(DType dt) {
  return is_low_precision(dt) ? DType::Float32 : dt;
}

const char* real_of(DType dt) {
  return dt == DType::Complex128 || dt == DType::Float64 ? "double" : "float";
}

bool is_signed_int(DType dt) {
  return dt == DType::Int8 || dt == DType::Int16 || dt == DType::Int32 || dt == DType::Int64;
}

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  std::string s = buf;
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string int_min(DType dt) {
  switch (dt) {
    case DType::Int8:
      return "(i8)(-128)";
    case DType::Int16:
      return "(i16)(-32768)";
    case DType::Int32:
      return "(i32)(-2147483647 - 1)";
    case DType::Int64:
      return "(i64)(-9223372036854775807LL - 1)";
    case DType::UInt8:
      return "(u8)0";
    case DType::UInt16:
      return "(u16)0";
    case DType::UInt32:
      return "(u32)0";
    case DType::UInt64:
      return "(u64)0";
    default:
      return "false";
  }
}
std::string int_max(DType dt) {
  switch (dt) {
    case DType::Int8:
      return "(i8)127";
    case DType::Int16:
      return "(i16)32767";
    case DType::Int32:
      return "(i32)2147483647";
    case DType::Int64:
      return "(i64)9223372036854775807LL";
    case DType::UInt8:
      return "(u8)255";
    case DType::UInt16:
      return "(u16)65535";
    case DType::UInt32:
      return "(u32)4294967295u";
    case DType::UInt64:
      return "(u64)18446744073709551615ULL";
    default:
      return "true";
  }
}
double int_min_d(DType dt) {
  switch (dt) {
    case DType::Int8:
      return -128.0;
    case DType::Int16:
      return -32768.0;
    case DType::Int32:
      return -2147483648.0;
    case DType::Int64:
      return static_cast<double>(std::numeric_limits<int64_t>::min());
    default:
      return 0.0;
  }
}
double int_max_d(DType dt) {
  switch (dt) {
    case DType::Int8:
      return 127.0;
    case DType::Int16:
      return 32767.0;
    case DType::Int32:
      return 2147483647.0;
    case DType::Int64:
      return static_cast<double>(std::numeric_limits<int64_t>::max());
    case DType::UInt8:
      return 255.0;
    case DType::UInt16:
      return 65535.0;
    case DType::UInt32:
      return 4294967295.0;
    case DType::UInt64:
      return static_cast<double>(std::numeric_limits<uint64_t>::max());
    default:
      return 1.0;
  }
}

// Storage expression of dtype `to` for the arithmetic value `x` of dtype `from`
// (f16/bf16 `from` means a float value). `saturate`: float -> int clamps and maps
// NaN to 0 (reductions); otherwise out-of-range gives 0 (elementwise casts).
std::string convert(DType from, const std::string& x, DType to, bool saturate) {
  const std::string S = std::string("St<") + stor(to) + ">::of";
  const DType f = calc_dtype(from);
  if (f == calc_dtype(to) && !is_low_precision(to)) return S + "(" + x + ")";
  if (is_complex(to)) {
    const std::string R = real_of(to);
    if (is_complex(f)) return S + "(mk((" + R + ")(" + x + ").re, (" + R + ")(" + x + ").im))";
    return S + "(mk((" + R + ")(" + x + "), (" + R + ")0))";
  }
  if (is_complex(f)) {
    if (to == DType::Bool) return S + "(tm_truthy(" + x + "))";
    return convert(f == DType::Complex64 ? DType::Float32 : DType::Float64, "(" + x + ").re", to,
                   saturate);
  }
  if (to == DType::Bool) return S + "(tm_truthy(" + x + "))";
  if (is_low_precision(to)) return S + "((float)(" + x + "))";
  if (is_integral(to) && is_floating(f)) {
    const std::string T = stor(to);
    if (saturate) {
      const std::string F = calc(f);
      return "tm_sat_" + std::string(T) + "((" + F + ")(" + x + "))";
    }
    return "tm_f2i_" + std::string(T) + "((double)(" + x + "))";
  }
  return "(" + std::string(stor(to)) + ")(" + x + ")";
}

// The float -> int helpers of convert() (tm_f2i_T, tm_sat_T) whose names `used`
// accepts.
template <class Used>
std::string int_conversion_helpers(const Used& used) {
  std::string s;
  for (DType dt : {DType::Int8, DType::Int16, DType::Int32, DType::Int64, DType::UInt8,
                   DType::UInt16, DType::UInt32, DType::UInt64}) {
    const std::string T = stor(dt);
    // Elementwise casts: NaN/inf/out of range give 0 (as the CPU kernels).
    if (used("tm_f2i_" + T))
      s += "TM_DI " + T + " tm_f2i_" + T + "(double f) { return (f > " + num(int_min_d(dt) - 1.0) +
           " && f < " + num(int_max_d(dt) + 1.0) + ") ? (" + T + ")f : (" + T + ")0; }\n";
    // Reductions: saturate, NaN -> 0.
    if (!used("tm_sat_" + T)) continue;
    for (const char* F : {"float", "double"}) {
      s += "TM_DI " + T + " tm_sat_" + T + "(" + F + " v) { if (v != v) return (" + T +
           ")0; if (v <= (" + F + ")" + int_min(dt) + ") return " + int_min(dt) + "; if (v >= (" +
           F + ")" + int_max(dt) + ") return " + int_max(dt) + "; return (" + T + ")v; }\n";
    }
  }
  return s;
}

// The identifiers in `text`.
std::unordered_set<std::string> identifiers(const std::string& text) {
  std::unordered_set<std::string> ids;
  auto head = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  auto tail = [&](char c) { return head(c) || (c >= '0' && c <= '9'); };
  for (size_t i = 0; i < text.size();) {
    if (!head(text[i])) {
      // Skip a number's letters (1e5f, 0x7fLL) with it.
      if (text[i] >= '0' && text[i] <= '9')
        while (i < text.size() && tail(text[i])) ++i;
      else
        ++i;
      continue;
    }
    const size_t b = i;
    while (i < text.size() && tail(text[i])) ++i;
    ids.emplace(text, b, i - b);
  }
  return ids;
}

// A whole program: the prelude parts that `body` uses, then `body`. Parsing the
// unused helpers (complex math, integer helpers, shuffles, parameter structs)
// is a measurable part of a small program's compile time.
std::string with_prelude(const std::string& body) {
  const auto ids = identifiers(body);
  auto used = [&](const std::string& id) { return ids.count(id) > 0; };
  auto any = [&](const auto& names) {
    for (const char* n : names)
      if (used(n)) return true;
    return false;
  };
  std::string s = "// tmath CUDA kernels (generated)\n";
  for (const auto& p : kParams)
    if (used(p.name)) s.append(p.text).append("\n");
  s += kBase;
  if (any(kComplexNames)) s += kComplex;
  if (any(kIntHelperNames)) s += kIntHelpers;
  if (used("tm_nextafter")) s += kNextafter;
  if (any(kShuffleNames)) s += kShuffles;
  s += int_conversion_helpers(used);
  s += body;
  return s;
}

// ---- elementwise op expressions ------------------------------------------------------

// Result of unary op on arithmetic value x (dtype dt) as a storage value of `out`.
std::string unary_expr(O op, DType dt, DType out) {
  const bool cx = is_complex(dt), fl = is_floating(dt);
  const std::string C = calc(dt);
  const std::string TO = stor(out);
  auto st = [&](const std::string& e) { return "St<" + TO + ">::of(" + e + ")"; };
  auto cast = [&](const std::string& e) { return st("(" + C + ")(" + e + ")"); };
  auto fn = [&](const char* f, const char* cf) {
    return cx ? st(std::string(cf) + "(x)") : cast(std::string(f) + "(x)");
  };
  const std::string one = "(" + C + ")1";
  switch (op) {
    case O::Neg:
      return cx ? st("-x") : cast("-x");
    case O::Abs:
      if (cx) return st("c_abs(x)");
      if (kind(dt) == DTypeKind::UnsignedInt) return st("x");
      if (is_floating(dt)) return cast("fabs(x)");  // |-0| = +0
      return cast("x < (" + C + ")0 ? -x : x");
    case O::Sign:
      if (cx) return st("c_sign(x)");
      if (fl) return cast("isnan(x) ? x : (" + C + ")((x > (" + C + ")0) - (x < (" + C + ")0))");
      return cast("(x > (" + C + ")0) - (x < (" + C + ")0)");
    case O::Square:  // u16 multiplies in u32 (wraps) rather than in int
      if (dt == DType::UInt16) return cast("(u32)x * (u32)x");
      return cx ? st("x * x") : cast("x * x");
    case O::Relu:
      if (fl) return cast("x > (" + C + ")0 ? x : (x != x ? x : (" + C + ")0)");
      return cast("x > (" + C + ")0 ? x : (" + C + ")0");
    case O::Exp:
      return fn("exp", "c_exp");
    case O::Expm1:
      return cast("expm1(x)");  // real only (complex: cpu fallback)
    case O::Log:
      return fn("log", "c_log");
    case O::Log1p:
      return cast("log1p(x)");  // real only (complex: cpu fallback)
    case O::Log2:
      return cast("log2(x)");  // real only (complex: cpu fallback)
    case O::Log10:
      return cast("log10(x)");  // real only (complex: cpu fallback)
    case O::Sqrt:
      return fn("sqrt", "c_sqrt");
    case O::Rsqrt:
      return cast(one + " / sqrt(x)");
    case O::Reciprocal:
      return cx ? st("c_recip(x)") : cast(one + " / x");
    case O::Sin:
      return fn("sin", "c_sin");
    case O::Cos:
      return fn("cos", "c_cos");
    case O::Tan:
      return fn("tan", "c_tan");
    case O::Asin:
      return cast("asin(x)");  // real only (complex: cpu fallback)
    case O::Acos:
      return cast("acos(x)");  // real only (complex: cpu fallback)
    case O::Atan:
      return cast("atan(x)");  // real only (complex: cpu fallback)
    case O::Asinh:
      return cast("asinh(x)");  // real only (complex: cpu fallback)
    case O::Acosh:
      return cast("acosh(x)");  // real only (complex: cpu fallback)
    case O::Atanh:
      return cast("atanh(x)");  // real only (complex: cpu fallback)
    case O::Sinh:
      return fn("sinh", "c_sinh");
    case O::Cosh:
      return fn("cosh", "c_cosh");
    case O::Tanh:
      return fn("tanh", "c_tanh");
    case O::Sigmoid:
      return cast(one + " / (" + one + " + exp(-x))");
    case O::Silu:
      return cast("x / (" + one + " + exp(-x))");
    case O::Gelu:
      return cast("(" + C + ")0.5 * x * (" + one + " + erf(x * (" + C + ")0.7071067811865476))");
    case O::GeluTanh:
      return cast("(" + C + ")0.5 * x * (" + one + " + tanh((" + C +
                  ")0.7978845608028654 * (x + (" + C + ")0.044715 * x * x * x)))");
    case O::Erf:
      return cast("erf(x)");
    case O::Erfinv:
      return cast("erfinv(x)");
    case O::Floor:
      return cast("floor(x)");
    case O::Ceil:
      return cast("ceil(x)");
    case O::Round:
      return cast("rint(x)");
    case O::IsNan:
      return st(cx ? "c_isnan(x)" : "(bool)isnan(x)");
    case O::IsInf:
      return st(cx ? "c_isinf(x)" : "(bool)isinf(x)");
    case O::IsFinite:
      return st(cx ? "c_isfinite(x)" : "(bool)isfinite(x)");
    case O::LogicalNot:
      return st("!x");
    case O::BitwiseInvert:
      return dt == DType::Bool ? st("!x") : cast("~x");
    case O::Real:
      return st("x.re");
    case O::Imag:
      return st("x.im");
    case O::Conj:
      return st("mk(x.re, -x.im)");
    default:
      break;
  }
  throw UnsupportedError("[" + std::string(op_name(op)) + "] no CUDA kernel for dtype " +
                         std::string(dtype_name(dt)));
}

// Result of binary op on arithmetic a, b (storage va, vb) of dtype dt, as storage of `out`.
std::string binary_expr(O op, DType dt, DType out) {
  const bool cx = is_complex(dt), fl = is_floating(dt), in = is_integral(dt);
  const bool bo = dt == DType::Bool;
  const std::string C = calc(dt);
  const std::string TO = stor(out);
  auto st = [&](const std::string& e) { return "St<" + TO + ">::of(" + e + ")"; };
  auto cast = [&](const std::string& e) { return st("(" + C + ")(" + e + ")"); };
  auto arith = [&](const std::string& e) { return cx ? st(e) : cast(e); };
  switch (op) {
    case O::Add:
      return bo ? st("a || b") : arith("a + b");
    case O::Subtract:
      return arith("a - b");
    case O::Multiply:
      if (dt == DType::UInt16) return cast("(u32)a * (u32)b");
      return bo ? st("a && b") : arith("a * b");
    case O::Divide:
      return in ? st("tm_idiv<" + C + ">(a, b)") : arith("a / b");
    case O::FloorDivide:
      return in ? st("tm_floordiv<" + C + ">(a, b)") : cast("floor(a / b)");
    case O::Remainder:
      return in ? st("tm_irem<" + C + ">(a, b)") : cast("tm_frem(a, b)");
    case O::Power:
      if (in) return st("tm_ipow<" + C + ">(a, b)");
      return cx ? st("c_pow(a, b)") : cast("pow(a, b)");
    case O::Maximum:
      if (fl) return "(isnan(a) ? va : isnan(b) ? vb : (a >= b ? va : vb))";
      return "(a >= b ? va : vb)";
    case O::Minimum:
      if (fl) return "(isnan(a) ? va : isnan(b) ? vb : (a <= b ? va : vb))";
      return "(a <= b ? va : vb)";
    case O::Atan2:
      return cast("atan2(a, b)");
    case O::Hypot:
      return cast("hypot(a, b)");
    case O::GeluGrad: {  // a * (Phi(b) + b phi(b)), Phi through erfc
      const std::string k = "(" + C + ")";
      return cast("a * (" + k + "0.5 * erfc(b * " + k + "-0.7071067811865476) + b * exp(b * b * " + k +
                  "-0.5) * " + k + "0.3989422804014327)");
    }
    case O::GeluTanhGrad: {
      const std::string k = "(" + C + ")";
      // s = sigmoid(2u) = (1 + tanh u) / 2: gelu' = s (1 + 2 b (1 - s) u') (no cancellation
      // in 1 + tanh u for b << 0). The lambda gives the expression a local.
      return cast("[&] { const " + C + " s = " + k + "1 / (" + k + "1 + exp(" + k +
                  "-1.5957691216057308 * (b + " + k + "0.044715 * b * b * b))); return a * (s * (" + k +
                  "1 + " + k + "2 * b * (" + k + "1 - s) * " + k + "0.7978845608028654 * (" + k + "1 + " + k +
                  "0.134145 * b * b))); }()");
    }
    case O::Nextafter:  // storage in, storage out (float16/bfloat16 step in their own bits)
      if (fl) return "tm_nextafter(va, vb)";
      break;
    case O::Equal:
      return st("a == b");
    case O::NotEqual:
      return st("a != b");
    case O::Less:
      return st("a < b");
    case O::LessEqual:
      return st("a <= b");
    case O::Greater:
      return st("a > b");
    case O::GreaterEqual:
      return st("a >= b");
    case O::LogicalAnd:
      return st("a && b");
    case O::LogicalOr:
      return st("a || b");
    case O::LogicalXor:
      return st("a != b");
    case O::BitwiseAnd:
      return bo ? st("a && b") : cast("a & b");
    case O::BitwiseOr:
      return bo ? st("a || b") : cast("a | b");
    case O::BitwiseXor:
      return bo ? st("a != b") : cast("a ^ b");
    case O::BitwiseLeftShift:
      if (in) return st("tm_shl<" + C + ">(a, b)");
      break;
    case O::BitwiseRightShift:
      if (in) return st("tm_shr<" + C + ">(a, b)");
      break;
    default:
      break;
  }
  throw UnsupportedError("[" + std::string(op_name(op)) + "] no CUDA kernel for dtype " +
                         std::string(dtype_name(dt)));
}

// ---- elementwise kernels ----------------------------------------------------------------

// Four kernels over n elements: operand 0 (type TO) is written with `call`, a
// function of the input storage values named v1..vN (types T1..TN). `cp`/`sp`:
// the parameter structs of the contiguous and strided kernels. `fold_tail`: tm_v
// handles the n % V tail in its main loop (see there).
std::string ew_kernels(int nin, int vec, const std::string& cp = "EwcParams",
                       const std::string& sp = "EwParams", int only = -1, bool fold_tail = false) {
  std::string s;
  auto ptrs = [&] {
    std::string p = "  TO* o = (TO*)p.ptr[0];\n";
    for (int k = 1; k <= nin; ++k) {
      const std::string K = std::to_string(k);
      p += "  const T" + K + "* i" + K + " = (const T" + K + "*)p.ptr[" + K + "];\n";
      p += "  const bool s" + K + " = (p.scalar_mask >> " + K + ") & 1;\n";
    }
    return p;
  };
  auto args = [&](const std::string& idx_prefix) {
    std::string a;
    for (int k = 1; k <= nin; ++k) a += (k > 1 ? ", " : "") + idx_prefix + std::to_string(k);
    return a;
  };
  const std::string tid = "blockIdx.x * (long long)blockDim.x + threadIdx.x";
  const std::string V = std::to_string(vec);
  // `only` >= 0 emits just that kernel (0: tm_c, 1: tm_v, 2: tm_s32, 3: tm_s64).
  if (only < 0 || only == 0) {
  // Contiguous (inputs contiguous or single elements).
  s += "extern \"C\" __global__ void __launch_bounds__(256) tm_c(const " + cp + " p) {\n" + ptrs() +
       "  const long long step = (long long)gridDim.x * blockDim.x;\n"
       "  for (long long i = " +
       tid + "; i < p.n; i += step) {\n";
  for (int k = 1; k <= nin; ++k) {
    const std::string K = std::to_string(k);
    s += "    const T" + K + " a" + K + " = i" + K + "[s" + K + " ? 0 : i];\n";
  }
  s += "    o[i] = tm_call(" + args("a") + (nin ? ", " : "") + "i);\n  }\n}\n";
  }
  if ((only < 0 || only == 1) && !fold_tail) {
  // Vectorised contiguous.
  s += "extern \"C\" __global__ void __launch_bounds__(256) tm_v(const " + cp + " p) {\n" + ptrs() +
       "  const long long step = (long long)gridDim.x * blockDim.x;\n"
       "  const long long nv = p.n / " +
       V +
       ";\n"
       "  for (long long i = " +
       tid + "; i < nv; i += step) {\n";
  for (int k = 1; k <= nin; ++k) {
    const std::string K = std::to_string(k);
    s += "    Pack<T" + K + ", " + V + "> q" + K + ";\n    if (s" + K + ") {\n      const T" + K +
         " t = i" + K + "[0];\n      #pragma unroll\n      for (int j = 0; j < " + V + "; ++j) q" +
         K + ".v[j] = t;\n    } else {\n      q" + K + " = ((const Pack<T" + K + ", " + V + ">*)i" +
         K + ")[i];\n    }\n";
  }
  s += "    Pack<TO, " + V + "> r;\n    #pragma unroll\n    for (int j = 0; j < " + V +
       "; ++j) r.v[j] = tm_call(";
  for (int k = 1; k <= nin; ++k) s += "q" + std::to_string(k) + ".v[j], ";
  s += "i * " + V + " + j);\n    ((Pack<TO, " + V + ">*)o)[i] = r;\n  }\n";
  s += "  const long long t = nv * " + V + " + " + tid + ";\n  if (t < p.n) o[t] = tm_call(";
  for (int k = 1; k <= nin; ++k) {
    const std::string K = std::to_string(k);
    s += "i" + K + "[s" + K + " ? 0 : t], ";
  }
  s += "t);\n}\n";
  }
  if ((only < 0 || only == 1) && fold_tail) {
  // Vectorised contiguous, the tail folded into the main loop: items 0..nv-1 are
  // packs of V elements, the n % V tail elements follow as items of one element
  // each (loaded into every lane, lane 0 stored). The kernel then holds one inlined
  // copy of tm_call per lane and none for a separate tail: a shorter compile when
  // tm_call is long. (For a short tm_call NVVM unrolls the loop and the folded
  // form is the larger one.)
  s += "extern \"C\" __global__ void __launch_bounds__(256) tm_v(const " + cp + " p) {\n" + ptrs() +
       "  const long long step = (long long)gridDim.x * blockDim.x;\n"
       "  const long long nv = p.n / " + V + ", items = nv + (p.n - nv * " + V + ");\n"
       "  for (long long i = " + tid + "; i < items; i += step) {\n"
       "    const bool full = i < nv;\n"
       "    const long long e = nv * " + V + " + (i - nv);\n";
  for (int k = 1; k <= nin; ++k) {
    const std::string K = std::to_string(k);
    s += "    Pack<T" + K + ", " + V + "> q" + K + ";\n    if (s" + K + " || !full) {\n      const T" +
         K + " t = i" + K + "[s" + K + " ? 0 : e];\n      #pragma unroll\n      for (int j = 0; j < " +
         V + "; ++j) q" + K + ".v[j] = t;\n    } else {\n      q" + K + " = ((const Pack<T" + K +
         ", " + V + ">*)i" + K + ")[i];\n    }\n";
  }
  s += "    Pack<TO, " + V + "> r;\n    #pragma unroll\n    for (int j = 0; j < " + V +
       "; ++j) r.v[j] = tm_call(";
  for (int k = 1; k <= nin; ++k) s += "q" + std::to_string(k) + ".v[j], ";
  s += "full ? i * " + V + " + j : e);\n    if (full) ((Pack<TO, " + V +
       ">*)o)[i] = r;\n    else o[e] = r.v[0];\n  }\n}\n";
  }
  if (only < 0 || only >= 2) {
  // Strided, 32- and 64-bit index arithmetic.
  s += "template <class I> TM_DI void tm_strided(const " + sp + "& p) {\n" + ptrs() +
       "  const I n = (I)p.n;\n  const int nd = (int)p.nd;\n"
       "  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * "
       "blockDim.x) {\n    I r = i;\n    long long o0 = 0";
  for (int k = 1; k <= nin; ++k) s += ", o" + std::to_string(k) + " = 0";
  s += ";\n    for (int d = nd - 1; d > 0; --d) {\n      const I sd = (I)p.shape[d];\n"
       "      const I q = r / sd;\n      const long long c = (long long)(r - q * sd);\n"
       "      r = q;\n";
  for (int k = 0; k <= nin; ++k) {
    const std::string K = std::to_string(k);
    s += "      o" + K + " += c * p.stride[" + K + "][d];\n";
  }
  s += "    }\n";
  for (int k = 0; k <= nin; ++k) {
    const std::string K = std::to_string(k);
    s += "    o" + K + " += (long long)r * p.stride[" + K + "][0];\n";
  }
  s += "    o[o0] = tm_call(";
  for (int k = 1; k <= nin; ++k) s += "i" + std::to_string(k) + "[o" + std::to_string(k) + "], ";
  s += "(long long)i);\n  }\n}\n";
  if (only != 3)
    s += "extern \"C\" __global__ void __launch_bounds__(256) tm_s32(const " + sp +
         " p) { tm_strided<unsigned>(p); }\n";
  if (only != 2)
    s += "extern \"C\" __global__ void __launch_bounds__(256) tm_s64(const " + sp +
         " p) { tm_strided<unsigned long long>(p); }\n";
  }
  return s;
}

ProgramSource ew_program(const std::string& name, const std::string& body) {
  ProgramSource p;
  p.name = name;
  p.source = with_prelude(body);
  p.kernels = {"tm_c", "tm_v", "tm_s32", "tm_s64"};
  return p;
}

const char* uint_of_size(size_t n) {
  switch (n) {
    case 1:
      return "u8";
    case 2:
      return "u16";
    case 4:
      return "u32";
    case 8:
      return "u64";
    default:
      return "c128_t";
  }
}

std::string lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return r;
}

// ---- reductions ------------------------------------------------------------------------

struct RedSpec {
  DType acc;             // accumulator dtype (its arithmetic type)
  std::string identity;  // expression of type A
  std::string combine;   // body of comb(a, b)
};

RedSpec red_spec(O op, DType in) {
  RedSpec r;
  const bool low = is_low_precision(in);
  switch (op) {
    case O::Sum:
    case O::Prod: {
      const bool sum = op == O::Sum;
      // Unsigned ints accumulate in u64 (wrapping mod 2^64), bool and signed ints in i64
      // (wrapping through u64): the engine's accumulate_type.
      r.acc = kind(in) == DTypeKind::UnsignedInt        ? DType::UInt64
              : (in == DType::Bool || is_integral(in)) ? DType::Int64
              : low                                    ? DType::Float32
                                                       : in;
      if (is_complex(r.acc)) {
        r.identity = std::string("mk((") + real_of(r.acc) + ")" + (sum ? "0" : "1") + ", (" +
                     real_of(r.acc) + ")0)";
        r.combine = sum ? "a + b" : "a * b";
      } else if (r.acc == DType::Int64) {
        r.identity = sum ? "(i64)0" : "(i64)1";
        r.combine = sum ? "(i64)((u64)a + (u64)b)" : "(i64)((u64)a * (u64)b)";
      } else {
        r.identity = std::string("(") + calc(r.acc) + ")" + (sum ? "0" : "1");
        r.combine = sum ? "a + b" : "a * b";
      }
      break;
    }
    case O::Max:
    case O::Min: {
      const bool mx = op == O::Max;
      r.acc = low ? DType::Float32 : in;
      if (is_floating(r.acc)) {
        r.identity = std::string(mx ? "-" : "") + "tm_inf((" + calc(r.acc) + ")0)";
      } else {
        r.identity = mx ? int_min(r.acc) : int_max(r.acc);
      }
      r.combine = mx ? "(a >= b || a != a) ? a : b" : "(a <= b || a != a) ? a : b";
      break;
    }
    case O::Any:
      r.acc = DType::Bool;
      r.identity = "false";
      r.combine = "a || b";
      break;
    case O::All:
      r.acc = DType::Bool;
      r.identity = "true";
      r.combine = "a && b";
      break;
    default:
      throw UnsupportedError("[reduce] " + std::string(op_name(op)) + " is not a reduction");
  }
  return r;
}

// Input arithmetic value -> accumulator (for Any/All: truthiness).
std::string to_acc(O op, DType in, DType acc, const std::string& x) {
  if (op == O::Any || op == O::All) return "tm_truthy(" + x + ")";
  if (calc_dtype(in) == acc) return x;
  return "(" + std::string(calc(acc)) + ")(" + x + ")";
}

// Block-wide combine of `v` into thread 0 (all threads call; uses `sh[32]`).
const char* const kBlockReduce = R"(
template <class A, class F> TM_DI A tm_block_reduce(A v, A* sh, F f) {
  #pragma unroll
  for (int d = 16; d > 0; d >>= 1) v = f(v, tm_shfl_down(v, d));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  const int nw = (blockDim.x + 31) >> 5;
  if (warp == 0) {
    v = lane < nw ? sh[lane] : sh[0];
    #pragma unroll
    for (int d = 16; d > 0; d >>= 1) {
      const A o = tm_shfl_down(v, d);
      if (lane + d < nw) v = f(v, o);
    }
  }
  return v;
}
)";

const char* const kOffsets = R"(
TM_DI long long tm_offset(long long j, int nd, const long long* shape, const long long* stride) {
  long long off = 0;
  for (int d = nd - 1; d > 0; --d) {
    const long long q = j / shape[d];
    off += (j - q * shape[d]) * stride[d];
    j = q;
  }
  return nd > 0 ? off + j * stride[0] : 0;
}
)";

}  // namespace

const std::string& prelude() {
  static const std::string s = build_prelude();
  return s;
}

uint64_t key(Family f, uint32_t op, uint32_t a, uint32_t b, uint32_t c) {
  return (static_cast<uint64_t>(f) << 56) | (static_cast<uint64_t>(op & 0xffff) << 40) |
         (static_cast<uint64_t>(a & 0xff) << 32) | (static_cast<uint64_t>(b & 0xff) << 24) |
         (static_cast<uint64_t>(c & 0xffffff));
}

bool unary_supported(OpCode op, DType dt) {
  const bool c = is_complex(dt), b = dt == DType::Bool, f = is_floating(dt);
  switch (op) {
    case O::Neg:
    case O::Sign:
    case O::Square:
    case O::Abs:
      return !b;
    case O::Relu:
      return !c;
    case O::Exp:
    case O::Log:
    case O::Sqrt:
    case O::Sin:
    case O::Cos:
    case O::Tan:
    case O::Sinh:
    case O::Cosh:
    case O::Tanh:
    case O::Reciprocal:
    case O::IsNan:
    case O::IsInf:
    case O::IsFinite:
      return f || c;
    case O::LogicalNot:
      return b;
    case O::BitwiseInvert:
      return b || is_integral(dt);
    case O::Real:
    case O::Imag:
    case O::Conj:
      return c;
    default:
      return f;
  }
}

bool binary_supported(OpCode op, DType dt) {
  const bool c = is_complex(dt), b = dt == DType::Bool, f = is_floating(dt);
  switch (op) {
    case O::Add:
    case O::Multiply:
    case O::Equal:
    case O::NotEqual:
      return true;
    case O::Subtract:
    case O::Divide:
    case O::Power:
      return !b;
    case O::LogicalAnd:
    case O::LogicalOr:
    case O::LogicalXor:
      return b;
    case O::BitwiseAnd:
    case O::BitwiseOr:
    case O::BitwiseXor:
      return b || is_integral(dt);
    case O::BitwiseLeftShift:
    case O::BitwiseRightShift:
      return is_integral(dt);
    case O::Maximum:
    case O::Minimum:
    case O::Less:
    case O::LessEqual:
    case O::Greater:
    case O::GreaterEqual:
      return !c;
    case O::FloorDivide:
    case O::Remainder:
      return !c && !b;
    case O::Atan2:
    case O::Hypot:
    case O::Nextafter:
    case O::GeluGrad:
    case O::GeluTanhGrad:
      return f;
    default:
      return false;
  }
}

int vec_width(size_t max_itemsize) {
  if (max_itemsize == 0 || max_itemsize >= 16) return 1;
  return static_cast<int>(16 / max_itemsize);
}

ProgramSource unary(OpCode op, DType in, DType out) {
  std::string b = "typedef " + std::string(stor(out)) + " TO;\ntypedef " + stor(in) + " T1;\n";
  b += "TM_DI TO tm_call(T1 v, long long) { const " + std::string(calc(in)) +
       " x = ld(v);\n  return " + unary_expr(op, in, out) + ";\n}\n";
  b += ew_kernels(1, vec_width(std::max(itemsize(in), itemsize(out))));
  return ew_program(lower(op_name(op)) + "_" + std::string(dtype_name(in)), b);
}

bool fused_supported(const FusedProgram& p) {
  if (p.instrs.empty() || p.instrs.back().kind == FusedInstr::Kind::Input) return false;
  if (p.num_inputs + 1 > TM_FMAX) return false;
  for (const auto& in : p.instrs) {
    switch (in.kind) {
      case FusedInstr::Kind::Unary:
        if (!unary_supported(in.op, p.instrs[in.a].dtype)) return false;
        break;
      case FusedInstr::Kind::Binary:
        if (!binary_supported(in.op, p.instrs[in.a].dtype)) return false;
        break;
      default:
        break;
    }
  }
  return true;
}

namespace {
// Whether a fused program's tm_call is long: a math library function, complex
// arithmetic or many ops. Its tm_v folds the tail into the main loop (ew_kernels).
bool long_body(const FusedProgram& p) {
  int ops = 0;
  for (const auto& in : p.instrs) {
    if (in.kind != FusedInstr::Kind::Unary && in.kind != FusedInstr::Kind::Binary) continue;
    ++ops;
    if (is_complex(p.instrs[in.a].dtype)) return true;
    switch (in.op) {
      case O::Exp:
      case O::Expm1:
      case O::Log:
      case O::Log1p:
      case O::Log2:
      case O::Log10:
      case O::Sin:
      case O::Cos:
      case O::Tan:
      case O::Asin:
      case O::Acos:
      case O::Atan:
      case O::Asinh:
      case O::Acosh:
      case O::Atanh:
      case O::Sinh:
      case O::Cosh:
      case O::Tanh:
      case O::Sigmoid:
      case O::Gelu:
      case O::GeluTanh:
      case O::Silu:
      case O::Erf:
      case O::Erfinv:
      case O::Power:
      case O::Atan2:
      case O::Hypot:
      case O::GeluGrad:
      case O::GeluTanhGrad:
      case O::Remainder:
        return true;
      default:
        break;
    }
  }
  return ops >= 16;
}
}  // namespace

ProgramSource fused(const FusedProgram& p, int variant) {
  using K = FusedInstr::Kind;
  const auto& ins = p.instrs;
  const int nin = p.num_inputs;
  std::string b = "typedef " + std::string(stor(ins.back().dtype)) + " TO;\n";
  std::vector<DType> in_dt(static_cast<size_t>(nin), DType::Float32);
  size_t max_isz = itemsize(ins.back().dtype);
  for (const auto& in : ins)
    if (in.kind == K::Input) {
      in_dt[in.a] = in.dtype;
      max_isz = std::max(max_isz, itemsize(in.dtype));
    }
  for (int k = 0; k < nin; ++k)
    b += "typedef " + std::string(stor(in_dt[k])) + " T" + std::to_string(k + 1) + ";\n";
  b += "TM_DI TO tm_call(";
  for (int k = 0; k < nin; ++k) b += "T" + std::to_string(k + 1) + " v" + std::to_string(k + 1) + ", ";
  b += "long long) {\n";
  // Every value is held in its storage type, so each op rounds exactly as the
  // unfused kernel that writes it to memory would.
  for (size_t i = 0; i < ins.size(); ++i) {
    const auto& in = ins[i];
    const std::string S = "s" + std::to_string(i), T = stor(in.dtype);
    auto val = [&](int32_t v) { return "s" + std::to_string(v); };
    switch (in.kind) {
      case K::Input:
        b += "  const " + T + " " + S + " = v" + std::to_string(in.a + 1) + ";\n";
        break;
      case K::Unary: {
        const DType x = ins[in.a].dtype;
        b += "  " + T + " " + S + ";\n  { const " + calc(x) + " x = ld(" + val(in.a) + "); " + S +
             " = " + unary_expr(in.op, x, in.dtype) + "; }\n";
        break;
      }
      case K::Binary: {
        const DType x = ins[in.a].dtype;
        b += "  " + T + " " + S + ";\n  { const " + stor(x) + " va = " + val(in.a) + "; const " +
             stor(x) + " vb = " + val(in.b) + "; const " + calc(x) + " a = ld(va); const " +
             calc(x) + " b = ld(vb); " + S + " = " + binary_expr(in.op, x, in.dtype) + "; }\n";
        break;
      }
      case K::Where:
        b += "  const " + T + " " + S + " = ld(" + val(in.a) + ") ? " + val(in.b) + " : " +
             val(in.c) + ";\n";
        break;
      case K::Cast: {
        const DType x = ins[in.a].dtype;
        b += "  " + T + " " + S + ";\n  { const " + calc(x) + " x = ld(" + val(in.a) + "); " + S +
             " = " + convert(x, "x", in.dtype, false) + "; }\n";
        break;
      }
    }
  }
  b += "  return s" + std::to_string(ins.size() - 1) + ";\n}\n";
  b += ew_kernels(nin, vec_width(max_isz), "FwcParams", "FwParams", variant, long_body(p));
  ProgramSource src = ew_program("fused_" + std::to_string(ins.size()), b);
  static const char* const kNames[] = {"tm_c", "tm_v", "tm_s32", "tm_s64"};
  if (variant >= 0 && variant < 4) src.kernels = {kNames[variant]};
  return src;
}

ProgramSource binary(OpCode op, DType in, DType out) {
  std::string b = "typedef " + std::string(stor(out)) + " TO;\ntypedef " + stor(in) +
                  " T1;\ntypedef " + stor(in) + " T2;\n";
  b += "TM_DI TO tm_call(T1 va, T2 vb, long long) { const " + std::string(calc(in)) +
       " a = ld(va);\n  const " + calc(in) + " b = ld(vb);\n  return " + binary_expr(op, in, out) +
       ";\n}\n";
  b += ew_kernels(2, vec_width(std::max(itemsize(in), itemsize(out))));
  return ew_program(lower(op_name(op)) + "_" + std::string(dtype_name(in)), b);
}

ProgramSource where(size_t isz) {
  const std::string T = uint_of_size(isz);
  std::string b =
      "typedef " + T + " TO;\ntypedef b8_t T1;\ntypedef " + T + " T2;\ntypedef " + T + " T3;\n";
  b += "TM_DI TO tm_call(b8_t c, TO a, TO b, long long) { return c.v ? a : b; }\n";
  b += ew_kernels(3, vec_width(isz));
  return ew_program("where_" + std::to_string(isz), b);
}

ProgramSource copy(DType src, DType dst) {
  std::string b;
  if (src == dst) {
    const std::string T = uint_of_size(itemsize(src));
    b = "typedef " + T + " TO;\ntypedef " + T + " T1;\n";
    b += "TM_DI TO tm_call(T1 v, long long) { return v; }\n";
    b += ew_kernels(1, vec_width(itemsize(src)));
    return ew_program("copy_" + std::to_string(itemsize(src)), b);
  }
  b = "typedef " + std::string(stor(dst)) + " TO;\ntypedef " + stor(src) + " T1;\n";
  b += "TM_DI TO tm_call(T1 v, long long) { const " + std::string(calc(src)) +
       " x = ld(v);\n  return " + convert(src, "x", dst, false) + ";\n}\n";
  b += ew_kernels(1, vec_width(std::max(itemsize(src), itemsize(dst))));
  return ew_program("cast_" + std::string(dtype_name(src)) + "_" + std::string(dtype_name(dst)), b);
}

ProgramSource fill(size_t isz) {
  ProgramSource p;
  p.name = "fill_" + std::to_string(isz);
  const std::string T = uint_of_size(isz);
  p.source = with_prelude(
      "typedef " + T + " TO;\n" +
      "extern \"C\" __global__ void __launch_bounds__(256) tm_fill(const EwParams p) {\n"
      "  TO v;\n  memcpy(&v, p.bits, sizeof(TO));\n  TO* o = (TO*)p.ptr[0];\n"
      "  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < p.n;"
      " i += (long long)gridDim.x * blockDim.x) o[i] = v;\n}\n");
  p.kernels = {"tm_fill"};
  return p;
}

ProgramSource arange(DType out) {
  ProgramSource p;
  p.name = "arange_" + std::string(dtype_name(out));
  std::string conv;
  if (out == DType::Bool)
    conv = "St<b8_t>::of(v != 0.0)";
  else if (is_integral(out))
    conv = "(" + std::string(stor(out)) + ")(long long)v";
  else
    conv = convert(DType::Float64, "v", out, false);
  p.source = with_prelude(
      "typedef " + std::string(stor(out)) + " TO;\n" +
      "extern \"C\" __global__ void __launch_bounds__(256) tm_arange(const EwParams p) {\n"
      "  TO* o = (TO*)p.ptr[0];\n"
      "  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < p.n;"
      " i += (long long)gridDim.x * blockDim.x) {\n"
      "    const double v = p.d0 + (double)i * p.d1;\n    o[i] = " +
      conv + ";\n  }\n}\n");
  p.kernels = {"tm_arange"};
  return p;
}

DType reduce_acc(OpCode op, DType in) {
  return red_spec(op, in).acc;
}

ProgramSource reduce(OpCode op, DType in, DType out) {
  const RedSpec r = red_spec(op, in);
  const std::string A = calc(r.acc);
  std::string s;
  s += "typedef " + std::string(stor(in)) + " TX;\ntypedef " + stor(out) + " TO;\ntypedef " + A +
       " A;\n";
  s += "TM_DI A comb(A a, A b) { return " + r.combine + "; }\n";
  s += "TM_DI A ident() { return " + r.identity + "; }\n";
  s += "TM_DI A conv(TX v) { const " + std::string(calc(in)) + " x = ld(v); return " +
       to_acc(op, in, r.acc, "x") + "; }\n";
  s += "TM_DI TO store(A v) { return " + convert(r.acc, "v", out, true) + "; }\n";
  s += kBlockReduce;
  s += kOffsets;
  s += R"(
TM_DI long long red_off(const RedParams& p, long long r) {
  return p.nr == 1 ? r * p.rstride[0] : tm_offset(r, (int)p.nr, p.rshape, p.rstride);
}
TM_DI void emit(const RedParams& p, long long j, long long s, A acc) {
  if (p.splits == 1) ((TO*)p.out)[j] = store(acc);
  else ((A*)p.partial)[s * p.n_out + j] = acc;
}
// A 16-byte load through the read-only (non-coherent) data path: the reduced input
// is not written while the kernel runs.
template <class V> TM_DI V ld_nc16(const V* q) {
  unsigned w[4];
  asm("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(w[0]), "=r"(w[1]), "=r"(w[2]), "=r"(w[3]) : "l"(q));
  V v;
  memcpy(&v, w, 16);
  return v;
}
// Accumulates elements first, first + stride, ... of one reduced range of n
// elements (the splits of a range interleave: split s of S starts at s * team and
// steps by S * team, so all blocks stream through the range together).
// Contiguous ranges starting on a 16-byte boundary are read as 16-byte vectors
// through the read-only data path, vectors first, first + stride, ...; the elements
// after the last whole vector go to the threads with the lowest `first`. Four
// independent accumulators (four loads in flight per thread), combined in a fixed
// order, so results stay deterministic.
TM_DI A row_acc(const RedParams& p, const TX* x, long long first, long long stride,
                long long n) {
  A acc = ident(), a1 = ident(), a2 = ident(), a3 = ident();
  constexpr int VW = sizeof(TX) < 16 ? (int)(16 / sizeof(TX)) : 1;
  if (VW > 1 && p.nr == 1 && p.rstride[0] == 1 && ((unsigned long long)x & 15ULL) == 0) {
    typedef Pack<TX, VW> V;
    const V* xv = (const V*)x;
    const long long nv = n / VW;
    long long k = first;
    for (; k + 3 * stride < nv; k += 4 * stride) {
      const V v0 = ld_nc16<V>(xv + k), v1 = ld_nc16<V>(xv + k + stride),
              v2 = ld_nc16<V>(xv + k + 2 * stride), v3 = ld_nc16<V>(xv + k + 3 * stride);
      #pragma unroll
      for (int j = 0; j < VW; ++j) {
        acc = comb(acc, conv(v0.v[j]));
        a1 = comb(a1, conv(v1.v[j]));
        a2 = comb(a2, conv(v2.v[j]));
        a3 = comb(a3, conv(v3.v[j]));
      }
    }
    for (; k < nv; k += stride) {
      const V v0 = ld_nc16<V>(xv + k);
      #pragma unroll
      for (int j = 0; j < VW; ++j) acc = comb(acc, conv(v0.v[j]));
    }
    const long long t = nv * VW + first;
    if (t < n) acc = comb(acc, conv(x[t]));
    return comb(comb(acc, a1), comb(a2, a3));
  }
  long long r = first;
  if (p.nr == 1 && p.rstride[0] == 1) {
    for (; r + 3 * stride < n; r += 4 * stride) {
      const TX v0 = x[r], v1 = x[r + stride], v2 = x[r + 2 * stride], v3 = x[r + 3 * stride];
      acc = comb(acc, conv(v0));
      a1 = comb(a1, conv(v1));
      a2 = comb(a2, conv(v2));
      a3 = comb(a3, conv(v3));
    }
    for (; r < n; r += stride) acc = comb(acc, conv(x[r]));
    return comb(comb(acc, a1), comb(a2, a3));
  }
  for (; r < n; r += stride) acc = comb(acc, conv(x[red_off(p, r)]));
  return acc;
}
// One warp per (output, split).
extern "C" __global__ void __launch_bounds__(256) tm_row_warp(const RedParams p) {
  const long long team = blockIdx.x * (long long)(blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (team >= p.n_out * p.splits) return;
  const long long j = team / p.splits, s = team - j * p.splits;
  const TX* x = (const TX*)p.x + tm_offset(j, (int)p.nk, p.kshape, p.kstride);
  A acc = row_acc(p, x, s * 32 + lane, p.splits * 32, p.n_red);
  #pragma unroll
  for (int d = 16; d > 0; d >>= 1) acc = comb(acc, tm_shfl_down(acc, d));
  if (lane == 0) emit(p, j, s, acc);
}
// Combines the splits of output j with the whole block: a fixed assignment of
// splits to threads and a fixed tree, so the result is deterministic.
TM_DI void finish_out(const RedParams& p, long long j, A* sh) {
  const A* part = (const A*)p.partial;
  A acc = ident();
  for (long long s = threadIdx.x; s < p.splits; s += blockDim.x) acc = comb(acc, part[s * p.n_out + j]);
  acc = tm_block_reduce(acc, sh, [](A a, A b) { return comb(a, b); });
  if (threadIdx.x == 0) ((TO*)p.out)[j] = store(acc);
}
// One block per (output, split).
extern "C" __global__ void __launch_bounds__(256) tm_row_block(const RedParams p) {
  __shared__ A sh[32];
  const long long team = blockIdx.x;
  const long long j = team / p.splits, s = team - j * p.splits;
  const TX* x = (const TX*)p.x + tm_offset(j, (int)p.nk, p.kshape, p.kstride);
  A acc = row_acc(p, x, s * blockDim.x + threadIdx.x, p.splits * (long long)blockDim.x,
                  p.n_red);
  acc = tm_block_reduce(acc, sh, [](A a, A b) { return comb(a, b); });
  if (threadIdx.x == 0) emit(p, j, s, acc);
  if (p.splits == 1 || !p.counter) return;
  // The last block to finish a split of output j combines the partials.
  __shared__ bool last;
  if (threadIdx.x == 0) {
    __threadfence();
    last = atomicAdd((unsigned*)p.counter + j, 1u) == (unsigned)(p.splits - 1);
  }
  __syncthreads();
  if (!last) return;
  __threadfence();
  finish_out(p, j, sh);
  if (threadIdx.x == 0) ((unsigned*)p.counter)[j] = 0u;
}
// One thread per output (consecutive outputs read consecutive addresses); blockIdx.y = split.
extern "C" __global__ void __launch_bounds__(256) tm_col(const RedParams p) {
  const long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (j >= p.n_out) return;
  const long long s = blockIdx.y;
  const TX* x = (const TX*)p.x + tm_offset(j, (int)p.nk, p.kshape, p.kstride);
  const long long r0 = s * p.chunk;
  const long long r1 = r0 + p.chunk < p.n_red ? r0 + p.chunk : p.n_red;
  A acc = ident();
  for (long long r = r0; r < r1; ++r) acc = comb(acc, conv(x[red_off(p, r)]));
  emit(p, j, s, acc);
}
// Few reduced rows per output (a bias gradient: 256 rows of 512 columns): one block
// covers C = 256 / G consecutive outputs with G row groups; group g takes rows g,
// g + G, ... (four loads in flight), and the G partial results of each output are
// combined in a fixed order in shared memory. One kernel instead of tm_col's splits
// plus tm_finish, still deterministic. p.chunk holds G (8, 16 or 32); p.splits is 1.
extern "C" __global__ void __launch_bounds__(256) tm_col_block(const RedParams p) {
  __shared__ A sh[256];
  const int G = (int)p.chunk, C = 256 / G;
  const int c = (int)threadIdx.x % C, g = (int)threadIdx.x / C;
  const long long j = blockIdx.x * (long long)C + c;
  A acc = ident();
  if (j < p.n_out) {
    const TX* x = (const TX*)p.x + tm_offset(j, (int)p.nk, p.kshape, p.kstride);
    A a1 = ident(), a2 = ident(), a3 = ident();
    long long r = g;
    for (; r + 3LL * G < p.n_red; r += 4LL * G) {
      const TX v0 = x[red_off(p, r)], v1 = x[red_off(p, r + G)],
               v2 = x[red_off(p, r + 2LL * G)], v3 = x[red_off(p, r + 3LL * G)];
      acc = comb(acc, conv(v0));
      a1 = comb(a1, conv(v1));
      a2 = comb(a2, conv(v2));
      a3 = comb(a3, conv(v3));
    }
    for (; r < p.n_red; r += G) acc = comb(acc, conv(x[red_off(p, r)]));
    acc = comb(comb(acc, a1), comb(a2, a3));
  }
  sh[threadIdx.x] = acc;
  __syncthreads();
  if (g == 0 && j < p.n_out) {
    A t = sh[c];
    for (int k = 1; k < G; ++k) t = comb(t, sh[k * C + c]);
    emit(p, j, 0, t);
  }
}
// Combines the splits of each output in order (one thread per output).
extern "C" __global__ void __launch_bounds__(256) tm_finish(const RedParams p) {
  const long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (j >= p.n_out) return;
  const A* part = (const A*)p.partial;
  A acc = part[j];
  for (long long s = 1; s < p.splits; ++s) acc = comb(acc, part[s * p.n_out + j]);
  ((TO*)p.out)[j] = store(acc);
}
// Combines the splits of output blockIdx.x with a block (few outputs, many splits):
// a fixed assignment of splits to threads and a fixed tree, so still deterministic.
extern "C" __global__ void __launch_bounds__(256) tm_finish_block(const RedParams p) {
  __shared__ A sh[32];
  finish_out(p, blockIdx.x, sh);
}
)";
  ProgramSource p;
  p.name =
      lower(op_name(op)) + "_" + std::string(dtype_name(in)) + "_" + std::string(dtype_name(out));
  p.source = with_prelude(s);
  p.kernels = {"tm_row_warp", "tm_row_block", "tm_col", "tm_finish", "tm_finish_block",
                "tm_col_block"};
  return p;
}

ProgramSource arg_reduce(OpCode op, DType in) {
  const bool mx = op == O::ArgMax;
  const DType acc = calc_dtype(in);
  std::string s = "typedef " + std::string(stor(in)) + " TX;\ntypedef " + calc(acc) + " A;\n";
  s += std::string(
           "TM_DI bool better(A v, A best) { if (tm_isnan(v)) return !tm_isnan(best); "
           "return v ") +
       (mx ? ">" : "<") + " best; }\n";
  s += kOffsets;
  s += R"(
// (v, i) pairs: the first NaN wins, then the extreme value, ties to the lower index.
TM_DI void pick(A& v, long long& i, A ov, long long oi) {
  const bool nv = tm_isnan(v), no = tm_isnan(ov);
  bool take;
  if (nv || no) take = no && (!nv || oi < i);
  else take = better(ov, v) || (!better(v, ov) && oi < i);
  if (take) { v = ov; i = oi; }
}
extern "C" __global__ void __launch_bounds__(256) tm_warp(const AxisParams p) {
  const long long line = blockIdx.x * (long long)(blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (line >= p.lines) return;
  const TX* x = (const TX*)p.x + tm_offset(line, (int)p.nk, p.kshape, p.kstride);
  A v = ld(x[0]);
  long long i = 0;
  for (long long r = lane; r < p.n; r += 32) {
    const A c = ld(x[r * p.xa]);
    if (r == lane) { v = c; i = r; } else if (better(c, v)) { v = c; i = r; }
  }
  if (lane >= p.n) i = 0x7fffffffffffffffLL;
  #pragma unroll
  for (int d = 16; d > 0; d >>= 1) {
    const A ov = tm_shfl_down(v, d);
    const long long oi = tm_shfl_down((i64)i, d);
    if (oi != 0x7fffffffffffffffLL) {
      if (i == 0x7fffffffffffffffLL) { v = ov; i = oi; } else pick(v, i, ov, oi);
    }
  }
  if (lane == 0) ((i64*)p.out)[tm_offset(line, (int)p.nk, p.kshape, p.ostride)] = i;
}
extern "C" __global__ void __launch_bounds__(256) tm_thread(const AxisParams p) {
  const long long line = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (line >= p.lines) return;
  const TX* x = (const TX*)p.x + tm_offset(line, (int)p.nk, p.kshape, p.kstride);
  A v = ld(x[0]);
  long long i = 0;
  for (long long r = 1; r < p.n; ++r) {
    const A c = ld(x[r * p.xa]);
    if (better(c, v)) { v = c; i = r; }
  }
  ((i64*)p.out)[tm_offset(line, (int)p.nk, p.kshape, p.ostride)] = i;
}
)";
  ProgramSource p;
  p.name = lower(op_name(op)) + "_" + std::string(dtype_name(in));
  p.source = with_prelude(s);
  p.kernels = {"tm_warp", "tm_thread"};
  return p;
}

ProgramSource scan(OpCode op, DType in, DType out) {
  const bool sum = op == O::CumSum;
  const RedSpec r = red_spec(sum ? O::Sum : O::Prod, in);
  const std::string A = calc(r.acc);
  std::string s;
  s += "typedef " + std::string(stor(in)) + " TX;\ntypedef " + stor(out) + " TO;\ntypedef " + A +
       " A;\n";
  s += "TM_DI A comb(A a, A b) { return " + r.combine + "; }\n";
  s += "TM_DI A ident() { return " + r.identity + "; }\n";
  s += "TM_DI A conv(TX v) { const " + std::string(calc(in)) + " x = ld(v); return " +
       to_acc(O::Sum, in, r.acc, "x") + "; }\n";
  s += "TM_DI TO store(A v) { return " + convert(r.acc, "v", out, true) + "; }\n";
  s += kOffsets;
  s += R"(
// One block per line: tiles of 4 * blockDim elements, each thread scans 4 in
// sequence, then the block scans the thread totals and carries across tiles.
extern "C" __global__ void __launch_bounds__(256) tm_block(const AxisParams p) {
  __shared__ A warp_tot[32];
  __shared__ A carry_sh;
  const long long line = blockIdx.x;
  const TX* x = (const TX*)p.x + tm_offset(line, (int)p.nk, p.kshape, p.kstride);
  TO* o = (TO*)p.out + tm_offset(line, (int)p.nk, p.kshape, p.ostride);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  A carry = ident();
  for (long long base = 0; base < p.n; base += 4LL * blockDim.x) {
    A v[4];
    const long long e0 = base + 4LL * threadIdx.x;
    A run = ident();
    #pragma unroll
    for (int k = 0; k < 4; ++k) {
      if (e0 + k < p.n) run = comb(run, conv(x[(e0 + k) * p.xa]));
      v[k] = run;
    }
    // Inclusive scan of the thread totals within the warp.
    A t = run;
    #pragma unroll
    for (int d = 1; d < 32; d <<= 1) {
      const A u = tm_shfl_up(t, d);
      if (lane >= d) t = comb(u, t);
    }
    if (lane == 31) warp_tot[warp] = t;
    __syncthreads();
    if (warp == 0) {
      A w = lane < nw ? warp_tot[lane] : ident();
      #pragma unroll
      for (int d = 1; d < 32; d <<= 1) {
        const A u = tm_shfl_up(w, d);
        if (lane >= d) w = comb(u, w);
      }
      if (lane < nw) warp_tot[lane] = w;
    }
    __syncthreads();
    // Exclusive prefix of this thread = carry + previous warps + previous lanes.
    A pre = carry;
    if (warp > 0) pre = comb(pre, warp_tot[warp - 1]);
    const A lane_pre = tm_shfl_up(t, 1);
    if (lane > 0) pre = comb(pre, lane_pre);
    #pragma unroll
    for (int k = 0; k < 4; ++k)
      if (e0 + k < p.n) o[(e0 + k) * p.oa] = store(comb(pre, v[k]));
    if (threadIdx.x == 0) carry_sh = comb(carry, warp_tot[nw - 1]);
    __syncthreads();
    carry = carry_sh;
    __syncthreads();
  }
}
extern "C" __global__ void __launch_bounds__(256) tm_thread(const AxisParams p) {
  const long long line = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (line >= p.lines) return;
  const TX* x = (const TX*)p.x + tm_offset(line, (int)p.nk, p.kshape, p.kstride);
  TO* o = (TO*)p.out + tm_offset(line, (int)p.nk, p.kshape, p.ostride);
  A acc = ident();
  for (long long r = 0; r < p.n; ++r) {
    acc = comb(acc, conv(x[r * p.xa]));
    o[r * p.oa] = store(acc);
  }
}
)";
  ProgramSource p;
  p.name =
      lower(op_name(op)) + "_" + std::string(dtype_name(in)) + "_" + std::string(dtype_name(out));
  p.source = with_prelude(s);
  p.kernels = {"tm_block", "tm_thread"};
  return p;
}

namespace {

// Row kernels shared by softmax and layer_norm: warp per row holding E values per
// lane (rows up to 32 * E), or a block per row streaming from memory.
std::string row_header(DType dt) {
  const std::string A = dt == DType::Float64 ? "double" : "float";
  return "typedef " + std::string(stor(dt)) + " TX;\ntypedef " + A + " A;\n" + kBlockReduce +
         R"(
TM_DI A amax(A a, A b) { return (b > a || b != b) ? b : a; }
TM_DI A block_all(A v, A* sh, bool is_max) {
  if (is_max) v = tm_block_reduce(v, sh, [](A a, A b) { return amax(a, b); });
  else v = tm_block_reduce(v, sh, [](A a, A b) { return a + b; });
  if (threadIdx.x == 0) sh[0] = v;
  __syncthreads();
  v = sh[0];
  __syncthreads();
  return v;
}
TM_DI A warp_all(A v, bool is_max) {
  #pragma unroll
  for (int d = 16; d > 0; d >>= 1) {
    const A o = tm_shfl_xor(v, d);
    v = is_max ? amax(v, o) : v + o;
  }
  return v;
}
)";
}

// Kernels of the row programs, in the order launch_rows() (nn.cpp) indexes them:
// warp per row with E = 1..32 elements per lane, block per row streaming, and
// block per row in registers with E = 8, 16, 32 elements per thread (fewer
// registers for shorter rows: more blocks per SM).
std::vector<std::string> row_kernel_names() {
  return {"tm_w1",  "tm_w2", "tm_w4",  "tm_w8",   "tm_w16",
          "tm_w32", "tm_b",  "tm_br8", "tm_br16", "tm_br32"};
}

// The entry points of row kernel `variant` (index into row_kernel_names()), or of all
// of them for -1. tm_b (streaming) is part of every program's body; the register
// kernels are unrolled E times, so a program of one of them compiles in a fraction of
// the time of all ten (a first softmax call compiles only what it launches).
std::string row_entry_points(int variant) {
  std::string s;
  int index = 0;
  for (int e : {1, 2, 4, 8, 16, 32}) {
    if (variant < 0 || variant == index)
      s += "extern \"C\" __global__ void __launch_bounds__(256) tm_w" + std::to_string(e) +
           "(const RowParams p) { row_warp<" + std::to_string(e) + ">(p); }\n";
    ++index;
  }
  ++index;  // tm_b
  // Minimum blocks per SM caps the registers: 4 blocks for E = 8 and 16, 2 for 32.
  for (int e : {8, 16, 32}) {
    if (variant < 0 || variant == index)
      s += "extern \"C\" __global__ void __launch_bounds__(256, " +
           std::to_string(e == 32 ? 2 : 4) + ") tm_br" + std::to_string(e) +
           "(const RowParams p) { row_block<" + std::to_string(e) + ">(p); }\n";
    ++index;
  }
  return s;
}

std::vector<std::string> row_kernels(int variant) {
  std::vector<std::string> all = row_kernel_names();
  if (variant < 0) return all;
  return {all.at(static_cast<size_t>(variant))};
}

}  // namespace

ProgramSource softmax(OpCode op, DType dt, int variant) {
  const bool log = op == O::LogSoftmax;
  std::string s = row_header(dt);
  s += std::string("#define TM_LOG ") + (log ? "1" : "0") + "\n";
  s += R"(
template <int E> TM_DI void row_warp(const RowParams& p) {
  const long long row = blockIdx.x * (long long)(blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= p.rows) return;
  const TX* x = (const TX*)p.x + row * p.len;
  TX* o = (TX*)p.out + row * p.len;
  A v[E];
  A mx = -tm_inf((A)0);
  #pragma unroll
  for (int k = 0; k < E; ++k) {
    const long long c = lane + 32LL * k;
    v[k] = c < p.len ? ld(x[c]) : -tm_inf((A)0);
    mx = amax(mx, v[k]);
  }
  mx = warp_all(mx, true);
  A sum = 0;
  #pragma unroll
  for (int k = 0; k < E; ++k) {
    if (lane + 32LL * k < p.len) {
      v[k] = v[k] - mx;
      const A e = exp(v[k]);
      sum += e;
      if (!TM_LOG) v[k] = e;
    }
  }
  sum = warp_all(sum, false);
  const A ls = log(sum);
  #pragma unroll
  for (int k = 0; k < E; ++k) {
    const long long c = lane + 32LL * k;
    if (c < p.len) o[c] = St<TX>::of(TM_LOG ? v[k] - ls : v[k] / sum);
  }
}
extern "C" __global__ void __launch_bounds__(256) tm_b(const RowParams p) {
  __shared__ A sh[32];
  const TX* x = (const TX*)p.x + blockIdx.x * p.len;
  TX* o = (TX*)p.out + blockIdx.x * p.len;
  A mx = -tm_inf((A)0);
  for (long long c = threadIdx.x; c < p.len; c += blockDim.x) mx = amax(mx, ld(x[c]));
  mx = block_all(mx, sh, true);
  A sum = 0;
  for (long long c = threadIdx.x; c < p.len; c += blockDim.x) sum += exp(ld(x[c]) - mx);
  sum = block_all(sum, sh, false);
  const A ls = log(sum);
  for (long long c = threadIdx.x; c < p.len; c += blockDim.x) {
    const A v = ld(x[c]) - mx;
    o[c] = St<TX>::of(TM_LOG ? v - ls : exp(v) / sum);
  }
}
// Block per row held in registers (rows up to 32 * blockDim): one read of x.
template <int E> TM_DI void row_block(const RowParams& p) {
  __shared__ A sh[32];
  const TX* x = (const TX*)p.x + blockIdx.x * p.len;
  TX* o = (TX*)p.out + blockIdx.x * p.len;
  A v[E];
  A mx = -tm_inf((A)0);
  #pragma unroll
  for (int k = 0; k < E; ++k) {
    const int c = threadIdx.x + k * blockDim.x;  // rows here are at most 32 * 256
    v[k] = c < p.len ? ld(x[c]) : -tm_inf((A)0);
    mx = amax(mx, v[k]);
  }
  mx = block_all(mx, sh, true);
  A sum = 0;
  #pragma unroll
  for (int k = 0; k < E; ++k) {
    if (threadIdx.x + k * blockDim.x < p.len) {
      v[k] = v[k] - mx;
      const A e = exp(v[k]);
      sum += e;
      if (!TM_LOG) v[k] = e;
    }
  }
  sum = block_all(sum, sh, false);
  const A ls = log(sum);
  #pragma unroll
  for (int k = 0; k < E; ++k) {
    const int c = threadIdx.x + k * blockDim.x;  // rows here are at most 32 * 256
    if (c < p.len) o[c] = St<TX>::of(TM_LOG ? v[k] - ls : v[k] / sum);
  }
}
)";
  s += row_entry_points(variant);
  ProgramSource p;
  p.name = lower(op_name(op)) + "_" + std::string(dtype_name(dt)) +
           (variant < 0 ? "" : "_v" + std::to_string(variant));
  p.source = with_prelude(s);
  p.kernels = row_kernels(variant);
  return p;
}

ProgramSource layer_norm(DType dt, int flags, int variant) {
  std::string s = row_header(dt);
  s += std::string("#define TM_W ") + ((flags & 1) ? "1" : "0") + "\n#define TM_B " +
       ((flags & 2) ? "1" : "0") + "\n";
  s += R"(
TM_DI A affine(const RowParams& p, long long c, A y) {
  if (TM_W) y = y * ld(((const TX*)p.w)[c]);
  if (TM_B) y = y + ld(((const TX*)p.b)[c]);
  return y;
}
template <int E> TM_DI void row_warp(const RowParams& p) {
  const long long row = blockIdx.x * (long long)(blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= p.rows) return;
  const TX* x = (const TX*)p.x + row * p.len;
  TX* o = (TX*)p.out + row * p.len;
  A v[E];
  A sum = 0;
  #pragma unroll
  for (int k = 0; k < E; ++k) {
    const long long c = lane + 32LL * k;
    v[k] = c < p.len ? ld(x[c]) : (A)0;
    sum += v[k];
  }
  const A mean = warp_all(sum, false) / (A)p.len;
  A sq = 0;
  #pragma unroll
  for (int k = 0; k < E; ++k) {
    if (lane + 32LL * k < p.len) {
      const A d = v[k] - mean;
      sq += d * d;
    }
  }
  const A var = warp_all(sq, false) / (A)p.len;
  const A rstd = (A)1 / sqrt(var + (A)p.eps);
  #pragma unroll
  for (int k = 0; k < E; ++k) {
    const long long c = lane + 32LL * k;
    if (c < p.len) o[c] = St<TX>::of(affine(p, c, (v[k] - mean) * rstd));
  }
}
extern "C" __global__ void __launch_bounds__(256) tm_b(const RowParams p) {
  __shared__ A sh[32];
  const TX* x = (const TX*)p.x + blockIdx.x * p.len;
  TX* o = (TX*)p.out + blockIdx.x * p.len;
  A sum = 0;
  for (long long c = threadIdx.x; c < p.len; c += blockDim.x) sum += ld(x[c]);
  const A mean = block_all(sum, sh, false) / (A)p.len;
  A sq = 0;
  for (long long c = threadIdx.x; c < p.len; c += blockDim.x) {
    const A d = ld(x[c]) - mean;
    sq += d * d;
  }
  const A var = block_all(sq, sh, false) / (A)p.len;
  const A rstd = (A)1 / sqrt(var + (A)p.eps);
  for (long long c = threadIdx.x; c < p.len; c += blockDim.x)
    o[c] = St<TX>::of(affine(p, c, (ld(x[c]) - mean) * rstd));
}
// Block per row held in registers (rows up to 32 * blockDim): one read of x.
template <int E> TM_DI void row_block(const RowParams& p) {
  __shared__ A sh[32];
  const TX* x = (const TX*)p.x + blockIdx.x * p.len;
  TX* o = (TX*)p.out + blockIdx.x * p.len;
  A v[E];
  A sum = 0;
  #pragma unroll
  for (int k = 0; k < E; ++k) {
    const int c = threadIdx.x + k * blockDim.x;  // rows here are at most 32 * 256
    v[k] = c < p.len ? ld(x[c]) : (A)0;
    sum += v[k];
  }
  const A mean = block_all(sum, sh, false) / (A)p.len;
  A sq = 0;
  #pragma unroll
  for (int k = 0; k < E; ++k) {
    if (threadIdx.x + k * blockDim.x < p.len) {
      const A d = v[k] - mean;
      sq += d * d;
    }
  }
  const A var = block_all(sq, sh, false) / (A)p.len;
  const A rstd = (A)1 / sqrt(var + (A)p.eps);
  #pragma unroll
  for (int k = 0; k < E; ++k) {
    const int c = threadIdx.x + k * blockDim.x;  // rows here are at most 32 * 256
    if (c < p.len) o[c] = St<TX>::of(affine(p, c, (v[k] - mean) * rstd));
  }
}
)";
  s += row_entry_points(variant);
  ProgramSource p;
  p.name = "layer_norm_" + std::string(dtype_name(dt)) + "_" + std::to_string(flags) +
           (variant < 0 ? "" : "_v" + std::to_string(variant));
  p.source = with_prelude(s);
  p.kernels = row_kernels(variant);
  return p;
}

ProgramSource take(size_t isz) {
  ProgramSource p;
  p.name = "take_" + std::to_string(isz);
  p.source = with_prelude("typedef " + std::string(uint_of_size(isz)) + " T;\n" + R"(
extern "C" __global__ void __launch_bounds__(256) tm_take(const TakeParams p) {
  const T* x = (const T*)p.x;
  const i64* idx = (const i64*)p.idx;
  T* o = (T*)p.out;
  const int nd = (int)p.nd;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < p.n;
       i += (long long)gridDim.x * blockDim.x) {
    long long r = i, xo = 0, io = 0;
    for (int d = nd - 1; d >= 0; --d) {
      const long long q = r / p.shape[d];
      const long long c = r - q * p.shape[d];
      r = q;
      xo += c * p.xstride[d];
      io += c * p.istride[d];
    }
    o[i] = x[xo + idx[io] * p.axis_stride];
  }
}
)");
  p.kernels = {"tm_take"};
  return p;
}

bool put_supported(OpCode, DType) { return true; }

ProgramSource put(OpCode op, DType dt) {
  std::string store;
  if (op == OpCode::Put) {
    store = "  *d = v;\n";
  } else {
    switch (dt) {
      case DType::Int32: case DType::UInt32:
        store = "  atomicAdd((unsigned*)d, (unsigned)v);\n"; break;
      case DType::Int64: case DType::UInt64:
        store = "  atomicAdd((unsigned long long*)d, (unsigned long long)v);\n"; break;
      case DType::Float32: case DType::Float64:
        store = "  atomicAdd(d, v);\n"; break;
      case DType::Complex64: case DType::Complex128:
        store = "  atomicAdd(&d->re, v.re);\n  atomicAdd(&d->im, v.im);\n"; break;
      default: {
        // 1- and 2-byte types: compare-and-swap of the aligned 32-bit word holding the
        // element (sum in float for float16/bfloat16, wrapping for integers, or for bool).
        std::string add;
        if (dt == DType::Bool) add = "St<T>::of(ld(a) || ld(b))";
        else if (dt == DType::Float16 || dt == DType::BFloat16) add = "St<T>::of(ld(a) + ld(b))";
        else add = "(T)(ld(a) + ld(b))";
        store = "  const unsigned long long at = (unsigned long long)d;\n"
                "  unsigned* w = (unsigned*)(at & ~3ull);\n"
                "  const unsigned sh = (unsigned)(at & 3ull) * 8u;\n"
                "  const unsigned mask = (sizeof(T) == 1 ? 0xffu : 0xffffu) << sh;\n"
                "  union U { u16 s; u8 c; T t; };\n"
                "  unsigned old = *w, assumed;\n"
                "  do {\n"
                "    assumed = old;\n"
                "    U cur; cur.s = 0;\n"
                "    if (sizeof(T) == 1) cur.c = (u8)((assumed & mask) >> sh); else cur.s = (u16)((assumed & mask) >> sh);\n"
                "    const T a = cur.t, b = v;\n"
                "    U nx; nx.s = 0; nx.t = " + add + ";\n"
                "    const unsigned nb = sizeof(T) == 1 ? (unsigned)nx.c : (unsigned)nx.s;\n"
                "    old = atomicCAS(w, assumed, (assumed & ~mask) | (nb << sh));\n"
                "  } while (old != assumed);\n";
      }
    }
  }
  const std::string T = op == OpCode::Put ? uint_of_size(itemsize(dt)) : stor(dt);
  ProgramSource p;
  p.name = std::string(op == OpCode::Put ? "put_" : "put_add_") +
           (op == OpCode::Put ? std::to_string(itemsize(dt)) : std::string(dtype_name(dt)));
  p.source = with_prelude("typedef " + T + " T;\nTM_DI void tm_store(T* d, T v) {\n" + store + "}\n" + R"(
extern "C" __global__ void __launch_bounds__(256) tm_put(const PutParams p) {
  T* o = (T*)p.out;
  const i64* idx = (const i64*)p.idx;
  const T* v = (const T*)p.val;
  for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < p.n;
       j += (long long)gridDim.x * blockDim.x)
    tm_store(o + idx[j * p.is], v[j * p.vs]);
}
)");
  p.kernels = {"tm_put"};
  return p;
}

ProgramSource random(OpCode op, DType dt) {
  std::string body;
  int per = 4;
  const std::string T = stor(dt);
  if (op == O::RandomBits) {
    body = "for (int j = 0; j < m; ++j) ((i64*)p.out)[base + j] = (i64)b.w[j];";
  } else if (op == O::RandomUniform && dt == DType::Float64) {
    per = 2;
    body =
        "for (int j = 0; j < m; ++j) {\n"
        "      double v = p.a + p.b * tmath::philox::u53(b.w[2 * j], b.w[2 * j + 1]);\n"
        "      if (p.clamp && !(v < p.hi)) v = p.below;\n"
        "      ((double*)p.out)[base + j] = v;\n    }";
  } else if (op == O::RandomUniform) {
    body =
        "for (int j = 0; j < m; ++j) {\n"
        "      const float v = (float)p.a + (float)p.b * tmath::philox::u24(b.w[j]);\n"
        "      " +
        T + " r = St<" + T +
        ">::of(v);\n"
        "      if (p.clamp && !(ld(r) < (float)p.hi)) r = St<" +
        T +
        ">::of((float)p.below);\n"
        "      ((" +
        T + "*)p.out)[base + j] = r;\n    }";
  } else {
    per = 2;
    const std::string conv = dt == DType::Float64 ? "z[j]" : "St<" + T + ">::of((float)z[j])";
    body =
        "const tmath::philox::NormalPair q = tmath::philox::normal_pair(b);\n"
        "    const double z[2] = {p.a + p.b * q.z0, p.a + p.b * q.z1};\n"
        "    for (int j = 0; j < m; ++j) ((" +
        T + "*)p.out)[base + j] = " + conv + ";";
  }
  const std::string P = std::to_string(per);
  ProgramSource p;
  p.name = lower(op_name(op)) + "_" + std::string(dtype_name(dt));
  p.philox = true;
  p.source = "#include \"philox.h\"\n" + with_prelude(R"(
extern "C" __global__ void __launch_bounds__(256) tm_rand(const RandParams p) {
  const long long nb = (p.n + )" +
             P + R"( - 1) / )" + P + R"(;
  for (long long c = blockIdx.x * (long long)blockDim.x + threadIdx.x; c < nb;
       c += (long long)gridDim.x * blockDim.x) {
    const tmath::philox::Block b = tmath::philox::block((u32)p.k0, (u32)p.k1, (u64)c);
    const long long base = )" +
             P + R"( * c;
    const int m = p.n - base < )" +
             P + " ? (int)(p.n - base) : " + P + R"(;
    )" + body +
                                                     R"(
  }
}
)");
  p.kernels = {"tm_rand"};
  return p;
}

ProgramSource int_matmul(DType dt) {
  const bool b = dt == DType::Bool;
  const std::string T = stor(dt);
  ProgramSource p;
  p.name = "matmul_" + std::string(dtype_name(dt));
  p.source = with_prelude(kOffsets + ("typedef " + T + " T;\n") + "typedef " + calc(dt) + " C;\n" +
             "TM_DI C step(C acc, C x, C y) { return " +
             (b                          ? std::string("acc || (x && y)")
              : dt == DType::UInt16 ? std::string("(C)((u32)acc + (u32)x * (u32)y)")
                                    : std::string("(C)(acc + x * y)")) +
             "; }\n" +
             R"(
extern "C" __global__ void __launch_bounds__(256) tm_mm(const MmParams p) {
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < p.total;
       e += (long long)gridDim.x * blockDim.x) {
    const long long j = e % p.n, t = e / p.n, i = t % p.m, bi = t / p.m;
    const T* a = (const T*)p.a + tm_offset(bi, (int)p.nb, p.bshape, p.astride) + i * p.ars;
    const T* b = (const T*)p.b + tm_offset(bi, (int)p.nb, p.bshape, p.bstride) + j * p.bcs;
    C acc = (C)0;
    for (long long q = 0; q < p.k; ++q) acc = step(acc, ld(a[q * p.acs]), ld(b[q * p.brs]));
    ((T*)p.out)[e] = St<T>::of(acc);
  }
}
)");
  p.kernels = {"tm_mm"};
  return p;
}

const std::vector<TinyEntry>& tiny_ops() {
  using K = TinyEntry::Kind;
  static const std::vector<TinyEntry> ops = [] {
    std::vector<TinyEntry> v;
    for (O op : {O::Neg, O::Abs, O::Sign, O::Exp, O::Expm1, O::Log, O::Log1p, O::Sqrt, O::Rsqrt,
                 O::Square, O::Reciprocal, O::Sin, O::Cos, O::Tanh, O::Sigmoid, O::Relu, O::Silu,
                 O::GeluTanh, O::Floor, O::Ceil, O::Round})
      v.push_back({K::Unary, op});
    for (O op : {O::Add, O::Subtract, O::Multiply, O::Divide, O::Maximum, O::Minimum})
      v.push_back({K::Binary, op});
    v.push_back({K::Fill32, O::Fill});
    // Reductions last: the kernel runs codes from the first of them as whole-block work.
    for (O op : {O::Sum, O::Max, O::Min}) v.push_back({K::ReduceAll, op});
    v.push_back({K::Dot, O::Matmul});
    return v;
  }();
  return ops;
}

ProgramSource tiny() {
  using K = TinyEntry::Kind;
  const DType f = DType::Float32;
  std::string cases, red_fns, red_cases;
  size_t first_red = 0;
  const auto& ops = tiny_ops();
  for (size_t c = 0; c < ops.size(); ++c) {
    const std::string C = std::to_string(c);
    if ((ops[c].kind == K::ReduceAll || ops[c].kind == K::Dot) && !first_red) first_red = c;
    switch (ops[c].kind) {
      case K::ReduceAll: {
        // As reduce()'s comb/ident/conv/store, named per code.
        const RedSpec r = red_spec(ops[c].op, f);
        const std::string A = calc(r.acc);
        red_fns += "TM_DI " + A + " comb" + C + "(" + A + " a, " + A + " b) { return " + r.combine +
                   "; }\n";
        red_fns += "TM_DI void red" + C + "(const TinyOp& t, int n, " + A + "* sh) {\n  " + A +
                   " acc = " + r.identity + ";\n  const float* ia = (const float*)t.a;\n" +
                   "  for (int i = threadIdx.x; i < n; i += blockDim.x) { const float x = ld(ia[i]); "
                   "acc = comb" + C + "(acc, " + to_acc(ops[c].op, f, r.acc, "x") + "); }\n" +
                   "  acc = tm_block_reduce(acc, sh, [](" + A + " a, " + A + " b) { return comb" + C +
                   "(a, b); });\n  if (threadIdx.x == 0) *(float*)t.out = " +
                   convert(r.acc, "acc", f, true) + ";\n}\n";
        red_cases += "        case " + C + ": red" + C + "(t, n, (" + A + "*)sh); break;\n";
        break;
      }
      case K::Dot:
        red_fns += "TM_DI void red" + C + "(const TinyOp& t, int n, float* sh) {\n"
                   "  const float* ia = (const float*)t.a;\n  const float* ib = (const float*)t.b;\n"
                   "  float acc = 0.0f;\n"
                   "  for (int i = threadIdx.x; i < n; i += blockDim.x) acc = fmaf(ia[i], ib[i], acc);\n"
                   "  acc = tm_block_reduce(acc, sh, [](float a, float b) { return a + b; });\n"
                   "  if (threadIdx.x == 0) *(float*)t.out = acc;\n}\n";
        red_cases += "        case " + C + ": red" + C + "(t, n, (float*)sh); break;\n";
        break;
      case K::Unary:
        // As unary()'s tm_call: x = ld(v), the op's expression.
        cases += "        case " + C + ": { const float x = ld(ia[sa ? 0 : i]); o[i] = " +
                 unary_expr(ops[c].op, f, f) + "; break; }\n";
        break;
      case K::Binary:
        // As binary()'s tm_call.
        cases += "        case " + C +
                 ": { const float va = ia[sa ? 0 : i]; const float vb = ib[sb ? 0 : i]; "
                 "const float a = ld(va); const float b = ld(vb); o[i] = " +
                 binary_expr(ops[c].op, f, f) + "; break; }\n";
        break;
      case K::Fill32:
        cases += "        case " + C + ": ((u32*)o)[i] = (u32)t.b; break;\n";
        break;
    }
  }
  ProgramSource p;
  p.name = "tiny_queue";
  p.source = with_prelude(kBlockReduce + red_fns + R"(
// Ops run in the order queued; the barrier after each makes its results visible to
// the next (they may read them).
extern "C" __global__ void __launch_bounds__(256) tm_tiny(const __grid_constant__ TinyParams p) {
  __shared__ double sh[32];
  const int count = (int)p.count;
  for (int k = 0; k < count; ++k) {
    const TinyOp& t = p.op[k];
    const int n = (int)(t.nc & 0xffffffffLL);
    const int code = (int)((t.nc >> 32) & 0xffff);
    const bool sa = (t.nc >> 48) & 1, sb = (t.nc >> 49) & 1;
    float* o = (float*)t.out;
    const float* ia = (const float*)t.a;
    const float* ib = (const float*)t.b;
    if (code >= )" + std::to_string(first_red) + R"() {  // whole-block reductions
      switch (code) {
)" + red_cases + R"(        default: break;
      }
    } else {
      for (int i = threadIdx.x; i < n; i += blockDim.x) {
        switch (code) {
)" + cases + R"(          default: break;
        }
      }
    }
    __syncthreads();
  }
}
)");
  p.kernels = {"tm_tiny"};
  return p;
}

}  // namespace tmath::cuda::gen
