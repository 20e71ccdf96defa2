//===- FuseUtil.cpp - merging projections that read one input --------------===//
#include "passes/FuseUtil.h"

#include "ir/WeightProvider.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/SmallPtrSet.h"

#include <algorithm>
#include <cstring>

using namespace mlir;

namespace qlc {

std::string fusedTensorName(const std::vector<std::string> &names) {
  size_t minLen = names.front().size();
  for (const auto &n : names)
    minLen = std::min(minLen, n.size());
  auto allAgree = [&](auto charAt) {
    return std::all_of(names.begin(), names.end(),
                       [&](const std::string &n) { return charAt(n) == charAt(names.front()); });
  };
  size_t pre = 0;
  while (pre < minLen && allAgree([&](const std::string &n) { return n[pre]; }))
    ++pre;
  size_t suf = 0;
  while (suf < minLen - pre &&
         allAgree([&](const std::string &n) { return n[n.size() - 1 - suf]; }))
    ++suf;
  std::string out = names.front().substr(0, pre) + "{";
  for (size_t i = 0; i < names.size(); ++i)
    out += (i ? "," : "") + names[i].substr(pre, names[i].size() - pre - suf);
  return out + "}" + names.front().substr(names.front().size() - suf);
}

Operation *projectionDefining(Value v) {
  Operation *d = v ? v.getDefiningOp() : nullptr;
  return d && isa<LinearOp, QuantizedLinearOp>(d) ? d : nullptr;
}

namespace {

RankedTensorType tensorType(Value v) { return cast<RankedTensorType>(v.getType()); }

std::string typeStr(Type t) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << t;
  return s;
}

/// Concatenates qlc.weight tensors along their first dimension: a new qlc.weight (and,
/// with a provider, its data). Failure: a part has no data (the error is emitted).
FailureOr<Value> concatWeights(OpBuilder &b, Location loc, ArrayRef<Value> parts) {
  std::vector<std::string> names;
  SmallVector<int64_t> shape(tensorType(parts.front()).getShape());
  shape[0] = 0;
  for (Value p : parts) {
    names.push_back(p.getDefiningOp<WeightOp>().getTensorName().str());
    shape[0] += tensorType(p).getDimSize(0);
  }
  const std::string name = fusedTensorName(names);
  if (WeightProvider *wp = getWeightProvider(b.getContext())) {
    std::vector<uint8_t> bytes;
    std::string dtype;
    bool sameDtype = true;
    for (const std::string &n : names) {
      auto raw = wp->readRaw(n);
      if (!raw) {
        emitError(loc) << "fusion: weight '" << n << "' has no data";
        return failure();
      }
      sameDtype = sameDtype && (dtype.empty() || raw->dtype == dtype);
      dtype = raw->dtype;
      bytes.insert(bytes.end(), raw->data, raw->data + raw->bytes);
    }
    if (!sameDtype) { // stored in different types: concatenate their f32 values
      dtype = "f32";
      bytes.clear();
      for (const std::string &n : names) {
        auto f = wp->readFloat(n);
        if (!f) {
          emitError(loc) << "fusion: weight '" << n << "' has no float data";
          return failure();
        }
        const auto *p = reinterpret_cast<const uint8_t *>(f->data());
        bytes.insert(bytes.end(), p, p + f->size() * sizeof(float));
      }
    }
    wp->add(name, dtype, std::vector<int64_t>(shape.begin(), shape.end()), std::move(bytes));
  }
  auto type = RankedTensorType::get(shape, tensorType(parts.front()).getElementType());
  return Value(b.create<WeightOp>(loc, type, b.getStringAttr(name)));
}

/// Every value is a qlc.weight of one element type (or every value is null).
std::string checkWeights(ArrayRef<Value> vs, StringRef what) {
  const bool present = static_cast<bool>(vs.front());
  for (Value v : vs) {
    if (static_cast<bool>(v) != present)
      return ("some have a " + what + " and some do not").str();
    if (!v)
      continue;
    if (!v.getDefiningOp<WeightOp>())
      return ("a " + what + " is not a qlc.weight").str();
    Type a = tensorType(v).getElementType(), b = tensorType(vs.front()).getElementType();
    if (a != b)
      return ("their " + what + "s differ in element type (" + typeStr(b) + " vs " +
              typeStr(a) + ")").str();
  }
  return "";
}

/// The operand `get` picks from each op of type Op.
template <class Op, class Get> SmallVector<Value> collect(ArrayRef<Operation *> ops, Get get) {
  SmallVector<Value> out;
  for (Operation *o : ops)
    out.push_back(get(cast<Op>(o)));
  return out;
}
auto qweightOf = [](QuantizedLinearOp q) -> Value { return q.getQweight(); };
auto scalesOf = [](QuantizedLinearOp q) -> Value { return q.getScales(); };
auto zerosOf = [](QuantizedLinearOp q) -> Value { return q.getZeros(); };
auto weightOf = [](LinearOp l) -> Value { return l.getWeight(); };

/// Two input permutations are the same: one tensor, or (with a weight provider) tensors
/// of equal contents. Without data, differently named tensors count as different.
bool samePerm(Value a, Value b) {
  auto wa = a.getDefiningOp<WeightOp>(), wb = b.getDefiningOp<WeightOp>();
  if (!wa || !wb)
    return a == b;
  if (wa.getTensorName() == wb.getTensorName())
    return true;
  WeightProvider *wp = getWeightProvider(a.getContext());
  if (wp == nullptr)
    return false;
  auto ra = wp->readRaw(wa.getTensorName().str());
  if (!ra)
    return false;
  std::vector<uint8_t> first(ra->data, ra->data + ra->bytes); // views die on the next read
  auto rb = wp->readRaw(wb.getTensorName().str());
  return rb && rb->bytes == first.size() && std::equal(first.begin(), first.end(), rb->data);
}

/// Why the projections' input permutations keep them apart, or empty: all must have
/// none, or all the same one (the fused projection gathers its input once).
std::string checkPerms(ArrayRef<Operation *> ops) {
  Value p0 = cast<QuantizedLinearOp>(ops.front()).getPerm();
  for (Operation *o : ops) {
    Value p = cast<QuantizedLinearOp>(o).getPerm();
    if (static_cast<bool>(p) != static_cast<bool>(p0))
      return "some have an input permutation (act-order) and some do not";
    if (p && !samePerm(p0, p))
      return "their input permutations (act-order) differ";
  }
  return "";
}

/// Why quantized projections cannot share one packed tensor, or empty.
std::string checkScheme(ArrayRef<Operation *> ops) {
  auto first = cast<QuantizedLinearOp>(ops.front());
  for (Operation *o : ops) {
    auto q = cast<QuantizedLinearOp>(o);
    if (q.getFormat() != first.getFormat() || q.getBits() != first.getBits() ||
        q.getGroupSize() != first.getGroupSize() || q.getSymmetric() != first.getSymmetric())
      return "their quantization schemes differ (" + first.getFormat().str() + " w" +
             std::to_string(first.getBits()) + " g" + std::to_string(first.getGroupSize()) +
             (first.getSymmetric() ? " sym" : "") + " vs " + q.getFormat().str() + " w" +
             std::to_string(q.getBits()) + " g" + std::to_string(q.getGroupSize()) +
             (q.getSymmetric() ? " sym" : "") + ")";
    if (q.getScales2())
      return "nf4 with double quantization: the absmax codes of each weight share an "
             "offset of their own";
  }
  if (first.getFormat() == "nf4")
    for (Operation *o : ops.drop_back()) {
      auto q = cast<QuantizedLinearOp>(o);
      if ((q.getOutFeatures() * q.getInFeatures()) % q.getGroupSize() != 0)
        return "nf4 blocks of " + std::to_string(q.getGroupSize()) +
               " elements would straddle two weights (" + std::to_string(q.getOutFeatures()) +
               "x" + std::to_string(q.getInFeatures()) + " is not a multiple)";
    }
  std::string why = checkWeights(collect<QuantizedLinearOp>(ops, qweightOf), "qweight");
  if (why.empty())
    why = checkWeights(collect<QuantizedLinearOp>(ops, scalesOf), "scale");
  if (why.empty())
    why = checkWeights(collect<QuantizedLinearOp>(ops, zerosOf), "zero point");
  if (why.empty())
    why = checkPerms(ops);
  return why;
}

} // namespace

