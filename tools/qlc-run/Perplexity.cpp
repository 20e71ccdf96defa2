//===- Perplexity.cpp - qlc-run --perplexity -------------------------------===//
//
// The tokens are cut into non-overlapping windows of --ctx tokens (the last window may
// be shorter; one of fewer than two tokens is dropped). Each window is a fresh
// sequence; every token after its first is scored by the logits at the position
// before it. Perplexity is exp of the mean negative log-likelihood over all scored
// tokens, accumulated in double precision.
//
#include "RunCommon.h"

#include <cmath>
#include <cstdio>
#include <iostream>
#include <unistd.h>

namespace qlcrun {

int perplexity(const Options &o, Handles &h, const std::vector<int32_t> &ids) {
  const int64_t vocab = qlc_model_vocab_size(h.model), n = static_cast<int64_t>(ids.size());
  if (o.ctx < 2)
    return fail("--ctx must be at least 2");
  if (o.ctx > qlc_session_max_seq(h.session))
    return fail("--ctx " + std::to_string(o.ctx) + " exceeds the session's max_seq " +
                std::to_string(qlc_session_max_seq(h.session)) + " (raise --max-seq)");
  int64_t windows = 0;
  for (int64_t b = 0; b + 1 < n; b += o.ctx)
    ++windows;
  if (o.maxChunks > 0 && windows > o.maxChunks)
    windows = o.maxChunks;
  if (windows == 0)
    return fail("need at least 2 tokens to measure perplexity, got " + std::to_string(n));
  std::vector<float> logits(static_cast<size_t>(o.ctx) * vocab);
  double nll = 0;
  int64_t scored = 0;
  const bool tty = isatty(2);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t w = 0; w < windows; ++w) {
    const int64_t b = w * o.ctx, len = std::min<int64_t>(o.ctx, n - b);
    qlc_session_reset(h.session, 0);
    if (qlc_status s = qlc_prefill(h.session, 0, ids.data() + b, len, 1, logits.data()))
      return failStatus(s, "prefill");
    for (int64_t t = 0; t + 1 < len; ++t) {
      const float *row = logits.data() + t * vocab;
      double mx = row[0];
      for (int64_t v = 1; v < vocab; ++v)
        mx = std::max(mx, static_cast<double>(row[v]));
      double z = 0;
      for (int64_t v = 0; v < vocab; ++v)
        z += std::exp(static_cast<double>(row[v]) - mx);
      nll += std::log(z) + mx - row[ids[b + t + 1]];
      ++scored;
    }
    if (tty)
      std::fprintf(stderr, "\rqlc-run: window %lld/%lld, perplexity %.4f, %.1f s",
                   static_cast<long long>(w + 1), static_cast<long long>(windows),
                   std::exp(nll / scored), seconds(t0));
  }
  if (tty)
    std::fprintf(stderr, "\n");
  std::printf("windows: %lld of %d tokens\n", static_cast<long long>(windows), o.ctx);
  std::printf("nll: %.9f\n", nll / scored);
  std::printf("perplexity: %.6f over %lld tokens\n", std::exp(nll / scored),
              static_cast<long long>(scored));
  return 0;
}

} // namespace qlcrun
