// focal/cuda/workspace.cuh: caller-provided scratch memory for the CUDA entry points.
//
// Every entry point that needs scratch space comes in two parts:
//   std::size_t bytes = focal::cuda::X_workspace_size(shapes...);    host only, no device call
//   focal::cuda::X(..., focal::cuda::workspace{ptr, bytes}, stream);
// The caller allocates (cudaMalloc, a pool, a framework's allocator) and may reuse the memory
// once the stream has passed the call. focal never allocates device memory in an entry point.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "../core/error.hpp"
#include "../core/view.hpp"

namespace focal::cuda {

// Device memory of `bytes` bytes; `data` must be aligned to workspace_alignment.
struct workspace {
    void* data = nullptr;
    std::size_t bytes = 0;
};

inline constexpr std::size_t workspace_alignment = 256;

// Lays out arrays one after another, each aligned; used the same way by X_workspace_size and by X,
// so the two always agree.
class workspace_plan {
public:
    // Reserves `count` elements of T; returns their byte offset.
    template <class T>
    std::size_t reserve(index_t count) {
        const std::size_t offset = (bytes_ + workspace_alignment - 1) / workspace_alignment * workspace_alignment;
        bytes_ = offset + static_cast<std::size_t>(count < 0 ? 0 : count) * sizeof(T);
        return offset;
    }
    // Reserves raw bytes (CUB's temporary storage).
    std::size_t reserve_bytes(std::size_t bytes) {
        const std::size_t offset = (bytes_ + workspace_alignment - 1) / workspace_alignment * workspace_alignment;
        bytes_ = offset + bytes;
        return offset;
    }
    std::size_t bytes() const noexcept { return bytes_; }

private:
    std::size_t bytes_ = 0;
};

template <class T>
T* workspace_at(const workspace& ws, std::size_t offset) {
    return reinterpret_cast<T*>(static_cast<char*>(ws.data) + offset);
}

namespace detail {
inline void require_workspace(const workspace& ws, std::size_t required, const char* where) {
    focal::detail::require(ws.bytes >= required, where, "workspace.bytes",
                           "at least the size its _workspace_size function returned (" + std::to_string(required) + ")",
                           ws.bytes);
    focal::detail::require(required == 0 || ws.data != nullptr, where, "workspace.data", "non-null", "nullptr");
    focal::detail::require(reinterpret_cast<std::uintptr_t>(ws.data) % workspace_alignment == 0, where,
                           "workspace.data", "aligned to 256 bytes (cudaMalloc's alignment)", ws.data);
}
}  // namespace detail

}  // namespace focal::cuda
