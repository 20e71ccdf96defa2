//===- Session.cpp - KV cache, batching of steps and the forward calls -----===//
//
// The KV cache is a pool of pages (PagePool.h) with a block table per slot (qlc/abi.h):
// a prefill or decode first takes the pages its new positions need, for every slot of
// the step, or fails with QLC_ERR_CAPACITY before anything changes; a reset gives a
// slot's pages back.
//
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include "Buffers.h"
#include "Internal.h"
#include "PagePool.h"
#include "ThreadPool.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>
#include <unistd.h>

using qlc::rt::fail;

struct qlc_session {
  qlc_model *model = nullptr;
  std::unique_ptr<qlc::rt::ThreadPool> pool;
  qlc::rt::AlignedBuffer scratch, kv;
  // CUDA artifacts: the cache and scratch on the GPU, and the session's stream.
  qlc::rt::DeviceBuffer deviceScratch, deviceKv, deviceTable;
  void *stream = nullptr;
  qlc_exec_ctx ctx{};
  std::vector<int64_t> pos; // tokens held per slot
  int64_t maxSeq = 0;
  // The paged cache: the free pages, the block table [slots][pagesPerSeq] and the
  // pages each slot holds (its first `held` table entries).
  qlc::rt::PagePool pages;
  std::vector<int32_t> table;
  std::vector<int64_t> held;
  int64_t pagesPerSeq = 0;
  bool tableDirty = false; // CUDA: the device copy is stale
  // Per-step staging, reused across calls.
  std::vector<int32_t> positions, slots, rows;
  std::vector<float> greedyLogits; // qlc_decode_greedy on x86 artifacts
  // QLC_CHECK_BUFFERS=1 (x86): a guard region after the scratch arena, checked after
  // every step; null when off.
  uint8_t *guard = nullptr;
};

namespace {

qlc_status checkTokens(const qlc_session *s, const int32_t *tokens, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= s->model->vocab)
      return fail(QLC_ERR_INVALID_ARGUMENT, "token id " + std::to_string(tokens[i]) +
                                                " at index " + std::to_string(i) +
                                                " is outside the vocabulary [0, " +
                                                std::to_string(s->model->vocab) + ")");
  return QLC_OK;
}

/// Pages slot `slot` needs to hold `len` positions beyond those it holds.
int64_t pagesWanted(const qlc_session *s, int32_t slot, int64_t len) {
  const int64_t want = (len + s->model->kvPageSize - 1) / s->model->kvPageSize;
  return want > s->held[slot] ? want - s->held[slot] : 0;
}

qlc_status noPages(const qlc_session *s, int64_t wanted) {
  return fail(QLC_ERR_CAPACITY,
              "the KV cache is full: the step needs " + std::to_string(wanted) +
                  " more page(s) of " + std::to_string(s->model->kvPageSize) +
                  " positions, " + std::to_string(s->pages.available()) + " of " +
                  std::to_string(s->pages.total()) +
                  " are free; reset finished sequences or give the session more pages "
                  "(n_pages, kv_memory_fraction; qlc-run --kv-pages)");
}

/// Takes the pages slot `slot` needs to hold `len` positions (call after checking that
/// enough are free).
void takePages(qlc_session *s, int32_t slot, int64_t len) {
  for (int64_t k = pagesWanted(s, slot, len); k > 0; --k) {
    s->table[slot * s->pagesPerSeq + s->held[slot]] = s->pages.take();
    ++s->held[slot];
    s->tableDirty = true;
  }
}

