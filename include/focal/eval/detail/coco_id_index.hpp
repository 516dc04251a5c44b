// focal/eval/detail/coco_id_index.hpp: COCO ids to their rank among the sorted ids.
//
// pycocotools orders images and categories by id (params.imgIds / catIds are sorted), so the rank
// is the evaluation order. Lookups go through a direct table when the ids span a small range
// (COCO's 5,000 val images have ids below 600,000), else a binary search; both are deterministic.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../../core/error.hpp"
#include "../../core/view.hpp"
#include "../coco_types.hpp"

namespace focal::detail {

class coco_id_index {
public:
    // ids in input order; a repeated id throws "<where>: <what>[j].id must be unique, got <id> again (<what>[i].id)".
    coco_id_index(const std::vector<coco_id>& ids, const char* where, const char* what) {
        std::vector<std::pair<coco_id, std::size_t>> by_id(ids.size());
        for (std::size_t i = 0; i < ids.size(); ++i) by_id[i] = {ids[i], i};
        std::sort(by_id.begin(), by_id.end());
        sorted_.resize(ids.size());
        for (std::size_t i = 0; i < by_id.size(); ++i) {
            if (i > 0 && by_id[i].first == by_id[i - 1].first)
                fail(where, std::string(what) + "[" + std::to_string(by_id[i].second) + "].id", "unique",
                     by_id[i].first, " again (", what, "[", by_id[i - 1].second, "].id)");
            sorted_[i] = by_id[i].first;
        }
        if (sorted_.empty()) return;
        // Direct table when the span is at most 8 slots per id plus 1M (4 MB of int32).
        const std::uint64_t span = static_cast<std::uint64_t>(sorted_.back()) - static_cast<std::uint64_t>(sorted_.front());
        if (span < 8 * static_cast<std::uint64_t>(sorted_.size()) + (std::uint64_t(1) << 20)) {
            table_.assign(static_cast<std::size_t>(span) + 1, -1);
            for (std::size_t i = 0; i < sorted_.size(); ++i)
                table_[static_cast<std::size_t>(static_cast<std::uint64_t>(sorted_[i]) - first())] =
                    static_cast<std::int32_t>(i);
        }
    }

    index_t size() const noexcept { return static_cast<index_t>(sorted_.size()); }
    const std::vector<coco_id>& sorted_ids() const noexcept { return sorted_; }

    // The rank of id, -1 when it is not among the ids.
    index_t find(coco_id id) const noexcept {
        if (sorted_.empty() || id < sorted_.front() || id > sorted_.back()) return -1;
        if (!table_.empty()) return table_[static_cast<std::size_t>(static_cast<std::uint64_t>(id) - first())];
        const auto it = std::lower_bound(sorted_.begin(), sorted_.end(), id);
        return *it == id ? static_cast<index_t>(it - sorted_.begin()) : -1;
    }

private:
    std::uint64_t first() const noexcept { return static_cast<std::uint64_t>(sorted_.front()); }
    std::vector<coco_id> sorted_;
    std::vector<std::int32_t> table_;
};

}  // namespace focal::detail
