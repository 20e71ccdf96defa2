//===- CheckpointImport.cpp - AutoGPTQ/AutoAWQ tensors -> qlc's int format ----===//
//
// The layouts, as their projects document and implement them (read from the sources,
// not copied):
//
// AutoGPTQ / GPTQModel (auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py, QuantLinear.pack
// and forward; gptqmodel/utils/model.py, convert_gptq_v1_to_v2_format_module):
//   qweight I32 [K / (32/bits), N]: the integer of input feature k and output n sits in
//           word (k / (32/bits), n) at bit offset bits * (k % (32/bits)), low bits first;
//   qzeros  I32 [groups, N / (32/bits)]: zero point of (group, n) in word (g, n / (32/bits))
//           at bit offset bits * (n % (32/bits)). checkpoint_format "gptq" (v1) stores
//           zero - 1 (AutoGPTQ's pack does `zeros -= 1`, its forward adds 1 back);
//           "gptq_v2" (GPTQModel) stores the zero itself;
//   scales  F16 [groups, N];  g_idx I32 [K]: the group of input feature k (k / group_size
//           unless act-order without static groups permuted it);
//   weight[n, k] = (q[k, n] - zero[g_idx[k], n]) * scale[g_idx[k], n].
//
// AutoAWQ GEMM (awq/modules/linear/gemm.py, WQLinear_GEMM.from_linear):
//   qweight I32 [K, N / 8]: word (k, c) holds outputs c*8 .. c*8+7 of input k, but
//           interleaved: nibble i (bits 4i..4i+3) holds output c*8 + order[i] with
//           order = {0, 2, 4, 6, 1, 3, 5, 7};
//   qzeros  I32 [K / group_size, N / 8], interleaved the same way, zeros as they are;
//   scales  F16 [K / group_size, N];  weight[n, k] = (q - zero) * scale of group k / gs.
//
// qlc's int format (qlc.quantized_linear): qweight ui8 [N, K*bits/8] row by row, low
// nibble first; scales f16 [N, groups]; zeros ui8 [N, groups] or none (symmetric,
// 2^(bits-1)); an act-order g_idx becomes the op's input permutation `perm`, with the
// columns stored in that order so that its groups are contiguous.
//
#include "compiler/Checkpoint.h"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace qlc {

