// cuda_attention_test.cu - the KV cache formats and attention of qlc_cuda_attention.cuh.
//
// The cache is paged (pages of P positions, qlc/abi.h) and its block table gives each
// slot's pages in a shuffled order, with spare pages that no slot owns. It starts full of
// random rows encoded by the x86 formats (every page, layer and position); one attention
// call then appends the step's k and v and attends. The cache
// afterwards must equal, byte for byte, the start cache with the step's rows encoded by
// the x86 store; the output is compared with float64 attention over the decoded cache.
// Prefill: M tokens of one slot at consecutive positions (across page boundaries); decode:
// M tokens of M slots at random positions. Fused rope (qlc-fuse-rope): attention given
// unrotated q and k and the inverse frequencies must give the output and cache of the rope
// kernel then attention.
#include "qlc_cuda_kernels.cuh"
#include "qlc_x86_kv.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "cuda_test_util.h"

namespace cu = qlc::cuda;
namespace x86 = qlc::x86;
using namespace qlc::cudatest;

namespace {

template <class KV> struct HostKv;
template <> struct HostKv<cu::KvF32> {
  using type = x86::KvF32;
  static constexpr const char *name = "f32";
};
template <> struct HostKv<cu::KvF16> {
  using type = x86::KvF16;
  static constexpr const char *name = "f16";
};
template <> struct HostKv<cu::KvI8> {
  using type = x86::KvI8;
  static constexpr const char *name = "int8";
};

/// Channel c of an encoded head, in float64.
template <class KV> double decode(const uint8_t *h, int c);
template <> double decode<cu::KvF32>(const uint8_t *h, int c) {
  float v;
  std::memcpy(&v, h + 4 * c, 4);
  return v;
}
template <> double decode<cu::KvF16>(const uint8_t *h, int c) {
  qlc::f16 v;
  std::memcpy(&v, h + 2 * c, 2);
  return qlc::to_f32(v);
}
template <> double decode<cu::KvI8>(const uint8_t *h, int c) {
  qlc::f16 p[2];
  std::memcpy(p, h, 4);
  return static_cast<double>(qlc::to_f32(p[1])) +
         static_cast<double>(qlc::to_f32(p[0])) * h[4 + c];
}

template <int H, int KVH, int HD, int WINDOW, class KV, int P, int64_t MAX_SEQ_ = 128>
struct AttentionCase {
  static constexpr int L = 2, LAYER = 1, SLOTS = 9;
  static constexpr int64_t MAX_SEQ = MAX_SEQ_;
  static constexpr int64_t PER_SEQ = (MAX_SEQ + P - 1) / P, PAGES = SLOTS * PER_SEQ + 3;
  using X = typename HostKv<KV>::type;
  static constexpr int64_t HB = X::template head_bytes<HD>(), ROWB = KVH * HB;
  static_assert(HB == KV::template head_bytes<HD>(), "the same head format");

  static std::vector<int32_t> &table() {
    static std::vector<int32_t> t;
    return t;
  }
  static int64_t rowOffset(int slot, int layer, int which, int64_t pos) {
    const int64_t page = table()[slot * PER_SEQ + pos / P];
    return (((page * L + layer) * 2 + which) * P + pos % P) * ROWB;
  }

