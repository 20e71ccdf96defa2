// RUN: qlc-opt %s -split-input-file -qlc-cast-weights="dtype=bf16" | FileCheck %s
// RUN: qlc-opt %s -split-input-file -qlc-cast-weights="dtype=f32" | FileCheck %s --check-prefix=F32

// Tests that matrices are cast and vectors (norms, biases) keep their type.
// CHECK-LABEL: func.func @cast
// F32-LABEL: func.func @cast
func.func @cast(%x: tensor<?x64xf32>) -> tensor<?x32xf32> {
  // CHECK: %[[W:.*]] = qlc.weight "w" : tensor<32x64xbf16>
  // F32: %[[W:.*]] = qlc.weight "w" : tensor<32x64xf32>
  %w = qlc.weight "w" : tensor<32x64xf16>
  // CHECK: %[[B:.*]] = qlc.weight "b" : tensor<32xf16>
  // F32: qlc.weight "b" : tensor<32xf16>
  %b = qlc.weight "b" : tensor<32xf16>
  // CHECK: qlc.linear %{{.*}}, %[[W]], %[[B]] : (tensor<?x64xf32>, tensor<32x64xbf16>, tensor<32xf16>) -> tensor<?x32xf32>
  %y = qlc.linear %x, %w, %b : (tensor<?x64xf32>, tensor<32x64xf16>, tensor<32xf16>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// Tests that a weight already of the target type is left as it is.
// CHECK-LABEL: func.func @same
func.func @same() {
  // CHECK: qlc.weight "w" : tensor<8x8xbf16>
  %w = qlc.weight "w" : tensor<8x8xbf16>
  return
}

// -----

// Tests only-narrow: f32 matrices become f16, 16-bit ones keep their type, and integer
// matrices (packed quantized data) are never cast.
// RUN: qlc-opt %s -split-input-file -qlc-cast-weights="dtype=f16 only-narrow=true" | FileCheck %s --check-prefix=NARROW
// NARROW-LABEL: func.func @narrow
func.func @narrow() {
  // NARROW: qlc.weight "emb" : tensor<16x8xf16>
  %e = qlc.weight "emb" : tensor<16x8xf32>
  // NARROW: qlc.weight "head" : tensor<16x8xbf16>
  %h = qlc.weight "head" : tensor<16x8xbf16>
  // NARROW: qlc.weight "q" : tensor<16x4xui8>
  %q = qlc.weight "q" : tensor<16x4xui8>
  return
}
