// copy_bw.cpp - memory bandwidth reference for the decode benchmark (bench/bench_decode.py).
//
// Two measurements on buffers far larger than the last-level cache:
//   copy: memcpy of a source buffer into a destination buffer, each thread one contiguous
//         slice; bytes counted = read + written = 2 * size.
//   read: sum of a float buffer with AVX2 loads, each thread one contiguous slice, which it
//         reads as S equal sub-slices side by side (S sequential streams, one accumulator
//         each; --read-streams, default 1 and 8); bytes counted = size. Batch-1 decode is
//         this access pattern: it streams the weights once per token and writes almost
//         nothing; a GEMV tile reads several weight rows side by side, and one core reaches
//         more bandwidth with several streams than with one.
// Buffers are touched (written) by the threads that use them before timing. Each figure
// is the best and the median over --reps repetitions, in GB/s (1e9 bytes per second).
// Prints one JSON object per (mode, thread count) line.
//
//   c++ -O2 -march=native -pthread bench/copy_bw.cpp -o copy_bw
//   ./copy_bw --size-mib 1024 --reps 10 --threads 1,2 --read-streams 1,8
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// Runs f(thread_index, begin, end) over [0, n) split into `threads` contiguous slices, each
// slice starting on a 4 KiB boundary, and returns the wall time in seconds.
template <class F> double runSplit(int threads, size_t n, F f) {
  std::vector<std::thread> ts;
  const size_t per = ((n / threads) + 4095) & ~size_t(4095);
  auto t0 = Clock::now();
  for (int t = 0; t < threads; ++t) {
    size_t b = std::min(n, per * t), e = std::min(n, per * (t + 1));
    ts.emplace_back([=] { f(t, b, e); });
  }
  for (auto &t : ts)
    t.join();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Sum of p[0, n) read as S sub-slices side by side.
template <int S> float sumStreams(const float *p, size_t n) {
  const size_t per = (n / S) & ~size_t(15);
  __m256 acc[S];
  for (int s = 0; s < S; ++s)
    acc[s] = _mm256_setzero_ps();
  for (size_t i = 0; i < per; i += 16) {
#pragma GCC unroll 16
    for (int s = 0; s < S; ++s)
      acc[s] = _mm256_add_ps(acc[s], _mm256_add_ps(_mm256_load_ps(p + s * per + i),
                                                   _mm256_load_ps(p + s * per + i + 8)));
  }
  __m256 t = acc[0];
  for (int s = 1; s < S; ++s)
    t = _mm256_add_ps(t, acc[s]);
  float out[8];
  _mm256_storeu_ps(out, t);
  float r = 0;
  for (float v : out)
    r += v;
  for (size_t i = per * S; i < n; ++i)
    r += p[i];
  return r;
}

using SumFn = float (*)(const float *, size_t);

SumFn sumFor(int streams) {
  switch (streams) {
  case 1: return sumStreams<1>;
  case 2: return sumStreams<2>;
  case 4: return sumStreams<4>;
  case 8: return sumStreams<8>;
  case 16: return sumStreams<16>;
  default: return nullptr;
  }
}

struct Stat {
  double best, median;
};

Stat stats(std::vector<double> gbs) {
  std::sort(gbs.begin(), gbs.end());
  size_t n = gbs.size();
  double med = n % 2 ? gbs[n / 2] : 0.5 * (gbs[n / 2 - 1] + gbs[n / 2]);
  return {gbs.back(), med};
}

std::vector<int> parseList(const std::string &s) {
  std::vector<int> out;
  for (size_t p = 0; p <= s.size();) {
    size_t q = s.find(',', p);
    if (q == std::string::npos)
      q = s.size();
    out.push_back(std::atoi(s.substr(p, q - p).c_str()));
    p = q + 1;
  }
  return out;
}

void usage() {
  std::fprintf(stderr, "usage: copy_bw [--size-mib MiB] [--reps R] [--threads 1,2,...] "
                       "[--read-streams 1,8 (each 1, 2, 4, 8 or 16)]\n");
}

} // namespace

int main(int argc, char **argv) {
  size_t mib = 1024;
  int reps = 10;
  std::vector<int> threadCounts = {1, 2}, readStreams = {1, 8};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) {
      usage();
      return 2;
    }
    if (a == "--size-mib") {
      mib = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--reps") {
      reps = std::atoi(argv[++i]);
    } else if (a == "--threads") {
      threadCounts = parseList(argv[++i]);
    } else if (a == "--read-streams") {
      readStreams = parseList(argv[++i]);
    } else {
      usage();
      return 2;
    }
  }
  if (mib == 0 || reps <= 0 || threadCounts.empty() ||
      *std::min_element(threadCounts.begin(), threadCounts.end()) <= 0 || readStreams.empty() ||
      std::any_of(readStreams.begin(), readStreams.end(), [](int s) { return !sumFor(s); })) {
    usage();
    return 2;
  }
  const size_t bytes = mib << 20;
  auto *src = static_cast<char *>(std::aligned_alloc(4096, bytes));
  auto *dst = static_cast<char *>(std::aligned_alloc(4096, bytes));
  if (!src || !dst) {
    std::fprintf(stderr, "copy_bw: cannot allocate 2 x %zu MiB\n", mib);
    return 1;
  }
  const int maxThreads = *std::max_element(threadCounts.begin(), threadCounts.end());
  // Touch both buffers (page faults happen here, not in the timed loops); the source gets
  // small finite floats so the read sum stays finite.
  runSplit(maxThreads, bytes, [&](int, size_t b, size_t e) {
    float *f = reinterpret_cast<float *>(src + b);
    for (size_t i = 0; i < (e - b) / 4; ++i)
      f[i] = static_cast<float>(i & 1023) * 1e-3f;
    std::memset(dst + b, 1, e - b);
  });

  volatile float sink = 0;
  for (int threads : threadCounts) {
    std::vector<double> copy;
    runSplit(threads, bytes, [&](int, size_t b, size_t e) { std::memcpy(dst + b, src + b, e - b); });
    for (int r = 0; r < reps; ++r) {
      double s = runSplit(threads, bytes,
                          [&](int, size_t b, size_t e) { std::memcpy(dst + b, src + b, e - b); });
      copy.push_back(2.0 * bytes / s / 1e9);
    }
    Stat c = stats(copy);
    std::printf("{\"mode\":\"copy\",\"threads\":%d,\"size_mib\":%zu,\"reps\":%d,"
                "\"best_gbs\":%.3f,\"median_gbs\":%.3f}\n",
                threads, mib, reps, c.best, c.median);
    for (int streams : readStreams) {
      SumFn sum = sumFor(streams);
      std::vector<double> read;
      std::vector<float> partial(threads);
      for (int r = 0; r < reps; ++r) {
        double s = runSplit(threads, bytes, [&](int t, size_t b, size_t e) {
          partial[t] = sum(reinterpret_cast<const float *>(src + b), (e - b) / 4);
        });
        for (float p : partial)
          sink = sink + p;
        read.push_back(static_cast<double>(bytes) / s / 1e9);
      }
      Stat rd = stats(read);
      std::printf("{\"mode\":\"read\",\"threads\":%d,\"streams\":%d,\"size_mib\":%zu,"
                  "\"reps\":%d,\"best_gbs\":%.3f,\"median_gbs\":%.3f}\n",
                  threads, streams, mib, reps, rd.best, rd.median);
    }
    std::fflush(stdout);
  }
  std::free(src);
  std::free(dst);
  return sink == 12345.0f ? 3 : 0;
}
