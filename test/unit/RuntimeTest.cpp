//===- RuntimeTest.cpp - the runtime's C API and thread pool ---------------===//
//
// The tests that need an artifact read its path from QLC_TEST_ARTIFACT (the e2e suite
// compiles one and runs this binary with it); without it they are skipped.
//
#include "PagePool.h"
#include "ThreadPool.h"
#include "qlc/runtime.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <vector>

TEST(ThreadPool, CoversEveryIndexOnce) {
  for (int threads : {1, 2, 4}) {
    qlc::rt::ThreadPool pool(threads);
    for (int64_t n : {1, 2, 7, 100, 12345}) {
      for (int64_t grain : {1, 3, 1000}) {
        std::vector<std::atomic<int>> hits(n);
        auto fn = [](void *arg, int64_t b, int64_t e) {
          auto *h = static_cast<std::vector<std::atomic<int>> *>(arg);
          for (int64_t i = b; i < e; ++i)
            (*h)[i].fetch_add(1);
        };
        pool.parallelFor(n, grain, fn, &hits);
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(hits[i].load(), 1) << "threads " << threads << " n " << n << " i " << i;
      }
    }
  }
}

TEST(ThreadPool, ManyShortJobs) {
  qlc::rt::ThreadPool pool(3);
  std::atomic<int64_t> sum{0};
  auto fn = [](void *arg, int64_t b, int64_t e) {
    int64_t s = 0;
    for (int64_t i = b; i < e; ++i)
      s += i;
    static_cast<std::atomic<int64_t> *>(arg)->fetch_add(s);
  };
  for (int rep = 0; rep < 20000; ++rep)
    pool.parallelFor(64, 1, fn, &sum);
  EXPECT_EQ(sum.load(), 20000LL * (63 * 64 / 2));
}

TEST(PagePool, TakesEveryPageOnceAndReusesGivenOnes) {
  qlc::rt::PagePool pool(5);
  EXPECT_EQ(pool.total(), 5);
  std::vector<int32_t> got;
  for (int i = 0; i < 5; ++i)
    got.push_back(pool.take());
  EXPECT_EQ(got, (std::vector<int32_t>{0, 1, 2, 3, 4})) << "in order from page 0";
  EXPECT_EQ(pool.take(), -1) << "none left";
  EXPECT_EQ(pool.available(), 0);
  EXPECT_TRUE(pool.give(3));
  EXPECT_TRUE(pool.give(1));
  EXPECT_FALSE(pool.give(1)) << "given twice";
  EXPECT_FALSE(pool.give(7)) << "out of range";
  EXPECT_FALSE(pool.give(-1));
  EXPECT_EQ(pool.available(), 2);
  EXPECT_EQ(pool.take(), 1) << "last given, first taken";
  EXPECT_EQ(pool.take(), 3);
  EXPECT_EQ(pool.take(), -1);
}

TEST(PagePool, ShuffledPoolStillHandsOutEveryPageOnce) {
  qlc::rt::PagePool pool(64);
  pool.shuffle(42);
  std::vector<int32_t> got;
  for (int32_t p; (p = pool.take()) >= 0;)
    got.push_back(p);
  ASSERT_EQ(got.size(), 64u);
  std::vector<int32_t> sorted = got;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 64; ++i)
    EXPECT_EQ(sorted[i], i);
  bool identity = true;
  for (int i = 0; i < 64; ++i)
    identity = identity && got[i] == i;
  EXPECT_FALSE(identity) << "a shuffled pool hands pages out of order";
}

/// The plain loop qlc_argmax must agree with: the first index of the largest value.
static int32_t argmaxLoop(const float *l, int32_t n) {
  int32_t best = 0;
  for (int32_t i = 1; i < n; ++i)
    if (l[i] > l[best])
      best = i;
  return best;
}

