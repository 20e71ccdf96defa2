/* qlc/runtime.h - load a qlc artifact and run it.
 *
 * Every call returns a qlc_status; on failure qlc_last_error() (per thread) says what
 * went wrong. No call aborts or exits the process.
 */
#ifndef QLC_RUNTIME_H
#define QLC_RUNTIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum qlc_status {
  QLC_OK = 0,
  QLC_ERR_INVALID_ARGUMENT = 1, /* a bad argument: null pointer, token id out of range... */
  QLC_ERR_IO = 2,               /* the file could not be opened, read or mapped */
  QLC_ERR_FORMAT = 3,           /* not a qlc artifact, truncated, or checksum mismatch */
  QLC_ERR_TARGET = 4,           /* built for another target than this machine */
  QLC_ERR_OUT_OF_MEMORY = 5,
  QLC_ERR_CAPACITY = 6,         /* sequence longer than max_seq, no free slot... */
  QLC_ERR_INTERNAL = 7
} qlc_status;

typedef struct qlc_model qlc_model;
typedef struct qlc_session qlc_session;

typedef struct qlc_load_options {
  int verify_weights; /* nonzero: check the weights' checksum at load (default on) */
} qlc_load_options;

typedef struct qlc_session_options {
  int32_t n_threads; /* 0: all hardware threads */
  int32_t n_slots;   /* sequences held at once (batch); 0: 1 */
  int32_t max_seq;   /* positions per sequence; 0: the artifact's max_seq_len */
  /* The KV cache is a pool of pages (manifest exec.kv_cache.page_size positions each)
   * shared by the slots: a sequence takes pages as it grows and gives them back on
   * qlc_session_reset. Pages in the pool: n_pages when > 0; else kv_memory_fraction
   * (0, 1] of the memory left (CUDA: the GPU's free memory after weights and scratch;
   * x86: physical memory); else every slot's max_seq (capped by the artifact's KV
   * memory budget, qlc compile --kv-memory). A step that needs a page when none is
   * free fails with QLC_ERR_CAPACITY and changes nothing. */
  int64_t n_pages;
  float kv_memory_fraction;
} qlc_session_options;

const char *qlc_last_error(void);
const char *qlc_status_string(qlc_status s);

qlc_status qlc_model_load(const char *path, const qlc_load_options *opts, qlc_model **out);
void qlc_model_free(qlc_model *m);
/* The artifact's manifest as JSON text; valid until qlc_model_free. */
const char *qlc_model_manifest(const qlc_model *m);
int32_t qlc_model_vocab_size(const qlc_model *m);
/* Bytes of weights mapped from the file. */
int64_t qlc_model_weight_bytes(const qlc_model *m);
/* "cpu" for x86 artifacts, the GPU's name for CUDA ones. */
const char *qlc_model_device_name(const qlc_model *m);

qlc_status qlc_session_create(qlc_model *m, const qlc_session_options *opts,
                              qlc_session **out);
void qlc_session_free(qlc_session *s);
/* Forgets the sequence in `slot`, so its next token is at position 0. */
qlc_status qlc_session_reset(qlc_session *s, int32_t slot);
/* Number of tokens held for the sequence in `slot`. */
int64_t qlc_session_position(const qlc_session *s, int32_t slot);
/* Positions each sequence of the session can hold. */
int64_t qlc_session_max_seq(const qlc_session *s);
/* Pages of the session's KV cache pool: in all (`total`) and free now (`free_pages`);
 * either may be null. */
qlc_status qlc_session_kv_pages(const qlc_session *s, int64_t *total, int64_t *free_pages);
/* Bytes the session allocated: KV cache plus activation scratch. */
int64_t qlc_session_bytes(const qlc_session *s);

/* Appends n tokens to the sequence in `slot`. logits receives vocab floats for the last
 * token, or n*vocab floats (one row per token) when all_logits is nonzero; may be null. */
