//===- RunCommon.h - shared pieces of qlc-run's modes ----------*- C++ -*-===//
#ifndef QLC_TOOLS_RUNCOMMON_H
#define QLC_TOOLS_RUNCOMMON_H

#include "qlc/runtime.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace qlcrun {

constexpr int kExitBadInput = 2, kExitInternal = 1;

/// Exit code for a runtime status: 1 for internal failures, 2 for everything caused by
/// the input.
int exitFor(qlc_status s);
/// Prints `qlc-run: error: msg` and returns `code`.
int fail(const std::string &msg, int code = kExitBadInput);
/// fail() with the runtime's last error, prefixed by `what`.
int failStatus(qlc_status s, const std::string &what);
/// Parses space-separated token ids.
bool parseIds(const std::string &text, std::vector<int32_t> &ids, std::string &error);
/// Writes a float32 [rows, cols] array as a NumPy .npy file (format 1.0).
bool writeNpy(const std::string &path, const std::vector<float> &data, int64_t rows, int64_t cols);
double seconds(std::chrono::steady_clock::time_point t0);

struct Options {
  std::string artifact, tokens, dumpLogits, prompt, perplexityFile, perplexityTokens, system;
  int n = 0, threads = 0, maxSeq = 0;
  int64_t kvPages = 0;          // KV cache pages of the session (0: the runtime's default)
  float kvMemoryFraction = 0.0f; // or this fraction of the free memory (0: unused)
  bool stepByStep = false, bench = false, noVerify = false, chat = false;
  int batch = 1, promptLen = 128, genLen = 64;
  int ctx = 512, maxChunks = 0;
  uint64_t seed = 0;
  qlc_sampler_options sampling = qlc_sampler_default_options();
  bool greedy = false;
};

struct Handles {
  qlc_model *model = nullptr;
  qlc_session *session = nullptr;
  ~Handles() {
    qlc_session_free(session);
    qlc_model_free(model);
  }
};

using SamplerPtr = std::unique_ptr<qlc_sampler, decltype(&qlc_sampler_free)>;

/// Prefills `ids` into slot 0 (logits of the last one into `logits`) and makes the
/// sampler of the options, primed with `ids` for the repetition penalty. Returns 0, or
/// the exit code after reporting the failure.
int startGeneration(const Options &o, Handles &h, const std::vector<int32_t> &ids,
                    std::vector<float> &logits, SamplerPtr &sampler);
/// The model's end-of-sequence token ids, from the manifest.
std::vector<int64_t> eosIds(const Handles &h);

int dumpLogits(const Options &o, Handles &h, const std::vector<int32_t> &ids);
int generate(const Options &o, Handles &h, const std::vector<int32_t> &ids);
int bench(const Options &o, Handles &h);
int perplexity(const Options &o, Handles &h, const std::vector<int32_t> &ids);
int generateText(const Options &o, Handles &h);
int perplexityText(const Options &o, Handles &h);
int chat(const Options &o, Handles &h);

} // namespace qlcrun

#endif // QLC_TOOLS_RUNCOMMON_H
