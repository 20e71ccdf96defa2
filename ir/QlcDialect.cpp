//===- QlcDialect.cpp - qlc dialect ----------------------------------------===//
#include "ir/QlcDialect.h"
#include "ir/QlcOps.h"

using namespace mlir;
using namespace qlc;

#include "ir/QlcDialect.cpp.inc"

void QlcDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "ir/QlcOps.cpp.inc"
      >();
}