qlc_status qlc_prefill(qlc_session *s, int32_t slot, const int32_t *tokens, int64_t n,
                       int all_logits, float *logits);
/* Appends one token to each of n sequences in one batched step; logits receives n rows
 * of vocab floats (may be null). Slots must be distinct. */
qlc_status qlc_decode(qlc_session *s, int64_t n, const int32_t *slots,
                      const int32_t *tokens, float *logits);

/* qlc_decode for greedy decoding: next receives each sequence's argmax (qlc_argmax's rule)
 * instead of its logits. A CUDA artifact computes it on the GPU and copies back n ints
 * instead of n rows of vocab floats. */
qlc_status qlc_decode_greedy(qlc_session *s, int64_t n, const int32_t *slots, const int32_t *tokens,
                             int32_t *next);

/* Index of the largest logit (ties: the lowest index; NaNs never win, 0 if logits[0] is
 * NaN). */
int32_t qlc_argmax(const float *logits, int32_t vocab);

/* Text. An artifact compiled from a model with a tokenizer carries it. */
int qlc_model_has_tokenizer(const qlc_model *m);
/* The model's chat template (Jinja text) and the texts of its bos/eos tokens; "" when
 * absent. Valid until qlc_model_free. */
const char *qlc_model_chat_template(const qlc_model *m);
const char *qlc_model_bos_token(const qlc_model *m);
const char *qlc_model_eos_token(const qlc_model *m);
/* Encodes `len` bytes of UTF-8 text (invalid bytes are replaced by U+FFFD first). With
 * add_special, the tokenizer's post-processor adds its tokens (e.g. BOS). Writes at most
 * `cap` ids to `out` and the count to *n_out; QLC_ERR_CAPACITY when cap is too small
 * (*n_out then says how many are needed). */
qlc_status qlc_tokenize(qlc_model *m, const char *text, int64_t len, int add_special,
                        int32_t *out, int64_t cap, int64_t *n_out);

/* Streaming detokenizer: each push returns the text completed so far, never splitting a
 * UTF-8 character across calls. */
typedef struct qlc_detokenizer qlc_detokenizer;
qlc_status qlc_detokenizer_create(qlc_model *m, int skip_special, qlc_detokenizer **out);
void qlc_detokenizer_free(qlc_detokenizer *d);
/* Returns a NUL-terminated string valid until the next call on `d`. */
const char *qlc_detokenizer_push(qlc_detokenizer *d, int32_t token);
const char *qlc_detokenizer_flush(qlc_detokenizer *d);

/* Sampling. temperature 0 is greedy. Filters apply in this order: repetition penalty
 * (over the last `penalty_last_n` tokens given to qlc_sampler_accept), temperature,
 * top-k (0: off), top-p (1: off), min-p (0: off). */
typedef struct qlc_sampler_options {
  float temperature;        /* default 0.8 when the options are null; 0: greedy */
  int32_t top_k;            /* default 40 */
  float top_p;              /* default 0.95 */
  float min_p;              /* default 0.05 */
  float repetition_penalty; /* default 1.0 (off); > 1 discourages repeats */
  int32_t penalty_last_n;   /* default 64 */
  uint64_t seed;            /* default 0 */
} qlc_sampler_options;

typedef struct qlc_sampler qlc_sampler;

/* The defaults listed above. */
qlc_sampler_options qlc_sampler_default_options(void);
qlc_status qlc_sampler_create(const qlc_sampler_options *opts, int32_t vocab, qlc_sampler **out);
void qlc_sampler_free(qlc_sampler *s);
/* Records a token of the sequence (prompt or generated) for the repetition penalty. */
void qlc_sampler_accept(qlc_sampler *s, int32_t token);
/* Draws the next token from `logits` (vocab floats; not modified). */
int32_t qlc_sampler_sample(qlc_sampler *s, const float *logits);

#ifdef __cplusplus
}
#endif

#endif /* QLC_RUNTIME_H */
