// MPI_COMM_WORLD as a process_group. Errors keep MPI's default handler (MPI_ERRORS_ARE_FATAL):
// a failed collective, a dead peer included, ends the whole job instead of leaving ranks waiting.
#include "mpi_world.hpp"

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <numeric>
#include <type_traits>

#include "support/check.hpp"

namespace retinanet::distributed {
namespace {

template <class T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<float>() { return MPI_FLOAT; }
template <>
MPI_Datatype mpi_type<double>() { return MPI_DOUBLE; }
template <>
MPI_Datatype mpi_type<std::int64_t>() { return MPI_INT64_T; }

int as_count(std::size_t n, const char* what) {
    require(n <= static_cast<std::size_t>(INT_MAX), "mpi_world", what, "at most INT_MAX elements per call", n);
    return static_cast<int>(n);
}

class mpi_world final : public process_group {
public:
    mpi_world(int& argc, char**& argv) {
        int provided = MPI_THREAD_SINGLE;
        MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
        any_thread_ = provided >= MPI_THREAD_SERIALIZED;
        MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
        MPI_Comm_size(MPI_COMM_WORLD, &size_);
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node_);
        MPI_Comm_rank(node_, &local_rank_);
        MPI_Comm_size(node_, &local_size_);
        char version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
        int length = 0;
        MPI_Get_library_version(version, &length);
        library_.assign(version, static_cast<std::size_t>(std::max(0, length)));
        library_ = library_.substr(0, library_.find_first_of(",\n"));  // "Open MPI v4.1.4"
    }
    ~mpi_world() override {
        MPI_Comm_free(&node_);
        MPI_Finalize();
    }
    mpi_world(const mpi_world&) = delete;
    mpi_world& operator=(const mpi_world&) = delete;

    int rank() const noexcept override { return rank_; }
    int size() const noexcept override { return size_; }
    int local_size() const noexcept override { return local_size_; }
    int local_rank() const noexcept override { return local_rank_; }
    std::string describe() const override { return concat(size_, " ranks (", library_, ")"); }
    bool callable_from_any_thread() const noexcept override { return any_thread_; }
    void abort(int code) noexcept override { MPI_Abort(MPI_COMM_WORLD, code); }

    void broadcast(std::span<std::byte> data, int root) override {
        check_root(root);
        for (std::size_t at = 0; at < data.size(); at += INT_MAX) {
            const std::size_t n = std::min<std::size_t>(INT_MAX, data.size() - at);
            MPI_Bcast(data.data() + at, static_cast<int>(n), MPI_BYTE, root, MPI_COMM_WORLD);
        }
    }
    void sum(std::span<float> values) override { identical_sum(values); }
    void sum(std::span<double> values) override { identical_sum(values); }
    void sum(std::span<std::int64_t> values) override { identical_sum(values); }

    std::vector<std::vector<std::byte>> gather(std::span<const std::byte> data, int root) override {
        check_root(root);
        const auto mine = static_cast<std::uint64_t>(data.size());
        std::vector<std::uint64_t> sizes(rank_ == root ? static_cast<std::size_t>(size_) : 0);
        MPI_Gather(&mine, 1, MPI_UINT64_T, sizes.data(), 1, MPI_UINT64_T, root, MPI_COMM_WORLD);
        std::vector<int> counts, offsets;
        std::vector<std::byte> all;
        if (rank_ == root) {
            for (const auto s : sizes) {
                offsets.push_back(as_count(all.size(), "gathered bytes"));
                counts.push_back(as_count(s, "gathered bytes"));
                all.resize(all.size() + s);
            }
        }
        MPI_Gatherv(data.data(), as_count(data.size(), "gathered bytes"), MPI_BYTE, all.data(), counts.data(), offsets.data(), MPI_BYTE,
                    root, MPI_COMM_WORLD);
        std::vector<std::vector<std::byte>> parts;
        if (rank_ == root)
            for (std::size_t r = 0; r < sizes.size(); ++r)
                parts.emplace_back(all.begin() + offsets[r], all.begin() + offsets[r] + counts[r]);
        return parts;
    }

private:
    void check_root(int root) const { require(root >= 0 && root < size_, "mpi_world", "root", concat("a rank in [0, ", size_, ")"), root); }

    // A ring reduce-scatter, then a ring all-gather (the bandwidth-optimal allreduce: each rank
    // sends and receives 2 (W - 1) / W of the values). Block b is summed along the ring in one
    // fixed order and then copied to every rank, so all ranks hold the same bits by construction.
    // Blocks are [b n / W, (b + 1) n / W).
    template <class T>
    void identical_sum(std::span<T> values) {
        if (size_ == 1 || values.empty()) return;
        const auto w = static_cast<std::size_t>(size_), n = values.size();
        const auto first = [&](std::size_t b) { return b * n / w; };
        const auto length = [&](std::size_t b) { return first(b + 1) - first(b); };
        const int right = (rank_ + 1) % size_, left = (rank_ + size_ - 1) % size_;
        const auto r = static_cast<std::size_t>(rank_);
        std::vector<T>& incoming = scratch<T>();
        incoming.resize(length(0) + 1);
        // Step s: send block r - s to the right; receive block r - s - 1 from the left and add it.
        for (std::size_t s = 0; s + 1 < w; ++s) {
            const std::size_t send = (r + w - s) % w, receive = (r + 2 * w - s - 1) % w;
            MPI_Sendrecv(values.data() + first(send), as_count(length(send), "summed values per rank"), mpi_type<T>(), right, 0,
                         incoming.data(), as_count(length(receive), "summed values per rank"), mpi_type<T>(), left, 0, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE);
            T* mine = values.data() + first(receive);
            for (std::size_t i = 0; i < length(receive); ++i) mine[i] += incoming[i];
        }
        // Rank r now holds block r + 1 summed. Step s: send block r + 1 - s, receive block r - s.
        for (std::size_t s = 0; s + 1 < w; ++s) {
            const std::size_t send = (r + 1 + w - s) % w, receive = (r + w - s) % w;
            MPI_Sendrecv(values.data() + first(send), as_count(length(send), "summed values per rank"), mpi_type<T>(), right, 1,
                         values.data() + first(receive), as_count(length(receive), "summed values per rank"), mpi_type<T>(), left, 1,
                         MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        }
    }
    template <class T>
    std::vector<T>& scratch() {
        if constexpr (std::is_same_v<T, float>) return scratch_float_;
        else if constexpr (std::is_same_v<T, double>) return scratch_double_;
        else return scratch_int_;
    }

    std::vector<float> scratch_float_;
    std::vector<double> scratch_double_;
    std::vector<std::int64_t> scratch_int_;
    int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
    bool any_thread_ = false;
    MPI_Comm node_ = MPI_COMM_NULL;
    std::string library_;
};

}  // namespace

bool mpi_available() noexcept { return true; }

std::unique_ptr<process_group> join_mpi_world(int& argc, char**& argv) { return std::make_unique<mpi_world>(argc, argv); }

}  // namespace retinanet::distributed
