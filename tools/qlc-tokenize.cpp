//===- qlc-tokenize.cpp - encode and decode with a tokenizer.json ----------===//
//
// A command-line front end to qlc's tokenizer, for testing it against Hugging Face
// tokenizers and for looking at how text tokenizes:
//
//   qlc-tokenize --tokenizer tokenizer.json --encode-file F [--whole] [--no-special]
//   qlc-tokenize --tokenizer tokenizer.json --encode "text" [--pieces]
//   qlc-tokenize --tokenizer tokenizer.json --decode "1 2 3" [--skip-special] [--stream]
//   qlc-tokenize --tokenizer tokenizer.json --decode-file IDS [--whole]
//   qlc-tokenize --tokenizer tokenizer.json --info
//
// Encoding prints one line of space-separated ids per input line (lines end at "\n", a
// "\r" before it is part of the line ending), or one line for the whole file with
// --whole. Decoding prints the text of each line of ids followed by "\n"; with --whole
// all ids of the file are decoded together and the text is written exactly, nothing added.
//
#include "tokenizer/Tokenizer.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr int kExitBadInput = 2, kExitInternal = 1;

int fail(const std::string &msg, int code = kExitBadInput) {
  std::cerr << "qlc-tokenize: error: " << msg << "\n";
  return code;
}

bool readFile(const std::string &path, std::string &out) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return !in.bad();
}

/// The lines of text: split at "\n", one "\r" before it dropped, no empty line after a
/// final "\n".
std::vector<std::string_view> splitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    size_t end = nl == std::string_view::npos ? text.size() : nl;
    std::string_view line = text.substr(start, end - start);
    if (nl != std::string_view::npos && !line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    lines.push_back(line);
    start = nl == std::string_view::npos ? text.size() : nl + 1;
  }
  return lines;
}

bool parseIds(std::string_view text, int32_t vocabSize, std::vector<int32_t> &ids, std::string &error) {
  std::istringstream in{std::string(text)};
  std::string tok;
  while (in >> tok) {
    char *end = nullptr;
    errno = 0;
    long long v = std::strtoll(tok.c_str(), &end, 10);
    if (end == tok.c_str() || *end != '\0' || errno != 0) {
      error = "'" + tok + "' is not an integer token id";
      return false;
    }
    if (v < 0 || v >= vocabSize) {
      error = "token id " + tok + " is outside the vocabulary (size " + std::to_string(vocabSize) + ")";
      return false;
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  return true;
}

void printIds(const std::vector<int32_t> &ids, std::string &out) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i)
      out += ' ';
    out += std::to_string(ids[i]);
  }
  out += '\n';
}

std::string decodeIds(const qlc::tok::Tokenizer &tok, const std::vector<int32_t> &ids, bool skip, bool stream) {
  if (!stream)
    return tok.decode(ids, skip);
  qlc::tok::StreamDecoder dec(tok, skip);
  std::string out;
  for (int32_t id : ids)
    out += dec.push(id);
  return out + dec.flush();
}

struct Options {
  std::string tokenizer, encodeFile, encodeText, decodeText, decodeFile;
  bool whole = false, noSpecial = false, skipSpecial = false, stream = false, pieces = false, info = false;
  bool haveEncodeText = false, haveDecodeText = false;
};

int run(const Options &o) {
  std::string error;
  auto tok = qlc::tok::Tokenizer::fromFile(o.tokenizer, &error);
  if (!tok)
    return fail(error);
  std::string out;
  if (o.info) {
    out += "vocab_size: " + std::to_string(tok->vocabSize()) + "\n";
    out += "bos: " + std::to_string(tok->bosId()) + "\n";
    out += "eos: " + std::to_string(tok->eosId()) + "\n";
  }
  auto encodeOne = [&](std::string_view text) {
    std::vector<int32_t> ids = tok->encode(text, !o.noSpecial);
    if (!o.pieces)
      return printIds(ids, out);
    for (size_t i = 0; i < ids.size(); ++i)
      out += (i ? " " : "") + tok->idToToken(ids[i]);
    out += '\n';
  };
  if (o.haveEncodeText)
    encodeOne(o.encodeText);
  if (!o.encodeFile.empty()) {
    std::string text;
    if (!readFile(o.encodeFile, text))
      return fail(o.encodeFile + ": cannot read");
    if (o.whole)
      encodeOne(text);
    else
      for (std::string_view line : splitLines(text))
        encodeOne(line);
  }
  if (o.haveDecodeText) {
    std::vector<int32_t> ids;
    if (!parseIds(o.decodeText, tok->vocabSize(), ids, error))
      return fail("--decode: " + error);
    out += decodeIds(*tok, ids, o.skipSpecial, o.stream) + "\n";
  }
  if (!o.decodeFile.empty()) {
    std::string text;
    if (!readFile(o.decodeFile, text))
      return fail(o.decodeFile + ": cannot read");
    std::vector<std::string_view> lines = splitLines(text);
    std::vector<int32_t> all;
    for (size_t i = 0; i < lines.size(); ++i) {
      std::vector<int32_t> ids;
      if (!parseIds(lines[i], tok->vocabSize(), ids, error))
        return fail(o.decodeFile + ":" + std::to_string(i + 1) + ": " + error);
      if (o.whole)
        all.insert(all.end(), ids.begin(), ids.end());
      else
        out += decodeIds(*tok, ids, o.skipSpecial, o.stream) + "\n";
    }
    if (o.whole)
      out += decodeIds(*tok, all, o.skipSpecial, o.stream);
  }
  std::cout << out;
  std::cout.flush();
  return std::cout ? 0 : fail("cannot write the output", kExitInternal);
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"qlc-tokenize: encode and decode text with a Hugging Face tokenizer.json"};
  Options o;
  app.add_option("--tokenizer", o.tokenizer, "tokenizer.json")->required();
  auto *ef = app.add_option("--encode-file", o.encodeFile, "text file to encode (one line of ids per line)");
  auto *et = app.add_option("--encode", o.encodeText, "text to encode");
  auto *dt = app.add_option("--decode", o.decodeText, "space-separated token ids to decode");
  auto *df = app.add_option("--decode-file", o.decodeFile, "file of token ids, one sequence per line");
  auto *in = app.add_flag("--info", o.info, "print the vocabulary size and BOS/EOS ids");
  app.add_flag("--whole", o.whole, "encode the whole file as one text / decode all ids of the file as one");
  app.add_flag("--no-special", o.noSpecial, "encode without the post-processor's special tokens (BOS)");
  app.add_flag("--skip-special", o.skipSpecial, "leave special tokens out of decoded text");
  app.add_flag("--stream", o.stream, "decode one id at a time through the streaming decoder");
  app.add_flag("--pieces", o.pieces, "print token strings instead of ids when encoding");
  try {
    app.parse(argc, argv);
    if (!(ef->count() + et->count() + dt->count() + df->count() + in->count()))
      throw CLI::ValidationError("give --encode-file, --encode, --decode, --decode-file or --info");
    o.haveEncodeText = et->count() > 0;
    o.haveDecodeText = dt->count() > 0;
  } catch (const CLI::ParseError &e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success))
      return app.exit(e); // --help
    std::string msg = e.what();
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    return fail(msg + " (see --help)");
  }
  try {
    return run(o);
  } catch (const std::exception &e) {
    return fail(std::string("internal error: ") + e.what(), kExitInternal);
  }
}
