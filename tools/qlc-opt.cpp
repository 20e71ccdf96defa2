//===- qlc-opt.cpp - MlirOptMain with the qlc dialect and passes -----------===//
#include "ir/QlcDialect.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  registry.insert<qlc::QlcDialect, mlir::func::FuncDialect>();
  mlir::registerTransformsPasses();
  qlc::registerQlcPassesAndPipelines();
  return mlir::asMainReturnCode(mlir::MlirOptMain(argc, argv, "qlc optimizer driver\n", registry));
}
