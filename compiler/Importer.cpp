//===- Importer.cpp - Hugging Face model -> qlc dialect --------------------===//
#include "compiler/Importer.h"

#include "compiler/Checkpoint.h"

#include "ir/QlcDialect.h"
#include "ir/QlcOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Verifier.h"

#include <cmath>

using namespace mlir;

namespace qlc {

void loadQlcDialects(MLIRContext &ctx) {
  ctx.getOrLoadDialect<QlcDialect>();
  ctx.getOrLoadDialect<func::FuncDialect>();
}

namespace {

llvm::Error err(const std::string &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

std::string shapeStr(llvm::ArrayRef<int64_t> s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i)
    out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

class Builder {
public:
  Builder(MLIRContext &ctx, const ModelConfig &cfg, const WeightStore *store)
      : ctx(ctx), cfg(cfg), store(store), b(&ctx), loc(b.getUnknownLoc()) {}

  llvm::Expected<OwningOpRef<ModuleOp>> build();

private:
  Type elementType(DType t) {
    switch (t) {
    case DType::F16: return b.getF16Type();
    case DType::BF16: return b.getBF16Type();
    default: return b.getF32Type();
    }
  }
  RankedTensorType act(int64_t width) {
    return RankedTensorType::get({ShapedType::kDynamic, width}, b.getF32Type());
  }
  /// A qlc.weight of the expected shape, checked against the store.
  Value weight(const std::string &name, llvm::ArrayRef<int64_t> shape) {
    Type elt = elementType(defaultDType());
    if (store != nullptr) {
      const TensorRef *t = store->find(name);
      if (t == nullptr) {
        fail("missing tensor '" + name + "' (expected shape " + shapeStr(shape) + ")");
        return {};
      }
      if (t->shape != std::vector<int64_t>(shape.begin(), shape.end())) {
        fail("tensor '" + name + "' has shape " + shapeStr(t->shape) + " but config.json implies " +
             shapeStr(shape));
        return {};
      }
      if (t->dtype == DType::I32) {
        fail("tensor '" + name + "' has dtype I32; a float dtype is expected");
        return {};
      }
      elt = elementType(t->dtype);
    }
    auto type = RankedTensorType::get(shape, elt);
    return b.create<WeightOp>(loc, type, b.getStringAttr(name));
  }
  DType defaultDType() {
    if (cfg.dtype == "bfloat16") return DType::BF16;
    if (cfg.dtype == "float16") return DType::F16;
    return DType::F32;
  }
  void fail(const std::string &msg) {
    if (problem.empty())
      problem = msg;
  }
  /// A qlc.weight of an integer tensor the checkpoint repacker made, checked against
  /// the shape the config implies; `shown` names the checkpoint tensor in errors.
  Value packedWeight(const std::string &name, llvm::ArrayRef<int64_t> shape, Type elt,
                     const std::string &shown) {
    const TensorRef *t = store->find(name);
    if (t == nullptr) {
      fail("internal error: repacked tensor '" + name + "' is missing");
      return {};
    }
    if (t->shape != std::vector<int64_t>(shape.begin(), shape.end())) {
      fail("tensor '" + shown + "' repacks to " + shapeStr(t->shape) +
           " where config.json implies " + shapeStr(shape) + " (qlc's layout)");
      return {};
    }
    return b.create<WeightOp>(loc, RankedTensorType::get(shape, elt), b.getStringAttr(name));
  }
  /// A projection of a pre-quantized checkpoint: qlc.quantized_linear over the tensors
  /// repackCheckpoint made (or, config-only, over tensors of the shapes it would make).
  Value quantizedLinear(Value x, const std::string &prefix, int64_t out, int64_t in,
                        bool bias) {
    const CheckpointQuant &cq = *cfg.checkpointQuant;
    const int64_t bits = cq.bits, gs = cq.groupSize < 0 ? in : cq.groupSize;
    const int64_t groups = (in + gs - 1) / gs, rowBytes = (in * bits + 7) / 8;
    auto u8 = b.getIntegerType(8, /*isSigned=*/false);
    const std::string qwName = repackedName(prefix, "qweight");
    Value qw, sc, zp, perm;
    bool symmetric = cq.sym && cq.method == "gptq";
    if (store != nullptr) {
      const TensorRef *t = store->find(qwName);
      if (t != nullptr && (t->shape.size() != 2 || t->shape[0] != out || t->shape[1] != rowBytes)) {
        const int64_t k = t->shape.size() == 2 ? t->shape[1] * 8 / bits : 0;
        fail("tensor '" + prefix + ".qweight' holds a weight of " +
             std::to_string(t->shape.empty() ? 0 : t->shape[0]) + " outputs x " +
             std::to_string(k) + " inputs but config.json implies " + std::to_string(out) +
             " x " + std::to_string(in));
        return {};
      }
      qw = packedWeight(qwName, {out, rowBytes}, u8, prefix + ".qweight");
      sc = packedWeight(repackedName(prefix, "scales"), {out, groups}, b.getF16Type(),
                        prefix + ".scales");
      symmetric = store->find(repackedName(prefix, "zeros")) == nullptr;
      if (!symmetric)
        zp = packedWeight(repackedName(prefix, "zeros"), {out, groups}, u8, prefix + ".qzeros");
      if (store->find(repackedName(prefix, "perm")))
        perm = packedWeight(repackedName(prefix, "perm"), {in}, b.getI32Type(), prefix + ".g_idx");
      if (!qw || !sc || (!symmetric && !zp))
        return {};
    } else {
      auto mk = [&](const std::string &part, llvm::ArrayRef<int64_t> shape, Type elt) -> Value {
        return b.create<WeightOp>(loc, RankedTensorType::get(shape, elt),
                                  b.getStringAttr(repackedName(prefix, part)));
      };
      qw = mk("qweight", {out, rowBytes}, u8);
      sc = mk("scales", {out, groups}, b.getF16Type());
      if (!symmetric)
        zp = mk("zeros", {out, groups}, u8);
      if (cq.descAct)
        perm = mk("perm", {in}, b.getI32Type());
    }
    Value bv = bias ? weight(prefix + ".bias", {out}) : Value();
    if (bias && !bv)
      return {};
    return b.create<QuantizedLinearOp>(
        loc, act(out), x, qw, sc, zp, /*scales2=*/Value(), bv, perm, b.getStringAttr("int"),
        b.getI64IntegerAttr(bits), b.getI64IntegerAttr(gs), b.getI64IntegerAttr(in),
        b.getI64IntegerAttr(out), b.getBoolAttr(symmetric), b.getF64FloatAttr(0.0),
        b.getStringAttr(prefix + ".weight"));
  }
  Value linear(Value x, const std::string &prefix, int64_t out, int64_t in, bool bias) {
    // In a pre-quantized checkpoint a projection is quantized when it has a qweight;
    // others (modules_to_not_convert) keep their float weight.
    if (cfg.checkpointQuant &&
        (store == nullptr ? true : store->find(repackedName(prefix, "qweight")) != nullptr))
      return quantizedLinear(x, prefix, out, in, bias);
    if (cfg.checkpointQuant && store != nullptr && store->find(prefix + ".weight") == nullptr) {
      fail("missing tensor '" + prefix + ".qweight' (a " + cfg.checkpointQuant->method +
           " checkpoint; no float '" + prefix + ".weight' either)");
      return {};
    }
    Value w = weight(prefix + ".weight", {out, in});
    Value bv = bias ? weight(prefix + ".bias", {out}) : Value();
    if (!w || (bias && !bv))
      return {};
    return b.create<LinearOp>(loc, act(out), x, w, bv);
  }
  Value rmsNorm(Value x, const std::string &name) {
    Value w = weight(name, {cfg.hiddenSize});
    if (!w)
      return {};
    return b.create<RmsNormOp>(loc, act(cfg.hiddenSize), x, w, b.getF64FloatAttr(cfg.rmsNormEps));
  }
  Value rope(Value x, Value pos, int64_t width) {
    const RopeParams &r = cfg.rope;
    return b.create<RopeOp>(loc, act(width), x, pos, b.getI64IntegerAttr(cfg.headDim),
                            b.getF64FloatAttr(r.theta), b.getStringAttr(r.scaling),
                            b.getF64FloatAttr(r.factor), b.getF64FloatAttr(r.lowFreqFactor),
                            b.getF64FloatAttr(r.highFreqFactor),
                            b.getI64IntegerAttr(r.originalMaxPosition));
  }
  Value layer(int64_t i, Value h, Value pos);

  MLIRContext &ctx;
  const ModelConfig &cfg;
  const WeightStore *store;
  OpBuilder b;
  Location loc;
  std::string problem;
};

Value Builder::layer(int64_t i, Value h, Value pos) {
  const std::string p = "model.layers." + std::to_string(i);
  const int64_t d = cfg.hiddenSize, qw = cfg.numHeads * cfg.headDim,
                kvw = cfg.numKvHeads * cfg.headDim, inter = cfg.intermediateSize;
  Value n = rmsNorm(h, p + ".input_layernorm.weight");
  if (!n) return {};
  Value q = linear(n, p + ".self_attn.q_proj", qw, d, cfg.qkvBias);
  Value k = linear(n, p + ".self_attn.k_proj", kvw, d, cfg.qkvBias);
  Value v = linear(n, p + ".self_attn.v_proj", kvw, d, cfg.qkvBias);
  if (!q || !k || !v) return {};
  q = rope(q, pos, qw);
  k = rope(k, pos, kvw);
  IntegerAttr window =
      cfg.slidingWindow ? b.getI64IntegerAttr(*cfg.slidingWindow) : IntegerAttr();
  Value a = b.create<AttentionOp>(
      loc, act(qw), q, k, v, pos, b.getI64IntegerAttr(i), b.getI64IntegerAttr(cfg.numHeads),
      b.getI64IntegerAttr(cfg.numKvHeads), b.getI64IntegerAttr(cfg.headDim),
      b.getF64FloatAttr(1.0 / std::sqrt(static_cast<double>(cfg.headDim))), window,
      /*kv_dtype=*/b.getStringAttr("f32"), /*rope_* (qlc-fuse-rope)=*/nullptr, nullptr, nullptr,
      nullptr, nullptr, nullptr, /*qkv_packed (qlc-fold-qkv-split)=*/nullptr);
  Value o = linear(a, p + ".self_attn.o_proj", d, qw, cfg.oBias);
  if (!o) return {};
  h = b.create<AddOp>(loc, act(d), h, o);
  Value n2 = rmsNorm(h, p + ".post_attention_layernorm.weight");
  if (!n2) return {};
  Value g = linear(n2, p + ".mlp.gate_proj", inter, d, cfg.mlpBias);
  Value u = linear(n2, p + ".mlp.up_proj", inter, d, cfg.mlpBias);
  if (!g || !u) return {};
  Value s = b.create<SiluMulOp>(loc, act(inter), g, u);
  Value dn = linear(s, p + ".mlp.down_proj", d, inter, cfg.mlpBias);
  if (!dn) return {};
  return b.create<AddOp>(loc, act(d), h, dn);
}

llvm::Expected<OwningOpRef<ModuleOp>> Builder::build() {
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  SmallVector<NamedAttribute> info = {
      b.getNamedAttr("architecture", b.getStringAttr(cfg.architecture)),
      b.getNamedAttr("vocab_size", b.getI64IntegerAttr(cfg.vocabSize)),
      b.getNamedAttr("hidden_size", b.getI64IntegerAttr(cfg.hiddenSize)),
      b.getNamedAttr("num_layers", b.getI64IntegerAttr(cfg.numLayers)),
      b.getNamedAttr("num_heads", b.getI64IntegerAttr(cfg.numHeads)),
      b.getNamedAttr("num_kv_heads", b.getI64IntegerAttr(cfg.numKvHeads)),
      b.getNamedAttr("head_dim", b.getI64IntegerAttr(cfg.headDim)),
      b.getNamedAttr("max_position_embeddings", b.getI64IntegerAttr(cfg.maxPositionEmbeddings)),
      b.getNamedAttr("bos_token_id", b.getI64IntegerAttr(cfg.bosTokenId)),
      b.getNamedAttr("eos_token_ids",
                     b.getI64ArrayAttr(llvm::SmallVector<int64_t>(cfg.eosTokenIds.begin(),
                                                                  cfg.eosTokenIds.end()))),
  };
  (*module)->setAttr("qlc.model", b.getDictionaryAttr(info));
  b.setInsertionPointToEnd(module->getBody());
  auto ids = RankedTensorType::get({ShapedType::kDynamic}, b.getI32Type());
  auto fnType = b.getFunctionType({ids, ids}, {act(cfg.vocabSize)});
  auto fn = b.create<func::FuncOp>(loc, "forward", fnType);
  fn.setArgAttr(0, "qlc.name", b.getStringAttr("tokens"));
  fn.setArgAttr(1, "qlc.name", b.getStringAttr("positions"));
  b.setInsertionPointToStart(fn.addEntryBlock());
  Value tokens = fn.getArgument(0), pos = fn.getArgument(1);

  Value emb = weight("model.embed_tokens.weight", {cfg.vocabSize, cfg.hiddenSize});
  if (!emb)
    return err(problem);
  Value h = b.create<EmbeddingOp>(loc, act(cfg.hiddenSize), tokens, emb);
  for (int64_t i = 0; i < cfg.numLayers && h; ++i)
    h = layer(i, h, pos);
  if (!h)
    return err(problem);
  Value n = rmsNorm(h, "model.norm.weight");
  Value head = emb;
  if (!cfg.tieWordEmbeddings)
    head = weight("lm_head.weight", {cfg.vocabSize, cfg.hiddenSize});
  if (!n || !head)
    return err(problem);
  Value logits = b.create<LogitsOp>(loc, act(cfg.vocabSize), n, head);
  b.create<func::ReturnOp>(loc, logits);
  if (failed(verify(*module)))
    return err("internal error: the imported module does not verify");
  return std::move(module);
}

} // namespace

llvm::Expected<OwningOpRef<ModuleOp>> importModel(MLIRContext &ctx, const ModelConfig &cfg,
                                                  const WeightStore *store) {
  loadQlcDialects(ctx);
  return Builder(ctx, cfg, store).build();
}

} // namespace qlc
