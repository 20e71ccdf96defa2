//===- TokenizerAsset.cpp - the tokenizer a compiled artifact carries ------===//
#include "compiler/TokenizerAsset.h"

#include "tokenizer/Tokenizer.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using nlohmann::json;

namespace qlc {

namespace {

llvm::Error err(const std::string &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

bool readFile(const fs::path &p, std::string &out) {
  std::ifstream in(p, std::ios::binary);
  if (!in)
    return false;
  std::stringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

/// bos_token / eos_token are a string or an AddedToken object {"content": ...}.
std::string tokenText(const json &v) {
  if (v.is_string())
    return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return "";
}

} // namespace

llvm::Expected<TokenizerAsset> loadFolderTokenizer(const std::string &dir) {
  TokenizerAsset a;
  const fs::path tj = fs::path(dir) / "tokenizer.json";
  if (fs::exists(tj) && !readFile(tj, a.json))
    return err(tj.string() + ": cannot read");
  const fs::path tc = fs::path(dir) / "tokenizer_config.json";
  std::string text;
  if (fs::exists(tc)) {
    if (!readFile(tc, text))
      return err(tc.string() + ": cannot read");
    json j;
    try {
      j = json::parse(text);
    } catch (const std::exception &e) {
      return err(tc.string() + ": not valid JSON: " + e.what());
    }
    if (j.is_object()) {
      if (j.contains("chat_template")) {
        const json &t = j["chat_template"];
        if (t.is_string()) {
          a.chatTemplate = t.get<std::string>();
        } else if (t.is_array()) { // [{"name": "default", "template": ...}, ...]
          for (const json &e : t)
            if (e.is_object() && e.value("name", "") == "default" && e.contains("template") &&
                e["template"].is_string())
              a.chatTemplate = e["template"].get<std::string>();
        }
      }
      if (j.contains("bos_token"))
        a.bosToken = tokenText(j["bos_token"]);
      if (j.contains("eos_token"))
        a.eosToken = tokenText(j["eos_token"]);
    }
  }
  return a;
}

llvm::Error validateTokenizer(const TokenizerAsset &asset, const std::string &source) {
  if (asset.json.empty())
    return llvm::Error::success();
  std::string error;
  if (!tok::Tokenizer::fromJson(asset.json, &error))
    return err(source + ": " + error);
  return llvm::Error::success();
}

} // namespace qlc
