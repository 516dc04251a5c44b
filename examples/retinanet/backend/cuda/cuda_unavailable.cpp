// cuda_training.hpp in a build without CUDA: every entry point says so.
#include <focal/core/error.hpp>

#include "cuda_training.hpp"
#include "support/check.hpp"

namespace retinanet::cuda {
namespace {
constexpr const char* reason =
    "this build has no CUDA support (no CUDA compiler was found, or FOCAL_BUILD_CUDA=OFF): install the CUDA toolkit and "
    "reconfigure with -DFOCAL_BUILD_CUDA=ON";
}

bool cuda_available(std::string* why) {
    if (why) *why = reason;
    return false;
}

int cuda_device_count() { return 0; }

std::string cuda_device_description(int) { return "no CUDA device"; }

bool cudnn_built() { return false; }

std::unique_ptr<train::training_engine> make_cuda_engine(model::retinanet_model<float>&, const train::train_options&, const cuda_options&) {
    fail("retinanet::cuda::make_cuda_engine", "device", "cuda in a build with CUDA", reason);
}

train::batch_detector make_cuda_detector(model::retinanet_model<float>&, const train::inference_options&, const cuda_options&) {
    fail("retinanet::cuda::make_cuda_detector", "device", "cuda in a build with CUDA", reason);
}

}  // namespace retinanet::cuda
