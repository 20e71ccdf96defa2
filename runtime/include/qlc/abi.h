/* qlc/abi.h - the contract between a compiled artifact's code and the runtime.
 *
 * An artifact's code exports two C functions. The runtime fills a qlc_exec_ctx once per
 * session and a qlc_step per forward call. Everything else the runtime needs (shapes,
 * buffer sizes, weight table) is in the artifact's JSON manifest.
 */
#ifndef QLC_ABI_H
#define QLC_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QLC_ABI_VERSION 3u

/* Runs fn(arg, begin, end) over [0, n) split into chunks of at least `grain`. */
typedef void (*qlc_task_fn)(void *arg, int64_t begin, int64_t end);
typedef void (*qlc_parallel_for_fn)(void *pool, int64_t n, int64_t grain, qlc_task_fn fn,
                                    void *arg);

typedef struct qlc_exec_ctx {
  const void *const *weights; /* one pointer per entry of the manifest's weight table */
  uint8_t *scratch;           /* activation arena of manifest exec.scratch_bytes, 64-aligned */
  void *kv;                   /* KV cache, 64-aligned: a pool of pages, each
                                 [layer][k|v][page_size][row]; a row's bytes and encoding:
                                 manifest exec.kv_cache */
  int64_t max_seq;            /* positions per sequence slot */
  int64_t n_slots;            /* sequence slots */
  void *pool;
  qlc_parallel_for_fn parallel_for;
  /* The block table, [n_slots][max_pages_per_seq]: the page holding positions
   * [i * page_size, (i + 1) * page_size) of a slot's sequence is block_table[slot *
   * max_pages_per_seq + i]. The runtime assigns a page before a step writes a position
   * of it. page_size is the artifact's (manifest exec.kv_cache.page_size, a constant of
   * its kernels); the forward refuses another. */
  const int32_t *block_table;
  int64_t page_size;
  int64_t max_pages_per_seq;
  int64_t n_pages;            /* pages in kv */
} qlc_exec_ctx;

/* One forward step over n_tokens tokens, possibly of several sequences. Token i is at
 * position positions[i] of sequence slot slots[i]; a token attends to positions <= its
 * own in its slot, so the tokens of one sequence must come in position order. Logits are
 * computed for the rows listed in logit_rows only, into logits[n_logits][vocab]. */
typedef struct qlc_step {
  int64_t n_tokens; /* 1 .. manifest exec.max_tokens */
  const int32_t *tokens;
  const int32_t *positions;
  const int32_t *slots;
  int64_t n_logits;
  const int32_t *logit_rows;
  float *logits;
  /* CUDA artifacts: if not null, receives each logit row's argmax (qlc_argmax's rule: the
   * first largest value, NaNs never win, 0 for a NaN at index 0), computed on the GPU;
   * `logits` may then be null, and only these n_logits ints are copied back. x86
   * artifacts ignore it (the runtime computes it from the logits). */
  int32_t *argmax;
} qlc_step;

/* CUDA artifacts. Their code carries its own CUDA runtime (linked statically) and
 * exports qlc_artifact_device(), through which the runtime, which links no CUDA, checks
 * the GPU, allocates device memory and uploads the weights. For such an artifact every
 * pointer in qlc_exec_ctx (weights, scratch, kv) is a device pointer and `pool` is the
 * session's cudaStream_t (block_table too is a device pointer: the runtime uploads it
 * when it changes, before the forward); qlc_step's pointers stay host pointers: the forward copies
 * them in and the logits out, and returns when the logits are on the host. A nonzero
 * return (from any function here) leaves a message in last_error(). */
typedef struct qlc_device_api {
  uint32_t struct_size;
  /* Picks the GPU (QLC_CUDA_DEVICE, default 0) and checks the driver and that its compute
   * capability runs this artifact's code. */
  int (*init)(void);
  const char *(*last_error)(void);
  const char *(*device_name)(void);
  int (*mem_info)(uint64_t *free_bytes, uint64_t *total_bytes);
  int (*alloc)(void **ptr, uint64_t bytes);
  void (*release)(void *ptr);
  int (*upload)(void *dst, const void *src, uint64_t bytes);
  int (*zero)(void *dst, uint64_t bytes);
  int (*stream_create)(void **stream);
  void (*stream_destroy)(void *stream);
  /* Drops what the code cached for a session's context (its decode-step graphs). */
  void (*forget_context)(const qlc_exec_ctx *ctx);
} qlc_device_api;

typedef uint32_t (*qlc_artifact_abi_version_fn)(void);
typedef const qlc_device_api *(*qlc_artifact_device_fn)(void);
typedef int (*qlc_artifact_forward_fn)(const qlc_exec_ctx *ctx, const qlc_step *step);

#define QLC_ARTIFACT_ABI_SYMBOL "qlc_artifact_abi_version"
#define QLC_ARTIFACT_FORWARD_SYMBOL "qlc_artifact_forward"
#define QLC_ARTIFACT_DEVICE_SYMBOL "qlc_artifact_device"

#ifdef __cplusplus
}
#endif

#endif /* QLC_ABI_H */
