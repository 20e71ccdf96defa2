//===- Text.cpp - qlc-run's text modes: --prompt, --perplexity, --chat -----===//
#include "RunCommon.h"

#include "chat/ChatTemplate.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <unistd.h>

namespace qlcrun {

namespace {

bool tokenize(Handles &h, const std::string &what, const std::string &text, bool addSpecial,
              std::vector<int32_t> &ids, int &rc) {
  int64_t n = 0;
  ids.resize(text.size() + 16);
  qlc_status s = qlc_tokenize(h.model, text.data(), static_cast<int64_t>(text.size()),
                              addSpecial, ids.data(), static_cast<int64_t>(ids.size()), &n);
  if (s == QLC_ERR_CAPACITY) {
    ids.resize(static_cast<size_t>(n));
    s = qlc_tokenize(h.model, text.data(), static_cast<int64_t>(text.size()), addSpecial,
                     ids.data(), n, &n);
  }
  if (s != QLC_OK) {
    rc = failStatus(s, what);
    return false;
  }
  ids.resize(static_cast<size_t>(n));
  return true;
}

/// Samples up to `limit` tokens after the logits in `logits`, streaming their text to
/// stdout; stops at an end-of-sequence token. Returns the generated text.
bool streamTokens(const Options &o, Handles &h, qlc_sampler *sampler, std::vector<float> &logits,
                  int limit, std::vector<int32_t> *fed, std::string &text, int &rc) {
  const std::vector<int64_t> eos = eosIds(h);
  qlc_detokenizer *d = nullptr;
  if (qlc_status s = qlc_detokenizer_create(h.model, /*skip_special=*/1, &d)) {
    rc = failStatus(s, "detokenizer");
    return false;
  }
  std::unique_ptr<qlc_detokenizer, decltype(&qlc_detokenizer_free)> guard(d, qlc_detokenizer_free);
  int32_t slot = 0;
  for (int i = 0; i < limit; ++i) {
    int32_t next = qlc_sampler_sample(sampler, logits.data());
    qlc_sampler_accept(sampler, next);
    if (std::find(eos.begin(), eos.end(), next) != eos.end())
      break;
    std::string piece = qlc_detokenizer_push(d, next);
    text += piece;
    std::cout << piece << std::flush;
    if (i + 1 == limit)
      break;
    if (qlc_session_position(h.session, 0) >= qlc_session_max_seq(h.session)) {
      std::cerr << "\nqlc-run: stopped: the sequence reached max_seq\n";
      break;
    }
    if (qlc_status s = qlc_decode(h.session, 1, &slot, &next, logits.data())) {
      rc = failStatus(s, "decode");
      return false;
    }
    if (fed != nullptr)
      fed->push_back(next);
  }
  std::string tail = qlc_detokenizer_flush(d);
  text += tail;
  std::cout << tail << std::flush;
  return true;
}

} // namespace

int generateText(const Options &o, Handles &h) {
  std::vector<int32_t> ids;
  int rc = 0;
  if (!tokenize(h, "--prompt", o.prompt, true, ids, rc))
    return rc;
  if (ids.empty())
    return fail("--prompt: the prompt encodes to no tokens");
  std::vector<float> logits;
  SamplerPtr guard(nullptr, qlc_sampler_free);
  if (int rc2 = startGeneration(o, h, ids, logits, guard))
    return rc2;
  qlc_sampler *sampler = guard.get();
  std::cout << o.prompt << std::flush;
  std::string text;
  if (!streamTokens(o, h, sampler, logits, o.n > 0 ? o.n : 128, nullptr, text, rc))
    return rc;
  std::cout << "\n";
  return 0;
}

int perplexityText(const Options &o, Handles &h) {
  std::ifstream in(o.perplexityFile, std::ios::binary);
  if (!in)
    return fail(o.perplexityFile + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  std::vector<int32_t> ids;
  int rc = 0;
  // The whole text, without special tokens; windows are cut from its tokens.
  if (!tokenize(h, "--perplexity " + o.perplexityFile, ss.str(), false, ids, rc))
    return rc;
  return perplexity(o, h, ids);
}

int chat(const Options &o, Handles &h) {
  const std::string source = qlc_model_chat_template(h.model);
  if (source.empty())
    return fail("--chat: the artifact has no chat template");
  std::string error;
  auto tmpl = qlc::chat::ChatTemplate::parse(source, &error);
  if (!tmpl)
    return fail("--chat: the model's chat template does not parse: " + error);
  const int32_t vocab = qlc_model_vocab_size(h.model);
  qlc_sampler *sampler = nullptr;
  if (qlc_status s = qlc_sampler_create(&o.sampling, vocab, &sampler))
    return failStatus(s, "sampling options");
  std::unique_ptr<qlc_sampler, decltype(&qlc_sampler_free)> guard(sampler, qlc_sampler_free);
  qlc::chat::ChatTemplateInputs in;
  in.extra = {{"bos_token", qlc_model_bos_token(h.model)},
              {"eos_token", qlc_model_eos_token(h.model)}};
  if (!o.system.empty())
    in.messages.push_back({{"role", "system"}, {"content", o.system}});
  const bool tty = isatty(0);
  std::vector<int32_t> fed; // tokens in the KV cache of slot 0
  std::vector<float> logits(vocab);
  std::string line;
  int rc = 0;
  for (;;) {
    if (tty)
      std::cout << "> " << std::flush;
    if (!std::getline(std::cin, line))
      break;
    if (line.empty())
      continue;
    in.messages.push_back({{"role", "user"}, {"content", line}});
    in.addGenerationPrompt = true;
    auto rendered = tmpl->render(in, &error);
    if (!rendered)
      return fail("--chat: the chat template failed: " + error);
    std::vector<int32_t> ids;
    if (!tokenize(h, "--chat", *rendered, false, ids, rc))
      return rc;
    // Reuse the cached prefix of the conversation; feed only what is new.
    size_t common = 0;
    while (common < fed.size() && common < ids.size() && fed[common] == ids[common])
      ++common;
    if (common == ids.size() && common > 0)
      --common; // at least one token must be fed to get logits
    if (common < fed.size()) {
      qlc_session_reset(h.session, 0);
      fed.clear();
      common = 0;
    }
    if (qlc_status s = qlc_prefill(h.session, 0, ids.data() + common,
                                   static_cast<int64_t>(ids.size() - common), 0, logits.data()))
      return failStatus(s, "prefill");
    fed = ids;
    std::string reply;
    if (!streamTokens(o, h, sampler, logits, o.n > 0 ? o.n : 512, &fed, reply, rc))
      return rc;
    std::cout << "\n" << std::flush;
    in.messages.push_back({{"role", "assistant"}, {"content", reply}});
  }
  return 0;
}

} // namespace qlcrun
