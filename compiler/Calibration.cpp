//===- Calibration.cpp - calibration samples from text ---------------------===//
#include "compiler/Calibration.h"

#include "tokenizer/Tokenizer.h"

#include "llvm/Support/raw_ostream.h"

#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace qlc {

namespace {
llvm::Error err(const std::string &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}
} // namespace

llvm::Expected<CalibrationData> loadCalibration(const CalibrationOptions &opts,
                                                const TokenizerAsset &tokenizer,
                                                int64_t maxPositions) {
  if (opts.samples < 1 || opts.samples > (1 << 20))
    return err("--calib-samples must be in [1, 1048576], got " + std::to_string(opts.samples));
  if (opts.seqLen < 2 || opts.seqLen > maxPositions)
    return err("--calib-seqlen must be in [2, " + std::to_string(maxPositions) +
               "] (the model's max_position_embeddings), got " + std::to_string(opts.seqLen));
  if (opts.samples * opts.seqLen > (int64_t{1} << 26))
    return err("--calib-samples x --calib-seqlen must be at most 67108864 tokens");
  CalibrationData data;
  std::vector<int32_t> ids;
  if (!opts.tokensFile.empty()) {
    if (!opts.file.empty())
      return err("--calib and --calib-tokens exclude each other");
    std::ifstream f(opts.tokensFile);
    if (!f)
      return err("--calib-tokens " + opts.tokensFile + ": cannot open the file");
    std::string word;
    while (f >> word) {
      char *end = nullptr;
      long v = std::strtol(word.c_str(), &end, 10);
      if (*end != '\0' || v < 0 || v > INT32_MAX)
        return err("--calib-tokens " + opts.tokensFile + ": '" + word + "' is not a token id");
      ids.push_back(static_cast<int32_t>(v));
    }
    data.source = opts.tokensFile;
  } else {
    std::string text;
    if (opts.file.empty()) {
      text = std::string(bundledCalibrationText());
      data.source = "the bundled calibration text (King James Bible sample)";
    } else {
      std::ifstream f(opts.file, std::ios::binary);
      if (!f)
        return err("--calib " + opts.file + ": cannot open the file");
      std::stringstream ss;
      ss << f.rdbuf();
      text = ss.str();
      data.source = opts.file;
    }
    if (tokenizer.json.empty())
      return err("--calib: the model has no tokenizer to read calibration text with (give "
                 "token ids with --calib-tokens)");
    std::string why;
    auto tok = tok::Tokenizer::fromJson(tokenizer.json, &why);
    if (!tok)
      return err("--calib: the model's tokenizer does not load: " + why);
    ids = tok->encode(text, /*addSpecialTokens=*/false);
  }
  const int64_t windows = static_cast<int64_t>(ids.size()) / opts.seqLen;
  if (windows == 0)
    return err((opts.tokensFile.empty() ? "--calib " : "--calib-tokens ") + data.source + ": " +
               std::to_string(ids.size()) + " tokens, fewer than --calib-seqlen " +
               std::to_string(opts.seqLen));
  data.samples = std::min(opts.samples, windows);
  data.seqLen = opts.seqLen;
  if (data.samples < opts.samples)
    llvm::errs() << "qlc: warning: " << data.source << " has " << ids.size()
                 << " tokens: calibrating on " << data.samples << " samples of " << opts.seqLen
                 << " tokens instead of " << opts.samples << "\n";
  data.tokens.reserve(static_cast<size_t>(data.samples * data.seqLen));
  for (int64_t i = 0; i < data.samples; ++i) {
    const int64_t start = i * windows / data.samples * opts.seqLen;
    data.tokens.insert(data.tokens.end(), ids.begin() + start, ids.begin() + start + opts.seqLen);
  }
  return data;
}

} // namespace qlc
