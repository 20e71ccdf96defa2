//===- TokenizerAsset.h - the tokenizer a compiled artifact carries -*- C++ -*-===//
#ifndef QLC_COMPILER_TOKENIZERASSET_H
#define QLC_COMPILER_TOKENIZERASSET_H

#include "llvm/Support/Error.h"

#include <string>

namespace qlc {

/// What the artifact stores so qlc-run can take and give text: tokenizer.json, the
/// chat template and the texts of the bos/eos tokens the template refers to.
struct TokenizerAsset {
  std::string json;         // empty: the model has no tokenizer
  std::string chatTemplate; // empty: none
  std::string bosToken, eosToken;
};

/// Reads `dir`/tokenizer.json and `dir`/tokenizer_config.json (chat_template,
/// bos_token, eos_token) when present. A present but unusable file is an error naming
/// it; absent files give an empty asset.
llvm::Expected<TokenizerAsset> loadFolderTokenizer(const std::string &dir);

/// Checks that `asset.json` loads in qlc's tokenizer; `source` names it in errors.
llvm::Error validateTokenizer(const TokenizerAsset &asset, const std::string &source);

} // namespace qlc

#endif // QLC_COMPILER_TOKENIZERASSET_H
