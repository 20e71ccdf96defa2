//===- Tiling.cpp - candidates and cost model of the projection kernels ----===//
//
// The candidates are the configurations the kernels really take (each one instantiated
// by the kernel tests); the cost model is deliberately simple and documented in
// docs/passes.md (qlc-select-tiling). The first candidate of every list is the kernels'
// default configuration, and the model keeps it unless another one is strictly cheaper.
//
#include "passes/Tiling.h"

#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace qlc {

namespace {

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

TileConfig gemv(int64_t warps, int64_t rows, int64_t unroll) {
  return {{"warps", warps}, {"rows", rows}, {"unroll", unroll}};
}
TileConfig mma(int64_t bm, int64_t bn, int64_t wm, int64_t wn, int64_t split) {
  return {{"bm", bm}, {"bn", bn}, {"warps_m", wm}, {"warps_n", wn}, {"max_split_k", split}};
}
int64_t get(const TileConfig &c, const std::string &k) {
  for (const auto &[name, v] : c)
    if (name == k)
      return v;
  return 0;
}

/// CUDA GEMV: the default (4 warps, 2 rows per warp) unless its grid gives fewer than
/// two blocks per SM; then fewer rows per block, down to 2 warps of 1 row.
TilingRange cudaDecode(const TargetDesc &t, const ProjShape &s) {
  const int64_t u = s.family == ProjShape::Dense ? 4 : 8; // the weight source's default
  TilingRange r{"decode", 1, 8, {gemv(4, 2, u), gemv(4, 1, u), gemv(2, 1, u), gemv(4, 4, u / 2)},
                {}};
  r.model = r.candidates[2];
  for (int i = 0; i < 3; ++i) {
    const TileConfig &c = r.candidates[i];
    if (ceilDiv(s.n, get(c, "warps") * get(c, "rows")) >= 2 * t.smCount) {
      r.model = c;
      break;
    }
  }
  return r;
}

/// CUDA tensor-core GEMM at M rows: the time of the waves of blocks, a block's work
/// being its MACs plus kLoadCost per element it stages (x and W tiles); blocks resident
/// per SM from registers (<= 168 a thread at 128 threads, 255 above) and shared memory.
/// Split-K (capped by max_split_k) as the launcher does it: about two blocks per SM.
double mmaCost(const TargetDesc &t, const TileConfig &c, int64_t m, int64_t n, int64_t k) {
  constexpr double kLoadCost = 32.0;
  const int64_t bm = get(c, "bm"), bn = get(c, "bn");
  const int64_t threads = get(c, "warps_m") * get(c, "warps_n") * 32;
  const int64_t regs = threads <= 128 ? 168 : 255;
  const int64_t smem = 2 * (bm + bn) * (32 + 8) * 2;
  const int64_t occ = std::max<int64_t>(
      1, std::min(t.regsPerSm / (threads * regs), t.smemPerSm / smem));
  int64_t tiles = ceilDiv(m, bm) * ceilDiv(n, bn);
  const int64_t kt = ceilDiv(k, 32);
  int64_t splits = 1;
  if (tiles < 2 * t.smCount && get(c, "max_split_k") > 1) {
    splits = std::min({ceilDiv(2 * t.smCount, tiles), std::max<int64_t>(kt / 4, 1),
                       get(c, "max_split_k")});
    splits = ceilDiv(kt, ceilDiv(kt, splits));
  }
  const double perBlock = static_cast<double>(ceilDiv(kt, splits)) * 32 *
                          (static_cast<double>(bm * bn) + kLoadCost * (bm + bn));
  const double waves = std::ceil(static_cast<double>(tiles * splits) / (t.smCount * occ));
  return waves * occ * perBlock + (splits > 1 ? static_cast<double>(m * n) / 64 : 0.0);
}

TilingRange cudaMma(const TargetDesc &t, const ProjShape &s, bool small, int64_t maxTokens) {
  TilingRange r;
  r.name = small ? "small" : "prefill";
  r.minM = small ? 9 : 33;
  r.maxM = small ? 32 : 0;
  const std::vector<std::array<int64_t, 4>> tiles =
      small ? std::vector<std::array<int64_t, 4>>{{32, 128, 1, 4}, {32, 64, 1, 2},
                                                  {16, 128, 1, 4}, {16, 64, 1, 2}}
            : std::vector<std::array<int64_t, 4>>{{128, 128, 2, 4}, {64, 128, 2, 4},
                                                  {64, 64, 2, 2}, {128, 64, 2, 2}};
  for (int64_t split : {16, 1})
    for (const auto &b : tiles)
      r.candidates.push_back(mma(b[0], b[1], b[2], b[3], split));
  const int64_t m = small ? 32 : std::max<int64_t>(33, std::min<int64_t>(maxTokens, 512));
  double best = 0;
  for (const TileConfig &c : r.candidates) {
    const double cost = mmaCost(t, c, m, s.n, s.k);
    if (r.model.empty() || cost < best)
      r.model = c, best = cost;
  }
  // The model is coarse: on an H200 its picks for Llama-2-7B shapes ran prefill at 128
  // tokens at 0.69x of the default tiles and at 1024 tokens at 1.01x (docs/performance.md).
  // So it leaves the kernels' default (the first candidate) unless it predicts a large
  // gain; --autotune measures instead.
  constexpr double kMinGain = 0.75;
  if (best > kMinGain * mmaCost(t, r.candidates.front(), m, s.n, s.k))
    r.model = r.candidates.front();
  return r;
}

/// x86 register blocks: a config is legal when its accumulators, the loaded weight
/// vectors and one broadcast fit the vector registers.
std::vector<TilingRange> x86Ranges(const TargetDesc &t, const ProjShape &s, int64_t maxTokens) {
  const int64_t regs = t.vectorRegs, w = t.vectorFloats;
  std::vector<TilingRange> out;
  // decode: weight rows per step, each a stream of the weights; the most that fit the
  // registers, up to 8 (more streams than the L2 prefetcher follows well: 16 is left to
  // --autotune), with >= 8 steps over N.
  if (s.family != ProjShape::Nf4) {
    const bool dense = s.family == ProjShape::Dense;
    TilingRange r{"decode", 1, dense ? 1 : 3, {}, {}};
    const int64_t def = dense ? (w >= 8 ? 8 : 4) : 4;
    r.candidates.push_back({{"rows", def}});
    for (int64_t rows : dense ? std::vector<int64_t>{4, 8, 16} : std::vector<int64_t>{2, 4, 8})
      if (rows != def && (dense ? rows + 2 : 2 * rows + 2) <= regs)
        r.candidates.push_back({{"rows", rows}});
    r.model = r.candidates.front();
    for (const TileConfig &c : r.candidates)
      if (c[0].second <= 8 && c[0].second * 8 <= s.n && c[0].second > r.model[0].second)
        r.model = c;
    out.push_back(r);
  }
  // small (dense only): mr token rows x nr weight rows, most FMAs per load.
  if (s.family == ProjShape::Dense) {
    TilingRange r{"small", 2, 15, {}, {}};
    const int64_t dmr = w >= 8 ? 4 : 2, dnr = w >= 16 ? 4 : 2;
    r.candidates.push_back({{"mr", dmr}, {"nr", dnr}});
    for (auto [mr, nr] : std::vector<std::pair<int64_t, int64_t>>{{4, 2}, {2, 4}, {4, 4}, {2, 2}})
      if (!(mr == dmr && nr == dnr) && mr * nr + nr + 1 <= regs)
        r.candidates.push_back({{"mr", mr}, {"nr", nr}});
    double best = 0;
    for (const TileConfig &c : r.candidates) {
      const double score = static_cast<double>(c[0].second * c[1].second) /
                           static_cast<double>(c[0].second + c[1].second);
      if (r.model.empty() || score > best)
        r.model = c, best = score;
    }
    out.push_back(r);
  }
  // prefill: the packed GEMM, bound by its FMAs (x is broadcast from memory into the
  // FMA): the most accumulators mr * nv (independent FMA chains) that fit the registers
  // with the nv loaded vectors and two spares, ties to the least padding of N (panels of
  // nv * W) and M (blocks of mr); kc so that the packed panel fills half of L1.
  {
    TilingRange r{"prefill", s.family == ProjShape::Dense ? 16 : 4, 0, {}, {}};
    const std::vector<std::pair<int64_t, int64_t>> blocks =
        w >= 16 ? std::vector<std::pair<int64_t, int64_t>>{{12, 2}, {8, 3}, {6, 4}}
        : w >= 8 ? std::vector<std::pair<int64_t, int64_t>>{{6, 2}, {4, 3}, {8, 1}}
                 : std::vector<std::pair<int64_t, int64_t>>{{4, 4}, {6, 2}};
    const int64_t m = std::max<int64_t>(r.minM, std::min<int64_t>(maxTokens, 64));
    double best = 0;
    for (auto [mr, nv] : blocks) {
      if (mr * nv + nv + 1 > std::max<int64_t>(regs, 16))
        continue;
      const int64_t nr = nv * w;
      const int64_t kc = std::max<int64_t>(16, t.l1Bytes / 2 / (4 * nr) / 8 * 8);
      TileConfig c = {{"mr", mr}, {"nv", nv}, {"kc", kc}};
      r.candidates.push_back(c);
      // The model leaves the compiler a second spare register: 4 x 3 on AVX2 uses all 16,
      // and its prefill was slower than 6 x 2 in the one run that compared them
      // (docs/performance.md, within that machine's noise); --autotune may still pick it.
      if (mr * nv + nv + 2 > std::max<int64_t>(regs, 16))
        continue;
      const double waste = static_cast<double>(ceilDiv(s.n, nr) * nr) / s.n *
                           static_cast<double>(ceilDiv(m, mr) * mr) / m;
      const double score = static_cast<double>(mr * nv) / waste;
      if (r.model.empty() || score > best)
        r.model = c, best = score;
    }
    out.push_back(r);
  }
  return out;
}

} // namespace

