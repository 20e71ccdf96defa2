//===- Sampler.cpp - temperature, top-k, top-p, min-p, repetition penalty --===//
#include "Internal.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <random>
#include <vector>

using qlc::rt::fail;

struct qlc_sampler {
  qlc_sampler_options o;
  int32_t vocab = 0;
  std::mt19937_64 rng;
  std::deque<int32_t> recent;
  std::vector<float> work;
  std::vector<int32_t> idx;
};

extern "C" qlc_sampler_options qlc_sampler_default_options(void) {
  qlc_sampler_options o;
  o.temperature = 0.8f;
  o.top_k = 40;
  o.top_p = 0.95f;
  o.min_p = 0.05f;
  o.repetition_penalty = 1.0f;
  o.penalty_last_n = 64;
  o.seed = 0;
  return o;
}

extern "C" qlc_status qlc_sampler_create(const qlc_sampler_options *opts, int32_t vocab,
                                         qlc_sampler **out) {
  if (out == nullptr || vocab <= 0)
    return fail(QLC_ERR_INVALID_ARGUMENT, "qlc_sampler_create: out must be given and vocab > 0");
  *out = nullptr;
  qlc_sampler_options o = opts ? *opts : qlc_sampler_default_options();
  if (!(o.temperature >= 0) || o.top_k < 0 || !(o.top_p > 0 && o.top_p <= 1) ||
      !(o.min_p >= 0 && o.min_p < 1) || !(o.repetition_penalty > 0) || o.penalty_last_n < 0)
    return fail(QLC_ERR_INVALID_ARGUMENT,
                "sampler options out of range: temperature >= 0, top_k >= 0, 0 < top_p <= 1, "
                "0 <= min_p < 1, repetition_penalty > 0");
  auto s = new (std::nothrow) qlc_sampler();
  if (s == nullptr)
    return fail(QLC_ERR_OUT_OF_MEMORY, "cannot allocate a sampler");
  s->o = o;
  s->vocab = vocab;
  s->rng.seed(o.seed);
  *out = s;
  return QLC_OK;
}

extern "C" void qlc_sampler_free(qlc_sampler *s) { delete s; }

extern "C" void qlc_sampler_accept(qlc_sampler *s, int32_t token) {
  if (s == nullptr || s->o.penalty_last_n == 0)
    return;
  s->recent.push_back(token);
  while (static_cast<int32_t>(s->recent.size()) > s->o.penalty_last_n)
    s->recent.pop_front();
}

extern "C" int32_t qlc_sampler_sample(qlc_sampler *s, const float *logits) {
  const int32_t V = s->vocab;
  std::vector<float> &l = s->work;
  l.assign(logits, logits + V);
  if (s->o.repetition_penalty != 1.0f)
    for (int32_t t : s->recent)
      if (t >= 0 && t < V)
        l[t] = l[t] > 0 ? l[t] / s->o.repetition_penalty : l[t] * s->o.repetition_penalty;
  if (s->o.temperature == 0.0f)
    return qlc_argmax(l.data(), V);
  // Candidates by descending logit (top-k keeps only the first k).
  std::vector<int32_t> &idx = s->idx;
  idx.resize(V);
  for (int32_t i = 0; i < V; ++i)
    idx[i] = i;
  const int32_t k = s->o.top_k > 0 && s->o.top_k < V ? s->o.top_k : V;
  auto byLogit = [&](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); };
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), byLogit);
  idx.resize(k);
  // Softmax at the temperature over the candidates.
  std::vector<double> p(k);
  const double mx = l[idx[0]];
  double sum = 0;
  for (int32_t i = 0; i < k; ++i)
    sum += (p[i] = std::exp((l[idx[i]] - mx) / s->o.temperature));
  for (double &v : p)
    v /= sum;
  // top-p: the smallest prefix whose mass reaches top_p; min-p: drop tokens below
  // min_p times the most likely one's probability.
  int32_t keep = k;
  double mass = 0;
  for (int32_t i = 0; i < k; ++i) {
    mass += p[i];
    if (mass >= s->o.top_p) {
      keep = i + 1;
      break;
    }
  }
  const double floor = s->o.min_p * p[0];
  while (keep > 1 && p[keep - 1] < floor)
    --keep;
  double total = 0;
  for (int32_t i = 0; i < keep; ++i)
    total += p[i];
  std::uniform_real_distribution<double> u(0.0, total);
  double r = u(s->rng);
  for (int32_t i = 0; i < keep; ++i) {
    r -= p[i];
    if (r < 0)
      return idx[i];
  }
  return idx[keep - 1];
}