namespace {

llvm::Error err(const std::string &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

std::string shapeStr(const std::vector<int64_t> &s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i)
    out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

int32_t wordAt(const TensorRef &t, int64_t i) {
  int32_t v;
  std::memcpy(&v, t.data + 4 * i, 4);
  return v;
}

/// One projection's tensors in natural (input feature) order, unpacked.
struct Unpacked {
  int64_t n = 0, k = 0, groups = 0, groupSize = 0, bits = 4;
  std::vector<uint8_t> codes;  // [k, n]: the integer of input k, output n
  std::vector<int32_t> zeros;  // [groups, n]
  std::vector<uint16_t> scales; // [groups, n], f16 bits
  std::vector<int32_t> gIdx;   // [k], empty: k / groupSize
};

class Repacker {
public:
  Repacker(const CheckpointQuant &q, WeightStore &store) : q(q), store(store) {}
  llvm::Error run(const std::string &prefix);

private:
  llvm::Expected<const TensorRef *> tensor(const std::string &name, DType dtype, size_t rank) {
    const TensorRef *t = store.find(name);
    if (t == nullptr)
      return err("missing tensor '" + name + "' (a " + q.method + " checkpoint has " +
                 (q.method == "gptq" ? "qweight, qzeros, scales and g_idx"
                                     : "qweight, qzeros and scales") +
                 " for every quantized projection)");
    if (t->dtype != dtype)
      return err("tensor '" + name + "' has dtype " + safetensorsName(t->dtype) + "; " +
                 q.method + " checkpoints store it as " + safetensorsName(dtype));
    if (t->shape.size() != rank)
      return err("tensor '" + name + "' has shape " + shapeStr(t->shape) + "; expected " +
                 std::to_string(rank) + "-D");
    return t;
  }
  llvm::Error expectShape(const TensorRef &t, const std::vector<int64_t> &shape,
                          const std::string &why) {
    if (t.shape != shape)
      return err("tensor '" + t.name + "' has shape " + shapeStr(t.shape) + " but " + why +
                 " implies " + shapeStr(shape));
    return llvm::Error::success();
  }
  llvm::Error unpackGptq(const std::string &prefix, Unpacked &u);
  llvm::Error unpackAwq(const std::string &prefix, Unpacked &u);
  llvm::Error store_(const std::string &prefix, const Unpacked &u);

  const CheckpointQuant &q;
  WeightStore &store;
};

llvm::Error Repacker::unpackGptq(const std::string &p, Unpacked &u) {
  const int64_t per = 32 / q.bits, mask = (1 << q.bits) - 1;
  auto qwOr = tensor(p + ".qweight", DType::I32, 2);
  if (!qwOr)
    return qwOr.takeError();
  const TensorRef &qw = **qwOr;
  u.bits = q.bits;
  u.k = qw.shape[0] * per;
  u.n = qw.shape[1];
  u.groupSize = q.groupSize < 0 ? u.k : q.groupSize;
  u.groups = (u.k + u.groupSize - 1) / u.groupSize;
  auto scOr = tensor(p + ".scales", DType::F16, 2);
  if (!scOr)
    return scOr.takeError();
  const std::string geom = "qweight " + shapeStr(qw.shape) + " with bits " +
                           std::to_string(q.bits) + " and group_size " +
                           std::to_string(q.groupSize);
  if (llvm::Error e = expectShape(**scOr, {u.groups, u.n}, geom))
    return e;
  auto qzOr = tensor(p + ".qzeros", DType::I32, 2);
  if (!qzOr)
    return qzOr.takeError();
  if (u.n % per != 0)
    return err("tensor '" + p + ".qweight' has " + std::to_string(u.n) +
               " output features, not a multiple of " + std::to_string(per) +
               ": its qzeros cannot hold them");
  if (llvm::Error e = expectShape(**qzOr, {u.groups, u.n / per}, geom))
    return e;
  u.codes.resize(static_cast<size_t>(u.k * u.n));
  for (int64_t k = 0; k < u.k; ++k)
    for (int64_t n = 0; n < u.n; ++n)
      u.codes[k * u.n + n] = static_cast<uint8_t>(
          (static_cast<uint32_t>(wordAt(qw, (k / per) * u.n + n)) >> (q.bits * (k % per))) & mask);
  const int offset = q.format == "gptq" ? 1 : 0;
  u.zeros.resize(static_cast<size_t>(u.groups * u.n));
  for (int64_t g = 0; g < u.groups; ++g)
    for (int64_t n = 0; n < u.n; ++n)
      u.zeros[g * u.n + n] =
          static_cast<int32_t>((static_cast<uint32_t>(wordAt(**qzOr, g * (u.n / per) + n / per)) >>
                                (q.bits * (n % per))) & mask) + offset;
  u.scales.resize(static_cast<size_t>(u.groups * u.n));
  std::memcpy(u.scales.data(), (*scOr)->data, u.scales.size() * 2);
  if (const TensorRef *gi = store.find(p + ".g_idx")) {
    if (gi->dtype != DType::I32 || gi->shape != std::vector<int64_t>{u.k})
      return err("tensor '" + gi->name + "' must be I32 " + shapeStr({u.k}) + ", got " +
                 safetensorsName(gi->dtype) + " " + shapeStr(gi->shape));
    u.gIdx.resize(static_cast<size_t>(u.k));
    bool identity = true;
    for (int64_t k = 0; k < u.k; ++k) {
      u.gIdx[k] = wordAt(*gi, k);
      if (u.gIdx[k] < 0 || u.gIdx[k] >= u.groups)
        return err("tensor '" + gi->name + "': g_idx[" + std::to_string(k) + "] = " +
                   std::to_string(u.gIdx[k]) + " is not a group in [0, " +
                   std::to_string(u.groups) + ")");
      identity = identity && u.gIdx[k] == k / u.groupSize;
    }
    if (identity)
      u.gIdx.clear();
  } else if (q.descAct) {
    return err("missing tensor '" + p + ".g_idx' (desc_act is true: the groups of the input "
               "features are given by g_idx)");
  }
  return llvm::Error::success();
}

llvm::Error Repacker::unpackAwq(const std::string &p, Unpacked &u) {
  static constexpr int kOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};
  auto qwOr = tensor(p + ".qweight", DType::I32, 2);
  if (!qwOr)
    return qwOr.takeError();
  const TensorRef &qw = **qwOr;
  u.bits = 4;
  u.k = qw.shape[0];
  u.n = qw.shape[1] * 8;
  u.groupSize = q.groupSize < 0 ? u.k : q.groupSize;
  if (u.k % u.groupSize != 0)
    return err("tensor '" + qw.name + "' has " + std::to_string(u.k) +
               " input features, not a multiple of group_size " + std::to_string(u.groupSize) +
               " (AutoAWQ's GEMM layout needs whole groups)");
  u.groups = u.k / u.groupSize;
  const std::string geom = "qweight " + shapeStr(qw.shape) + " with group_size " +
                           std::to_string(q.groupSize);
  auto scOr = tensor(p + ".scales", DType::F16, 2);
  if (!scOr)
    return scOr.takeError();
  if (llvm::Error e = expectShape(**scOr, {u.groups, u.n}, geom))
    return e;
  auto qzOr = tensor(p + ".qzeros", DType::I32, 2);
  if (!qzOr)
    return qzOr.takeError();
  if (llvm::Error e = expectShape(**qzOr, {u.groups, u.n / 8}, geom))
    return e;
  u.codes.resize(static_cast<size_t>(u.k * u.n));
  for (int64_t k = 0; k < u.k; ++k)
    for (int64_t c = 0; c < u.n / 8; ++c) {
      const uint32_t w = static_cast<uint32_t>(wordAt(qw, k * (u.n / 8) + c));
      for (int i = 0; i < 8; ++i)
        u.codes[k * u.n + c * 8 + kOrder[i]] = static_cast<uint8_t>((w >> (4 * i)) & 15);
    }
  u.zeros.resize(static_cast<size_t>(u.groups * u.n));
  for (int64_t g = 0; g < u.groups; ++g)
    for (int64_t c = 0; c < u.n / 8; ++c) {
      const uint32_t w = static_cast<uint32_t>(wordAt(**qzOr, g * (u.n / 8) + c));
      for (int i = 0; i < 8; ++i)
        u.zeros[g * u.n + c * 8 + kOrder[i]] = static_cast<int32_t>((w >> (4 * i)) & 15);
    }
  u.scales.resize(static_cast<size_t>(u.groups * u.n));
  std::memcpy(u.scales.data(), (*scOr)->data, u.scales.size() * 2);
  return llvm::Error::success();
}

/// Writes `u` in qlc's layout: columns in the order of the input permutation (when the
/// groups are not contiguous), zero points as ui8 or none when all are 2^(bits-1).
llvm::Error Repacker::store_(const std::string &p, const Unpacked &u) {
  if (u.bits == 4 && u.groupSize % 2 != 0 && u.groupSize != u.k)
    return err(p + ": group_size " + std::to_string(u.groupSize) +
               " is odd: qlc's 4-bit groups start on whole bytes");
  std::vector<int32_t> perm;
  if (!u.gIdx.empty()) {
    // Group g must hold group_size features (the last one the rest), so that sorting the
    // features by group makes every group a contiguous run of stored columns.
    std::vector<int64_t> count(static_cast<size_t>(u.groups), 0);
    for (int32_t g : u.gIdx)
      ++count[g];
    for (int64_t g = 0; g < u.groups; ++g) {
      const int64_t want = std::min(u.groupSize, u.k - g * u.groupSize);
      if (count[g] != want)
        return err("tensor '" + p + ".g_idx': group " + std::to_string(g) + " has " +
                   std::to_string(count[g]) + " input features, not " + std::to_string(want) +
                   " (group_size " + std::to_string(u.groupSize) +
                   "): qlc needs groups of group_size features");
    }
    perm.resize(static_cast<size_t>(u.k));
    std::iota(perm.begin(), perm.end(), 0);
    std::stable_sort(perm.begin(), perm.end(),
                     [&](int32_t a, int32_t b) { return u.gIdx[a] < u.gIdx[b]; });
  }
  const int64_t rowBytes = u.k * u.bits / 8, symZero = 1 << (u.bits - 1);
  bool symmetric = true;
  for (size_t i = 0; i < u.zeros.size(); ++i) {
    if (u.zeros[i] > 255)
      return err("tensor '" + p + ".qzeros': the zero point of group " +
                 std::to_string(static_cast<int64_t>(i) / u.n) + ", output " +
                 std::to_string(static_cast<int64_t>(i) % u.n) + " is " +
                 std::to_string(u.zeros[i]) +
                 " (a stored -1 under checkpoint_format gptq); qlc holds zero points of 0..255");
    symmetric = symmetric && u.zeros[i] == symZero;
  }
  std::vector<uint8_t> qweight(static_cast<size_t>(u.n * rowBytes), 0);
  for (int64_t n = 0; n < u.n; ++n)
    for (int64_t j = 0; j < u.k; ++j) {
      const int64_t k = perm.empty() ? j : perm[j];
      const uint8_t code = u.codes[k * u.n + n];
      if (u.bits == 8)
        qweight[n * rowBytes + j] = code;
      else
        qweight[n * rowBytes + j / 2] |= static_cast<uint8_t>(code << (4 * (j % 2)));
    }
  std::vector<uint8_t> scales(static_cast<size_t>(u.n * u.groups) * 2), zeros;
  for (int64_t n = 0; n < u.n; ++n)
    for (int64_t g = 0; g < u.groups; ++g)
      std::memcpy(scales.data() + 2 * (n * u.groups + g), &u.scales[g * u.n + n], 2);
  const std::string src = p + ".qweight (repacked)";
  if (llvm::Error e = store.addOwned(repackedName(p, "qweight"), DType::U8, {u.n, rowBytes},
                                     std::move(qweight), src))
    return e;
  if (llvm::Error e = store.addOwned(repackedName(p, "scales"), DType::F16, {u.n, u.groups},
                                     std::move(scales), src))
    return e;
  if (!symmetric) {
    zeros.resize(static_cast<size_t>(u.n * u.groups));
    for (int64_t n = 0; n < u.n; ++n)
      for (int64_t g = 0; g < u.groups; ++g)
        zeros[n * u.groups + g] = static_cast<uint8_t>(u.zeros[g * u.n + n]);
    if (llvm::Error e = store.addOwned(repackedName(p, "zeros"), DType::U8, {u.n, u.groups},
                                       std::move(zeros), src))
      return e;
  }
  if (!perm.empty()) {
    std::vector<uint8_t> bytes(perm.size() * 4);
    std::memcpy(bytes.data(), perm.data(), bytes.size());
    if (llvm::Error e = store.addOwned(repackedName(p, "perm"), DType::I32, {u.k},
                                       std::move(bytes), src))
      return e;
  }
  return llvm::Error::success();
}

llvm::Error Repacker::run(const std::string &prefix) {
  Unpacked u;
  if (llvm::Error e = q.method == "gptq" ? unpackGptq(prefix, u) : unpackAwq(prefix, u))
    return e;
  return store_(prefix, u);
}

} // namespace

std::string repackedName(const std::string &prefix, const std::string &part) {
  return prefix + ".qlc." + part;
}

llvm::Error repackCheckpoint(const ModelConfig &cfg, WeightStore &store) {
  if (!cfg.checkpointQuant)
    return llvm::Error::success();
  std::vector<std::string> prefixes;
  const std::string suffix = ".qweight";
  for (const auto &[name, t] : store.tensors())
    if (name.size() > suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      prefixes.push_back(name.substr(0, name.size() - suffix.size()));
  Repacker r(*cfg.checkpointQuant, store);
  for (const std::string &p : prefixes)
    if (llvm::Error e = r.run(p))
      return e;
  return llvm::Error::success();
}

} // namespace qlc
