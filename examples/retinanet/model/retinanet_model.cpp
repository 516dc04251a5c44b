#include "retinanet_model.hpp"

#include <algorithm>

#include <focal/anchor/generate.hpp>

namespace retinanet::model {

template <class T>
retinanet_model<T>::retinanet_model(const model_config& config) : network_(backend_, config) {
    initialize(0);
}

template <class T>
void retinanet_model<T>::initialize(std::uint64_t seed) {
    initializer<T> init(backend_.parameters, seed);
    network_.initialize(init);
    zero_grad();
}

template <class T>
void retinanet_model<T>::zero_grad() {
    for (auto* p : backend_.parameters) std::fill(p->grad.begin(), p->grad.end(), T(0));
}

template <class T>
head_outputs<T> retinanet_model<T>::forward(const cpu::tensor<T>& images) {
    cpu::keep_freed_memory();
    return network_.forward(images);
}

template <class T>
void retinanet_model<T>::backward(const std::vector<T>& d_cls, const std::vector<T>& d_box) {
    const auto anchors = static_cast<std::size_t>(network_.anchors_per_image()),
               batch = static_cast<std::size_t>(network_.pending_batch()),
               classes = static_cast<std::size_t>(config().num_classes);
    require(anchors > 0 && d_cls.size() == batch * anchors * classes && d_box.size() == batch * anchors * 4, "retinanet_model::backward",
            "gradients", "shaped as the last forward's outputs", concat(d_cls.size(), " and ", d_box.size(), " values"));
    network_.backward(d_cls, d_box);
}

template <class T>
std::vector<T> retinanet_model<T>::anchors(focal::size2d image, const std::vector<focal::size2d>& grids) const {
    std::ptrdiff_t count = 0;
    for (const auto& g : grids) count += g.height * g.width * config().anchors_per_cell();
    std::vector<T> out(static_cast<std::size_t>(count) * 4);
    focal::generate_anchors(config().anchors, image, std::span<const focal::size2d>(grids), focal::make_view(out.data(), count, std::ptrdiff_t(4)));
    return out;
}

template class retinanet_model<float>;
template class retinanet_model<double>;

}  // namespace retinanet::model
