//===- qlc-run.cpp - run a qlc artifact: generate, dump logits, bench ------===//
//
// Links only the qlc runtime (no MLIR, no LLVM).
//
#include "qlc/runtime.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <vector>

namespace {

constexpr int kExitBadInput = 2, kExitInternal = 1;

int exitFor(qlc_status s) {
  return s == QLC_ERR_INTERNAL || s == QLC_ERR_OUT_OF_MEMORY ? kExitInternal : kExitBadInput;
}

int fail(const std::string &msg, int code = kExitBadInput) {
  std::cerr << "qlc-run: error: " << msg << "\n";
  return code;
}

int failStatus(qlc_status s, const std::string &what) {
  return fail(what + ": " + qlc_last_error(), exitFor(s));
}

bool parseIds(const std::string &text, std::vector<int32_t> &ids, std::string &error) {
  std::istringstream in(text);
  std::string tok;
  while (in >> tok) {
    char *end = nullptr;
    errno = 0;
    long v = std::strtol(tok.c_str(), &end, 10);
    if (end == tok.c_str() || *end != '\0' || errno != 0 || v < INT32_MIN || v > INT32_MAX) {
      error = "'" + tok + "' is not an integer token id";
      return false;
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  if (ids.empty()) {
    error = "no token ids given";
    return false;
  }
  return true;
}

/// Writes a float32 [rows, cols] array as a NumPy .npy file (format 1.0).
bool writeNpy(const std::string &path, const std::vector<float> &data, int64_t rows, int64_t cols) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                       std::to_string(rows) + ", " + std::to_string(cols) + "), }";
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  const std::string tmp = path + ".tmp";
  std::ofstream o(tmp, std::ios::binary);
  if (!o)
    return false;
  o.write("\x93NUMPY\x01\x00", 8);
  uint16_t len = static_cast<uint16_t>(header.size());
  o.write(reinterpret_cast<const char *>(&len), 2);
  o.write(header.data(), static_cast<std::streamsize>(header.size()));
  o.write(reinterpret_cast<const char *>(data.data()),
          static_cast<std::streamsize>(data.size() * sizeof(float)));
  o.close();
  if (!o)
    return false;
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

struct Options {
  std::string artifact, tokens, dumpLogits, prompt;
  int n = 0, threads = 0, maxSeq = 0;
  bool stepByStep = false, bench = false, noVerify = false;
  int batch = 1, promptLen = 128, genLen = 64;
  uint64_t seed = 0;
};

struct Handles {
  qlc_model *model = nullptr;
  qlc_session *session = nullptr;
  ~Handles() {
    qlc_session_free(session);
    qlc_model_free(model);
  }
};

double seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

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
  const int32_t vocab = qlc_model_vocab_size(h.model);
  std::vector<float> logits(vocab);
  if (qlc_status s = qlc_prefill(h.session, 0, ids.data(), static_cast<int64_t>(ids.size()), 0,
                                 logits.data()))
    return failStatus(s, "prefill");
  std::vector<int64_t> eos;
  auto man = nlohmann::json::parse(qlc_model_manifest(h.model));
  for (const auto &e : man["model"].value("eos_token_ids", nlohmann::json::array()))
    eos.push_back(e.get<int64_t>());
  int32_t slot = 0;
  for (int i = 0; i < o.n; ++i) {
    int32_t next = qlc_argmax(logits.data(), vocab);
    std::cout << (i ? " " : "") << next << std::flush;
    if (std::find(eos.begin(), eos.end(), next) != eos.end() || i + 1 == o.n)
      break;
    if (qlc_status s = qlc_decode(h.session, 1, &slot, &next, logits.data()))
      return failStatus(s, "decode");
  }
  std::cout << "\n";
  return 0;
}

int bench(const Options &o, Handles &h) {
  const int32_t vocab = qlc_model_vocab_size(h.model);
  std::mt19937 rng(static_cast<uint32_t>(o.seed));
  std::uniform_int_distribution<int32_t> dist(0, vocab - 1);
  std::vector<float> logits(static_cast<size_t>(o.batch) * vocab);
  std::vector<int32_t> prompt(o.promptLen), slots(o.batch), next(o.batch);
  // Warm-up: one short sequence, then forget it.
  for (int32_t &t : prompt)
    t = dist(rng);
  if (qlc_status s = qlc_prefill(h.session, 0, prompt.data(), std::min(o.promptLen, 8), 0, logits.data()))
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
  for (int g = 0; g < o.genLen; ++g) {
    for (int b = 0; b < o.batch; ++b)
      next[b] = qlc_argmax(logits.data() + static_cast<size_t>(b) * vocab, vocab);
    if (qlc_status s = qlc_decode(h.session, o.batch, slots.data(), next.data(), logits.data()))
      return failStatus(s, "decode");
  }
  const double decodeS = seconds(t0);
  nlohmann::json r = {
      {"prefill_tok_s", o.batch * static_cast<double>(o.promptLen) / prefillS},
      {"decode_tok_s", o.batch * static_cast<double>(o.genLen) / decodeS},
      {"batch", o.batch},
      {"peak_device_bytes", qlc_model_weight_bytes(h.model) + qlc_session_bytes(h.session)},
      {"device", "cpu"},
      {"prompt_len", o.promptLen},
      {"gen_len", o.genLen},
      {"weight_bytes", qlc_model_weight_bytes(h.model)},
  };
  std::cout << r.dump() << "\n";
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"qlc-run: run a qlc artifact"};
  Options o;
  app.add_option("artifact", o.artifact, "Artifact produced by qlc compile")->required();
  app.add_option("--tokens", o.tokens, "Input token ids, space-separated");
  app.add_option("--prompt", o.prompt, "Input text (needs a tokenizer in the artifact)");
  app.add_option("-n", o.n, "Tokens to generate greedily after the input");
  app.add_option("--dump-logits", o.dumpLogits, "Write float32 logits [T, vocab] to this .npy");
  app.add_flag("--step-by-step", o.stepByStep, "With --dump-logits: feed one token per decode step");
  app.add_flag("--bench", o.bench, "Measure prefill and decode throughput");
  app.add_option("--batch", o.batch, "Sequences decoded together (--bench)")->check(CLI::Range(1, 4096));
  app.add_option("--prompt-len", o.promptLen, "Prompt tokens per sequence (--bench)")->check(CLI::Range(1, 1 << 20));
  app.add_option("--gen-len", o.genLen, "Decode steps (--bench)")->check(CLI::Range(1, 1 << 20));
  app.add_option("--seed", o.seed, "Random seed (--bench prompts)");
  app.add_option("--threads", o.threads, "Worker threads (0: all cores)")->check(CLI::Range(0, 1024));
  app.add_option("--max-seq", o.maxSeq, "Positions per sequence (0: the artifact's)")->check(CLI::Range(0, 1 << 24));
  app.add_flag("--no-verify", o.noVerify, "Skip the weights checksum at load");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success))
      return app.exit(e); // --help
    // One line, like every other error (CLI11's own report spans two).
    std::string msg = e.what();
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    return fail(msg + " (see --help)");
  }
  if (!o.prompt.empty())
    return fail("--prompt needs a tokenizer, which qlc-run does not have yet; pass --tokens");
  const int modes = !o.dumpLogits.empty() + o.bench + (o.n > 0 && o.dumpLogits.empty());
  if (modes != 1)
    return fail("give exactly one of --dump-logits, -n (with --tokens) or --bench");
  std::vector<int32_t> ids;
  if (!o.bench) {
    std::string error;
    if (o.tokens.empty())
      return fail("--tokens is required with --dump-logits and -n");
    if (!parseIds(o.tokens, ids, error))
      return fail("--tokens: " + error);
  }
  Handles h;
  qlc_load_options lo{!o.noVerify};
  if (qlc_status s = qlc_model_load(o.artifact.c_str(), &lo, &h.model))
    return fail(qlc_last_error(), exitFor(s));
  qlc_session_options so{};
  so.n_threads = o.threads;
  so.n_slots = o.bench ? o.batch : 1;
  so.max_seq = o.maxSeq;
  if (o.bench && o.maxSeq == 0)
    so.max_seq = o.promptLen + o.genLen + 8;
  if (qlc_status s = qlc_session_create(h.model, &so, &h.session))
    return failStatus(s, "session");
  if (o.bench)
    return bench(o, h);
  if (!o.dumpLogits.empty())
    return dumpLogits(o, h, ids);
  return generate(o, h, ids);
}
