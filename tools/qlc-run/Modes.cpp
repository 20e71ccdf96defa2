//===- Modes.cpp - qlc-run's logits dump, generation and benchmark ---------===//
#include "RunCommon.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>
#include <random>

namespace qlcrun {

int dumpLogits(const Options &o, Handles &h, const std::vector<int32_t> &ids) {
  const int64_t vocab = qlc_model_vocab_size(h.model), T = static_cast<int64_t>(ids.size());
  std::vector<float> logits(static_cast<size_t>(T * vocab));
  if (o.stepByStep) {
    // One token per call: the decode path with its KV cache.
    int32_t slot = 0;
    for (int64_t t = 0; t < T; ++t)
      if (qlc_status s = qlc_decode(h.session, 1, &slot, &ids[t], logits.data() + t * vocab))
        return failStatus(s, "decode");
  } else if (qlc_status s = qlc_prefill(h.session, 0, ids.data(), T, 1, logits.data())) {
    return failStatus(s, "prefill");
  }
  if (!writeNpy(o.dumpLogits, logits, T, vocab))
    return fail(o.dumpLogits + ": cannot write: " + std::strerror(errno));
  return 0;
}

int generate(const Options &o, Handles &h, const std::vector<int32_t> &ids) {
  std::vector<float> logits;
  SamplerPtr guard(nullptr, qlc_sampler_free);
  if (int rc = startGeneration(o, h, ids, logits, guard))
    return rc;
  qlc_sampler *sampler = guard.get();
  const std::vector<int64_t> eos = eosIds(h);
  int32_t slot = 0;
  for (int i = 0; i < o.n; ++i) {
    int32_t next = qlc_sampler_sample(sampler, logits.data());
    qlc_sampler_accept(sampler, next);
    std::cout << (i ? " " : "") << next << std::flush;
    if (std::find(eos.begin(), eos.end(), next) != eos.end() || i + 1 == o.n)
      break;
    if (qlc_session_position(h.session, 0) >= qlc_session_max_seq(h.session)) {
      std::cerr << "\nqlc-run: stopped: the sequence reached max_seq\n";
      break;
    }
    if (qlc_status s = qlc_decode(h.session, 1, &slot, &next, logits.data()))
      return failStatus(s, "decode");
  }
  std::cout << "\n";
  return 0;
}

int bench(const Options &o, Handles &h) {
  const int32_t vocab = qlc_model_vocab_size(h.model);
  std::mt19937 rng(static_cast<uint32_t>(o.sampling.seed));
  std::uniform_int_distribution<int32_t> dist(0, vocab - 1);
  std::vector<float> logits(static_cast<size_t>(o.batch) * vocab);
  std::vector<int32_t> prompt(o.promptLen), slots(o.batch), next(o.batch);
  // Warm-up: one sequence of the prompt's length (so the steps' kernels, cuBLAS's among
  // them, are loaded before the clock starts, as a server's first requests would), then
  // forget it.
  for (int32_t &t : prompt)
    t = dist(rng);
  if (qlc_status s = qlc_prefill(h.session, 0, prompt.data(), o.promptLen, 0, logits.data()))
    return failStatus(s, "prefill");
  qlc_session_reset(h.session, 0);
  auto t0 = std::chrono::steady_clock::now();
  for (int b = 0; b < o.batch; ++b) {
    for (int32_t &t : prompt)
      t = dist(rng);
    if (qlc_status s = qlc_prefill(h.session, b, prompt.data(), o.promptLen, 0,
                                   logits.data() + static_cast<size_t>(b) * vocab))
      return failStatus(s, "prefill");
    slots[b] = b;
  }
  const double prefillS = seconds(t0);
  t0 = std::chrono::steady_clock::now();
  // Greedy: the decode steps return the argmax (on the GPU for CUDA artifacts).
  for (int b = 0; b < o.batch; ++b)
    next[b] = qlc_argmax(logits.data() + static_cast<size_t>(b) * vocab, vocab);
  std::vector<int32_t> chosen(o.batch);
  for (int g = 0; g < o.genLen; ++g) {
    if (qlc_status s =
            qlc_decode_greedy(h.session, o.batch, slots.data(), next.data(), chosen.data()))
      return failStatus(s, "decode");
    next.swap(chosen);
  }
  const double decodeS = seconds(t0);
  nlohmann::json r = {
      {"prefill_tok_s", o.batch * static_cast<double>(o.promptLen) / prefillS},
      {"decode_tok_s", o.batch * static_cast<double>(o.genLen) / decodeS},
      {"batch", o.batch},
      {"peak_device_bytes", qlc_model_weight_bytes(h.model) + qlc_session_bytes(h.session)},
      {"device", qlc_model_device_name(h.model)},
      {"prompt_len", o.promptLen},
      {"gen_len", o.genLen},
      {"weight_bytes", qlc_model_weight_bytes(h.model)},
  };
  std::cout << r.dump() << "\n";
  return 0;
}

} // namespace qlcrun
