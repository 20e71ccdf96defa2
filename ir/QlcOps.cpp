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

/// The rotary parameters both qlc.rope and a qlc.attention with a fused rope check;
/// `prefix` is how the attribute names start ("" or "rope_").
LogicalResult verifyRope(Operation *op, const RopeParams &p, StringRef prefix) {
  if (!isKnownRopeScaling(p.scaling))
    return op->emitOpError("unknown ") << (prefix.empty() ? "rope " : prefix) << "scaling '"
                                        << p.scaling << "'";
  if (!(p.theta > 0.0) || !(p.factor > 0.0))
    return op->emitOpError() << prefix << "theta and " << prefix << "factor must be positive";
  if (p.scaling == "llama3" && !(p.highFreqFactor > p.lowFreqFactor))
    return op->emitOpError("llama3 scaling needs ")
           << prefix << "high_freq_factor > " << prefix << "low_freq_factor";
  return success();
}

} // namespace

bool qlc::isKnownKvDtype(StringRef dtype) {
  return dtype == "f32" || dtype == "f16" || dtype == "int8";
}

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

LogicalResult QuantizedLinearOp::verify() {
  if (failed(verifyActivation(*this, getX(), "input")))
    return failure();
  const int64_t k = getInFeatures(), n = getOutFeatures(), bits = getBits(),
                g = getGroupSize();
  if (k != dim(getX(), 1))
    return emitOpError("in_features ") << k << " differs from input width " << dim(getX(), 1);
  if (n != dim(getResult(), 1))
    return emitOpError("result width ") << dim(getResult(), 1) << " differs from out_features "
                                        << n;
  if (g <= 0)
    return emitOpError("group_size must be positive, got ") << g;
  auto elt = [](Value v) { return cast<RankedTensorType>(v.getType()).getElementType(); };
  auto shapeIs = [](Value v, llvm::ArrayRef<int64_t> s) {
    return cast<RankedTensorType>(v.getType()).getShape() == s;
  };
  auto isU8 = [&](Value v) { return elt(v).isUnsignedInteger(8); };
  if (!isU8(getQweight()))
    return emitOpError("qweight must hold ui8");
  if (getBias() && (rank(getBias()) != 1 || dim(getBias(), 0) != n))
    return emitOpError("bias must be 1-D of out_features ") << n;
  if (getFormat() == "int") {
    if (bits != 4 && bits != 8)
      return emitOpError("int format supports 4 and 8 bits, got ") << bits;
    const int64_t groups = (k + g - 1) / g, rowBytes = (k * bits + 7) / 8;
    if (!shapeIs(getQweight(), {n, rowBytes}))
      return emitOpError("qweight must be [") << n << ", " << rowBytes << "]";
    if (!shapeIs(getScales(), {n, groups}) || !isa<FloatType>(elt(getScales())))
      return emitOpError("scales must be float [") << n << ", " << groups << "]";
    if (getSymmetric() == static_cast<bool>(getZeros()))
      return emitOpError(getSymmetric() ? "a symmetric scheme takes no zeros"
                                        : "an asymmetric scheme needs zeros");
    if (getZeros() && (!shapeIs(getZeros(), {n, groups}) || !isU8(getZeros())))
      return emitOpError("zeros must be ui8 [") << n << ", " << groups << "]";
    if (getScales2())
      return emitOpError("scales2 belongs to nf4 double quantization only");
    if (getPerm() && (!shapeIs(getPerm(), {k}) || !elt(getPerm()).isSignlessInteger(32)))
      return emitOpError("perm must be i32 [") << k << "] (one input feature per column)";
    return success();
  }
  if (getFormat() == "nf4") {
    if (bits != 4)
      return emitOpError("nf4 is 4 bits, got ") << bits;
    const int64_t total = n * k, blocks = (total + g - 1) / g;
    if (!shapeIs(getQweight(), {(total + 1) / 2}))
      return emitOpError("nf4 qweight must be [") << (total + 1) / 2 << "]";
    if (getZeros())
      return emitOpError("nf4 takes no zeros");
    if (getPerm())
      return emitOpError("nf4 takes no input permutation (perm is for the int format)");
    if (!shapeIs(getScales(), {blocks}))
      return emitOpError("nf4 scales must be [") << blocks << "]";
    if (getScales2()) {
      if (!isU8(getScales()))
        return emitOpError("double-quantized nf4 scales must be ui8 codes");
      if (!shapeIs(getScales2(), {(blocks + 255) / 256}) || !elt(getScales2()).isF32())
        return emitOpError("scales2 must be f32 [") << (blocks + 255) / 256 << "]";
    } else if (!elt(getScales()).isF32()) {
      return emitOpError("nf4 scales must be f32 absmax");
    }
    return success();
  }
  return emitOpError("unknown format '") << getFormat() << "' (expected int or nf4)";
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
  if (failed(verifyRope(*this, getParams(), "")))
    return failure();
  return verifyTokensMatch(*this, getX(), getPositions());
}

