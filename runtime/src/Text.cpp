//===- Text.cpp - tokenize and detokenize with the artifact's tokenizer ----===//
#include "Internal.h"

#include "tokenizer/Tokenizer.h"

#include <cstring>

using qlc::rt::fail;
using qlc::tok::StreamDecoder;
using qlc::tok::Tokenizer;

struct qlc_detokenizer {
  std::shared_ptr<void> keep; // the tokenizer outlives the decoder
  std::unique_ptr<StreamDecoder> dec;
  std::string last;
};

namespace {

/// The model's tokenizer, parsed on first use.
const Tokenizer *tokenizerOf(qlc_model *m) {
  if (m == nullptr || m->tokenizerJson.empty()) {
    fail(QLC_ERR_INVALID_ARGUMENT, "the artifact has no tokenizer (compile a model folder with "
                                   "tokenizer.json, or a GGUF file)");
    return nullptr;
  }
  if (!m->tokenizer) {
    std::string error;
    std::unique_ptr<Tokenizer> t = Tokenizer::fromJson(m->tokenizerJson, &error);
    if (!t) {
      fail(QLC_ERR_FORMAT, m->path + ": its tokenizer does not load: " + error);
      return nullptr;
    }
    m->tokenizer = std::shared_ptr<void>(t.release(), [](void *p) {
      delete static_cast<Tokenizer *>(p);
    });
  }
  return static_cast<const Tokenizer *>(m->tokenizer.get());
}

} // namespace

extern "C" int qlc_model_has_tokenizer(const qlc_model *m) {
  return m != nullptr && !m->tokenizerJson.empty();
}
extern "C" const char *qlc_model_chat_template(const qlc_model *m) {
  return m ? m->chatTemplate.c_str() : "";
}
extern "C" const char *qlc_model_bos_token(const qlc_model *m) { return m ? m->bosToken.c_str() : ""; }
extern "C" const char *qlc_model_eos_token(const qlc_model *m) { return m ? m->eosToken.c_str() : ""; }

extern "C" qlc_status qlc_tokenize(qlc_model *m, const char *text, int64_t len, int add_special,
                                   int32_t *out, int64_t cap, int64_t *n_out) {
  if (text == nullptr || len < 0 || n_out == nullptr || cap < 0 || (cap > 0 && out == nullptr))
    return fail(QLC_ERR_INVALID_ARGUMENT, "qlc_tokenize: bad arguments");
  const Tokenizer *t = tokenizerOf(m);
  if (t == nullptr)
    return m == nullptr || m->tokenizerJson.empty() ? QLC_ERR_INVALID_ARGUMENT : QLC_ERR_FORMAT;
  std::vector<int32_t> ids;
  try {
    ids = t->encode(std::string_view(text, static_cast<size_t>(len)), add_special != 0);
  } catch (const std::exception &e) {
    return fail(QLC_ERR_INTERNAL, std::string("tokenizer failed: ") + e.what());
  }
  *n_out = static_cast<int64_t>(ids.size());
  if (static_cast<int64_t>(ids.size()) > cap)
    return fail(QLC_ERR_CAPACITY, "qlc_tokenize: " + std::to_string(ids.size()) +
                                      " tokens do not fit in " + std::to_string(cap));
  std::memcpy(out, ids.data(), ids.size() * sizeof(int32_t));
  return QLC_OK;
}

extern "C" qlc_status qlc_detokenizer_create(qlc_model *m, int skip_special, qlc_detokenizer **out) {
  if (out == nullptr)
    return fail(QLC_ERR_INVALID_ARGUMENT, "qlc_detokenizer_create: out must not be null");
  *out = nullptr;
  const Tokenizer *t = tokenizerOf(m);
  if (t == nullptr)
    return m == nullptr || m->tokenizerJson.empty() ? QLC_ERR_INVALID_ARGUMENT : QLC_ERR_FORMAT;
  auto d = std::make_unique<qlc_detokenizer>();
  d->keep = m->tokenizer;
  d->dec = std::make_unique<StreamDecoder>(*t, skip_special != 0);
  *out = d.release();
  return QLC_OK;
}

extern "C" void qlc_detokenizer_free(qlc_detokenizer *d) { delete d; }

extern "C" const char *qlc_detokenizer_push(qlc_detokenizer *d, int32_t token) {
  if (d == nullptr)
    return "";
  d->last = d->dec->push(token);
  return d->last.c_str();
}

extern "C" const char *qlc_detokenizer_flush(qlc_detokenizer *d) {
  if (d == nullptr)
    return "";
  d->last = d->dec->flush();
  return d->last.c_str();
}
