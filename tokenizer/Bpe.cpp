#include "tokenizer/Bpe.h"

#include "tokenizer/Utf8.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <queue>

namespace qlc::tok {

namespace {

// One symbol of a word being merged: a doubly linked list over a vector.
struct Symbol {
  int32_t id;
  int32_t prev, next;
  uint32_t len; // 0 once merged into its left neighbour
};

struct QueuedMerge {
  uint32_t rank;
  int32_t pos;
  int32_t newId;
  bool operator<(const QueuedMerge &o) const { // priority_queue pops the largest: lowest rank, then pos
    return rank != o.rank ? rank > o.rank : pos > o.pos;
  }
};

std::string shorten(const std::string &s) { return s.size() > 40 ? s.substr(0, 40) + "..." : s; }

} // namespace

std::unique_ptr<Bpe> Bpe::fromJson(const Json &j, const std::string &where) {
  auto bpe = std::unique_ptr<Bpe>(new Bpe());
  const Json &vocab = need(j, "vocab", where);
  if (!vocab.is_object())
    fail(where + ".vocab", "expected an object mapping tokens to ids");
  int64_t maxId = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > INT32_MAX)
      fail(where + ".vocab", "token '" + shorten(it.key()) + "' has no valid id");
    maxId = std::max(maxId, it.value().get<int64_t>());
  }
  if (maxId > 16 * int64_t(vocab.size()) + 1024)
    fail(where + ".vocab", "ids are too sparse (largest id " + std::to_string(maxId) + " for " +
                               std::to_string(vocab.size()) + " tokens)");
  bpe->idToToken_.resize(size_t(maxId + 1));
  bpe->hasId_.assign(size_t(maxId + 1), false);
  bpe->vocab_.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const std::string &tok = it.key();
    if (!utf8::isValid(tok))
      fail(where + ".vocab", "a token is not valid UTF-8");
    auto id = int32_t(it.value().get<int64_t>());
    bpe->vocab_.emplace(tok, id);
    if (!bpe->hasId_[size_t(id)]) {
      bpe->idToToken_[size_t(id)] = tok;
      bpe->hasId_[size_t(id)] = true;
    }
  }

  std::string type = optString(j, "type", where, "BPE");
  if (type != "BPE")
    fail(where + ".type", "expected BPE");
  if (const Json *d = field(j, "dropout"); d && (!d->is_number() || d->get<double>() < 0 || d->get<double>() > 1))
    fail(where + ".dropout", "expected a number in [0, 1]"); // accepted; encoding is deterministic
  bpe->prefix_ = optString(j, "continuing_subword_prefix", where);
  bpe->suffix_ = optString(j, "end_of_word_suffix", where);
  bpe->fuseUnk_ = optBool(j, "fuse_unk", where, false);
  bpe->byteFallback_ = optBool(j, "byte_fallback", where, false);
  bpe->ignoreMerges_ = optBool(j, "ignore_merges", where, false);
  if (const Json *u = field(j, "unk_token")) {
    if (!u->is_string())
      fail(where + ".unk_token", "expected a string");
    auto it = bpe->vocab_.find(u->get<std::string>());
    if (it == bpe->vocab_.end())
      fail(where + ".unk_token", "'" + u->get<std::string>() + "' is not in the vocabulary");
    bpe->unkId_ = it->second;
  }
  if (bpe->prefix_.empty() && bpe->suffix_.empty())
    for (auto &[tok, id] : bpe->vocab_) {
      if (!tok.empty() && utf8::charLength(static_cast<unsigned char>(tok[0])) == tok.size()) {
        size_t i = 0;
        bpe->charIds_.emplace(utf8::next(tok, i), id);
      }
    }
  bpe->allBytes_ = true;
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    auto it = bpe->vocab_.find(name);
    bpe->byteIds_[b] = it == bpe->vocab_.end() ? -1 : it->second;
    bpe->allBytes_ &= bpe->byteIds_[b] >= 0;
  }

  const Json &merges = need(j, "merges", where);
  if (!merges.is_array())
    fail(where + ".merges", "expected an array");
  bpe->merges_.reserve(merges.size());
  uint32_t rank = 0;
  for (size_t i = 0; i < merges.size(); ++i) {
    const Json &m = merges[i];
    std::string at = where + ".merges[" + std::to_string(i) + "]";
    std::string a, b;
    if (m.is_string()) {
      const std::string &line = m.get_ref<const std::string &>();
      if (line.rfind("#version", 0) == 0)
        continue;
      size_t sp = line.find(' ');
      if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos)
        fail(at, "expected two tokens separated by one space, got '" + shorten(line) + "'");
      a = line.substr(0, sp);
      b = line.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      fail(at, "expected \"a b\" or [\"a\", \"b\"]");
    }
    auto ia = bpe->vocab_.find(a), ib = bpe->vocab_.find(b);
    if (ia == bpe->vocab_.end())
      fail(at, "token '" + shorten(a) + "' is not in the vocabulary");
    if (ib == bpe->vocab_.end())
      fail(at, "token '" + shorten(b) + "' is not in the vocabulary");
    std::string bTail = b.compare(0, bpe->prefix_.size(), bpe->prefix_) == 0 ? b.substr(bpe->prefix_.size()) : b;
    auto in = bpe->vocab_.find(a + bTail);
    if (in == bpe->vocab_.end())
      fail(at, "merged token '" + shorten(a + bTail) + "' is not in the vocabulary");
    bpe->merges_[key(ia->second, ib->second)] = Merge{rank++, in->second};
  }
  return bpe;
}

