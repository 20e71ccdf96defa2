// Reading tokenizer.json fields with messages that name the offending field. Loading
// throws LoadError internally; Tokenizer::fromJson turns it into an error string.
#pragma once

#include "tokenizer/Utf8.h"

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

namespace qlc::tok {

using Json = nlohmann::json;

struct LoadError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void fail(const std::string &where, const std::string &what) {
  throw LoadError(where + ": " + what);
}

/// The field, or nullptr when absent or null.
inline const Json *field(const Json &obj, const char *key) {
  if (!obj.is_object())
    return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null())
    return nullptr;
  return &*it;
}

inline const Json &need(const Json &obj, const char *key, const std::string &where) {
  const Json *v = field(obj, key);
  if (!v)
    fail(where, std::string("missing field '") + key + "'");
  return *v;
}

inline std::string needString(const Json &obj, const char *key, const std::string &where) {
  const Json &v = need(obj, key, where);
  if (!v.is_string())
    fail(where + "." + key, "expected a string");
  return v.get<std::string>();
}

inline std::string optString(const Json &obj, const char *key, const std::string &where,
                             const std::string &dflt = "") {
  const Json *v = field(obj, key);
  if (!v)
    return dflt;
  if (!v->is_string())
    fail(where + "." + key, "expected a string");
  return v->get<std::string>();
}

inline bool optBool(const Json &obj, const char *key, const std::string &where, bool dflt) {
  const Json *v = field(obj, key);
  if (!v)
    return dflt;
  if (!v->is_boolean())
    fail(where + "." + key, "expected true or false");
  return v->get<bool>();
}

inline int64_t optInt(const Json &obj, const char *key, const std::string &where, int64_t dflt) {
  const Json *v = field(obj, key);
  if (!v)
    return dflt;
  if (!v->is_number_integer())
    fail(where + "." + key, "expected an integer");
  return v->get<int64_t>();
}

/// The "type" tag of a component object.
inline std::string typeOf(const Json &obj, const std::string &where) {
  if (!obj.is_object())
    fail(where, "expected an object");
  return needString(obj, "type", where);
}

/// Reads a {"String": "..."} or {"Regex": "..."} pattern; *isRegex tells which.
inline std::string patternOf(const Json &obj, const std::string &where, bool *isRegex) {
  const Json &p = need(obj, "pattern", where);
  if (const Json *s = field(p, "String"); s && s->is_string()) {
    *isRegex = false;
    return s->get<std::string>();
  }
  if (const Json *r = field(p, "Regex"); r && r->is_string()) {
    *isRegex = true;
    return r->get<std::string>();
  }
  fail(where + ".pattern", "expected {\"String\": ...} or {\"Regex\": ...}");
}

/// A single character given as a string (Metaspace's replacement, Strip's content).
inline std::string oneChar(const Json &obj, const char *key, const std::string &where) {
  std::string s = needString(obj, key, where);
  if (s.empty() || !utf8::isValid(s) || utf8::charLength(static_cast<unsigned char>(s[0])) != s.size())
    fail(where + "." + key, "expected exactly one character");
  return s;
}

} // namespace qlc::tok
