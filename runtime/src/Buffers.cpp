//===- Buffers.cpp - the activation plan of a manifest, and its guard ------===//
#include "Buffers.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace qlc::rt {

namespace {

struct Region {
  int64_t first, last, offset, bytes;
};

std::string str(int64_t v) { return std::to_string(v); }

} // namespace

std::string checkActivationPlan(const nlohmann::json &plan, int64_t maxTokens,
                                int64_t scratchBytes) {
  const int64_t planTokens = plan.at("max_tokens").get<int64_t>();
  const int64_t align = plan.at("alignment").get<int64_t>();
  const int64_t peak = plan.at("peak_bytes").get<int64_t>();
  const int64_t arena = plan.at("arena_bytes").get<int64_t>();
  const int64_t stagingOffset = plan.value("staging_offset", int64_t{0});
  const int64_t stagingBytes = plan.value("staging_bytes", int64_t{0});
  const nlohmann::json &table = plan.at("buffers");
  if (planTokens != maxTokens)
    return "planned for max_tokens " + str(planTokens) + ", the artifact runs " + str(maxTokens);
  if (align <= 0 || (align & (align - 1)) != 0)
    return "alignment " + str(align) + " is not a power of two";
  if (peak < 0 || arena < peak)
    return "arena_bytes " + str(arena) + " is smaller than peak_bytes " + str(peak);
  if (arena > scratchBytes)
    return "arena_bytes " + str(arena) + " exceeds scratch_bytes " + str(scratchBytes);
  if (stagingBytes < 0 || (stagingBytes > 0 && (stagingOffset < arena ||
                                                 stagingOffset > scratchBytes - stagingBytes)))
    return "the staging [" + str(stagingOffset) + ", +" + str(stagingBytes) +
           ") is not between the arena's end " + str(arena) + " and scratch_bytes " +
           str(scratchBytes);
  if (!table.is_array() || plan.at("num_buffers").get<int64_t>() != static_cast<int64_t>(table.size()))
    return "num_buffers differs from the buffer table";
  std::vector<Region> regions;
  for (const nlohmann::json &b : table) {
    Region r{b.at("first").get<int64_t>(), b.at("last").get<int64_t>(),
             b.at("offset").get<int64_t>(), b.at("bytes").get<int64_t>()};
    const std::string what = "buffer " + str(static_cast<int64_t>(regions.size())) + " (" +
                             b.value("op", std::string("?")) + ")";
    if (r.first < 0 || r.last < r.first || r.last > (int64_t{1} << 40))
      return what + " has a live range [" + str(r.first) + ", " + str(r.last) + "]";
    if (r.offset < 0 || r.bytes <= 0 || r.offset % align != 0 || r.offset > arena - r.bytes)
      return what + " [" + str(r.offset) + ", +" + str(r.bytes) +
             ") is not an aligned region inside the arena of " + str(arena) + " bytes";
    regions.push_back(r);
  }
  // Live ranges sorted by start; each region against those still live when it starts.
  std::vector<size_t> order(regions.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return regions[a].first < regions[b].first; });
  std::vector<size_t> live;
  for (size_t i : order) {
    const Region &r = regions[i];
    live.erase(std::remove_if(live.begin(), live.end(),
                              [&](size_t o) { return regions[o].last < r.first; }),
               live.end());
    for (size_t o : live)
      if (r.offset < regions[o].offset + regions[o].bytes &&
          regions[o].offset < r.offset + r.bytes)
        return "buffers " + str(static_cast<int64_t>(o)) + " and " + str(static_cast<int64_t>(i)) +
               " are live at the same time and overlap";
    live.push_back(i);
  }
  std::vector<std::pair<int64_t, int64_t>> events;
  for (const Region &r : regions) {
    events.push_back({r.first, r.bytes});
    events.push_back({r.last + 1, -r.bytes});
  }
  std::sort(events.begin(), events.end());
  int64_t sum = 0, most = 0;
  for (const auto &e : events)
    most = std::max(most, sum += e.second);
  if (most != peak)
    return "peak_bytes " + str(peak) + " differs from the " + str(most) +
           " bytes the buffer table has live at once";
  return "";
}

bool bufferGuardEnabled() {
  const char *v = std::getenv("QLC_CHECK_BUFFERS");
  return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
}

void fillGuard(uint8_t *p) { std::memset(p, kGuardByte, kGuardBytes); }

int64_t checkGuard(const uint8_t *p) {
  for (size_t i = 0; i < kGuardBytes; ++i)
    if (p[i] != kGuardByte)
      return static_cast<int64_t>(i);
  return -1;
}

} // namespace qlc::rt
