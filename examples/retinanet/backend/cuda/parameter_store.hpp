// The GPU network's parameters: values, gradients, momentum velocities and per-element flags, each
// one flat buffer in the executor's memory (so zeroing the gradients, the gradient norm and the SGD update
// are one pass each), and the host model's cpu::parameter objects they mirror, matched by name. The
// host side keeps torchvision's names and layouts, so checkpoints are the CPU trainer's own.
// Convolution weights are [C_out][k][k][C_in] here ("ohwi": a row of the weight matrix is one
// output channel's im2col window) and [C_out][C_in][k][k] on the host; transfers permute.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <focal/core/error.hpp>

#include "backend/cpu/tensor.hpp"
#include "ops.hpp"
#include "support/check.hpp"

namespace retinanet::cuda {

enum class parameter_layout { plain, conv_weight };

template <class Executor>
class parameter_store {
public:
    // Mirrors `host` (a CPU model's parameter list, kept alive by the caller).
    parameter_store(Executor& executor, const cpu::parameter_list<float>& host) : executor_(executor), host_(host) {
        for (std::size_t i = 0; i < host.size(); ++i) by_name_[host[i]->name] = i;
    }

    // Registers the host parameter `name`, which must exist with `shape`; returns its slot.
    int add(const std::string& name, const std::vector<std::size_t>& shape, parameter_layout layout) {
        const auto it = by_name_.find(name);
        require(it != by_name_.end(), "cuda::parameter_store::add", "parameter '" + name + "'",
                "one of the host model's parameters", "no such name");
        cpu::parameter<float>& p = *host_[it->second];
        require(p.shape == shape, "cuda::parameter_store::add", "shape of '" + name + "'", shape_text(p.shape),
                shape_text(shape));
        require(host_slot_.count(it->second) == 0, "cuda::parameter_store::add", "parameter '" + name + "'",
                "registered once", "twice");
        host_slot_[it->second] = static_cast<int>(slots_.size());
        slots_.push_back({&p, size_, layout});
        size_ += static_cast<index>(p.size());
        return static_cast<int>(slots_.size()) - 1;
    }

    // After every layer registered: checks that all host parameters are mirrored, allocates the
    // buffers (velocity 0) and uploads the host values.
    void allocate() {
        for (std::size_t i = 0; i < host_.size(); ++i)
            require(host_slot_.count(i) != 0, "cuda::parameter_store::allocate", "host parameter '" + host_[i]->name + "'",
                    "used by the GPU network", "not registered (the networks differ)");
        const auto n = static_cast<std::size_t>(size_);
        values_ = executor_.template allocate<float>(n);
        grads_ = executor_.template allocate<float>(n);
        velocity_ = executor_.template allocate<float>(n);
        flags_ = executor_.template allocate<std::uint8_t>(n);
        executor_.zero(grads_.get(), n * sizeof(float));
        executor_.zero(velocity_.get(), n * sizeof(float));
        upload_flags();
        upload_values();
    }

    float* value(int slot) const { return values_.get() + slots_[static_cast<std::size_t>(slot)].offset; }
    float* grad(int slot) const { return grads_.get() + slots_[static_cast<std::size_t>(slot)].offset; }
    bool trainable(int slot) const { return slots_[static_cast<std::size_t>(slot)].host->trainable; }
    // The slots registered so far, and a slot's place in the flat buffers (slots follow one another
    // in registration order).
    std::size_t slot_count() const noexcept { return slots_.size(); }
    index offset(int slot) const { return slots_[static_cast<std::size_t>(slot)].offset; }
    index slot_size(int slot) const { return static_cast<index>(slots_[static_cast<std::size_t>(slot)].host->size()); }
    index size() const noexcept { return size_; }
    float* values() const { return values_.get(); }
    float* grads() const { return grads_.get(); }
    float* velocity() const { return velocity_.get(); }
    const std::uint8_t* flags() const { return flags_.get(); }
    const cpu::parameter_list<float>& host() const noexcept { return host_; }

