#include "tokenizer/PostProcessor.h"

#include <cstdint>

namespace qlc::tok {

PostProcessor PostProcessor::fromJson(const Json &j, const std::string &where) {
  PostProcessor p;
  p.parseInto(j, where);
  return p;
}

void PostProcessor::parseInto(const Json &j, const std::string &where) {
  std::string type = typeOf(j, where);
  if (type == "Sequence") {
    const Json &list = need(j, "processors", where);
    if (!list.is_array())
      fail(where + ".processors", "expected an array");
    for (size_t i = 0; i < list.size(); ++i)
      parseInto(list[i], where + ".processors[" + std::to_string(i) + "]");
    return;
  }
  if (type == "ByteLevel")
    return;
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    auto idOf = [&](const char *key) {
      const Json &v = need(j, key, where);
      if (!v.is_array() || v.size() != 2 || !v[1].is_number_integer() || v[1].get<int64_t>() < 0 ||
          v[1].get<int64_t>() > INT32_MAX)
        fail(where + "." + key, "expected [token, id]");
      return int32_t(v[1].get<int64_t>());
    };
    Template t;
    t.push_back(Item{false, {idOf("cls")}});
    t.push_back(Item{true, {}});
    t.push_back(Item{false, {idOf("sep")}});
    steps_.push_back(std::move(t));
    return;
  }
  if (type != "TemplateProcessing")
    fail(where, "unsupported post-processor type '" + type + "'");
  const Json &single = need(j, "single", where);
  if (!single.is_array())
    fail(where + ".single", "expected an array");
  const Json *specials = field(j, "special_tokens");
  Template t;
  for (size_t i = 0; i < single.size(); ++i) {
    std::string at = where + ".single[" + std::to_string(i) + "]";
    const Json &item = single[i];
    if (field(item, "Sequence")) {
      t.push_back(Item{true, {}});
      continue;
    }
    const Json *sp = field(item, "SpecialToken");
    if (!sp)
      fail(at, "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    std::string name = needString(*sp, "id", at + ".SpecialToken");
    const Json *def = specials ? field(*specials, name.c_str()) : nullptr;
    if (!def)
      fail(at, "special token '" + name + "' is not in special_tokens");
    const Json &ids = need(*def, "ids", where + ".special_tokens." + name);
    Item it;
    for (const Json &id : ids) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
        fail(where + ".special_tokens." + name + ".ids", "expected non-negative integer ids");
      it.ids.push_back(int32_t(id.get<int64_t>()));
    }
    t.push_back(std::move(it));
  }
  steps_.push_back(std::move(t));
}

std::vector<int32_t> PostProcessor::apply(std::vector<int32_t> ids) const {
  for (const Template &t : steps_) {
    std::vector<int32_t> out;
    out.reserve(ids.size() + 4);
    for (const Item &it : t)
      out.insert(out.end(), it.isSequence ? ids.begin() : it.ids.begin(), it.isSequence ? ids.end() : it.ids.end());
    ids = std::move(out);
  }
  return ids;
}

int32_t PostProcessor::bos() const {
  for (const Template &t : steps_)
    for (const Item &it : t) {
      if (it.isSequence)
        break;
      if (!it.ids.empty())
        return it.ids[0];
    }
  return -1;
}

int32_t PostProcessor::eos() const {
  for (const Template &t : steps_) {
    bool after = false;
    for (const Item &it : t) {
      if (it.isSequence)
        after = true;
      else if (after && !it.ids.empty())
        return it.ids[0];
    }
  }
  return -1;
}

} // namespace qlc::tok
