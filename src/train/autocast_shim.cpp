// The autocast switches tch 0.26 does not bind: torch-sys exposes only
// at::autocast::set_enabled, which turns on CUDA autocast at its default dtype
// (float16). minima's bf16 precision needs the dtype set, and CPU autocast needs
// its own switch. Compiled by build.rs against the libtorch torch-sys links.
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

namespace at::autocast {
// Declared as in ATen/autocast_mode.h, whose includes pull in all of ATen.
TORCH_API bool is_autocast_enabled(c10::DeviceType device_type);
TORCH_API void set_autocast_enabled(c10::DeviceType device_type, bool enabled);
TORCH_API c10::ScalarType get_autocast_dtype(c10::DeviceType device_type);
TORCH_API void set_autocast_dtype(c10::DeviceType device_type, c10::ScalarType dtype);
}  // namespace at::autocast

// The codes src/train/precision.rs passes.
static_assert(static_cast<int>(c10::DeviceType::CPU) == 0, "CPU code");
static_assert(static_cast<int>(c10::DeviceType::CUDA) == 1, "CUDA code");
static_assert(static_cast<int>(c10::ScalarType::Half) == 5, "Half code");
static_assert(static_cast<int>(c10::ScalarType::Float) == 6, "Float code");
static_assert(static_cast<int>(c10::ScalarType::BFloat16) == 15, "BFloat16 code");

extern "C" {

// Returns 0, or -1 when libtorch refused (e.g. a dtype the device cannot autocast to).
int minima_autocast_set_dtype(int device, int dtype) {
  try {
    at::autocast::set_autocast_dtype(static_cast<c10::DeviceType>(device),
                                     static_cast<c10::ScalarType>(dtype));
    return 0;
  } catch (...) {
    return -1;
  }
}

// The dtype code, or -1 on error.
int minima_autocast_get_dtype(int device) {
  try {
    return static_cast<int>(
        at::autocast::get_autocast_dtype(static_cast<c10::DeviceType>(device)));
  } catch (...) {
    return -1;
  }
}

// Sets the switch and returns the previous state (1 or 0), or -1 on error.
int minima_autocast_set_enabled(int device, int enabled) {
  try {
    auto d = static_cast<c10::DeviceType>(device);
    bool was = at::autocast::is_autocast_enabled(d);
    at::autocast::set_autocast_enabled(d, enabled != 0);
    return was ? 1 : 0;
  } catch (...) {
    return -1;
  }
}
}