  /// Runs one step and records the cache and output checks.
  static void run(const std::vector<uint8_t> &start, const std::vector<int32_t> &slots,
                  const std::vector<int32_t> &positions, Rng &rng, const std::string &label) {
    const int M = static_cast<int>(slots.size());
    auto q = rng.floats(int64_t{M} * H * HD, 1.5f);
    auto k = rng.floats(int64_t{M} * KVH * HD, 2.0f), v = rng.floats(int64_t{M} * KVH * HD, 2.0f);
    std::vector<uint8_t> expect = start;
    for (int t = 0; t < M; ++t)
      for (int g = 0; g < KVH; ++g) {
        X::template store<HD>(expect.data() + rowOffset(slots[t], LAYER, 0, positions[t]) + g * HB,
                              k.data() + (int64_t{t} * KVH + g) * HD);
        X::template store<HD>(expect.data() + rowOffset(slots[t], LAYER, 1, positions[t]) + g * HB,
                              v.data() + (int64_t{t} * KVH + g) * HD);
      }
    const float scale = 1.0f / std::sqrt(static_cast<float>(HD));
    std::vector<double> ref(int64_t{M} * H * HD);
    std::vector<double> sc(MAX_SEQ);
    for (int t = 0; t < M; ++t) {
      const int32_t pos = positions[t], lo = WINDOW > 0 && pos >= WINDOW ? pos - WINDOW + 1 : 0;
      for (int h = 0; h < H; ++h) {
        const int g = h / (H / KVH);
        const float *qh = q.data() + (int64_t{t} * H + h) * HD;
        double mx = -INFINITY;
        for (int32_t j = lo; j <= pos; ++j) {
          const uint8_t *kh = expect.data() + rowOffset(slots[t], LAYER, 0, j) + g * HB;
          double s = 0;
          for (int c = 0; c < HD; ++c)
            s += qh[c] * decode<KV>(kh, c);
          sc[j] = s * scale;
          mx = std::max(mx, sc[j]);
        }
        double den = 0;
        double *o = ref.data() + (int64_t{t} * H + h) * HD;
        for (int32_t j = lo; j <= pos; ++j) {
          const double p = std::exp(sc[j] - mx);
          den += p;
          const uint8_t *vh = expect.data() + rowOffset(slots[t], LAYER, 1, j) + g * HB;
          for (int c = 0; c < HD; ++c)
            o[c] += p * decode<KV>(vh, c);
        }
        for (int c = 0; c < HD; ++c)
          o[c] /= den;
      }
    }
    DevBuf<uint8_t> kv(start);
    DevBuf<int32_t> dslots(slots), dpos(positions), dtable(table());
    DevBuf<float> dq(q), dk(k), dv(v), out(int64_t{M} * H * HD);
    out.poison();
    cu::attention<L, H, KVH, HD, WINDOW, KV, P>(0, kv.p, dtable.p, PER_SEQ, M, dpos.p, dslots.p,
                                                 LAYER, scale, dq.p, dk.p, dv.p, out.p);
    const std::string name = caseName("attention", "H%d/%d HD=%d W=%d %s P=%d %s", H, KVH, HD,
                                      WINDOW, HostKv<KV>::name, P, label.c_str());
    check(name, M, out, ref, 2e-5);
    const std::vector<uint8_t> got = kv.get();
    int64_t bad = 0;
    for (size_t i = 0; i < got.size(); ++i)
      bad += got[i] != expect[i];
    checkCount(name + " cache", M, bad, static_cast<int64_t>(got.size()));
  }

