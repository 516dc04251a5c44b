// Activations and parameters of the example network.
//
// Activations are channels-last, [N][H][W][C]: a convolution over the whole batch is then one
// GEMM, im2col rows (N*H*W x k*k*C_in) times the transposed weights (k*k*C_in x C_out), whose
// result is already the next activation, with the long N*H*W side as the GEMM's row dimension
// (the SIMD kernel's 48-row blocks stay full even for 16-channel layers). The head outputs are
// then already in focal's anchor order (level, row, column, cell anchor, class). Parameters keep torchvision's layouts ([C_out, C_in, kh, kw]) so
// checkpoints and imported state dicts share names and shapes.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <new>
#include <type_traits>
#include <string>
#include <vector>

namespace retinanet::cpu {

// Leaves elements default-initialized (for float: not written) on resize, so outputs that a
// layer overwrites completely are not zeroed first. Aligns every buffer to 64 bytes: Eigen's
// small products vectorize from a buffer's first aligned element, so two buffers of different
// alignment can round one result differently; with one alignment for all (and for each thread's
// scratch), the bits do not depend on which thread or allocation a block got.
template <class T>
struct default_init_allocator : std::allocator<T> {
    static constexpr std::align_val_t alignment{64};
    template <class U>
    struct rebind {
        using other = default_init_allocator<U>;
    };
    default_init_allocator() = default;
    template <class U>
    default_init_allocator(const default_init_allocator<U>&) noexcept {}
    T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), alignment)); }
    void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, alignment); }
    template <class U>
    void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
        ::new (static_cast<void*>(p)) U;
    }
    template <class U, class... Args>
    void construct(U* p, Args&&... args) {
        ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
};

template <class T>
using buffer = std::vector<T, default_init_allocator<T>>;

struct uninitialized_t {};
inline constexpr uninitialized_t uninitialized{};

template <class T>
struct tensor {
    int c = 0, n = 0, h = 0, w = 0;
    buffer<T> data;

    tensor() = default;
    tensor(int channels, int batch, int height, int width, T fill = T(0))
        : c(channels), n(batch), h(height), w(width), data(static_cast<std::size_t>(channels) * batch * height * width, fill) {}
    // For outputs the caller writes completely.
    tensor(int channels, int batch, int height, int width, uninitialized_t)
        : c(channels), n(batch), h(height), w(width), data(static_cast<std::size_t>(channels) * batch * height * width) {}

    std::size_t size() const noexcept { return data.size(); }
    std::size_t pixels() const noexcept { return static_cast<std::size_t>(n) * h * w; }  // rows of the [N H W] x C matrix
    std::size_t image_size() const noexcept { return static_cast<std::size_t>(h) * w * c; }
    std::size_t offset(int ci, int ni, int y, int x) const noexcept {
        return ((static_cast<std::size_t>(ni) * h + y) * w + x) * c + ci;
    }
    T& at(int ci, int ni, int y, int x) noexcept { return data[offset(ci, ni, y, x)]; }
    const T& at(int ci, int ni, int y, int x) const noexcept { return data[offset(ci, ni, y, x)]; }
    bool same_shape(const tensor& o) const noexcept { return c == o.c && n == o.n && h == o.h && w == o.w; }
};

// A learnable (or frozen) array with its gradient. `decay`: whether weight decay applies
// (detectron2 and torchvision decay every parameter; the example exempts norm parameters).
template <class T>
struct parameter {
    std::string name;
    std::vector<std::size_t> shape;
    std::vector<T> value, grad;
    bool trainable = true;
    bool decay = true;

    parameter() = default;
    parameter(std::string n, std::vector<std::size_t> s, T fill = T(0));
    std::size_t size() const noexcept { return value.size(); }
};

// Every parameter of a module, in a stable order (the checkpoint's and optimizer's order).
template <class T>
using parameter_list = std::vector<parameter<T>*>;

// Keeps freed activation buffers in the process (glibc mallopt: no mmap/munmap and page faults
// for every large tensor of every step). Called by the trainer and inference; idempotent.
void keep_freed_memory();

// Threads the layers use (focal's shared fork-join pool). Default: all hardware threads.
void set_threads(int threads);
int threads();

// Training mode: layers keep what backward needs. Inference (false) keeps nothing.
void set_grad_enabled(bool enabled);
bool grad_enabled();

// Runs fn(task) for task in [0, tasks) on the layers' threads.
void parallel_tasks(std::size_t tasks, const std::function<void(std::size_t)>& fn);

// Runs fn(begin, end) over [0, size) cut into ranges of `grain` elements (the last shorter) on the
// layers' threads: element-wise passes.
void parallel_ranges(std::size_t size, std::size_t grain, const std::function<void(std::size_t, std::size_t)>& fn);

}  // namespace retinanet::cpu
