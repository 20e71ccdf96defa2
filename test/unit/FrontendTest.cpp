//===- FrontendTest.cpp - dtypes, config.json and safetensors parsing -----===//
#include "compiler/DType.h"
#include "compiler/ModelConfig.h"
#include "compiler/WeightStore.h"
#include "ir/Rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

using namespace qlc;

TEST(DType, HalfRoundTripsEveryValue) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = halfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f))
      continue;
    ASSERT_EQ(floatToHalf(f), h) << "half bits " << h;
  }
}

TEST(DType, HalfRoundsToNearestEven) {
  EXPECT_EQ(floatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(floatToHalf(1.0f + 1.0f / 2048), 0x3c00);        // tie, to even
  EXPECT_EQ(floatToHalf(1.0f + 3.0f / 2048), 0x3c02);        // tie, to even (up)
  EXPECT_EQ(floatToHalf(65520.0f), 0x7c00);                  // overflows to inf
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -25)), 0x0000);     // tie at the smallest subnormal
  EXPECT_EQ(floatToHalf(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(floatToHalf(-2.0f), 0xc000);
}

TEST(DType, Bf16RoundsToNearestEven) {
  EXPECT_EQ(floatToBf16(1.0f), 0x3f80);
  float tie;
  uint32_t u = 0x3f808000u; // exactly between 0x3f80 and 0x3f81
  std::memcpy(&tie, &u, 4);
  EXPECT_EQ(floatToBf16(tie), 0x3f80);
  u = 0x3f818000u;
  std::memcpy(&tie, &u, 4);
  EXPECT_EQ(floatToBf16(tie), 0x3f82);
  EXPECT_EQ(bf16ToFloat(0xc040), -3.0f);
}

TEST(DType, ConvertElements) {
  float src[3] = {1.5f, -2.25f, 1024.0f};
  uint16_t h[3];
  ASSERT_TRUE(convertElements(src, DType::F32, h, DType::F16, 3));
  float back[3];
  ASSERT_TRUE(convertElements(h, DType::F16, back, DType::F32, 3));
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(back[i], src[i]);
  EXPECT_FALSE(convertElements(src, DType::I32, back, DType::F32, 3));
}

namespace {
const char *kLlama = R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64,
  "intermediate_size": 100, "num_hidden_layers": 2, "num_attention_heads": 4,
  "vocab_size": 100, "rms_norm_eps": 1e-5)";

std::string cfg(const std::string &extra) { return std::string(kLlama) + extra + "}"; }
std::string errorOf(llvm::Expected<ModelConfig> c) {
  if (c)
    return "";
  return llvm::toString(c.takeError());
}
} // namespace

TEST(ModelConfig, Defaults) {
  auto c = parseModelConfig(cfg(""), "config.json");
  ASSERT_TRUE(static_cast<bool>(c)) << llvm::toString(c.takeError());
  EXPECT_EQ(c->numKvHeads, 4);
  EXPECT_EQ(c->headDim, 16);
  EXPECT_EQ(c->rope.scaling, "none");
  EXPECT_DOUBLE_EQ(c->rope.theta, 10000.0);
  EXPECT_FALSE(c->tieWordEmbeddings);
  EXPECT_FALSE(c->qkvBias);
}

TEST(ModelConfig, RopeKeysOldAndNew) {
  auto a = parseModelConfig(cfg(R"(, "rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3",
      "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})"),
                            "a");
  auto b = parseModelConfig(cfg(R"(, "rope_parameters": {"rope_theta": 500000.0, "rope_type": "llama3",
      "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})"),
                            "b");
  ASSERT_TRUE(static_cast<bool>(a) && static_cast<bool>(b));
  EXPECT_EQ(a->rope.scaling, "llama3");
  EXPECT_EQ(ropeInvFreq(a->rope), ropeInvFreq(b->rope));
  EXPECT_EQ(b->rope.originalMaxPosition, 8192);
}