qlc_status runStep(qlc_session *s, int64_t n, const int32_t *tokens, int64_t nLogits, float *logits,
                   int32_t *argmax = nullptr) {
  if (s->tableDirty && s->model->device != nullptr) {
    // The forward's kernels (and graphs) read the table at a fixed device address.
    if (s->model->device->upload(s->deviceTable.data, s->table.data(), s->table.size() * 4) != 0)
      return qlc::rt::deviceFail(s->model->device, QLC_ERR_INTERNAL, "uploading the block table");
  }
  s->tableDirty = false;
  qlc_step st{};
  st.n_tokens = n;
  st.tokens = tokens;
  st.positions = s->positions.data();
  st.slots = s->slots.data();
  st.n_logits = nLogits;
  st.logit_rows = s->rows.data();
  st.logits = logits;
  st.argmax = argmax;
  int rc = s->model->forward(&s->ctx, &st);
  if (rc != 0 && s->model->device != nullptr)
    return qlc::rt::deviceFail(s->model->device, QLC_ERR_INTERNAL, "the forward step");
  if (rc == 3)
    return fail(QLC_ERR_INTERNAL, "the artifact's kernels were built for KV pages of another "
                                  "size than the session's (or the session has no block table)");
  if (rc != 0)
    return fail(QLC_ERR_INTERNAL, "the artifact's forward failed with code " + std::to_string(rc));
  if (s->guard != nullptr)
    if (int64_t at = qlc::rt::checkGuard(s->guard); at >= 0)
      return fail(QLC_ERR_INTERNAL,
                  "QLC_CHECK_BUFFERS: the forward step wrote past the activation arena of " +
                      std::to_string(s->model->scratchBytes) + " bytes (guard byte " +
                      std::to_string(at) + " changed): the artifact's buffer plan is wrong");
  return QLC_OK;
}

} // namespace

