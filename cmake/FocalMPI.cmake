# MPI for the example RetinaNet's data-parallel training (Debian: libopenmpi-dev). Included from
# the top level, so the examples and their tests see the same result:
#   MPI_CXX_FOUND, MPI::MPI_CXX            from FindMPI (the C API; the C++ bindings are skipped)
#   FOCAL_MPI_TWO_RANKS                    the command prefix that starts 2 ranks (tests)
# Without MPI the example trains as one process and says so when started by mpirun.
option(FOCAL_WITH_MPI "Data-parallel training of the example RetinaNet over MPI, when MPI is found" ON)
if(FOCAL_WITH_MPI)
  set(MPI_CXX_SKIP_MPICXX ON)
  find_package(MPI COMPONENTS CXX)
endif()
if(MPI_CXX_FOUND)
  message(STATUS "focal: the example trains on several processes with MPI ${MPI_CXX_VERSION} (${MPIEXEC_EXECUTABLE})")
  set(FOCAL_MPI_TWO_RANKS ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 ${MPIEXEC_PREFLAGS})
  if(MPI_CXX_LIBRARY_VERSION_STRING MATCHES "Open MPI")
    list(APPEND FOCAL_MPI_TWO_RANKS --oversubscribe)  # more ranks than cores on small machines
  endif()
else()
  message(STATUS "focal: no MPI (libopenmpi-dev): the example trains as one process")
endif()
