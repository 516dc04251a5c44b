// A build without MPI: join_launched_world() reports a multi-rank launch before it gets here.
#include "mpi_world.hpp"
#include "support/check.hpp"

namespace retinanet::distributed {

bool mpi_available() noexcept { return false; }

std::unique_ptr<process_group> join_mpi_world(int&, char**&) {
    fail("retinanet", "MPI", "available in this build (install libopenmpi-dev and re-run CMake)", "a build without it");
}

}  // namespace retinanet::distributed