extern "C" qlc_status qlc_session_create(qlc_model *m, const qlc_session_options *opts,
                                         qlc_session **out) {
  if (m == nullptr || out == nullptr)
    return fail(QLC_ERR_INVALID_ARGUMENT, "qlc_session_create: model and out must not be null");
  *out = nullptr;
  qlc_session_options o{};
  if (opts != nullptr)
    o = *opts;
  if (o.n_threads < 0 || o.n_slots < 0 || o.max_seq < 0 || o.n_pages < 0)
    return fail(QLC_ERR_INVALID_ARGUMENT, "session options must not be negative");
  if (!(o.kv_memory_fraction >= 0.0f && o.kv_memory_fraction <= 1.0f))
    return fail(QLC_ERR_INVALID_ARGUMENT, "kv_memory_fraction must be in (0, 1] (or 0), got " +
                                              std::to_string(o.kv_memory_fraction));
  if (o.n_pages > INT32_MAX)
    return fail(QLC_ERR_CAPACITY, "n_pages " + std::to_string(o.n_pages) +
                                      " exceeds the 2147483647 pages a block table can name");
  int threads = o.n_threads ? o.n_threads : static_cast<int>(std::thread::hardware_concurrency());
  int slots = o.n_slots ? o.n_slots : 1;
  int64_t maxSeq = o.max_seq ? o.max_seq : m->maxSeqLen;
  auto s = std::make_unique<qlc_session>();
  s->model = m;
  s->maxSeq = maxSeq;
  s->pos.assign(slots, 0);
  // max_seq may come from the artifact's manifest: refuse sizes whose product overflows
  // (a wrapped size would allocate a tiny cache that the kernels then overrun).
  if (maxSeq > INT32_MAX)
    return fail(QLC_ERR_CAPACITY, "max_seq " + std::to_string(maxSeq) +
                                      " exceeds the 2147483647 positions a sequence can have");
  const int64_t P = m->kvPageSize;
  s->pagesPerSeq = (maxSeq + P - 1) / P;
  size_t tableLen = 0;
  int64_t need = 0; // pages for every slot at max_seq
  if (__builtin_mul_overflow(static_cast<size_t>(slots), static_cast<size_t>(s->pagesPerSeq),
                             &tableLen) ||
      __builtin_mul_overflow(int64_t{slots}, s->pagesPerSeq, &need))
    return fail(QLC_ERR_CAPACITY, "max_seq " + std::to_string(maxSeq) + " with " +
                                      std::to_string(slots) + " slots needs a block table "
                                      "larger than memory; lower max_seq or n_slots");
  if (m->device != nullptr) {
    // Scratch first: a memory fraction is of what is left after weights and scratch.
    if (qlc_status st = s->deviceScratch.allocate(
            m->device, static_cast<size_t>(m->scratchBytes),
            "the activation scratch (" + std::to_string(m->scratchBytes) + " bytes)"))
      return st;
  }
  int64_t nPages = 0;
  if (o.n_pages > 0) {
    nPages = o.n_pages;
  } else if (o.kv_memory_fraction > 0.0f) {
    uint64_t avail = 0, total = 0;
    if (m->device != nullptr) {
      if (m->device->mem_info(&avail, &total) != 0)
        return qlc::rt::deviceFail(m->device, QLC_ERR_INTERNAL, "reading the GPU's free memory");
    } else {
      avail = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) *
              static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    }
    const double budget = static_cast<double>(o.kv_memory_fraction) * static_cast<double>(avail);
    nPages = static_cast<int64_t>(std::min(budget / static_cast<double>(m->kvPageBytes),
                                           static_cast<double>(need)));
    if (nPages < s->pagesPerSeq)
      return fail(QLC_ERR_CAPACITY,
                  "kv_memory_fraction " + std::to_string(o.kv_memory_fraction) + " of " +
                      std::to_string(avail) + " free bytes holds " + std::to_string(nPages) +
                      " KV pages of " + std::to_string(m->kvPageBytes) +
                      " bytes; one sequence of max_seq " + std::to_string(maxSeq) + " needs " +
                      std::to_string(s->pagesPerSeq));
  } else {
    nPages = m->kvBudgetBytes > 0 ? std::min(need, m->kvPlanPages) : need;
  }
  if (nPages > INT32_MAX)
    nPages = INT32_MAX;
  nPages = std::max<int64_t>(nPages, 1);
  size_t kvBytes = 0;
  if (__builtin_mul_overflow(static_cast<size_t>(nPages), static_cast<size_t>(m->kvPageBytes),
                             &kvBytes))
    return fail(QLC_ERR_CAPACITY, std::to_string(nPages) + " KV pages of " +
                                      std::to_string(m->kvPageBytes) +
                                      " bytes are larger than memory; lower max_seq or n_slots");
  s->pages = qlc::rt::PagePool(static_cast<int32_t>(nPages));
  // Tests of the paged addressing hand pages out in a random order.
  if (const char *seed = std::getenv("QLC_KV_PAGE_SHUFFLE"); seed != nullptr && *seed != '\0')
    s->pages.shuffle(std::strtoull(seed, nullptr, 10));
  s->held.assign(slots, 0);
  try {
    s->table.assign(tableLen, 0); // entries past a slot's held pages are never read
  } catch (const std::bad_alloc &) {
    return fail(QLC_ERR_OUT_OF_MEMORY, "cannot allocate the KV block table; lower max_seq or "
                                       "n_slots");
  }
  s->ctx.page_size = P;
  s->ctx.max_pages_per_seq = s->pagesPerSeq;
  s->ctx.n_pages = nPages;
  if (m->device != nullptr) {
    if (qlc_status st = s->deviceKv.allocate(m->device, kvBytes,
                                             "the KV cache (" + std::to_string(nPages) +
                                                 " pages, " + std::to_string(kvBytes) +
                                                 " bytes); lower max_seq, n_slots or n_pages"))
      return st;
    if (qlc_status st = s->deviceTable.allocate(m->device, tableLen * 4, "the KV block table"))
      return st;
    if (m->device->upload(s->deviceTable.data, s->table.data(), tableLen * 4) != 0)
      return qlc::rt::deviceFail(m->device, QLC_ERR_INTERNAL, "uploading the block table");
    if (m->device->stream_create(&s->stream) != 0)
      return qlc::rt::deviceFail(m->device, QLC_ERR_INTERNAL, "creating the session's stream");
    s->ctx.weights = m->weights.data();
    s->ctx.scratch = static_cast<uint8_t *>(s->deviceScratch.data);
    s->ctx.kv = s->deviceKv.data;
    s->ctx.block_table = static_cast<const int32_t *>(s->deviceTable.data);
    s->ctx.max_seq = maxSeq;
    s->ctx.n_slots = slots;
    s->ctx.pool = s->stream;
    *out = s.release();
    return QLC_OK;
  }
  const bool guard = qlc::rt::bufferGuardEnabled();
  const size_t scratchAlloc = static_cast<size_t>(m->scratchBytes) +
                              (guard ? qlc::rt::kGuardBytes : 0);
  if (!s->kv.allocate(kvBytes) || !s->scratch.allocate(scratchAlloc))
    return fail(QLC_ERR_OUT_OF_MEMORY,
                "cannot allocate the KV cache (" + std::to_string(nPages) + " pages, " +
                    std::to_string(kvBytes) + " bytes) and scratch; lower max_seq, n_slots "
                    "or n_pages");
  try {
    s->pool = std::make_unique<qlc::rt::ThreadPool>(std::max(threads, 1));
  } catch (const std::exception &e) {
    return fail(QLC_ERR_INTERNAL, std::string("cannot start worker threads: ") + e.what());
  }
  s->ctx.weights = m->weights.data();
  s->ctx.scratch = s->scratch.data;
  if (guard) { // right after the arena (the manifest's size, to the byte)
    s->guard = s->scratch.data + m->scratchBytes;
    qlc::rt::fillGuard(s->guard);
  }
  s->ctx.kv = s->kv.data;
  s->ctx.block_table = s->table.data();
  s->ctx.max_seq = maxSeq;
  s->ctx.n_slots = slots;
  s->ctx.pool = s->pool.get();
  s->ctx.parallel_for = &qlc::rt::ThreadPool::parallelForC;
  *out = s.release();
  return QLC_OK;
}