  /// The attention with a fused rope against rope kernels then the plain attention: the
  /// outputs, and the step's k rows as the two caches decode them.
  static void fusedRope(const std::vector<uint8_t> &start, const std::vector<int32_t> &slots,
                        const std::vector<int32_t> &positions, Rng &rng, const std::string &label) {
    const int M = static_cast<int>(slots.size());
    auto q = rng.floats(int64_t{M} * H * HD, 1.5f);
    auto k = rng.floats(int64_t{M} * KVH * HD, 2.0f), v = rng.floats(int64_t{M} * KVH * HD, 2.0f);
    std::vector<float> inv(HD / 2);
    for (int i = 0; i < HD / 2; ++i) // theta 10000, as Rope.cpp computes it
      inv[i] = 1.0f / std::pow(10000.0f, static_cast<float>(2 * i) / static_cast<float>(HD));
    const float scale = 1.0f / std::sqrt(static_cast<float>(HD));
    DevBuf<uint8_t> kvA(start), kvB(start);
    DevBuf<int32_t> dslots(slots), dpos(positions), dtable(table());
    DevBuf<float> dq(q), dk(k), dv(v), dinv(inv), qr(int64_t{M} * H * HD), kr(int64_t{M} * KVH * HD);
    DevBuf<float> outA(int64_t{M} * H * HD), outB(int64_t{M} * H * HD);
    outB.poison();
    cu::rope<H * HD, HD>(0, M, dpos.p, dinv.p, dq.p, qr.p);
    cu::rope<KVH * HD, HD>(0, M, dpos.p, dinv.p, dk.p, kr.p);
    cu::attention<L, H, KVH, HD, WINDOW, KV, P>(0, kvA.p, dtable.p, PER_SEQ, M, dpos.p, dslots.p,
                                                 LAYER, scale, qr.p, kr.p, dv.p, outA.p);
    cu::attention<L, H, KVH, HD, WINDOW, KV, P>(0, kvB.p, dtable.p, PER_SEQ, M, dpos.p, dslots.p,
                                                 LAYER, scale, dq.p, dk.p, dv.p, outB.p, dinv.p);
    const std::string name = caseName("attention+rope", "H%d/%d HD=%d W=%d %s P=%d %s", H, KVH,
                                      HD, WINDOW, HostKv<KV>::name, P, label.c_str());
    const std::vector<float> a = outA.get();
    check(name, M, outB, std::vector<double>(a.begin(), a.end()), 1e-5);
    const std::vector<uint8_t> ca = kvA.get(), cb = kvB.get();
    std::vector<double> ka;
    std::vector<float> kb;
    for (int t = 0; t < M; ++t)
      for (int g = 0; g < KVH; ++g)
        for (int c = 0; c < HD; ++c) {
          const int64_t off = rowOffset(slots[t], LAYER, 0, positions[t]) + g * HB;
          ka.push_back(decode<KV>(ca.data() + off, c));
          kb.push_back(static_cast<float>(decode<KV>(cb.data() + off, c)));
        }
    // One int8 code step is range/255 of a head: about 1% of its values' norm.
    const double tol = HostKv<KV>::name[0] == 'i' ? 1e-2 : HostKv<KV>::name[1] == '1' ? 1e-3 : 1e-5;
    check(name + " cached k", M, DevBuf<float>(kb), ka, tol);
    // q, k and v read in place from packed rows (qlc-fold-qkv-split): the same bits, the
    // same cache bytes.
    constexpr int64_t W = (H + 2 * KVH) * HD;
    std::vector<float> packed(M * W);
    for (int t = 0; t < M; ++t) {
      std::copy_n(q.begin() + t * H * HD, H * HD, packed.begin() + t * W);
      std::copy_n(k.begin() + t * KVH * HD, KVH * HD, packed.begin() + t * W + H * HD);
      std::copy_n(v.begin() + t * KVH * HD, KVH * HD, packed.begin() + t * W + (H + KVH) * HD);
    }
    DevBuf<uint8_t> kvC(start);
    DevBuf<float> dp(packed), outC(int64_t{M} * H * HD);
    outC.poison();
    cu::attention<L, H, KVH, HD, WINDOW, KV, P>(0, kvC.p, dtable.p, PER_SEQ, M, dpos.p, dslots.p,
                                                LAYER, scale, dp.p, dp.p + H * HD,
                                                dp.p + (H + KVH) * HD, outC.p, dinv.p, W, W);
    const std::vector<float> b = outB.get();
    check(name + " packed q/k/v", M, outC, std::vector<double>(b.begin(), b.end()), 0.0);
    const std::vector<uint8_t> cc = kvC.get();
    int64_t bad = 0;
    for (size_t i = 0; i < cc.size(); ++i)
      bad += cc[i] != cb[i];
    checkCount(name + " packed q/k/v cache", M, bad, static_cast<int64_t>(cc.size()));
  }

