#include "process_group.hpp"

#include <cstdlib>
#include <string>

#include "mpi_world.hpp"
#include "support/check.hpp"

namespace retinanet::distributed {
namespace {

class one_process final : public process_group {
public:
    int rank() const noexcept override { return 0; }
    int size() const noexcept override { return 1; }
    int local_size() const noexcept override { return 1; }
    int local_rank() const noexcept override { return 0; }
    std::string describe() const override { return "1 process"; }
    bool callable_from_any_thread() const noexcept override { return true; }
    void abort(int) noexcept override {}
    void broadcast(std::span<std::byte>, int root) override { check_root(root); }
    void sum(std::span<float>) override {}
    void sum(std::span<double>) override {}
    void sum(std::span<std::int64_t>) override {}
    std::vector<std::vector<std::byte>> gather(std::span<const std::byte> data, int root) override {
        check_root(root);
        return {std::vector<std::byte>(data.begin(), data.end())};
    }

private:
    static void check_root(int root) { require(root == 0, "process_group", "root", "a rank of the group (0)", root); }
};

// The ranks a launcher started this process among (Open MPI's mpirun, or a PMI launcher such as
// MPICH's or Slurm's); 1 when started directly.
int launched_size() {
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
        if (const char* value = std::getenv(name)) return std::max(1, std::atoi(value));
    return 1;
}

}  // namespace

std::unique_ptr<process_group> single_process() { return std::make_unique<one_process>(); }

bool built_with_mpi() noexcept { return mpi_available(); }

std::unique_ptr<process_group> join_launched_world(int& argc, char**& argv) {
    const int launched = launched_size();
    if (launched <= 1) return single_process();
    require(built_with_mpi(), "retinanet", "an MPI launch", "a build with MPI (install libopenmpi-dev and re-run CMake)",
            concat(launched, " ranks started in a build without MPI"));
    return join_mpi_world(argc, argv);
}

}  // namespace retinanet::distributed
