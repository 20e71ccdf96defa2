//===- QlcOps.cpp - qlc dialect operations and verifiers -------------------===//
#include "ir/QlcOps.h"
#include "ir/Rope.h"

#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace qlc;

namespace {

int64_t dim(Value v, unsigned i) {
  return cast<RankedTensorType>(v.getType()).getDimSize(i);
}
int64_t rank(Value v) { return cast<RankedTensorType>(v.getType()).getRank(); }

/// Activations are tensor<?xNxf32> with a static feature dimension.
LogicalResult verifyActivation(Operation *op, Value v, StringRef what) {
  if (ShapedType::isDynamic(dim(v, 1)))
    return op->emitOpError() << what << " must have a static feature dimension";
  return success();
}

LogicalResult verifyTokensMatch(Operation *op, Value a, Value b) {
  int64_t x = dim(a, 0), y = dim(b, 0);
  if (!ShapedType::isDynamic(x) && !ShapedType::isDynamic(y) && x != y)
    return op->emitOpError() << "token dimensions differ: " << x << " vs " << y;
  return success();
}

} // namespace

LogicalResult WeightOp::verify() {
  if (getTensorName().empty())
    return emitOpError("weight name must not be empty");
  if (!getType().hasStaticShape())
    return emitOpError("weight shape must be static");
  return success();
}

LogicalResult EmbeddingOp::verify() {
  if (rank(getTable()) != 2)
    return emitOpError("table must be 2-D [vocab, hidden], got rank ")
           << rank(getTable());
  if (dim(getResult(), 1) != dim(getTable(), 1))
    return emitOpError("result width ")
           << dim(getResult(), 1) << " differs from table width " << dim(getTable(), 1);
  return verifyTokensMatch(*this, getIds(), getResult());
}

LogicalResult RmsNormOp::verify() {
  if (failed(verifyActivation(*this, getX(), "input")))
    return failure();
  if (rank(getWeight()) != 1 || dim(getWeight(), 0) != dim(getX(), 1))
    return emitOpError("weight must be 1-D of the input width ") << dim(getX(), 1);
  if (getResult().getType() != getX().getType())
    return emitOpError("result type must equal the input type");
  if (!(getEpsilon().convertToDouble() > 0.0))
    return emitOpError("epsilon must be positive");
  return success();
}

LogicalResult LinearOp::verify() {
  if (failed(verifyActivation(*this, getX(), "input")))
    return failure();
  if (rank(getWeight()) != 2)
    return emitOpError("weight must be 2-D [out, in], got rank ") << rank(getWeight());
  int64_t n = dim(getWeight(), 0), k = dim(getWeight(), 1);
  if (k != dim(getX(), 1))
    return emitOpError("weight in_features ") << k << " differs from input width "
                                              << dim(getX(), 1);
  if (dim(getResult(), 1) != n)
    return emitOpError("result width ") << dim(getResult(), 1)
                                        << " differs from weight out_features " << n;
  if (getBias() && (rank(getBias()) != 1 || dim(getBias(), 0) != n))
    return emitOpError("bias must be 1-D of out_features ") << n;
  return verifyTokensMatch(*this, getX(), getResult());
}

LogicalResult RopeOp::verify() {
  if (failed(verifyActivation(*this, getX(), "input")))
    return failure();
  int64_t hd = getHeadDim();
  if (hd <= 0 || hd % 2 != 0)
    return emitOpError("head_dim must be positive and even, got ") << hd;
  if (dim(getX(), 1) % hd != 0)
    return emitOpError("input width ") << dim(getX(), 1)
                                       << " is not a multiple of head_dim " << hd;
  if (getResult().getType() != getX().getType())
    return emitOpError("result type must equal the input type");
  if (!isKnownRopeScaling(getScaling().str()))
    return emitOpError("unknown rope scaling '") << getScaling() << "'";
  if (!(getTheta().convertToDouble() > 0.0) || !(getFactor().convertToDouble() > 0.0))
    return emitOpError("theta and factor must be positive");
  if (getScaling() == "llama3" &&
      !(getHighFreqFactor().convertToDouble() > getLowFreqFactor().convertToDouble()))
    return emitOpError("llama3 scaling needs high_freq_factor > low_freq_factor");
  return verifyTokensMatch(*this, getX(), getPositions());
}

LogicalResult AttentionOp::verify() {
  for (Value v : {getQ(), getK(), getV()})
    if (failed(verifyActivation(*this, v, "q, k and v")))
      return failure();
  int64_t h = getNumHeads(), kvh = getNumKvHeads(), hd = getHeadDim();
  if (h <= 0 || kvh <= 0 || hd <= 0)
    return emitOpError("num_heads, num_kv_heads and head_dim must be positive");
  if (h % kvh != 0)
    return emitOpError("num_heads ") << h << " is not a multiple of num_kv_heads " << kvh;
  if (dim(getQ(), 1) != h * hd)
    return emitOpError("q width ") << dim(getQ(), 1) << " differs from num_heads*head_dim "
                                   << h * hd;
  if (dim(getK(), 1) != kvh * hd || dim(getV(), 1) != kvh * hd)
    return emitOpError("k and v width must be num_kv_heads*head_dim ") << kvh * hd;
  if (dim(getResult(), 1) != h * hd)
    return emitOpError("result width must be num_heads*head_dim ") << h * hd;
  if (getLayer() < 0)
    return emitOpError("layer must be non-negative");
  if (auto w = getSlidingWindow(); w && *w <= 0)
    return emitOpError("sliding_window must be positive");
  return verifyTokensMatch(*this, getQ(), getPositions());
}

void AttentionOp::getEffects(
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>> &effects) {
  // Reads and appends to the KV cache, a resource outside the SSA graph.
  effects.emplace_back(MemoryEffects::Read::get());
  effects.emplace_back(MemoryEffects::Write::get());
}

LogicalResult SiluMulOp::verify() {
  if (getGate().getType() != getUp().getType() ||
      getResult().getType() != getGate().getType())
    return emitOpError("gate, up and result must have the same type");
  return verifyActivation(*this, getGate(), "gate");
}

LogicalResult AddOp::verify() {
  if (getLhs().getType() != getRhs().getType() ||
      getResult().getType() != getLhs().getType())
    return emitOpError("operands and result must have the same type");
  return verifyActivation(*this, getLhs(), "operand");
}

LogicalResult LogitsOp::verify() {
  if (failed(verifyActivation(*this, getX(), "input")))
    return failure();
  if (rank(getWeight()) != 2 || dim(getWeight(), 1) != dim(getX(), 1))
    return emitOpError("weight must be [vocab, ") << dim(getX(), 1) << "]";
  if (dim(getResult(), 1) != dim(getWeight(), 0))
    return emitOpError("result width must equal the vocabulary size ")
           << dim(getWeight(), 0);
  return verifyTokensMatch(*this, getX(), getResult());
}

#define GET_OP_CLASSES
#include "ir/QlcOps.cpp.inc"
