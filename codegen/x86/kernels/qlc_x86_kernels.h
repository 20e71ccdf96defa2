// qlc_x86_kernels.h - every x86 kernel template; generated code includes this one file.
#ifndef QLC_X86_KERNELS_H
#define QLC_X86_KERNELS_H

#include "qlc_x86_attention.h"
#include "qlc_x86_elementwise.h"
#include "qlc_x86_linear.h"
#include "qlc_x86_nf4.h"
#include "qlc_x86_qlinear.h"

namespace qlc {
namespace x86 {

/// Logits for the requested rows only: gathers them into `tmp`, then one projection.
template <class Isa, int D, int V, class WT, class T = DefaultTiling>
void logits(const qlc_exec_ctx *c, const qlc_step *st, const float *x, const WT *w,
            float *tmp) {
  for (int64_t r = 0; r < st->n_logits; ++r)
    std::memcpy(tmp + r * D, x + static_cast<int64_t>(st->logit_rows[r]) * D,
                sizeof(float) * D);
  linear<Isa, D, V, WT, T>(c, st->n_logits, tmp, w, nullptr, st->logits);
}

} // namespace x86
} // namespace qlc

#endif // QLC_X86_KERNELS_H