    void zero_grad() { executor_.zero(grads_.get(), static_cast<std::size_t>(size_) * sizeof(float)); }
    // Host values -> here (after loading a checkpoint or changing trainable / decay flags: call
    // upload_flags too).
    void upload_values() { transfer(values_.get(), [](cpu::parameter<float>& p) -> std::vector<float>& { return p.value; }, true); }
    void upload_flags() {
        std::vector<std::uint8_t> flags(static_cast<std::size_t>(size_));
        for (const auto& s : slots_)
            std::fill_n(flags.begin() + s.offset, s.host->size(),
                        static_cast<std::uint8_t>((s.host->trainable ? trainable_flag : 0) | (s.host->decay ? decay_flag : 0)));
        executor_.upload(flags_.get(), flags.data(), flags.size());
    }
    void upload_grads() { transfer(grads_.get(), [](cpu::parameter<float>& p) -> std::vector<float>& { return p.grad; }, true); }
    void download_values() { transfer(values_.get(), [](cpu::parameter<float>& p) -> std::vector<float>& { return p.value; }, false); }
    void download_grads() {
        for (auto* p : host_) p->grad.resize(p->size());
        transfer(grads_.get(), [](cpu::parameter<float>& p) -> std::vector<float>& { return p.grad; }, false);
    }
    // The velocities in the host list's order and layout (train::sgd's and the checkpoint's form).
    void download_velocity(std::vector<std::vector<float>>& velocity) {
        velocity.assign(host_.size(), {});
        std::vector<float> all(static_cast<std::size_t>(size_));
        executor_.download(all.data(), velocity_.get(), all.size() * sizeof(float));
        for (std::size_t i = 0; i < host_.size(); ++i) {
            const slot& s = slots_[static_cast<std::size_t>(host_slot_.at(i))];
            velocity[i].resize(s.host->size());
            from_device(s, all.data() + s.offset, velocity[i].data());
        }
    }
    // Empty: zeros (a fresh run).
    void upload_velocity(const std::vector<std::vector<float>>& velocity) {
        require(velocity.empty() || velocity.size() == host_.size(), "cuda::parameter_store::upload_velocity", "velocity",
                "empty or one array per parameter (" + std::to_string(host_.size()) + ")", velocity.size());
        std::vector<float> all(static_cast<std::size_t>(size_), 0.0f);
        if (!velocity.empty())
            for (std::size_t i = 0; i < host_.size(); ++i) {
                const slot& s = slots_[static_cast<std::size_t>(host_slot_.at(i))];
                require(velocity[i].size() == s.host->size(), "cuda::parameter_store::upload_velocity",
                        "velocity of " + s.host->name, "sized as the parameter", velocity[i].size());
                to_device(s, velocity[i].data(), all.data() + s.offset);
            }
        executor_.upload(velocity_.get(), all.data(), all.size() * sizeof(float));
    }

private:
    struct slot {
        cpu::parameter<float>* host;
        index offset;
        parameter_layout layout;
    };
    static std::string shape_text(const std::vector<std::size_t>& s) {
        std::string t = "[";
        for (std::size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
        return t + "]";
    }
    // [o][c][i][j] (host) <-> [o][i][j][c] (device) for convolution weights; a copy otherwise.
    static void permute(const slot& s, const float* from, float* to, bool to_device) {
        if (s.layout == parameter_layout::plain) return void(std::copy_n(from, s.host->size(), to));
        const std::size_t o_n = s.host->shape[0], c_n = s.host->shape[1], kk = s.host->shape[2] * s.host->shape[3];
        for (std::size_t o = 0; o < o_n; ++o)
            for (std::size_t c = 0; c < c_n; ++c)
                for (std::size_t t = 0; t < kk; ++t) {
                    const std::size_t host_at = (o * c_n + c) * kk + t, device_at = (o * kk + t) * c_n + c;
                    to[to_device ? device_at : host_at] = from[to_device ? host_at : device_at];
                }
    }
    static void to_device(const slot& s, const float* host, float* device_order) { permute(s, host, device_order, true); }
    static void from_device(const slot& s, const float* device_order, float* host) { permute(s, device_order, host, false); }
    template <class Member>
    void transfer(float* device, Member member, bool up) {
        std::vector<float> all(static_cast<std::size_t>(size_));
        if (!up) executor_.download(all.data(), device, all.size() * sizeof(float));
        for (const auto& s : slots_) {
            std::vector<float>& h = member(*s.host);
            if (up) to_device(s, h.data(), all.data() + s.offset);
            else from_device(s, all.data() + s.offset, h.data());
        }
        if (up) executor_.upload(device, all.data(), all.size() * sizeof(float));
    }

    Executor& executor_;
    cpu::parameter_list<float> host_;
    std::map<std::string, std::size_t> by_name_;
    std::map<std::size_t, int> host_slot_;
    std::vector<slot> slots_;
    index size_ = 0;
    std::shared_ptr<float> values_, grads_, velocity_;
    std::shared_ptr<std::uint8_t> flags_;
};

}  // namespace retinanet::cuda
