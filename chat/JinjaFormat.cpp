//===- JinjaFormat.cpp - Python's % formatting and str.format -------------===//
//
// The common subset: %s %r %d %i %f %e %g %x %o %c %% with flags, width and
// precision, %(name)s with a dict; '{}', '{0}', '{name}' with an optional format
// spec of fill, align, sign, width and precision.
//
//===----------------------------------------------------------------------===//
#include "chat/JinjaInterpreter.h"
#include "chat/JinjaUnicode.h"

#include <cstdio>

namespace qlc::chat::jinja {

namespace {

std::string formatNumber(char conv, const std::string &flags, int width, int prec, const Value &v) {
  std::string spec = "%" + flags;
  if (width >= 0)
    spec += std::to_string(width);
  if (prec >= 0)
    spec += "." + std::to_string(prec);
  char buf[512];
  if (conv == 'd' || conv == 'i' || conv == 'x' || conv == 'X' || conv == 'o') {
    if (!v.isNumber())
      throw Error(std::string("%") + conv + " format: a real number is required, not " + v.typeName());
    int64_t n = v.isInt() ? v.asInt() : static_cast<int64_t>(v.asDouble());
    spec += std::string("ll") + (conv == 'i' ? 'd' : conv);
    std::snprintf(buf, sizeof buf, spec.c_str(), static_cast<long long>(n));
  } else {
    if (!v.isNumber())
      throw Error(std::string("%") + conv + " format: a real number is required, not " + v.typeName());
    spec += conv;
    std::snprintf(buf, sizeof buf, spec.c_str(), v.asDouble());
  }
  return buf;
}

std::string pad(const std::string &s, int width, bool left, char32_t fill = ' ', char align = 0) {
  long n = static_cast<long>(codepointCount(s));
  if (width <= n)
    return s;
  std::string f;
  appendUtf8(f, fill);
  size_t missing = static_cast<size_t>(width - n);
  std::string padding;
  for (size_t i = 0; i < missing; ++i)
    padding += f;
  if (align == '^') {
    std::string l, r;
    for (size_t i = 0; i < missing / 2; ++i)
      l += f;
    for (size_t i = 0; i < missing - missing / 2; ++i)
      r += f;
    return l + s + r;
  }
  return left ? s + padding : padding + s;
}

} // namespace

std::string pyPercentFormat(const std::string &fmt, const Value &args) {
  List items;
  bool mapping = args.isDict();
  if (args.isTuple())
    items = args.items();
  else
    items.push_back(args);
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    if (++i >= fmt.size())
      throw Error("incomplete format");
    const Value *arg = nullptr;
    if (fmt[i] == '(') {
      size_t close = fmt.find(')', i);
      if (close == std::string::npos || !mapping)
        throw Error("format requires a mapping");
      arg = args.find(fmt.substr(i + 1, close - i - 1));
      if (!arg)
        throw Error("KeyError: '" + fmt.substr(i + 1, close - i - 1) + "'");
      i = close + 1;
    }
    std::string flags;
    while (i < fmt.size() && std::string("-+ #0").find(fmt[i]) != std::string::npos)
      flags += fmt[i++];
    int width = -1, prec = -1;
    while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9' && width < 10000)
      width = (width < 0 ? 0 : width * 10) + (fmt[i++] - '0');
    if (i < fmt.size() && fmt[i] == '.') {
      prec = 0;
      while (++i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9' && prec < 1000)
        prec = prec * 10 + (fmt[i] - '0');
    }
    if (i >= fmt.size())
      throw Error("incomplete format");
    char conv = fmt[i];
    if (conv == '%') {
      out += '%';
      continue;
    }
    if (!arg) {
      if (mapping) {
        arg = &args;
      } else {
        if (next >= items.size())
          throw Error("not enough arguments for format string");
        arg = &items[next++];
      }
    }
    bool left = flags.find('-') != std::string::npos;
    switch (conv) {
    case 's':
    case 'r': {
      std::string s = conv == 's' ? toStr(*arg) : toRepr(*arg);
      if (prec >= 0)
        s = encodeUtf8(decodeUtf8(s).substr(0, static_cast<size_t>(prec)));
      out += pad(s, width, left);
      break;
    }
    case 'c': {
      std::string s;
      if (arg->isString())
        s = arg->str();
      else if (arg->isInt() && arg->asInt() >= 0 && arg->asInt() <= 0x10FFFF)
        appendUtf8(s, static_cast<char32_t>(arg->asInt()));
      else
        throw Error("%c requires an int or a char");
      out += pad(s, width, left);
      break;
    }
    case 'd':
    case 'i':
    case 'x':
    case 'X':
    case 'o':
    case 'f':
    case 'F':
    case 'e':
    case 'E':
    case 'g':
    case 'G':
      out += formatNumber(conv, flags, width, prec, *arg);
      break;
    default:
      throw Error(std::string("unsupported format character '") + conv + "'");
    }
  }
  if (!mapping && next < items.size())
    throw Error("not all arguments converted during string formatting");
  return out;
}

std::string pyStrFormat(const std::string &fmt, const CallArgs &args) {
  std::string out;
  size_t autoIndex = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out += '}';
        ++i;
        continue;
      }
      throw Error("single '}' encountered in format string");
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    size_t close = fmt.find('}', i);
    if (close == std::string::npos)
      throw Error("expected '}' before end of string");
    std::string field = fmt.substr(i + 1, close - i - 1), spec;
    size_t colon = field.find(':');
    if (colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field = field.substr(0, colon);
    }
    const Value *arg = nullptr;
    if (field.empty()) {
      if (autoIndex >= args.positional.size())
        throw Error("Replacement index " + std::to_string(autoIndex) + " out of range");
      arg = &args.positional[autoIndex++];
    } else if (field.find_first_not_of("0123456789") == std::string::npos && field.size() < 9) {
      size_t idx = std::stoul(field);
      if (idx >= args.positional.size())
        throw Error("Replacement index " + field + " out of range");
      arg = &args.positional[idx];
    } else {
      for (const auto &[k, v] : args.keyword)
        if (k == field)
          arg = &v;
      if (!arg)
        throw Error("KeyError: '" + field + "'");
    }
    // [[fill]align][sign][width][.precision][type]
    char32_t fill = ' ';
    char align = 0;
    std::u32string u = decodeUtf8(spec);
    size_t p = 0;
    if (u.size() >= 2 && (u[1] == '<' || u[1] == '>' || u[1] == '^')) {
      fill = u[0];
      align = static_cast<char>(u[1]);
      p = 2;
    } else if (!u.empty() && (u[0] == '<' || u[0] == '>' || u[0] == '^')) {
      align = static_cast<char>(u[0]);
      p = 1;
    }
    std::string flags;
    if (p < u.size() && (u[p] == '+' || u[p] == ' ')) {
      flags += static_cast<char>(u[p++]);
    } else if (p < u.size() && u[p] == '-') {
      ++p;
    }
    int width = -1, prec = -1;
    while (p < u.size() && u[p] >= '0' && u[p] <= '9' && width < 10000)
      width = (width < 0 ? 0 : width * 10) + static_cast<int>(u[p++] - '0');
    if (p < u.size() && u[p] == '.') {
      prec = 0;
      while (++p < u.size() && u[p] >= '0' && u[p] <= '9' && prec < 1000)
        prec = prec * 10 + static_cast<int>(u[p] - '0');
    }
    char type = p < u.size() ? static_cast<char>(u[p++]) : 0;
    if (p != u.size())
      throw Error("invalid format specifier '" + spec + "'");
    std::string text;
    if (type == 0 && prec >= 0 && arg->kind() == Value::Kind::Float)
      type = 'g';
    if (type == 0 || type == 's')
      text = toStr(*arg);
    else
      text = formatNumber(type == 'n' ? 'g' : type, flags, -1, prec, *arg);
    bool numeric = arg->isNumber() && !arg->isBool();
    out += pad(text, width, align ? align == '<' : !numeric, fill, align);
    i = close;
  }
  return out;
}

} // namespace qlc::chat::jinja
