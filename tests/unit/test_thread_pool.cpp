// The host thread pool: every task runs exactly once, exceptions reach the caller.
#include <atomic>
#include <stdexcept>
#include <vector>

#include <doctest/doctest.h>
#include <focal/core.hpp>
#include <focal/loss.hpp>

TEST_CASE("parallel_for runs every task exactly once, for any thread count") {
    focal::thread_pool pool(3);
    for (std::size_t threads : {0u, 1u, 2u, 4u, 9u})
        for (std::size_t tasks : {0u, 1u, 5u, 1000u}) {
            CAPTURE(threads);
            CAPTURE(tasks);
            std::vector<std::atomic<int>> hits(tasks);
            pool.parallel_for(tasks, threads, [&](std::size_t t) { hits[t]++; });
            for (auto& h : hits) CHECK(h.load() == 1);
        }
    CHECK(focal::thread_pool::shared().workers() + 1 >= 1);
}

TEST_CASE("an exception in a task is rethrown after all started tasks finish") {
    focal::thread_pool pool(2);
    std::atomic<int> done{0};
    CHECK_THROWS_AS(pool.parallel_for(100, 3,
                                      [&](std::size_t t) {
                                          if (t == 17) throw std::runtime_error("task 17");
                                          done++;
                                      }),
                    std::runtime_error);
    CHECK(done.load() < 100);
    // The pool is still usable.
    std::atomic<int> after{0};
    pool.parallel_for(10, 3, [&](std::size_t) { after++; });
    CHECK(after.load() == 10);
}

TEST_CASE("a nested parallel_for on the same pool runs inline instead of deadlocking") {
    focal::thread_pool pool(2);
    std::vector<std::atomic<int>> hits(6 * 50);
    pool.parallel_for(6, 3, [&](std::size_t outer) {
        pool.parallel_for(50, 3, [&](std::size_t inner) { hits[outer * 50 + inner]++; });
    });
    for (auto& h : hits) CHECK(h.load() == 1);
    // A driver called with exec::parallel from inside a task of the shared pool finishes too.
    std::vector<float> x(4096 * 20, 0.5f);
    std::vector<int> labels(4096, -1);
    std::atomic<int> done{0};
    focal::thread_pool::shared().parallel_for(4, 0, [&](std::size_t) {
        const double v = focal::classification_loss(focal::sigmoid_focal_loss{}, focal::make_view(x.data(), 4096, 20),
                                                     focal::make_view(labels.data(), 4096), focal::reduction::sum(), {},
                                                     focal::exec::parallel_policy{.min_elements = 0});
        if (v > 0) done++;
    });
    CHECK(done.load() == 4);
}
