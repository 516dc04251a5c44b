// The host thread pool: every task runs exactly once, exceptions reach the caller.
#include <atomic>
#include <stdexcept>
#include <vector>

#include <doctest/doctest.h>
#include <focal/core.hpp>

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
