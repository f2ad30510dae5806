// The two tokenizer models on plain text: byte-level BPE (merge ranks) and SentencePiece (merge scores).
// Both follow llama.cpp's algorithms exactly, including the tie rule (equal rank/score: leftmost pair first).
#include <algorithm>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace moe {

namespace {

// Merge candidates of one BPE word; stale entries are recognised by the symbols they expected.
struct BpePair {
  int32_t rank;
  int32_t left;  // position of the left symbol
  int32_t left_sym, right_sym;
};
struct BpePairLater {  // priority_queue keeps the largest on top: lowest rank, then leftmost, must be "largest"
  bool operator()(const BpePair& a, const BpePair& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.left > b.left;
  }
};

// Reused buffers of one encode call (no allocation per word).
struct BpeScratch {
  std::vector<int32_t> sym, prev, next;
  std::vector<BpePair> heap;
  std::string encoded;
};

class BpeWordEncoder {
 public:
  explicit BpeWordEncoder(const Tokenizer::Impl& t) : t_(t) {}

  void encode(std::string_view word, std::vector<int32_t>& out) {
    if (t_.ignore_merges) {  // Llama-3: a piece that is a token is taken whole, whatever the merges say
      s_.encoded.clear();
      unicode::append_byte_encoded(s_.encoded, word);
      const int32_t id = t_.find(s_.encoded);
      if (id >= 0) {
        out.push_back(id);
        return;
      }
    }
    const int32_t n = static_cast<int32_t>(word.size());
    s_.sym.resize(n);
    s_.prev.resize(n);
    s_.next.resize(n);
    for (int32_t i = 0; i < n; ++i) {
      s_.sym[i] = t_.byte_symbol[static_cast<unsigned char>(word[i])];
      s_.prev[i] = i - 1;
      s_.next[i] = i + 1 < n ? i + 1 : -1;
    }
    s_.heap.clear();
    for (int32_t i = 0; i + 1 < n; ++i) add_pair(i, i + 1);
    while (!s_.heap.empty()) {
      std::pop_heap(s_.heap.begin(), s_.heap.end(), BpePairLater{});
      const BpePair p = s_.heap.back();
      s_.heap.pop_back();
      const int32_t r = s_.next[p.left];
      if (s_.sym[p.left] != p.left_sym || r < 0 || s_.sym[r] != p.right_sym) continue;  // stale
      s_.sym[p.left] = t_.merges.find(key(p.left_sym, p.right_sym))->second.result;
      s_.sym[r] = -1;
      s_.next[p.left] = s_.next[r];
      if (s_.next[r] >= 0) s_.prev[s_.next[r]] = p.left;
      if (s_.prev[p.left] >= 0) add_pair(s_.prev[p.left], p.left);
      if (s_.next[p.left] >= 0) add_pair(p.left, s_.next[p.left]);
    }
    for (int32_t i = 0; i >= 0 && n > 0; i = s_.next[i]) emit(s_.sym[i], out);
  }

 private:
  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  void add_pair(int32_t l, int32_t r) {
    auto it = t_.merges.find(key(s_.sym[l], s_.sym[r]));
    if (it == t_.merges.end()) return;
    s_.heap.push_back({it->second.rank, l, s_.sym[l], s_.sym[r]});
    std::push_heap(s_.heap.begin(), s_.heap.end(), BpePairLater{});
  }

  // A final symbol that is not a token (only with inconsistent merges) falls back to one token per character.
  void emit(int32_t sym, std::vector<int32_t>& out) const {
    if (sym < t_.n_vocab()) {
      out.push_back(sym);
      return;
    }
    const std::string& s = t_.extra_symbols[sym - t_.n_vocab()];
    for (size_t pos = 0; pos < s.size();) {
      const size_t len = std::min(unicode::utf8_len(static_cast<unsigned char>(s[pos])), s.size() - pos);
      const int32_t id = t_.find(std::string_view(s).substr(pos, len));
      if (id >= 0) {
        out.push_back(id);
      } else if (t_.unk >= 0) {
        out.push_back(t_.unk);
      }
      pos += len;
    }
  }

  const Tokenizer::Impl& t_;
  BpeScratch s_;
};

}  // namespace

void Tokenizer::Impl::encode_bpe(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<RegexSplitter::Piece> pieces;
  splitter.split(text, pieces);
  BpeWordEncoder enc(*this);
  // Words repeat a lot in real text: remember where each short word's ids went in `out` and copy them.
  std::unordered_map<std::string_view, std::pair<uint32_t, uint32_t>> seen;
  seen.reserve(std::min<size_t>(pieces.size(), 1 << 16));
  for (const auto& p : pieces) {
    const std::string_view word = text.substr(p.offset, p.length);
    if (word.size() > 64) {
      enc.encode(word, out);
      continue;
    }
    auto it = seen.find(word);
    if (it != seen.end()) {
      const size_t at = out.size();
      out.resize(at + it->second.second);
      std::copy_n(out.begin() + it->second.first, it->second.second, out.begin() + at);
      continue;
    }
    const size_t at = out.size();
    enc.encode(word, out);
    seen.emplace(word, std::pair<uint32_t, uint32_t>(static_cast<uint32_t>(at), static_cast<uint32_t>(out.size() - at)));
  }
}