  static void all() {
    Rng rng(H * 1000 + KVH * 100 + HD + WINDOW * 7 + HB + P * 13);
    // The block table: the slots' pages in a shuffled order (3 pages nobody owns).
    std::vector<int32_t> order(PAGES);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng.g);
    table().assign(order.begin(), order.begin() + SLOTS * PER_SEQ);
    // The start cache: every row of every page, layer and position.
    std::vector<uint8_t> start(PAGES * L * 2 * P * ROWB);
    std::vector<float> head(HD);
    for (int64_t r = 0; r < PAGES * L * 2 * P; ++r)
      for (int g = 0; g < KVH; ++g) {
        for (auto &x : head)
          x = rng.value(2.0f);
        X::template store<HD>(start.data() + r * ROWB + g * HB, head.data());
      }
    for (int M : {1, 9, 17, 70}) {
      const int32_t p0 = M == 70 ? 3 : (M == 9 ? 0 : 40);
      std::vector<int32_t> slots(M, 1), positions(M);
      std::iota(positions.begin(), positions.end(), p0);
      run(start, slots, positions, rng, caseName("prefill", "p0=%d", p0));
    }
    for (int M : {1, 3, 8}) {
      std::vector<int32_t> slots(SLOTS), positions(M);
      std::iota(slots.begin(), slots.end(), 0);
      std::shuffle(slots.begin(), slots.end(), rng.g);
      slots.resize(M);
      for (auto &p : positions)
        p = static_cast<int32_t>(rng.index(MAX_SEQ));
      positions[0] = M == 3 ? 0 : positions[0]; // a first token too
      run(start, slots, positions, rng, "decode");
      fusedRope(start, slots, positions, rng, "decode");
    }
    // Steps of the decode configuration (M <= 8) with several tokens of a slot, whose rows
    // the attention kernel stores itself and reads back from shared memory: a short prompt
    // (across a page boundary where pages are long enough), and slots with 1-3 tokens each.
    {
      std::vector<int32_t> slots(5, 6), positions(5);
      std::iota(positions.begin(), positions.end(),
                static_cast<int32_t>(P >= 4 && P < 100 ? P - 2 : 3));
      run(start, slots, positions, rng, caseName("short prompt", "p0=%d", positions[0]));
      fusedRope(start, slots, positions, rng, caseName("short prompt", "p0=%d", positions[0]));
      const std::vector<int32_t> mixSlots = {7, 0, 7, 8, 0, 7, 3},
                                 mixPos = {20, 5, 21, 0, 6, 22, 60};
      run(start, mixSlots, mixPos, rng, "mixed slots");
      fusedRope(start, mixSlots, mixPos, rng, "mixed slots");
    }
    // A prefill step of two prompts: attention_prefill_kernel's groups of 8 tokens are one
    // slot's (tiles shared through shared memory), except tokens 8-15, which straddle the
    // two prompts (each warp reads its own rows), and the last group of one token.
    {
      std::vector<int32_t> slots(25, 5), positions(25);
      std::iota(positions.begin(), positions.begin() + 13, 2);
      std::iota(positions.begin() + 13, positions.end(), 0);
      std::fill(slots.begin() + 13, slots.end(), 3);
      run(start, slots, positions, rng, "two prompts");
      fusedRope(start, slots, positions, rng, "two prompts");
    }
    for (int M : {1, 17}) {
      std::vector<int32_t> slots(M, 2), positions(M);
      std::iota(positions.begin(), positions.end(), M == 1 ? 90 : 11);
      fusedRope(start, slots, positions, rng, caseName("prefill", "p0=%d", positions[0]));
    }
    if constexpr (MAX_SEQ > 128) { // a prefill whose warps (4) take several tiles each
      std::vector<int32_t> slots(17, 4), positions(17);
      std::iota(positions.begin(), positions.end(), static_cast<int32_t>(MAX_SEQ - 17));
      run(start, slots, positions, rng, caseName("prefill", "p0=%d", positions[0]));
    }
  }
};

template <int H, int KVH, int HD, int WINDOW, int P = 16> void allFormats() {
  AttentionCase<H, KVH, HD, WINDOW, cu::KvF32, P>::all();
  AttentionCase<H, KVH, HD, WINDOW, cu::KvF16, P>::all();
  AttentionCase<H, KVH, HD, WINDOW, cu::KvI8, P>::all();
}

} // namespace

void runAttentionTests() {
  allFormats<8, 2, 16, 0>();
  allFormats<8, 2, 16, 5>();
  allFormats<8, 2, 64, 0>();
  allFormats<8, 2, 64, 5>();
  allFormats<8, 2, 96, 0>();
  allFormats<8, 2, 96, 5>();
  allFormats<4, 4, 10, 0>();
  allFormats<2, 1, 256, 5>();
  // Awkward page sizes: 5 (a block of 128 threads spans 26 pages), 1, and 128 (one
  // page a sequence).
  allFormats<8, 2, 64, 0, 5>();
  allFormats<8, 2, 64, 5, 5>();
  allFormats<4, 4, 10, 0, 1>();
  allFormats<8, 2, 16, 0, 128>();
  // Long sequences: decode steps at random positions below 1,100, so that the 16 warps of
  // the decode configuration take up to 3 tiles of 32 positions each, and the online
  // softmax rescales a warp's partial sums between tiles.
  AttentionCase<8, 2, 128, 0, cu::KvF16, 16, 1100>::all();
  AttentionCase<8, 2, 128, 0, cu::KvI8, 16, 1100>::all();
  AttentionCase<4, 1, 64, 700, cu::KvF32, 16, 1100>::all();
}
