//===- Buffers.h - the activation plan of a manifest, and its guard --*- C++ -*-===//
#ifndef QLC_RUNTIME_BUFFERS_H
#define QLC_RUNTIME_BUFFERS_H

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

namespace qlc::rt {

/// Checks the manifest's exec.activations (qlc-plan-buffers' plan, as codegen compiled
/// it into the code) against exec.max_tokens and exec.scratch_bytes: arena >= peak,
/// every buffer aligned, inside the arena and disjoint from the buffers live at the same
/// time, the summary equal to the table, the staging after the arena and everything
/// inside the scratch the runtime allocates. Returns "" when coherent, else why not.
std::string checkActivationPlan(const nlohmann::json &plan, int64_t maxTokens,
                                int64_t scratchBytes);

/// QLC_CHECK_BUFFERS=1: sessions put a guard region after the (host) scratch arena and
/// check it after every forward step.
bool bufferGuardEnabled();
constexpr size_t kGuardBytes = 4096;
constexpr uint8_t kGuardByte = 0xA5;
/// Fills / checks the guard of kGuardBytes at `p`; the check returns the offset of the
/// first changed byte, or -1.
void fillGuard(uint8_t *p);
int64_t checkGuard(const uint8_t *p);

} // namespace qlc::rt

#endif // QLC_RUNTIME_BUFFERS_H
