//===- QlcDialect.td - qlc dialect definition -------------*- tablegen -*-===//
#ifndef QLC_DIALECT_TD
#define QLC_DIALECT_TD

include "mlir/IR/OpBase.td"

def Qlc_Dialect : Dialect {
  let name = "qlc";
  let summary = "Transformer-granularity ops for decoder-only language models";
  let description = [{
    The `qlc` dialect describes a decoder-only transformer at the granularity of its
    building blocks: embedding lookup, RMS normalization, linear projections, rotary
    position embedding, attention over a KV cache, the SwiGLU activation, residual adds
    and the final logits. Weights are not inlined: `qlc.weight` names a tensor in the
    compiler's weight store, so IR stays small enough to read and to test with lit.

    Activations are `tensor<?xNxf32>`: the leading dimension is the number of tokens in
    one step (a prefill chunk or a decode batch), fixed only at run time.
  }];
  let cppNamespace = "::qlc";
  let extraClassDeclaration = [{
    /// The weight data passes may read and extend (see ir/WeightProvider.h).
    ::qlc::WeightProvider *weightProvider = nullptr;
    /// The calibration samples calibrating passes run on (see ir/Calibration.h).
    const ::qlc::CalibrationData *calibration = nullptr;
  }];
}

class Qlc_Op<string mnemonic, list<Trait> traits = []>
    : Op<Qlc_Dialect, mnemonic, traits>;

#endif // QLC_DIALECT_TD
