// Backend selection and primitive execution (internal).
#pragma once

#include <string>
#include <vector>

#include "core/tensor_impl.h"
#include "tmath/backend.h"

namespace tmath {
class Primitive;

namespace detail {

// The backend that owns memory on `device` (allocators, host copies).
// Throws DeviceError when none is registered and available.
Backend& primary_backend(Device device);

// Drops the cached device copies of scalar constants on `device`
// (ops_elementwise.cpp); empty_cache() calls it so their blocks do not pin segments.
void clear_device_scalars(Device device);

// Selects a backend for `prim` and runs it; handles fallback policy.
void run_primitive(Primitive& prim, const std::vector<Tensor>& inputs,
                   const std::vector<TensorImpl*>& outputs);

// Lower snake_case op name for messages ("GreaterEqual" -> "greater_equal");
// exported for the backend plugins' messages.
TMATH_API std::string snake_name(OpCode op);

// Whether the environment switch `name` is set to off: 0, off, OFF, false or no
// (the engine's switches, e.g. TMATH_JIT=0; exported for the backend plugins).
TMATH_API bool env_off(const char* name);

void count_graph_eval();
void count_kernel();
// Primitives run inside one fused kernel (src/jit).
void count_nodes(uint64_t n);
void count_donation();

}  // namespace detail
}  // namespace tmath
