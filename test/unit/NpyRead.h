//===- NpyRead.h - reading small .npy fixtures in tests --------*- C++ -*-===//
#ifndef QLC_TEST_UNIT_NPYREAD_H
#define QLC_TEST_UNIT_NPYREAD_H

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace qlc::test {

/// A C-ordered .npy array of a little-endian dtype (<f4, <f8, |u1), widened to double.
struct Npy {
  std::vector<int64_t> shape;
  std::vector<double> data;
};

inline Npy readNpy(const std::string &path) {
  Npy a;
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    ADD_FAILURE() << path << ": cannot open";
    return a;
  }
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (all.size() < 10 || all.compare(0, 6, "\x93NUMPY") != 0 || all[6] != 1) {
    ADD_FAILURE() << path << ": not a version 1 .npy file";
    return a;
  }
  const size_t headerLen = static_cast<uint8_t>(all[8]) | (static_cast<uint8_t>(all[9]) << 8);
  const std::string header = all.substr(10, headerLen);
  EXPECT_NE(header.find("'fortran_order': False"), std::string::npos) << path;
  const std::string descr = header.substr(header.find("'descr': '") + 10, 3);
  std::string dims = header.substr(header.find('(') + 1);
  dims = dims.substr(0, dims.find(')'));
  std::stringstream ss(dims);
  int64_t count = 1;
  for (std::string d; std::getline(ss, d, ',');)
    if (d.find_first_not_of(' ') != std::string::npos) {
      a.shape.push_back(std::stoll(d));
      count *= a.shape.back();
    }
  const char *p = all.data() + 10 + headerLen;
  const size_t width = descr == "<f8" ? 8 : descr == "<f4" ? 4 : 1;
  if (all.size() < 10 + headerLen + count * width) {
    ADD_FAILURE() << path << ": truncated";
    return a;
  }
  a.data.resize(count);
  for (int64_t i = 0; i < count; ++i) {
    if (descr == "<f4") {
      float v;
      std::memcpy(&v, p + 4 * i, 4);
      a.data[i] = v;
    } else if (descr == "<f8") {
      std::memcpy(&a.data[i], p + 8 * i, 8);
    } else if (descr == "|u1") {
      a.data[i] = static_cast<uint8_t>(p[i]);
    } else {
      ADD_FAILURE() << path << ": dtype " << descr;
      return a;
    }
  }
  return a;
}

} // namespace qlc::test

#endif // QLC_TEST_UNIT_NPYREAD_H
