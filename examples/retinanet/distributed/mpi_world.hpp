// MPI's world as a process_group (mpi_world.cpp, built when CMake finds MPI; else mpi_absent.cpp).
#pragma once

#include <memory>

#include "process_group.hpp"

namespace retinanet::distributed {

bool mpi_available() noexcept;
// MPI_Init_thread (MPI_THREAD_SERIALIZED requested) and MPI_COMM_WORLD; finalized when destroyed.
std::unique_ptr<process_group> join_mpi_world(int& argc, char**& argv);

}  // namespace retinanet::distributed
