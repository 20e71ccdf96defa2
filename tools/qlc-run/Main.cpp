//===- Main.cpp - qlc-run: run a qlc artifact ------------------------------===//
//
// Links only the qlc runtime (no MLIR, no LLVM).
//
#include "RunCommon.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <climits>
#include <fstream>
#include <iostream>
#include <sstream>

using namespace qlcrun;

int main(int argc, char **argv) {
  CLI::App app{"qlc-run: run a qlc artifact"};
  Options o;
  app.add_option("artifact", o.artifact, "Artifact produced by qlc compile")->required();
  app.add_option("--tokens", o.tokens, "Input token ids, space-separated");
  app.add_option("--prompt", o.prompt, "Input text (needs a tokenizer in the artifact)");
  app.add_option("-n", o.n, "Tokens to generate greedily after the input");
  app.add_option("--dump-logits", o.dumpLogits, "Write float32 logits [T, vocab] to this .npy");
  app.add_flag("--step-by-step", o.stepByStep, "With --dump-logits: feed one token per decode step");
  app.add_flag("--bench", o.bench,
               "Measure prefill and greedy decode throughput (argmax on the GPU for CUDA)");
  app.add_option("--batch", o.batch, "Sequences decoded together (--bench)")->check(CLI::Range(1, 4096));
  app.add_option("--prompt-len", o.promptLen, "Prompt tokens per sequence (--bench)")->check(CLI::Range(1, 1 << 20));
  app.add_option("--gen-len", o.genLen, "Decode steps (--bench)")->check(CLI::Range(1, 1 << 20));
  app.add_option("--threads", o.threads, "Worker threads (0: all cores)")->check(CLI::Range(0, 1024));
  app.add_option("--max-seq", o.maxSeq, "Positions per sequence (0: the artifact's)")->check(CLI::Range(0, 1 << 24));
  app.add_option("--kv-pages", o.kvPages,
                 "KV cache pages of the session (0: every sequence's max-seq, capped by the "
                 "artifact's --kv-memory)")
      ->check(CLI::Range(int64_t{0}, int64_t{INT32_MAX}));
  app.add_option("--kv-memory-fraction", o.kvMemoryFraction,
                 "KV cache pages from this fraction of the free memory (GPU: after weights "
                 "and scratch), like vLLM's --gpu-memory-fraction (0: off)")
      ->check(CLI::Range(0.0f, 1.0f));
  app.add_flag("--no-verify", o.noVerify, "Skip the weights checksum at load");
  app.add_option("--perplexity", o.perplexityFile,
                 "Measure perplexity over this text file (needs the artifact's tokenizer)");
  app.add_flag("--chat", o.chat, "Interactive chat on stdin, with the model's chat template");
  app.add_option("--system", o.system, "System message for --chat");
  app.add_option("--perplexity-tokens", o.perplexityTokens,
                 "Measure perplexity over the token ids in this file (whitespace-separated)");
  app.add_option("--ctx", o.ctx, "Perplexity window in tokens")->check(CLI::Range(2, 1 << 24));
  app.add_option("--max-chunks", o.maxChunks, "Score at most this many windows (0: all)")
      ->check(CLI::Range(0, 1 << 30));
  // Sampling: greedy unless --temperature > 0.
  o.sampling.temperature = 0.0f;
  app.add_option("--temperature", o.sampling.temperature, "0: greedy")->check(CLI::Range(0.0, 100.0));
  app.add_option("--top-k", o.sampling.top_k, "0: off")->check(CLI::Range(0, 1 << 30));
  app.add_option("--top-p", o.sampling.top_p, "1: off")->check(CLI::Range(1e-6, 1.0));
  app.add_option("--min-p", o.sampling.min_p, "0: off")->check(CLI::Range(0.0, 0.999999));
  app.add_option("--repetition-penalty", o.sampling.repetition_penalty, "1: off")
      ->check(CLI::Range(0.01, 100.0));
  app.add_option("--seed", o.sampling.seed, "Sampling seed (and --bench prompts)");
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
  const bool ppl = !o.perplexityTokens.empty();
  const bool text = !o.prompt.empty(), pplText = !o.perplexityFile.empty();
  if (!o.prompt.empty() && !o.tokens.empty())
    return fail("give --prompt or --tokens, not both");
  const int modes = !o.dumpLogits.empty() + o.bench + ppl + pplText + o.chat + text +
                    (o.n > 0 && o.dumpLogits.empty() && !text && !o.chat);
  if (modes != 1)
    return fail("give exactly one of --prompt, --chat, --dump-logits, -n (with --tokens), "
                "--perplexity, --perplexity-tokens or --bench");
  std::vector<int32_t> ids;
  if (ppl) {
    std::ifstream in(o.perplexityTokens);
    if (!in)
      return fail(o.perplexityTokens + ": cannot open");
    std::stringstream ss;
    ss << in.rdbuf();
    std::string error;
    if (!parseIds(ss.str(), ids, error))
      return fail(o.perplexityTokens + ": " + error);
  } else if (!o.bench && !text && !pplText && !o.chat) {
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
  so.n_pages = o.kvPages;
  so.kv_memory_fraction = o.kvMemoryFraction;
  if (o.bench && o.maxSeq == 0)
    so.max_seq = o.promptLen + o.genLen + 8;
  if ((ppl || pplText) && o.maxSeq == 0)
    so.max_seq = o.ctx;
  if (qlc_status s = qlc_session_create(h.model, &so, &h.session))
    return failStatus(s, "session");
  if (o.bench)
    return bench(o, h);
  if (ppl)
    return perplexity(o, h, ids);
  if (pplText)
    return perplexityText(o, h);
  if (text)
    return generateText(o, h);
  if (o.chat)
    return chat(o, h);
  if (!o.dumpLogits.empty())
    return dumpLogits(o, h, ids);
  return generate(o, h, ids);
}