RopeParams RopeOp::getParams() {
  RopeParams p;
  p.headDim = getHeadDim();
  p.theta = getTheta().convertToDouble();
  p.scaling = getScaling().str();
  p.factor = getFactor().convertToDouble();
  p.lowFreqFactor = getLowFreqFactor().convertToDouble();
  p.highFreqFactor = getHighFreqFactor().convertToDouble();
  p.originalMaxPosition = getOriginalMaxPosition();
  return p;
}

std::optional<RopeParams> AttentionOp::getRope() {
  if (!getRopeThetaAttr())
    return std::nullopt;
  RopeParams p; // qlc.rope's defaults for what is unset
  p.headDim = getHeadDim();
  p.theta = getRopeThetaAttr().getValueAsDouble();
  if (auto a = getRopeScalingAttr())
    p.scaling = a.getValue().str();
  if (auto a = getRopeFactorAttr())
    p.factor = a.getValueAsDouble();
  if (auto a = getRopeLowFreqFactorAttr())
    p.lowFreqFactor = a.getValueAsDouble();
  if (auto a = getRopeHighFreqFactorAttr())
    p.highFreqFactor = a.getValueAsDouble();
  if (auto a = getRopeOriginalMaxPositionAttr())
    p.originalMaxPosition = a.getInt();
  return p;
}

void AttentionOp::setRope(const RopeParams &p) {
  Builder b(getContext());
  setRopeThetaAttr(b.getF64FloatAttr(p.theta));
  setRopeScalingAttr(b.getStringAttr(p.scaling));
  setRopeFactorAttr(b.getF64FloatAttr(p.factor));
  setRopeLowFreqFactorAttr(b.getF64FloatAttr(p.lowFreqFactor));
  setRopeHighFreqFactorAttr(b.getF64FloatAttr(p.highFreqFactor));
  setRopeOriginalMaxPositionAttr(b.getI64IntegerAttr(p.originalMaxPosition));
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
  if (getQkvPacked()) {
    if (getK() != getQ() || getV() != getQ())
      return emitOpError("with qkv_packed, q, k and v must be the same value");
    if (dim(getQ(), 1) != (h + 2 * kvh) * hd)
      return emitOpError("with qkv_packed, the q/k/v width ")
             << dim(getQ(), 1) << " differs from (num_heads+2*num_kv_heads)*head_dim "
             << (h + 2 * kvh) * hd;
  } else {
    if (dim(getQ(), 1) != h * hd)
      return emitOpError("q width ")
             << dim(getQ(), 1) << " differs from num_heads*head_dim " << h * hd;
    if (dim(getK(), 1) != kvh * hd || dim(getV(), 1) != kvh * hd)
      return emitOpError("k and v width must be num_kv_heads*head_dim ") << kvh * hd;
  }
  if (dim(getResult(), 1) != h * hd)
    return emitOpError("result width must be num_heads*head_dim ") << h * hd;
  if (getLayer() < 0)
    return emitOpError("layer must be non-negative");
  if (auto w = getSlidingWindow(); w && *w <= 0)
    return emitOpError("sliding_window must be positive");
  if (!isKnownKvDtype(getKvDtype()))
    return emitOpError("unknown kv_dtype '") << getKvDtype() << "' (expected f32, f16 or int8)";
  if (std::optional<RopeParams> rope = getRope()) {
    if (failed(verifyRope(*this, *rope, "rope_")))
      return failure();
  } else if (getRopeScalingAttr() || getRopeFactorAttr() || getRopeLowFreqFactorAttr() ||
             getRopeHighFreqFactorAttr() || getRopeOriginalMaxPositionAttr()) {
    return emitOpError("rope_* attributes need rope_theta (the fused rotary embedding)");
  }
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

LogicalResult SwiGluOp::verify() {
  if (failed(verifyActivation(*this, getX(), "input")))
    return failure();
  if (dim(getX(), 1) != 2 * dim(getResult(), 1))
    return emitOpError("input width ") << dim(getX(), 1) << " must be twice the result width "
                                       << dim(getResult(), 1);
  return verifyTokensMatch(*this, getX(), getResult());
}

LogicalResult SplitOp::verify() {
  if (failed(verifyActivation(*this, getX(), "input")))
    return failure();
  if (getNumResults() < 2)
    return emitOpError("needs at least two results, got ") << getNumResults();
  int64_t total = 0;
  for (Value r : getResults()) {
    if (failed(verifyActivation(*this, r, "every result")) ||
        failed(verifyTokensMatch(*this, getX(), r)))
      return failure();
    total += dim(r, 1);
  }
  if (total != dim(getX(), 1))
    return emitOpError("result widths add up to ") << total << ", not the input width "
                                                    << dim(getX(), 1);
  return success();
}

LogicalResult AddRmsNormOp::verify() {
  Type t = getLhs().getType();
  if (getRhs().getType() != t || getSum().getType() != t || getResult().getType() != t)
    return emitOpError("operands and results must have the same type");
  if (failed(verifyActivation(*this, getLhs(), "operand")))
    return failure();
  if (rank(getWeight()) != 1 || dim(getWeight(), 0) != dim(getLhs(), 1))
    return emitOpError("weight must be 1-D of the input width ") << dim(getLhs(), 1);
  if (!(getEpsilon().convertToDouble() > 0.0))
    return emitOpError("epsilon must be positive");
  return success();
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
