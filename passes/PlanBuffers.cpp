//===- PlanBuffers.cpp - qlc-plan-buffers ----------------------------------===//
//
// Liveness and arena offsets of @forward's activations (ir/BufferPlan.h does the
// work, so that codegen runs the very same planner on a module that arrives without a
// plan, e.g. from a --pass-pipeline that leaves this pass out).
//
#include "ir/BufferPlan.h"
#include "ir/QlcOps.h"
#include "passes/Passes.h"

namespace qlc {
#define GEN_PASS_DEF_PLANBUFFERSPASS
#include "passes/Passes.h.inc"
} // namespace qlc

using namespace mlir;

namespace {

struct PlanBuffersPass : qlc::impl::PlanBuffersPassBase<PlanBuffersPass> {
  using PlanBuffersPassBase::PlanBuffersPassBase;

  void runOnOperation() override {
    if (verify) {
      if (failed(qlc::readBufferPlan(getOperation(), maxTokens)))
        signalPassFailure();
      return;
    }
    if (failed(qlc::planBuffers(getOperation(), maxTokens)))
      signalPassFailure();
  }
};

} // namespace
