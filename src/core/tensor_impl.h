// The node behind a Tensor handle: metadata plus either storage (evaluated)
// or a primitive with inputs (pending).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "tmath/backend.h"
#include "tmath/tensor.h"

namespace tmath {
class Primitive;
}

namespace tmath::detail {

// Owns one allocation (or wraps foreign memory with a deleter).
struct Buffer {
  void* ptr = nullptr;
  size_t nbytes = 0;
  Device device;
  Allocator* allocator = nullptr;         // returns memory here, if set
  std::function<void(void*)> deleter;     // else calls this, if set
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer();
};

// Allocates a buffer of nbytes on `device` with that device's allocator.
std::shared_ptr<Buffer> allocate_buffer(size_t nbytes, Device device);

struct TensorImpl {
  Shape shape;
  Strides strides;     // valid once evaluated
  int64_t offset = 0;  // elements from buffer start
  int64_t size = 1;
  DType dtype = float32;
  Device device;
  bool weak = false;    // weakly typed scalar constant
  bool contiguous = false;  // row-major contiguous, valid once evaluated
  int depth = 0;        // longest pending path below (0 when evaluated)

  std::shared_ptr<Buffer> buffer;  // non-null once evaluated
  std::shared_ptr<Primitive> prim; // non-null while pending
  std::vector<Tensor> inputs;
  // Other outputs of a multi-output primitive (same prim and inputs).
  std::vector<std::weak_ptr<TensorImpl>> siblings;
  int output_index = 0;

  bool evaluated() const { return buffer != nullptr; }
  void* data() const {
    return static_cast<char*>(buffer->ptr) + offset * static_cast<int64_t>(itemsize(dtype));
  }
  ArrayRef ref() const {
    return ArrayRef{data(), dtype, shape, strides, device};
  }
  // Sets storage with row-major strides.
  void set_contiguous(std::shared_ptr<Buffer> buf);
  // Sets storage as a view (strides/offset given).
  void set_view(std::shared_ptr<Buffer> buf, Strides st, int64_t off);
  // Drops the graph behind an evaluated node.
  void detach();
  ~TensorImpl();
};

int64_t shape_size(const Shape& s);
Strides contiguous_strides(const Shape& s);
bool is_contiguous(const Shape& shape, const Strides& strides);

// Creates a pending node.
Tensor make_node(Shape shape, DType dtype, Device device, std::shared_ptr<Primitive> prim,
                 std::vector<Tensor> inputs);
// Creates several pending nodes sharing one primitive.
std::vector<Tensor> make_nodes(std::vector<Shape> shapes, std::vector<DType> dtypes, Device device,
                               std::shared_ptr<Primitive> prim, std::vector<Tensor> inputs);
// Creates an evaluated tensor with fresh contiguous storage.
Tensor make_evaluated(Shape shape, DType dtype, Device device);

// Called (on this thread) with the outputs of every new pending node, before it can be
// evaluated; autodiff records its traces through it. Null when no transform is active.
using NodeObserver = void (*)(const std::vector<Tensor>& outputs);
void set_node_observer(NodeObserver observer);
bool node_observer_active();

inline TensorImpl& impl(const Tensor& t) { return *t.impl(); }

}  // namespace tmath::detail