TEST(ModelConfig, Errors) {
  EXPECT_NE(errorOf(parseModelConfig("{", "c.json")).find("c.json: not valid JSON"), std::string::npos);
  EXPECT_NE(errorOf(parseModelConfig(R"({"architectures": ["BertModel"]})", "c.json"))
                .find("unknown architecture 'BertModel'"),
            std::string::npos);
  EXPECT_NE(errorOf(parseModelConfig(cfg(R"(, "num_key_value_heads": 3)"), "c"))
                .find("not a multiple of num_key_value_heads 3"),
            std::string::npos);
  EXPECT_NE(errorOf(parseModelConfig(cfg(R"(, "hidden_size": "64")"), "c")).find("hidden_size"),
            std::string::npos);
  EXPECT_NE(errorOf(parseModelConfig(cfg(R"(, "rope_scaling": {"type": "dynamic", "factor": 2})"), "c"))
                .find("unsupported rope scaling type 'dynamic'"),
            std::string::npos);
  EXPECT_NE(errorOf(parseModelConfig(cfg(R"(, "head_dim": 15)"), "c")).find("must be even"),
            std::string::npos);
}

TEST(Rope, InvFreqMatchesTheFormula) {
  RopeParams p;
  p.headDim = 8;
  p.theta = 10000.0;
  auto f = ropeInvFreq(p);
  ASSERT_EQ(f.size(), 4u);
  for (int i = 0; i < 4; ++i)
    EXPECT_NEAR(f[i], std::pow(10000.0, -i / 4.0), 1e-7);
  p.scaling = "linear";
  p.factor = 4.0;
  auto g = ropeInvFreq(p);
  for (int i = 0; i < 4; ++i)
    EXPECT_FLOAT_EQ(g[i], f[i] / 4.0f);
}

namespace {
/// Writes a safetensors file with the given header JSON and `dataBytes` of data.
std::string writeSafetensors(const std::string &name, const std::string &header, size_t dataBytes) {
  auto path = (std::filesystem::temp_directory_path() / name).string();
  std::ofstream o(path, std::ios::binary);
  uint64_t n = header.size();
  o.write(reinterpret_cast<const char *>(&n), 8);
  o << header;
  std::string data(dataBytes, '\x01');
  o << data;
  return path;
}
std::string storeError(const std::string &path) {
  WeightStore s;
  if (llvm::Error e = s.addFile(path))
    return llvm::toString(std::move(e));
  return "";
}
} // namespace

TEST(WeightStore, ParsesAndValidates) {
  auto ok = writeSafetensors("qlc_ok.safetensors",
                             R"({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                                 "b": {"dtype": "BF16", "shape": [4], "data_offsets": [24, 32]},
                                 "__metadata__": {"format": "pt"}})",
                             32);
  WeightStore s;
  ASSERT_FALSE(static_cast<bool>(s.addFile(ok)));
  ASSERT_NE(s.find("a"), nullptr);
  EXPECT_EQ(s.find("a")->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(s.find("b")->dtype, DType::BF16);
  EXPECT_EQ(s.find("b")->bytes, 8u);

  EXPECT_NE(storeError(writeSafetensors("qlc_e1.safetensors",
                                        R"({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}})", 20))
                .find("lie outside the data section"),
            std::string::npos);
  EXPECT_NE(storeError(writeSafetensors("qlc_e2.safetensors",
                                        R"({"a": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 24]}})", 24))
                .find("tensor 'a': data_offsets span 24 bytes but dtype F16"),
            std::string::npos);
  EXPECT_NE(storeError(writeSafetensors("qlc_e3.safetensors",
                                        R"({"a": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}})", 2))
                .find("unsupported dtype 'F8_E4M3'"),
            std::string::npos);
  EXPECT_NE(storeError(writeSafetensors("qlc_e4.safetensors",
                                        R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                            "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 12))
                .find("overlapping"),
            std::string::npos);
  EXPECT_NE(storeError(writeSafetensors("qlc_e5.safetensors", "not json", 0)).find("not valid JSON"),
            std::string::npos);
  EXPECT_NE(storeError("/nonexistent/x.safetensors").find("cannot open"), std::string::npos);
}