// ---------------------------------------------------------------------------------------------------------

namespace {

struct SpmSymbol {
  uint32_t start, n;  // bytes of the escaped text; n == 0 once merged into its left neighbour
  int32_t prev, next;
};
struct SpmPair {
  float score;
  int32_t left, right;
  uint32_t size;
};
struct SpmPairLater {  // highest score first, then leftmost
  bool operator()(const SpmPair& a, const SpmPair& b) const {
    return a.score != b.score ? a.score < b.score : a.left > b.left;
  }
};

}  // namespace

namespace {

class SpmChunkEncoder {
 public:
  explicit SpmChunkEncoder(const Tokenizer::Impl& t) : t_(t) {}

  // llama.cpp's llm_tokenizer_spm_session on one chunk of escaped text.
  void encode(std::string_view sv, std::vector<int32_t>& out) {
    sym_.clear();
    for (uint32_t off = 0; off < sv.size();) {
      const uint32_t len = static_cast<uint32_t>(
          std::min(unicode::utf8_len(static_cast<unsigned char>(sv[off])), sv.size() - off));
      const int32_t i = static_cast<int32_t>(sym_.size());
      sym_.push_back({off, len, i - 1, off + len < sv.size() ? i + 1 : -1});
      off += len;
    }
    heap_.clear();
    for (int32_t i = 1; i < static_cast<int32_t>(sym_.size()); ++i) add_pair(sv, i - 1, i);
    while (!heap_.empty()) {
      std::pop_heap(heap_.begin(), heap_.end(), SpmPairLater{});
      const SpmPair p = heap_.back();
      heap_.pop_back();
      SpmSymbol& l = sym_[p.left];
      SpmSymbol& r = sym_[p.right];
      if (l.n == 0 || r.n == 0 || l.n + r.n != p.size) continue;  // stale
      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) sym_[r.next].prev = p.left;
      add_pair(sv, l.prev, p.left);
      add_pair(sv, p.left, l.next);
    }
    for (int32_t i = sym_.empty() ? -1 : 0; i >= 0; i = sym_[i].next) emit(sv.substr(sym_[i].start, sym_[i].n), out);
  }

 private:
  void add_pair(std::string_view sv, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const uint32_t size = sym_[l].n + sym_[r].n;
    const int32_t id = t_.find(sv.substr(sym_[l].start, size));
    if (id < 0) return;
    heap_.push_back({t_.score[id], l, r, size});
    std::push_heap(heap_.begin(), heap_.end(), SpmPairLater{});
  }

  void emit(std::string_view piece, std::vector<int32_t>& out) const {
    const int32_t id = t_.find(piece);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
    // Byte fallback; a character the vocabulary cannot spell even in bytes becomes one <unk>.
    const auto& bt = t_.byte_token;
    if (std::all_of(piece.begin(), piece.end(), [&](char c) { return bt[static_cast<unsigned char>(c)] >= 0; })) {
      for (char c : piece) out.push_back(bt[static_cast<unsigned char>(c)]);
    } else if (t_.unk >= 0) {
      out.push_back(t_.unk);
    }
  }

  const Tokenizer::Impl& t_;
  std::vector<SpmSymbol> sym_;
  std::vector<SpmPair> heap_;
};

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's space

}  // namespace

void Tokenizer::Impl::encode_spm(std::string_view raw, bool prefix_space, std::vector<int32_t>& out) const {
  // SentencePiece sees spaces as U+2581 and (usually) one space in front of the text.
  std::string s;
  s.reserve(raw.size() + raw.size() / 4 + 4);
  if (prefix_space) s += kSpace;
  for (char c : raw) {
    if (c == ' ') {
      s += kSpace;
    } else {
      s.push_back(c);
    }
  }
  // Merges are global, but no token spans a point just before a space whose left neighbour never precedes
  // a space inside a token; cutting there gives the same ids, keeps heaps small and lets words be cached.
  SpmChunkEncoder enc(*this);
  const std::string_view sv(s);
  std::unordered_map<std::string_view, std::pair<uint32_t, uint32_t>> seen;
  auto chunk = [&](size_t from, size_t to) {
    const std::string_view word = sv.substr(from, to - from);
    auto it = word.size() <= 64 ? seen.find(word) : seen.end();
    if (it != seen.end()) {
      const size_t at = out.size();
      out.resize(at + it->second.second);
      std::copy_n(out.begin() + it->second.first, it->second.second, out.begin() + at);
      return;
    }
    const size_t at = out.size();
    enc.encode(word, out);
    if (word.size() <= 64)
      seen.emplace(word, std::pair<uint32_t, uint32_t>(static_cast<uint32_t>(at), static_cast<uint32_t>(out.size() - at)));
  };
  size_t start = 0;
  uint32_t prev_cp = 0x2581;
  for (size_t pos = 0; pos < s.size();) {
    const size_t at = pos;
    const uint32_t cp = unicode::decode_utf8(sv, pos);
    if (cp == 0x2581 && at > start && prev_cp != 0x2581 && !spm_glue.count(prev_cp)) {
      chunk(start, at);
      start = at;
    }
    prev_cp = cp;
  }
  if (start < s.size()) chunk(start, s.size());
}

}  // namespace moe
