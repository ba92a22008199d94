// Devices: where memory lives ("cpu", "cuda:0", ...).
#pragma once

#include <string>
#include <string_view>

#include "tmath/export.h"

namespace tmath {

// MLX: memory owned by the mlx backend (MLX arrays; host memory with MLX's CPU build).
enum class DeviceType : uint8_t { CPU, CUDA, MLX };
inline constexpr int kNumDeviceTypes = 3;

struct TMATH_API Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  constexpr Device() = default;
  constexpr Device(DeviceType t, int i = 0) : type(t), index(i) {}  // NOLINT
  // Parses "cpu", "cuda", "cuda:1", "mlx"; throws DeviceError on anything else.
  explicit Device(std::string_view spec);
  Device(const char* spec) : Device(std::string_view(spec)) {}  // NOLINT

  std::string str() const;
  friend constexpr bool operator==(Device a, Device b) {
    return a.type == b.type && a.index == b.index;
  }
};

inline constexpr Device kCPU{DeviceType::CPU, 0};

// The device new tensors go to when none is given (env TMATH_DEVICE, else cpu).
TMATH_API Device default_device();
TMATH_API void set_default_device(Device d);

}  // namespace tmath