TEST(RuntimeApi, ArgmaxIsTheFirstLargest) {
  std::srand(7);
  for (int32_t n : {1, 2, 15, 16, 17, 31, 33, 100, 32000, 32003}) {
    std::vector<float> l(n);
    for (int trial = 0; trial < 20; ++trial) {
      for (float &v : l) // few distinct values: ties everywhere
        v = static_cast<float>(std::rand() % (trial % 2 ? 7 : 100000)) - 3.0f;
      if (trial == 3)
        l[n - 1] = 1e9f; // the last element
      if (trial == 4)
        for (int32_t j = 1; j < n; j += 5) // NaNs never win (in every SIMD lane)
          l[j] = std::nanf("");
      if (trial == 5)
        l[0] = std::nanf(""); // except at index 0, as in the loop
      if (trial == 6)
        std::fill(l.begin(), l.end(), -1.0f);
      EXPECT_EQ(qlc_argmax(l.data(), n), argmaxLoop(l.data(), n))
          << "n=" << n << " trial " << trial;
    }
  }
}

TEST(RuntimeApi, RejectsBadArguments) {
  qlc_model *m = nullptr;
  EXPECT_EQ(qlc_model_load(nullptr, nullptr, &m), QLC_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(qlc_model_load("/nonexistent/model.so", nullptr, &m), QLC_ERR_IO);
  EXPECT_NE(std::string(qlc_last_error()).find("/nonexistent/model.so"), std::string::npos);
  EXPECT_EQ(m, nullptr);
  EXPECT_EQ(qlc_session_create(nullptr, nullptr, nullptr), QLC_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(qlc_prefill(nullptr, 0, nullptr, 1, 0, nullptr), QLC_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(qlc_decode(nullptr, 1, nullptr, nullptr, nullptr), QLC_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(qlc_decode_greedy(nullptr, 1, nullptr, nullptr, nullptr), QLC_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(qlc_status_string(QLC_ERR_TARGET), "artifact built for another target");
  qlc_model_free(nullptr);
  qlc_session_free(nullptr);
}

namespace {

struct Loaded {
  qlc_model *model = nullptr;
  ~Loaded() { qlc_model_free(model); }
};

double relErr(const float *a, const float *b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num += (a[i] - b[i]) * static_cast<double>(a[i] - b[i]);
    den += b[i] * static_cast<double>(b[i]);
  }
  return std::sqrt(num / den);
}

} // namespace

class ArtifactTest : public ::testing::Test {
protected:
  void SetUp() override {
    const char *path = std::getenv("QLC_TEST_ARTIFACT");
    if (path == nullptr)
      GTEST_SKIP() << "QLC_TEST_ARTIFACT is not set";
    ASSERT_EQ(qlc_model_load(path, nullptr, &m.model), QLC_OK) << qlc_last_error();
    vocab = qlc_model_vocab_size(m.model);
  }
  Loaded m;
  int32_t vocab = 0;
};

// Three sequences of different lengths decoded together in one batch give the same
// logits as each decoded alone.
TEST_F(ArtifactTest, BatchedDecodeEqualsSingleSequences) {
  const int lens[3] = {5, 1, 12}, steps = 6;
  std::vector<std::vector<int32_t>> prompts(3);
  for (int s = 0; s < 3; ++s)
    for (int i = 0; i < lens[s] + steps; ++i)
      prompts[s].push_back((i * 7 + s * 13 + 1) % vocab);
  // Alone: one session per sequence.
  std::vector<std::vector<float>> alone(3);
  for (int s = 0; s < 3; ++s) {
    qlc_session *ses = nullptr;
    ASSERT_EQ(qlc_session_create(m.model, nullptr, &ses), QLC_OK) << qlc_last_error();
    std::vector<float> logits(vocab);
    ASSERT_EQ(qlc_prefill(ses, 0, prompts[s].data(), lens[s], 0, logits.data()), QLC_OK);
    int32_t slot = 0;
    for (int i = 0; i < steps; ++i) {
      ASSERT_EQ(qlc_decode(ses, 1, &slot, &prompts[s][lens[s] + i], logits.data()), QLC_OK);
      alone[s].insert(alone[s].end(), logits.begin(), logits.end());
    }
    qlc_session_free(ses);
  }
  // Together: three slots of one session, decoded in one batch per step (in a
  // permuted slot order, to check rows follow the slots given).
  qlc_session_options o{};
  o.n_slots = 3;
  qlc_session *ses = nullptr;
  ASSERT_EQ(qlc_session_create(m.model, &o, &ses), QLC_OK);
  for (int s = 0; s < 3; ++s)
    ASSERT_EQ(qlc_prefill(ses, s, prompts[s].data(), lens[s], 0, nullptr), QLC_OK);
  const int32_t slots[3] = {2, 0, 1};
  std::vector<float> logits(3 * vocab);
  for (int i = 0; i < steps; ++i) {
    int32_t toks[3];
    for (int j = 0; j < 3; ++j)
      toks[j] = prompts[slots[j]][lens[slots[j]] + i];
    ASSERT_EQ(qlc_decode(ses, 3, slots, toks, logits.data()), QLC_OK) << qlc_last_error();
    for (int j = 0; j < 3; ++j)
      EXPECT_LT(relErr(logits.data() + j * vocab, alone[slots[j]].data() + i * vocab, vocab), 1e-6)
          << "step " << i << " slot " << slots[j];
  }
  EXPECT_EQ(qlc_session_position(ses, 2), lens[2] + steps);
  qlc_session_free(ses);
}

// qlc_decode_greedy returns what qlc_argmax picks from qlc_decode's logits for the same
// steps (on a CUDA artifact the argmax runs on the GPU), and advances the sequences alike.
TEST_F(ArtifactTest, GreedyDecodeEqualsArgmaxOfLogits) {
  const int lens[3] = {4, 1, 9}, steps = 5;
  qlc_session_options o{};
  o.n_slots = 3;
  qlc_session *a = nullptr, *b = nullptr;
  ASSERT_EQ(qlc_session_create(m.model, &o, &a), QLC_OK) << qlc_last_error();
  ASSERT_EQ(qlc_session_create(m.model, &o, &b), QLC_OK) << qlc_last_error();
  for (int s = 0; s < 3; ++s) {
    std::vector<int32_t> p;
    for (int i = 0; i < lens[s]; ++i)
      p.push_back((i * 11 + s * 5 + 2) % vocab);
    ASSERT_EQ(qlc_prefill(a, s, p.data(), lens[s], 0, nullptr), QLC_OK);
    ASSERT_EQ(qlc_prefill(b, s, p.data(), lens[s], 0, nullptr), QLC_OK);
  }
  const int32_t slots[3] = {1, 2, 0};
  int32_t toks[3] = {3 % vocab, 7 % vocab, 1};
  std::vector<float> logits(3 * vocab);
  for (int i = 0; i < steps; ++i) {
    int32_t greedy[3] = {-1, -1, -1};
    ASSERT_EQ(qlc_decode(a, 3, slots, toks, logits.data()), QLC_OK) << qlc_last_error();
    ASSERT_EQ(qlc_decode_greedy(b, 3, slots, toks, greedy), QLC_OK) << qlc_last_error();
    for (int j = 0; j < 3; ++j) {
      EXPECT_EQ(greedy[j], qlc_argmax(logits.data() + j * vocab, vocab))
          << "step " << i << " slot " << slots[j];
      toks[j] = greedy[j];
    }
  }
  for (int s = 0; s < 3; ++s)
    EXPECT_EQ(qlc_session_position(b, s), lens[s] + steps);
  qlc_session_free(a);
  qlc_session_free(b);
}

TEST_F(ArtifactTest, ErrorsLeaveTheSessionUsable) {
  qlc_session_options o{};
  o.max_seq = 8;
  qlc_session *ses = nullptr;
  ASSERT_EQ(qlc_session_create(m.model, &o, &ses), QLC_OK);
  std::vector<int32_t> toks(9, 1);
  std::vector<float> logits(vocab);
  EXPECT_EQ(qlc_prefill(ses, 0, toks.data(), 9, 0, logits.data()), QLC_ERR_CAPACITY);
  EXPECT_NE(std::string(qlc_last_error()).find("max_seq 8"), std::string::npos);
  int32_t bad = vocab;
  EXPECT_EQ(qlc_prefill(ses, 0, &bad, 1, 0, logits.data()), QLC_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(qlc_last_error()).find("outside the vocabulary"), std::string::npos);
  EXPECT_EQ(qlc_prefill(ses, 1, toks.data(), 1, 0, logits.data()), QLC_ERR_INVALID_ARGUMENT);
  int32_t slots[2] = {0, 0};
  EXPECT_EQ(qlc_decode(ses, 2, slots, toks.data(), logits.data()), QLC_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(qlc_session_position(ses, 0), 0);
  ASSERT_EQ(qlc_prefill(ses, 0, toks.data(), 8, 0, logits.data()), QLC_OK);
  EXPECT_EQ(qlc_session_position(ses, 0), 8);
  int32_t slot = 0;
  EXPECT_EQ(qlc_decode(ses, 1, &slot, toks.data(), logits.data()), QLC_ERR_CAPACITY);
  ASSERT_EQ(qlc_session_reset(ses, 0), QLC_OK);
  EXPECT_EQ(qlc_session_position(ses, 0), 0);
  qlc_session_free(ses);
}

// Prefill in chunks (the artifact's max tokens per step may be smaller than the
// prompt) gives the same logits as feeding the prompt in two calls.
TEST_F(ArtifactTest, SplitPrefillEqualsOneShot) {
  std::vector<int32_t> toks(40);
  for (int i = 0; i < 40; ++i)
    toks[i] = (i * 31 + 5) % vocab;
  qlc_session *a = nullptr, *b = nullptr;
  ASSERT_EQ(qlc_session_create(m.model, nullptr, &a), QLC_OK);
  ASSERT_EQ(qlc_session_create(m.model, nullptr, &b), QLC_OK);
  std::vector<float> all(40 * vocab), last(vocab);
  ASSERT_EQ(qlc_prefill(a, 0, toks.data(), 40, 1, all.data()), QLC_OK);
  ASSERT_EQ(qlc_prefill(b, 0, toks.data(), 23, 0, nullptr), QLC_OK);
  ASSERT_EQ(qlc_prefill(b, 0, toks.data() + 23, 17, 0, last.data()), QLC_OK);
  EXPECT_LT(relErr(last.data(), all.data() + 39 * vocab, vocab), 1e-6);
  qlc_session_free(a);
  qlc_session_free(b);
}

namespace {

/// The artifact's KV page size, from its manifest.
int64_t pageSize(const qlc_model *m) {
  const std::string man = qlc_model_manifest(m);
  const size_t at = man.find("\"page_size\":");
  return at == std::string::npos ? 0 : std::atoll(man.c_str() + at + 12);
}

std::vector<int32_t> sequence(int len, int salt, int32_t vocab) {
  std::vector<int32_t> t(len);
  for (int i = 0; i < len; ++i)
    t[i] = (i * 11 + salt * 17 + 3) % vocab;
  return t;
}

} // namespace

// Sequences interleaved in one session, their pages handed out in a shuffled order
// (QLC_KV_PAGE_SHUFFLE) and reused after a reset, give the logits of each sequence run
// alone. The e2e suite runs it on artifacts with small pages, so that prompts and decode
// steps cross many page boundaries.
TEST_F(ArtifactTest, PagedSequencesInterleavedEqualAlone) {
  const int64_t P = pageSize(m.model);
  ASSERT_GT(P, 0);
  const int nseq = 4, steps = 7;
  const int lens[nseq] = {static_cast<int>(2 * P + 1), static_cast<int>(3 * P + 2), 3,
                          static_cast<int>(P)};
  std::vector<std::vector<int32_t>> seqs(nseq);
  for (int s = 0; s < nseq; ++s)
    seqs[s] = sequence(lens[s] + steps, s, vocab);
  // Alone: the same calls, one sequence a session.
  std::vector<std::vector<float>> alone(nseq);
  for (int s = 0; s < nseq; ++s) {
    qlc_session *ses = nullptr;
    ASSERT_EQ(qlc_session_create(m.model, nullptr, &ses), QLC_OK) << qlc_last_error();
    std::vector<float> l(vocab);
    const int half = lens[s] / 2;
    if (half > 0) {
      ASSERT_EQ(qlc_prefill(ses, 0, seqs[s].data(), half, 0, l.data()), QLC_OK);
      alone[s].insert(alone[s].end(), l.begin(), l.end());
    }
    ASSERT_EQ(qlc_prefill(ses, 0, seqs[s].data() + half, lens[s] - half, 0, l.data()), QLC_OK);
    alone[s].insert(alone[s].end(), l.begin(), l.end());
    int32_t slot = 0;
    for (int i = 0; i < steps; ++i) {
      ASSERT_EQ(qlc_decode(ses, 1, &slot, &seqs[s][lens[s] + i], l.data()), QLC_OK);
      alone[s].insert(alone[s].end(), l.begin(), l.end());
    }
    qlc_session_free(ses);
  }
  // Together: sequences 0-2 in slots 0-2, interleaved; then slot 1 is reset and holds
  // sequence 3 on pages the others gave back and took in between.
  setenv("QLC_KV_PAGE_SHUFFLE", "20240611", 1);
  qlc_session_options o{};
  o.n_slots = 3;
  qlc_session *ses = nullptr;
  ASSERT_EQ(qlc_session_create(m.model, &o, &ses), QLC_OK) << qlc_last_error();
  unsetenv("QLC_KV_PAGE_SHUFFLE");
  std::vector<std::vector<float>> got(nseq);
  std::vector<float> l(vocab);
  auto prefillHalf = [&](int slot, int s, bool first) {
    const int half = lens[s] / 2;
    if (first && half == 0)
      return;
    const int32_t *t = seqs[s].data() + (first ? 0 : half);
    const int n = first ? half : lens[s] - half;
    ASSERT_EQ(qlc_prefill(ses, slot, t, n, 0, l.data()), QLC_OK) << qlc_last_error();
    got[s].insert(got[s].end(), l.begin(), l.end());
  };
  for (bool first : {true, false})
    for (int s : {2, 0, 1})
      prefillHalf(s, s, first);
  auto decodeAll = [&](const std::vector<int32_t> &slots, const std::vector<int> &which, int i) {
    std::vector<int32_t> toks;
    for (size_t j = 0; j < slots.size(); ++j)
      toks.push_back(seqs[which[j]][lens[which[j]] + i]);
    std::vector<float> out(slots.size() * vocab);
    ASSERT_EQ(qlc_decode(ses, static_cast<int64_t>(slots.size()), slots.data(), toks.data(),
                         out.data()),
              QLC_OK)
        << qlc_last_error();
    for (size_t j = 0; j < slots.size(); ++j)
      got[which[j]].insert(got[which[j]].end(), out.begin() + j * vocab,
                           out.begin() + (j + 1) * vocab);
  };
  for (int i = 0; i < steps; ++i)
    decodeAll({1, 2, 0}, {1, 2, 0}, i);
  int64_t total = 0, freeBefore = 0, freeAfter = 0;
  ASSERT_EQ(qlc_session_kv_pages(ses, &total, &freeBefore), QLC_OK);
  ASSERT_EQ(qlc_session_reset(ses, 1), QLC_OK);
  ASSERT_EQ(qlc_session_kv_pages(ses, nullptr, &freeAfter), QLC_OK);
  EXPECT_EQ(freeAfter - freeBefore, (lens[1] + steps + P - 1) / P) << "reset gives pages back";
  prefillHalf(1, 3, true);
  prefillHalf(1, 3, false);
  for (int i = 0; i < steps; ++i)
    decodeAll({1}, {3}, i);
  qlc_session_free(ses);
  for (int s = 0; s < nseq; ++s) {
    ASSERT_EQ(got[s].size(), alone[s].size()) << "sequence " << s;
    for (size_t r = 0; r < alone[s].size() / vocab; ++r)
      EXPECT_LT(relErr(got[s].data() + r * vocab, alone[s].data() + r * vocab, vocab), 1e-6)
          << "sequence " << s << " logits row " << r << " (page size " << P << ")";
  }
}

// A pool too small for a step fails the step with QLC_ERR_CAPACITY before anything
// changes: the other sequences keep their pages and go on as if nothing happened.
TEST_F(ArtifactTest, PagePoolExhaustionLeavesOtherSlotsIntact) {
  const int64_t P = pageSize(m.model);
  ASSERT_GT(P, 0);
  const std::vector<int32_t> a = sequence(static_cast<int>(3 * P), 1, vocab); // 3 pages
  const std::vector<int32_t> b = sequence(static_cast<int>(2 * P), 2, vocab);
  // Reference: `a` alone, its logits after the prompt of 2P positions and each step.
  std::vector<float> ref;
  {
    qlc_session *ses = nullptr;
    ASSERT_EQ(qlc_session_create(m.model, nullptr, &ses), QLC_OK);
    std::vector<float> l(vocab);
    ASSERT_EQ(qlc_prefill(ses, 0, a.data(), 2 * P, 0, l.data()), QLC_OK);
    ref.insert(ref.end(), l.begin(), l.end());
    int32_t slot = 0;
    for (int64_t i = 2 * P; i < static_cast<int64_t>(a.size()); ++i) {
      ASSERT_EQ(qlc_decode(ses, 1, &slot, &a[i], l.data()), QLC_OK);
      ref.insert(ref.end(), l.begin(), l.end());
    }
    qlc_session_free(ses);
  }
  qlc_session_options o{};
  o.n_slots = 2;
  o.n_pages = 3; // a: 2 pages for its prompt, a third when it grows past 2P
  qlc_session *ses = nullptr;
  ASSERT_EQ(qlc_session_create(m.model, &o, &ses), QLC_OK) << qlc_last_error();
  int64_t total = 0, freePages = 0;
  ASSERT_EQ(qlc_session_kv_pages(ses, &total, &freePages), QLC_OK);
  EXPECT_EQ(total, 3);
  std::vector<float> got, l(vocab);
  ASSERT_EQ(qlc_prefill(ses, 0, a.data(), 2 * P, 0, l.data()), QLC_OK);
  got.insert(got.end(), l.begin(), l.end());
  // b's prompt needs 2 pages, 1 is free: refused whole, nothing taken.
  EXPECT_EQ(qlc_prefill(ses, 1, b.data(), 2 * P, 0, l.data()), QLC_ERR_CAPACITY);
  EXPECT_NE(std::string(qlc_last_error()).find("KV cache is full"), std::string::npos)
      << qlc_last_error();
  EXPECT_EQ(qlc_session_position(ses, 1), 0);
  ASSERT_EQ(qlc_session_kv_pages(ses, nullptr, &freePages), QLC_OK);
  EXPECT_EQ(freePages, 1);
  // b takes the last page with P tokens; then a's next step needs a page: refused, a
  // and b both unchanged.
  ASSERT_EQ(qlc_prefill(ses, 1, b.data(), P, 0, l.data()), QLC_OK);
  int32_t both[2] = {0, 1}, toks[2] = {a[2 * P], b[P]};
  std::vector<float> two(2 * vocab);
  EXPECT_EQ(qlc_decode(ses, 2, both, toks, two.data()), QLC_ERR_CAPACITY);
  EXPECT_EQ(qlc_session_position(ses, 0), 2 * P);
  EXPECT_EQ(qlc_session_position(ses, 1), P);
  // Freeing b lets a go on, with the logits it has alone.
  ASSERT_EQ(qlc_session_reset(ses, 1), QLC_OK);
  int32_t slot = 0;
  for (int64_t i = 2 * P; i < static_cast<int64_t>(a.size()); ++i) {
    ASSERT_EQ(qlc_decode(ses, 1, &slot, &a[i], l.data()), QLC_OK) << qlc_last_error();
    got.insert(got.end(), l.begin(), l.end());
  }
  ASSERT_EQ(got.size(), ref.size());
  for (size_t r = 0; r < ref.size() / vocab; ++r)
    EXPECT_LT(relErr(got.data() + r * vocab, ref.data() + r * vocab, vocab), 1e-6) << "row " << r;
  qlc_session_free(ses);
}

namespace {
qlc_sampler *makeSampler(float temp, int32_t topK, float topP, float minP, float rep,
                         uint64_t seed, int32_t vocab) {
  qlc_sampler_options o = qlc_sampler_default_options();
  o.temperature = temp;
  o.top_k = topK;
  o.top_p = topP;
  o.min_p = minP;
  o.repetition_penalty = rep;
  o.seed = seed;
  qlc_sampler *s = nullptr;
  EXPECT_EQ(qlc_sampler_create(&o, vocab, &s), QLC_OK) << qlc_last_error();
  return s;
}
} // namespace

TEST(Sampler, GreedyAndDegenerateFiltersPickTheArgmax) {
  const float logits[6] = {0.1f, 2.0f, -1.0f, 1.9f, 0.0f, 0.5f};
  for (auto *s : {makeSampler(0.0f, 0, 1.0f, 0.0f, 1.0f, 1, 6),
                  makeSampler(1.0f, 1, 1.0f, 0.0f, 1.0f, 2, 6),
                  makeSampler(1.0f, 0, 1e-6f, 0.0f, 1.0f, 3, 6)}) {
    for (int i = 0; i < 50; ++i)
      ASSERT_EQ(qlc_sampler_sample(s, logits), 1);
    qlc_sampler_free(s);
  }
}

TEST(Sampler, FrequenciesFollowTheSoftmax) {
  const float logits[4] = {1.0f, 0.0f, -1.0f, 0.5f};
  const float temp = 0.7f;
  qlc_sampler *s = makeSampler(temp, 0, 1.0f, 0.0f, 1.0f, 42, 4);
  const int n = 40000;
  int counts[4] = {};
  for (int i = 0; i < n; ++i)
    ++counts[qlc_sampler_sample(s, logits)];
  double z = 0;
  for (float l : logits)
    z += std::exp(l / temp);
  for (int i = 0; i < 4; ++i) {
    double p = std::exp(logits[i] / temp) / z;
    EXPECT_NEAR(counts[i] / static_cast<double>(n), p, 4 * std::sqrt(p * (1 - p) / n)) << i;
  }
  qlc_sampler_free(s);
}

TEST(Sampler, TopKAndMinPExcludeTails) {
  const float logits[5] = {3.0f, 2.9f, 0.0f, -1.0f, 2.8f};
  qlc_sampler *k2 = makeSampler(1.0f, 2, 1.0f, 0.0f, 1.0f, 7, 5);
  qlc_sampler *mp = makeSampler(1.0f, 0, 1.0f, 0.5f, 1.0f, 8, 5);
  for (int i = 0; i < 2000; ++i) {
    int32_t a = qlc_sampler_sample(k2, logits), b = qlc_sampler_sample(mp, logits);
    ASSERT_TRUE(a == 0 || a == 1) << a;
    ASSERT_TRUE(b == 0 || b == 1 || b == 4) << b; // exp(-3) < 0.5 excludes 2 and 3
  }
  qlc_sampler_free(k2);
  qlc_sampler_free(mp);
}

TEST(Sampler, SeedsReproduceAndRepetitionPenaltyDemotes) {
  const float logits[3] = {1.0f, 0.9f, -5.0f};
  qlc_sampler *a = makeSampler(1.0f, 0, 1.0f, 0.0f, 1.0f, 99, 3);
  qlc_sampler *b = makeSampler(1.0f, 0, 1.0f, 0.0f, 1.0f, 99, 3);
  for (int i = 0; i < 100; ++i)
    ASSERT_EQ(qlc_sampler_sample(a, logits), qlc_sampler_sample(b, logits));
  qlc_sampler *g = makeSampler(0.0f, 0, 1.0f, 0.0f, 2.0f, 0, 3);
  EXPECT_EQ(qlc_sampler_sample(g, logits), 0);
  qlc_sampler_accept(g, 0);
  EXPECT_EQ(qlc_sampler_sample(g, logits), 1); // 1.0 / 2 < 0.9
  qlc_sampler_free(a);
  qlc_sampler_free(b);
  qlc_sampler_free(g);
}

TEST(Sampler, RejectsBadOptions) {
  qlc_sampler_options o = qlc_sampler_default_options();
  o.top_p = 0.0f;
  qlc_sampler *s = nullptr;
  EXPECT_EQ(qlc_sampler_create(&o, 10, &s), QLC_ERR_INVALID_ARGUMENT);
  o = qlc_sampler_default_options();
  o.temperature = -1.0f;
  EXPECT_EQ(qlc_sampler_create(&o, 10, &s), QLC_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(qlc_sampler_create(nullptr, 0, &s), QLC_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(s, nullptr);
}
