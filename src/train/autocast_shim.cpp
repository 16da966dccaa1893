// The autocast switches tch 0.26 does not bind: torch-sys exposes only
// at::autocast::set_enabled, which turns on CUDA autocast at its default dtype
// (float16) and, deprecated since PyTorch 2.4, prints a warning on every call.
// minima's bf16 precision needs the dtype set, CPU autocast needs its own switch,
// and a training step enters and leaves autocast as torch.autocast does.
// Compiled by build.rs against the libtorch torch-sys links.
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

namespace at::autocast {
// Declared as in ATen/autocast_mode.h, whose includes pull in all of ATen.
TORCH_API bool is_autocast_enabled(c10::DeviceType device_type);
TORCH_API void set_autocast_enabled(c10::DeviceType device_type, bool enabled);
TORCH_API c10::ScalarType get_autocast_dtype(c10::DeviceType device_type);
TORCH_API void set_autocast_dtype(c10::DeviceType device_type, c10::ScalarType dtype);
TORCH_API int increment_nesting();
TORCH_API int decrement_nesting();
TORCH_API void clear_cache();
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

// torch.autocast's __enter__ on `device`: switches it on, counts the nesting;
// returns the previous state (1 or 0), or -1 on error.
int minima_autocast_enter(int device) {
  try {
    auto d = static_cast<c10::DeviceType>(device);
    bool was = at::autocast::is_autocast_enabled(d);
    at::autocast::set_autocast_enabled(d, true);
    at::autocast::increment_nesting();
    return was ? 1 : 0;
  } catch (...) {
    return -1;
  }
}

// torch.autocast's __exit__: the cast cache is cleared when the outermost
// region ends, and the previous state comes back.
void minima_autocast_exit(int device, int was) {
  try {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(static_cast<c10::DeviceType>(device), was == 1);
  } catch (...) {
  }
}
}