extern "C" void qlc_session_free(qlc_session *s) {
  if (s != nullptr && s->stream != nullptr) {
    s->model->device->forget_context(&s->ctx);
    s->model->device->stream_destroy(s->stream);
  }
  delete s;
}

extern "C" qlc_status qlc_session_reset(qlc_session *s, int32_t slot) {
  if (s == nullptr || slot < 0 || slot >= static_cast<int32_t>(s->pos.size()))
    return fail(QLC_ERR_INVALID_ARGUMENT, "qlc_session_reset: no such slot");
  s->pos[slot] = 0;
  for (int64_t i = 0; i < s->held[slot]; ++i)
    s->pages.give(s->table[slot * s->pagesPerSeq + i]);
  s->held[slot] = 0;
  return QLC_OK;
}

extern "C" qlc_status qlc_session_kv_pages(const qlc_session *s, int64_t *total,
                                           int64_t *free_pages) {
  if (s == nullptr)
    return fail(QLC_ERR_INVALID_ARGUMENT, "qlc_session_kv_pages: no session");
  if (total != nullptr)
    *total = s->pages.total();
  if (free_pages != nullptr)
    *free_pages = s->pages.available();
  return QLC_OK;
}

extern "C" int64_t qlc_session_position(const qlc_session *s, int32_t slot) {
  if (s == nullptr || slot < 0 || slot >= static_cast<int32_t>(s->pos.size()))
    return -1;
  return s->pos[slot];
}

extern "C" int64_t qlc_session_max_seq(const qlc_session *s) { return s ? s->maxSeq : 0; }

extern "C" int64_t qlc_session_bytes(const qlc_session *s) {
  return s ? static_cast<int64_t>(s->kv.size + s->scratch.size + s->deviceKv.size +
                                  s->deviceScratch.size)
           : 0;
}