int32_t Bpe::tokenToId(std::string_view token) const { return lookup(token); }

const std::string *Bpe::idToToken(int32_t id) const {
  if (id < 0 || size_t(id) >= idToToken_.size() || !hasId_[size_t(id)])
    return nullptr;
  return &idToToken_[size_t(id)];
}

int32_t Bpe::lookup(std::string_view s) const {
  auto it = vocab_.find(std::string(s));
  return it == vocab_.end() ? -1 : it->second;
}

const Bpe::Merge *Bpe::findMerge(int32_t a, int32_t b) const {
  auto it = merges_.find(key(a, b));
  return it == merges_.end() ? nullptr : &it->second;
}

void Bpe::tokenize(std::string_view word, std::vector<int32_t> &out) const {
  if (word.empty())
    return;
  if (ignoreMerges_) {
    if (int32_t id = lookup(word); id >= 0) {
      out.push_back(id);
      return;
    }
  }
  // The initial symbols: one per character, unknown ones by byte fallback or <unk>.
  std::vector<Symbol> syms;
  syms.reserve(word.size());
  auto add = [&](int32_t id, uint32_t len) {
    int32_t n = int32_t(syms.size());
    syms.push_back(Symbol{id, n - 1, -1, len});
    if (n > 0)
      syms[size_t(n - 1)].next = n;
  };
  int32_t pendingUnk = -1;
  uint32_t pendingLen = 0;
  bool simple = prefix_.empty() && suffix_.empty();
  std::string s;
  for (size_t i = 0; i < word.size();) {
    size_t start = i;
    uint32_t cp = utf8::next(word, i);
    auto byteLen = uint32_t(i - start);
    int32_t id = -1;
    if (simple) {
      auto it = charIds_.find(cp);
      id = it == charIds_.end() ? -1 : it->second;
      if (id < 0)
        s.assign(word.substr(start, byteLen));
    } else {
      s.clear();
      if (start > 0)
        s += prefix_;
      s.append(word.substr(start, byteLen));
      if (i == word.size())
        s += suffix_;
      id = lookup(s);
    }
    if (id >= 0) {
      if (pendingUnk >= 0) {
        add(pendingUnk, pendingLen);
        pendingUnk = -1;
      }
      add(id, byteLen);
      continue;
    }
    if (byteFallback_) {
      bool all = true;
      for (unsigned char c : s)
        all &= byteIds_[c] >= 0;
      if (all) {
        for (unsigned char c : s)
          add(byteIds_[c], 1);
        continue;
      }
    }
    if (unkId_ >= 0) {
      if (pendingUnk >= 0 && fuseUnk_) {
        pendingLen += byteLen;
      } else {
        if (pendingUnk >= 0)
          add(pendingUnk, pendingLen);
        pendingUnk = unkId_;
        pendingLen = byteLen;
      }
    }
  }
  if (pendingUnk >= 0)
    add(pendingUnk, pendingLen);

  // Merge by rank, lowest first, leftmost among equals (tokenizers' Word::merge_all).
  if (syms.size() > 1) {
    std::vector<QueuedMerge> heap;
    heap.reserve(syms.size());
    for (size_t k = 0; k + 1 < syms.size(); ++k)
      if (const Merge *m = findMerge(syms[k].id, syms[k + 1].id))
        heap.push_back(QueuedMerge{m->rank, int32_t(k), m->newId});
    std::priority_queue<QueuedMerge> queue(std::less<QueuedMerge>(), std::move(heap));
    while (!queue.empty()) {
      QueuedMerge top = queue.top();
      queue.pop();
      Symbol &cur = syms[size_t(top.pos)];
      if (cur.len == 0 || cur.next < 0)
        continue;
      Symbol &right = syms[size_t(cur.next)];
      const Merge *m = findMerge(cur.id, right.id);
      if (!m || m->newId != top.newId)
        continue; // a stale entry: one side has merged since
      cur.id = top.newId;
      cur.len += right.len;
      cur.next = right.next;
      right.len = 0;
      if (cur.next >= 0)
        syms[size_t(cur.next)].prev = top.pos;
      if (cur.prev >= 0)
        if (const Merge *pm = findMerge(syms[size_t(cur.prev)].id, cur.id))
          queue.push(QueuedMerge{pm->rank, cur.prev, pm->newId});
      if (cur.next >= 0)
        if (const Merge *nm = findMerge(cur.id, syms[size_t(cur.next)].id))
          queue.push(QueuedMerge{nm->rank, top.pos, nm->newId});
    }
  }
  for (const Symbol &sym : syms)
    if (sym.len > 0)
      out.push_back(sym.id);
}

} // namespace qlc::tok
