//===- RunCommon.cpp - shared pieces of qlc-run's modes --------------------===//
#include "RunCommon.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

namespace qlcrun {

int exitFor(qlc_status s) {
  return s == QLC_ERR_INTERNAL || s == QLC_ERR_OUT_OF_MEMORY ? kExitInternal : kExitBadInput;
}

int fail(const std::string &msg, int code) {
  std::cerr << "qlc-run: error: " << msg << "\n";
  return code;
}

int failStatus(qlc_status s, const std::string &what) {
  return fail(what + ": " + qlc_last_error(), exitFor(s));
}

bool parseIds(const std::string &text, std::vector<int32_t> &ids, std::string &error) {
  std::istringstream in(text);
  std::string tok;
  while (in >> tok) {
    char *end = nullptr;
    errno = 0;
    long v = std::strtol(tok.c_str(), &end, 10);
    if (end == tok.c_str() || *end != '\0' || errno != 0 || v < INT32_MIN || v > INT32_MAX) {
      error = "'" + tok + "' is not an integer token id";
      return false;
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  if (ids.empty()) {
    error = "no token ids given";
    return false;
  }
  return true;
}

/// Writes a float32 [rows, cols] array as a NumPy .npy file (format 1.0).
bool writeNpy(const std::string &path, const std::vector<float> &data, int64_t rows, int64_t cols) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                       std::to_string(rows) + ", " + std::to_string(cols) + "), }";
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  const std::string tmp = path + ".tmp";
  std::ofstream o(tmp, std::ios::binary);
  if (!o)
    return false;
  o.write("\x93NUMPY\x01\x00", 8);
  uint16_t len = static_cast<uint16_t>(header.size());
  o.write(reinterpret_cast<const char *>(&len), 2);
  o.write(header.data(), static_cast<std::streamsize>(header.size()));
  o.write(reinterpret_cast<const char *>(data.data()),
          static_cast<std::streamsize>(data.size() * sizeof(float)));
  o.close();
  if (!o)
    return false;
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

double seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int startGeneration(const Options &o, Handles &h, const std::vector<int32_t> &ids,
                    std::vector<float> &logits, SamplerPtr &sampler) {
  const int32_t vocab = qlc_model_vocab_size(h.model);
  logits.assign(vocab, 0.0f);
  if (qlc_status s = qlc_prefill(h.session, 0, ids.data(), static_cast<int64_t>(ids.size()), 0,
                                 logits.data()))
    return failStatus(s, "prefill");
  qlc_sampler *raw = nullptr;
  if (qlc_status s = qlc_sampler_create(&o.sampling, vocab, &raw))
    return failStatus(s, "sampling options");
  sampler.reset(raw);
  for (int32_t t : ids)
    qlc_sampler_accept(raw, t);
  return 0;
}

std::vector<int64_t> eosIds(const Handles &h) {
  std::vector<int64_t> eos;
  auto man = nlohmann::json::parse(qlc_model_manifest(h.model));
  for (const auto &e : man["model"].value("eos_token_ids", nlohmann::json::array()))
    eos.push_back(e.get<int64_t>());
  return eos;
}

} // namespace qlcrun
