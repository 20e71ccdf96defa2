//===- CalibExecutorTest.cpp - the calibration executor's float forward ----===//
//
// The executor runs the imported model in float32; its logits must agree with Hugging
// Face transformers' (the float64 references of test/fixtures/*/ref) as closely as the
// compiled float32 artifacts do (DESIGN.md: relative error <= 1e-4), for every fixture
// architecture: GQA, bf16/f16 weights, q/k/v bias, sliding window, rope scaling.
//
#include "passes/CalibExecutor.h"
#include "compiler/Calibration.h"
#include "compiler/GgufImport.h"
#include "compiler/Importer.h"
#include "compiler/StoreProvider.h"
#include "passes/CalibCuda.h"
#include "test/unit/NpyRead.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>

namespace {

const std::string kSrc = QLC_SOURCE_DIR;

std::string modelDir(const std::string &name) {
  return name == "stories260k" ? kSrc + "/models/stories260k" : kSrc + "/test/fixtures/" + name;
}

std::vector<int32_t> readTokens(const std::string &path) {
  std::ifstream f(path);
  return std::vector<int32_t>(std::istream_iterator<int32_t>(f), std::istream_iterator<int32_t>());
}

struct Loaded {
  mlir::MLIRContext ctx;
  std::unique_ptr<qlc::WeightStore> store;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  std::unique_ptr<qlc::StoreProvider> provider;
};

std::unique_ptr<Loaded> load(const std::string &name) {
  auto l = std::make_unique<Loaded>();
  auto cfg = qlc::loadModelConfig(modelDir(name) + "/config.json");
  EXPECT_TRUE(static_cast<bool>(cfg)) << llvm::toString(cfg.takeError());
  auto store = qlc::WeightStore::loadFolder(modelDir(name));
  EXPECT_TRUE(static_cast<bool>(store)) << llvm::toString(store.takeError());
  l->store = std::move(*store);
  auto m = qlc::importModel(l->ctx, *cfg, l->store.get());
  EXPECT_TRUE(static_cast<bool>(m)) << llvm::toString(m.takeError());
  l->module = std::move(*m);
  l->provider = std::make_unique<qlc::StoreProvider>(*l->store);
  return l;
}

double relErr(const qlc::Activation &a, const std::vector<double> &ref, int64_t rowOffset) {
  double num = 0, den = 0;
  const int64_t n = static_cast<int64_t>(ref.size());
  for (int64_t i = 0; i < n; ++i) {
    const double d = a.data[rowOffset * a.cols + i] - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / den);
}

/// The calibration GPU, or null (no GPU here: the GPU runs are left out).
qlc::calibcuda::Device *gpuOrNull() {
  static std::unique_ptr<qlc::calibcuda::Device> gpu = [] {
    std::string why;
    return qlc::calibcuda::Device::open(why);
  }();
  return gpu.get();
}

class CalibExecutorLogits : public ::testing::TestWithParam<std::string> {};

TEST_P(CalibExecutorLogits, MatchTransformers) {
  auto l = load(GetParam());
  ASSERT_TRUE(l->module);
  auto fn = l->module->lookupSymbol<mlir::func::FuncOp>("forward");
  for (int len : {17, 317}) {
    SCOPED_TRACE("length " + std::to_string(len));
    const std::string ref = modelDir(GetParam()) == kSrc + "/models/stories260k"
                                ? kSrc + "/test/fixtures/stories260k/ref/"
                                : modelDir(GetParam()) + "/ref/";
    std::vector<int32_t> tokens = readTokens(ref + "tokens_" + std::to_string(len) + ".txt");
    ASSERT_EQ(static_cast<int>(tokens.size()), len);
    qlc::test::Npy expected = qlc::test::readNpy(ref + "logits_" + std::to_string(len) + ".npy");
    // Two samples: the sequence, then the same again; each attends only to itself.
    qlc::CalibrationData batch;
    batch.samples = 2;
    batch.seqLen = len;
    batch.tokens = tokens;
    batch.tokens.insert(batch.tokens.end(), tokens.begin(), tokens.end());
    // On the CPU, and on the GPU where there is one (the projections and attention there).
    for (int run = 0; run < 2; ++run) {
      qlc::calibcuda::Device *gpu = run == 0 ? nullptr : gpuOrNull();
      if (run == 1 && gpu == nullptr)
        break;
      SCOPED_TRACE(gpu ? "on the GPU" : "on the CPU");
      qlc::CalibExecutor exec(fn, *l->provider);
      exec.setDevice(gpu);
      qlc::Activation logits;
      int linears = 0;
      std::string error;
      auto hook = [&](qlc::LinearOp, const qlc::Activation &x, std::vector<float> &) {
        EXPECT_EQ(x.rows, 2 * len);
        ++linears;
        return mlir::success();
      };
      ASSERT_TRUE(mlir::succeeded(exec.run(batch, hook, error, &logits))) << error;
      EXPECT_GT(linears, 0);
      ASSERT_EQ(logits.rows, 2 * len);
      ASSERT_EQ(static_cast<size_t>(logits.rows / 2 * logits.cols), expected.data.size());
      EXPECT_LE(relErr(logits, expected.data, 0), 1e-4);
      EXPECT_LE(relErr(logits, expected.data, len), 1e-4);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CalibExecutorLogits,
                         ::testing::Values("stories260k", "llama-gqa-bf16",
                                           "llama-linear-oldkeys-f32", "mistral-headdim-f32",
                                           "qwen2-bias-tied-f16"),
                         [](const auto &info) {
                           std::string n = info.param;
                           for (char &c : n)
                             if (!isalnum(static_cast<unsigned char>(c)))
                               c = '_';
                           return n;
                         });

TEST(CalibExecutor, SmolLM2MatchesTransformers) {
  // A real model with massive activations, GQA 9/3 and head_dim 64: SmolLM2-135M from
  // the GGUF the e2e suite caches (skipped when it is not there).
  const char *home = std::getenv("HOME");
  const std::string gguf =
      std::string(home ? home : "/root") + "/.cache/qlc/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::ifstream(gguf).good())
    GTEST_SKIP() << gguf << " is not cached";
  auto g = qlc::importGguf(gguf);
  ASSERT_TRUE(static_cast<bool>(g)) << llvm::toString(g.takeError());
  mlir::MLIRContext ctx;
  auto m = qlc::importModel(ctx, g->config, g->store.get());
  ASSERT_TRUE(static_cast<bool>(m)) << llvm::toString(m.takeError());
  qlc::StoreProvider provider(*g->store);
  const std::string ref = kSrc + "/test/fixtures/smollm2/ref/";
  std::vector<int32_t> tokens = readTokens(ref + "tokens_317.txt"),
                       rows = readTokens(ref + "rows_317.txt");
  qlc::test::Npy expected = qlc::test::readNpy(ref + "logits_317.npy");
  qlc::CalibrationData batch{1, static_cast<int64_t>(tokens.size()), tokens, "test"};
  qlc::CalibExecutor exec((*m)->lookupSymbol<mlir::func::FuncOp>("forward"), provider);
  qlc::Activation logits;
  std::string error;
  ASSERT_TRUE(mlir::succeeded(exec.run(batch, nullptr, error, &logits))) << error;
  double num = 0, den = 0;
  for (size_t i = 0; i < rows.size(); ++i)
    for (int64_t c = 0; c < logits.cols; ++c) {
      const double e = expected.data[i * logits.cols + c];
      const double d = logits.data[rows[i] * logits.cols + c] - e;
      num += d * d;
      den += e * e;
    }
  EXPECT_LE(std::sqrt(num / den), 1e-4);
}

TEST(CalibExecutor, HookReplacesWeights) {
  // A hook that zeroes every projection leaves only the embedding's path: the residual
  // stream stays the embedding, so the logits are those of norm(embedding).
  auto l = load("stories260k");
  auto fn = l->module->lookupSymbol<mlir::func::FuncOp>("forward");
  qlc::CalibrationData batch{1, 5, {1, 2, 3, 4, 5}, "test"};
  qlc::CalibExecutor exec(fn, *l->provider);
  qlc::Activation zeroed, plain;
  std::string error;
  auto zero = [](qlc::LinearOp, const qlc::Activation &, std::vector<float> &w) {
    std::fill(w.begin(), w.end(), 0.0f);
    return mlir::success();
  };
  ASSERT_TRUE(mlir::succeeded(exec.run(batch, zero, error, &zeroed))) << error;
  ASSERT_TRUE(mlir::succeeded(exec.run(batch, nullptr, error, &plain))) << error;
  EXPECT_NE(zeroed.data, plain.data);
  // Identical tokens at different positions give identical rows once attention is gone.
  qlc::CalibrationData same{1, 3, {7, 7, 7}, "test"};
  ASSERT_TRUE(mlir::succeeded(exec.run(same, zero, error, &zeroed))) << error;
  for (int64_t c = 0; c < zeroed.cols; ++c)
    EXPECT_NEAR(zeroed.data[c], zeroed.data[2 * zeroed.cols + c], 1e-5 * std::fabs(zeroed.data[c]));
}

TEST(CalibExecutor, GramMatrix) {
  // Awkward sizes: rows not a multiple of the blocks or of the threads.
  qlc::Activation x;
  x.rows = 2501;
  x.cols = 37;
  for (int64_t i = 0; i < x.rows * x.cols; ++i)
    x.data.push_back(std::sin(0.37f * static_cast<float>(i)) * (1.0f + (i % 5)));
  std::vector<double> h(x.cols * x.cols, 1.0);
  qlc::accumulateGram(x, h);
  for (int64_t i = 0; i < x.cols; ++i)
    for (int64_t j = 0; j < x.cols; ++j) {
      double ref = 1.0;
      for (int64_t r = 0; r < x.rows; ++r)
        ref += static_cast<double>(x.data[r * x.cols + i]) * x.data[r * x.cols + j];
      EXPECT_NEAR(h[i * x.cols + j], ref, 1e-5 * (std::fabs(ref) + 1.0)) << i << "," << j;
    }
}

TEST(CalibExecutor, RefusesBadTokens) {
  auto l = load("stories260k");
  auto fn = l->module->lookupSymbol<mlir::func::FuncOp>("forward");
  qlc::CalibrationData batch{1, 2, {1, 100000}, "test"};
  qlc::CalibExecutor exec(fn, *l->provider);
  std::string error;
  EXPECT_TRUE(mlir::failed(exec.run(batch, nullptr, error)));
  EXPECT_NE(error.find("100000"), std::string::npos) << error;
}

TEST(Calibration, SamplesFromText) {
  qlc::TokenizerAsset tok;
  std::ifstream f(kSrc + "/models/stories260k/tokenizer.json");
  tok.json.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  qlc::CalibrationOptions o{"", "", 4, 64};
  auto data = qlc::loadCalibration(o, tok, 512);
  ASSERT_TRUE(static_cast<bool>(data)) << llvm::toString(data.takeError());
  EXPECT_EQ(data->samples, 4);
  EXPECT_EQ(data->tokens.size(), 4u * 64u);
  EXPECT_GT(qlc::bundledCalibrationText().size(), 300000u);
  // Bad numbers and files name the flag.
  for (auto [opts, flag] : {std::pair{qlc::CalibrationOptions{"", "", 0, 64}, "--calib-samples"},
                            {qlc::CalibrationOptions{"", "", 4, 1}, "--calib-seqlen"},
                            {qlc::CalibrationOptions{"", "", 4, 513}, "--calib-seqlen"},
                            {qlc::CalibrationOptions{"/nonexistent/x.txt", "", 4, 64}, "--calib"},
                            {qlc::CalibrationOptions{"", "/nonexistent/ids.txt", 4, 64},
                             "--calib-tokens"}}) {
    auto bad = qlc::loadCalibration(opts, tok, 512);
    ASSERT_FALSE(static_cast<bool>(bad));
    EXPECT_NE(llvm::toString(bad.takeError()).find(flag), std::string::npos);
  }
  // Too short a text for every sample: as many as fit.
  const std::string tmp = ::testing::TempDir() + "calib-short.txt";
  std::ofstream(tmp) << "Once upon a time there was a little girl named Lily.";
  auto few = qlc::loadCalibration({tmp, "", 8, 4}, tok, 512);
  ASSERT_TRUE(static_cast<bool>(few)) << llvm::toString(few.takeError());
  EXPECT_GE(few->samples, 1);
  EXPECT_LT(few->samples, 8);
}

} // namespace
