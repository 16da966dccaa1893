// What the models' C++ shims (pool_relu/, batch_norm/ and stem_conv/shim.cpp) share.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <cstring>

namespace minima_shim {

// A new channels-last tensor of `sizes` ([n, c, h, w]).
inline at::Tensor channels_last(at::IntArrayRef sizes, const at::TensorOptions& options) {
  return at::empty(sizes, options.memory_format(at::MemoryFormat::ChannelsLast));
}

// libtorch's message into the caller's buffer, NUL-terminated.
inline void write_error(const char* what, char* err, int err_len) {
  if (err_len <= 0) return;
  std::strncpy(err, what, static_cast<size_t>(err_len) - 1);
  err[err_len - 1] = '\0';
}

}  // namespace minima_shim