FuseOutcome fuseProjections(ArrayRef<Operation *> ops) {
  FuseOutcome out;
  auto refuse = [&](std::string why) {
    out.kind = FuseOutcome::Refused;
    out.why = std::move(why);
    return out;
  };
  assert(ops.size() >= 2 && "fusing needs two projections");
  const bool quantized = isa<QuantizedLinearOp>(ops.front());
  Value x = ops.front()->getOperand(0);
  for (Operation *o : ops) {
    if (isa<QuantizedLinearOp>(o) != quantized)
      return refuse("one is quantized and another is not");
    if (o->getOperand(0) != x)
      return refuse("they read different inputs");
    if (o->getBlock() != ops.front()->getBlock())
      return refuse("they are in different blocks");
  }
  if (llvm::SmallPtrSet<Operation *, 4>(ops.begin(), ops.end()).size() != ops.size())
    return refuse("one projection feeds two of the roles");
  SmallVector<Value> biases;
  for (Operation *o : ops)
    biases.push_back(quantized ? cast<QuantizedLinearOp>(o).getBias() : cast<LinearOp>(o).getBias());
  std::string why = quantized ? checkScheme(ops)
                              : checkWeights(collect<LinearOp>(ops, weightOf), "weight");
  if (why.empty())
    why = checkWeights(biases, "bias");
  if (!why.empty())
    return refuse(why);

  Operation *first = ops.front();
  for (Operation *o : ops)
    if (o->isBeforeInBlock(first))
      first = o;
  OpBuilder b(first);
  Location loc = first->getLoc();
  int64_t n = 0;
  for (Operation *o : ops)
    n += tensorType(o->getResult(0)).getDimSize(1);
  auto resultType = RankedTensorType::get({ShapedType::kDynamic, n}, b.getF32Type());
  auto fail = [&] {
    out.kind = FuseOutcome::Failed;
    out.why = "missing weight data";
    return out;
  };
  Value bias;
  if (biases.front()) {
    auto f = concatWeights(b, loc, biases);
    if (failed(f))
      return fail();
    bias = *f;
  }
  if (!quantized) {
    auto w = concatWeights(b, loc, collect<LinearOp>(ops, weightOf));
    if (failed(w))
      return fail();
    out.result = b.create<LinearOp>(loc, resultType, x, *w, bias);
    out.kind = FuseOutcome::Fused;
    return out;
  }
  auto q0 = cast<QuantizedLinearOp>(ops.front());
  auto qw = concatWeights(b, loc, collect<QuantizedLinearOp>(ops, qweightOf));
  auto sc = concatWeights(b, loc, collect<QuantizedLinearOp>(ops, scalesOf));
  if (failed(qw) || failed(sc))
    return fail();
  Value zeros;
  if (q0.getZeros()) {
    auto z = concatWeights(b, loc, collect<QuantizedLinearOp>(ops, zerosOf));
    if (failed(z))
      return fail();
    zeros = *z;
  }
  std::vector<std::string> sources;
  for (Operation *o : ops)
    if (auto s = cast<QuantizedLinearOp>(o).getSource())
      sources.push_back(s->str());
  StringAttr source =
      sources.size() == ops.size() ? b.getStringAttr(fusedTensorName(sources)) : StringAttr();
  out.result = b.create<QuantizedLinearOp>(
      loc, resultType, x, *qw, *sc, zeros, /*scales2=*/Value(), bias,
      // Equal permutations (checkPerms); the first op's is defined before the insertion.
      cast<QuantizedLinearOp>(first).getPerm(), q0.getFormatAttr(), q0.getBitsAttr(),
      q0.getGroupSizeAttr(), q0.getInFeaturesAttr(), b.getI64IntegerAttr(n),
      q0.getSymmetricAttr(), q0.getAbsmaxOffsetAttr(), source);
  out.kind = FuseOutcome::Fused;
  return out;
}

void eraseProjections(ArrayRef<Operation *> ops) {
  for (Operation *o : ops) {
    if (!o->use_empty())
      continue;
    SmallVector<Value> operands(o->getOperands());
    o->erase();
    for (Value v : operands)
      if (Operation *d = v.getDefiningOp<WeightOp>(); d && d->use_empty())
        d->erase();
  }
}

} // namespace qlc