std::vector<TilingRange> tilingRanges(const TargetDesc &target, const ProjShape &shape,
                                      int64_t maxTokens) {
  if (!target.isCuda())
    return x86Ranges(target, shape, maxTokens);
  return {cudaDecode(target, shape), cudaMma(target, shape, true, maxTokens),
          cudaMma(target, shape, false, maxTokens)};
}

llvm::Expected<std::vector<TuningEntry>> loadTuningCache(const std::string &path) {
  auto err = [&](const std::string &m) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "tuning cache " + path + ": " + m);
  };
  auto buf = llvm::MemoryBuffer::getFile(path);
  if (!buf)
    return err("cannot be read (" + buf.getError().message() + ")");
  auto parsed = llvm::json::parse((*buf)->getBuffer());
  if (!parsed)
    return err("is not JSON (" + llvm::toString(parsed.takeError()) + ")");
  const llvm::json::Object *root = parsed->getAsObject();
  const llvm::json::Array *list = root ? root->getArray("entries") : nullptr;
  if (!root || root->getInteger("qlc_tuning_cache") != 1 || !list)
    return err("expected {\"qlc_tuning_cache\": 1, \"entries\": [...]}");
  std::vector<TuningEntry> out;
  for (size_t i = 0; i < list->size(); ++i) {
    const llvm::json::Object *e = (*list)[i].getAsObject();
    const std::string where = "entry " + std::to_string(i);
    if (!e)
      return err(where + " is not an object");
    TuningEntry t;
    auto str = [&](const char *key, std::string &to) {
      auto v = e->getString(key);
      if (v)
        to = v->str();
      return v.has_value();
    };
    auto k = e->getInteger("k"), n = e->getInteger("n");
    const llvm::json::Object *cfg = e->getObject("config");
    if (!str("target", t.target) || !str("kernel", t.kernel) || !str("range", t.range) || !k ||
        !n || !cfg)
      return err(where + " needs target, kernel, range (strings), k, n (integers) and config");
    t.k = *k, t.n = *n;
    for (const auto &kv : *cfg) {
      auto v = kv.second.getAsInteger();
      if (!v)
        return err(where + ": config value " + kv.first.str() + " is not an integer");
      t.config.emplace_back(kv.first.str(), *v);
    }
    std::sort(t.config.begin(), t.config.end());
    if (auto us = e->getNumber("us"))
      t.micros = *us;
    out.push_back(std::move(t));
  }
  return out;
}

std::string writeTuningCache(const std::vector<TuningEntry> &entries) {
  llvm::json::Array list;
  for (const TuningEntry &t : entries) {
    llvm::json::Object cfg;
    for (const auto &[k, v] : t.config)
      cfg[k] = v;
    list.push_back(llvm::json::Object{{"target", t.target}, {"kernel", t.kernel}, {"k", t.k},
                                      {"n", t.n}, {"range", t.range},
                                      {"config", std::move(cfg)}, {"us", t.micros}});
  }
  std::string s;
  llvm::raw_string_ostream os(s);
  os << llvm::formatv("{0:2}", llvm::json::Value(llvm::json::Object{
                                   {"qlc_tuning_cache", 1}, {"entries", std::move(list)}}));
  return s + "\n";
}

bool sameConfig(const TileConfig &a, const TileConfig &b) {
  TileConfig x = a, y = b;
  std::sort(x.begin(), x.end());
  std::sort(y.begin(), y.end());
  return x == y;
}

std::string formatTileConfig(const TileConfig &c) {
  std::string s;
  for (const auto &[k, v] : c)
    s += (s.empty() ? "" : " ") + k + "=" + std::to_string(v);
  return s;
}

} // namespace qlc