extern "C" qlc_status qlc_prefill(qlc_session *s, int32_t slot, const int32_t *tokens,
                                  int64_t n, int all_logits, float *logits) {
  if (s == nullptr || tokens == nullptr || n <= 0)
    return fail(QLC_ERR_INVALID_ARGUMENT, "qlc_prefill: session and tokens must be given, n > 0");
  if (slot < 0 || slot >= static_cast<int32_t>(s->pos.size()))
    return fail(QLC_ERR_INVALID_ARGUMENT, "qlc_prefill: slot " + std::to_string(slot) +
                                              " does not exist");
  if (s->pos[slot] + n > s->maxSeq)
    return fail(QLC_ERR_CAPACITY, "sequence would hold " + std::to_string(s->pos[slot] + n) +
                                      " tokens, more than max_seq " + std::to_string(s->maxSeq));
  if (qlc_status st = checkTokens(s, tokens, n))
    return st;
  // Every page of the prompt first: a prefill that cannot finish does not start.
  if (const int64_t w = pagesWanted(s, slot, s->pos[slot] + n); w > s->pages.available())
    return noPages(s, w);
  takePages(s, slot, s->pos[slot] + n);
  const int64_t vocab = s->model->vocab, chunkMax = s->model->maxTokens;
  for (int64_t done = 0; done < n;) {
    const int64_t c = std::min(chunkMax, n - done);
    s->positions.resize(c);
    s->slots.assign(c, slot);
    for (int64_t i = 0; i < c; ++i)
      s->positions[i] = static_cast<int32_t>(s->pos[slot] + i);
    const bool last = done + c == n;
    float *out = nullptr;
    int64_t nLogits = 0;
    if (logits != nullptr && all_logits) {
      nLogits = c;
      s->rows.resize(c);
      for (int64_t i = 0; i < c; ++i)
        s->rows[i] = static_cast<int32_t>(i);
      out = logits + done * vocab;
    } else if (logits != nullptr && last) {
      nLogits = 1;
      s->rows.assign(1, static_cast<int32_t>(c - 1));
      out = logits;
    }
    if (qlc_status st = runStep(s, c, tokens + done, nLogits, out))
      return st;
    s->pos[slot] += c;
    done += c;
  }
  return QLC_OK;
}

