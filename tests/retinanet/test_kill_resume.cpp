// A training run killed with SIGKILL (no chance to clean up, possibly in the middle of writing a
// checkpoint) resumes from its last checkpoint and ends with the very weights of a run that was
// never interrupted. Runs the real retinanet_train program (RETINANET_TRAIN_PROGRAM) on FMNIST-Det.
#include <chrono>
#include <csignal>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <spawn.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>
#include <focal/core/error.hpp>

#include "io/npz.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
constexpr int total_iterations = 240;

std::vector<std::string> train_arguments(const fs::path& output) {
    return {RETINANET_TRAIN_PROGRAM, "--config", "tiny", "--iterations", std::to_string(total_iterations), "--batch", "2",
            "--threads", "1", "--warmup", "20", "--eval-data", "none", "--checkpoint-every", "3", "--log-every", "1000",
            "--output", output.string()};
}

pid_t spawn(std::vector<std::string> arguments) {
    std::vector<char*> argv;
    for (auto& a : arguments) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);  // progress lines
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE_MESSAGE(rc == 0, "cannot start " << argv[0]);
    return pid;
}

int wait_for(pid_t pid) {
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    return status;
}

int run_to_end(std::vector<std::string> arguments) {
    const int status = wait_for(spawn(std::move(arguments)));
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The iteration saved in `file`, or -1 while there is none (the rename makes every file complete).
std::int64_t saved_iteration(const fs::path& file) {
    if (!fs::exists(file)) return -1;
    return retinanet::io::read_npz(file).at("run.iteration").as_int64()[0];
}

}  // namespace

TEST_CASE("SIGKILL: a killed run resumes from its last checkpoint to the weights of an uninterrupted run") {
    const fs::path root = fs::temp_directory_path() / ("focal_kill_resume_" + std::to_string(::getpid()));
    fs::remove_all(root);
    const fs::path straight = root / "straight", killed = root / "killed";
    fs::create_directories(straight);
    fs::create_directories(killed);

    REQUIRE(run_to_end(train_arguments(straight)) == 0);
    const auto reference = retinanet::io::read_npz(straight / "checkpoint.npz");
    REQUIRE(reference.at("run.iteration").as_int64()[0] == total_iterations);

    // Three kills at unannounced moments: each as soon as a checkpoint past the previous one shows.
    std::int64_t resumed_from = 0;
    int kills = 0;
    for (int round = 0; round < 3; ++round) {
        auto arguments = train_arguments(killed);
        if (round > 0) arguments.push_back("--resume");
        const pid_t pid = spawn(arguments);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
        while (saved_iteration(killed / "checkpoint.npz") < resumed_from + 10 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        ::kill(pid, SIGKILL);
        const int status = wait_for(pid);
        const std::int64_t saved = saved_iteration(killed / "checkpoint.npz");
        INFO("round " << round << ": checkpoint at iteration " << saved);
        if (WIFSIGNALED(status)) {
            CHECK(WTERMSIG(status) == SIGKILL);
            ++kills;
        }
        CHECK(saved > resumed_from);
        resumed_from = saved;
    }
    CHECK(kills == 3);  // each run really was killed (the kills come long before its end)
    CHECK(resumed_from < total_iterations);

    auto arguments = train_arguments(killed);
    arguments.push_back("--resume");
    REQUIRE(run_to_end(arguments) == 0);
    const auto resumed = retinanet::io::read_npz(killed / "checkpoint.npz");
    REQUIRE(resumed.size() == reference.size());
    std::size_t compared = 0;
    for (const auto& entry : reference) {  // not a structured binding: clang 14 cannot capture one in CHECK_MESSAGE
        const auto it = resumed.find(entry.first);
        REQUIRE(it != resumed.end());
        CHECK_MESSAGE(it->second.values == entry.second.values, entry.first);  // bit for bit: parameters, velocities, run state
        ++compared;
    }
    CHECK(compared > 20);
    // A kill in the middle of a write leaves "checkpoint.npz.tmp-<pid>"; the next run removes it.
    std::vector<std::string> left;
    for (const auto& entry : fs::directory_iterator(killed)) left.push_back(entry.path().filename().string());
    CHECK(left == std::vector<std::string>{"checkpoint.npz"});
    fs::remove_all(root);
}