namespace {

/// qlc_decode, with the logits' argmax per row into `argmax` where it is not null.
qlc_status decodeStep(qlc_session *s, int64_t n, const int32_t *slots, const int32_t *tokens,
                      float *logits, int32_t *argmax) {
  if (s == nullptr || slots == nullptr || tokens == nullptr || n <= 0)
    return fail(QLC_ERR_INVALID_ARGUMENT, "qlc_decode: session, slots and tokens must be given");
  if (n > s->model->maxTokens)
    return fail(QLC_ERR_CAPACITY, "qlc_decode: batch of " + std::to_string(n) +
                                      " exceeds the artifact's max tokens per step " +
                                      std::to_string(s->model->maxTokens));
  if (qlc_status st = checkTokens(s, tokens, n))
    return st;
  std::vector<bool> seen(s->pos.size(), false);
  s->positions.resize(n);
  s->slots.assign(slots, slots + n);
  for (int64_t i = 0; i < n; ++i) {
    int32_t sl = slots[i];
    if (sl < 0 || sl >= static_cast<int32_t>(s->pos.size()) || seen[sl])
      return fail(QLC_ERR_INVALID_ARGUMENT, "qlc_decode: slot " + std::to_string(sl) +
                                                " is out of range or repeated");
    seen[sl] = true;
    if (s->pos[sl] + 1 > s->maxSeq)
      return fail(QLC_ERR_CAPACITY, "sequence in slot " + std::to_string(sl) +
                                        " is full (max_seq " + std::to_string(s->maxSeq) + ")");
    s->positions[i] = static_cast<int32_t>(s->pos[sl]);
  }
  int64_t wanted = 0;
  for (int64_t i = 0; i < n; ++i)
    wanted += pagesWanted(s, slots[i], s->pos[slots[i]] + 1);
  if (wanted > s->pages.available())
    return noPages(s, wanted);
  for (int64_t i = 0; i < n; ++i)
    takePages(s, slots[i], s->pos[slots[i]] + 1);
  s->rows.resize(n);
  for (int64_t i = 0; i < n; ++i)
    s->rows[i] = static_cast<int32_t>(i);
  if (argmax != nullptr && s->model->device != nullptr) { // the GPU takes the argmax
    if (qlc_status st = runStep(s, n, tokens, n, logits, argmax))
      return st;
  } else if (argmax != nullptr) { // x86: from the logits, here
    const int64_t vocab = s->model->vocab;
    if (logits == nullptr && s->greedyLogits.size() < static_cast<size_t>(n * vocab))
      s->greedyLogits.resize(static_cast<size_t>(n * vocab));
    float *l = logits != nullptr ? logits : s->greedyLogits.data();
    if (qlc_status st = runStep(s, n, tokens, n, l))
      return st;
    for (int64_t i = 0; i < n; ++i)
      argmax[i] = qlc_argmax(l + i * vocab, static_cast<int32_t>(vocab));
  } else if (qlc_status st = runStep(s, n, tokens, logits ? n : 0, logits)) {
    return st;
  }
  for (int64_t i = 0; i < n; ++i)
    ++s->pos[slots[i]];
  return QLC_OK;
}

} // namespace

extern "C" qlc_status qlc_decode(qlc_session *s, int64_t n, const int32_t *slots,
                                 const int32_t *tokens, float *logits) {
  return decodeStep(s, n, slots, tokens, logits, nullptr);
}

extern "C" qlc_status qlc_decode_greedy(qlc_session *s, int64_t n, const int32_t *slots,
                                        const int32_t *tokens, int32_t *next) {
  if (next == nullptr)
    return fail(QLC_ERR_INVALID_ARGUMENT, "qlc_decode_greedy: next must be given");
  return decodeStep(s, n, slots, tokens, nullptr, next);
}

/// The first index of the largest value; NaNs never win (a NaN at index 0 gives 0, like
/// the plain loop `if (l[i] > l[best]) best = i`). Two passes: the maximum (SSE2 MAXPS,
/// whose `a > b ? a : b` is that loop's comparison), then its first index. A batch-64
/// decode step of a 32,000-word vocabulary reads 2 M logits on the host.
extern "C" int32_t qlc_argmax(const float *logits, int32_t vocab) {
  if (vocab <= 0)
    return 0;
  float m = logits[0];
  int32_t i = 1;
#if defined(__SSE2__)
  if (vocab >= 17) {
    __m128 a = _mm_set1_ps(m), b = a, c = a, d = a;
    for (; i + 16 <= vocab; i += 16) {
      a = _mm_max_ps(_mm_loadu_ps(logits + i), a);
      b = _mm_max_ps(_mm_loadu_ps(logits + i + 4), b);
      c = _mm_max_ps(_mm_loadu_ps(logits + i + 8), c);
      d = _mm_max_ps(_mm_loadu_ps(logits + i + 12), d);
    }
    alignas(16) float lanes[16];
    _mm_store_ps(lanes, a);
    _mm_store_ps(lanes + 4, b);
    _mm_store_ps(lanes + 8, c);
    _mm_store_ps(lanes + 12, d);
    for (float v : lanes) // each lane's value is m or a value that beat it
      m = v > m ? v : m;
  }
#endif
  for (; i < vocab; ++i)
    m = logits[i] > m ? logits[i] : m;
  for (int32_t j = 0; j < vocab; ++j)
    if (logits[j] == m)
      return j;
  return 0; // m is NaN: logits[0] was
}
