#include "tokenizer/bpe_trainer.h"

#include <algorithm>
#include <queue>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace moe {

namespace {

using Pair = uint64_t;  // left symbol << 32 | right symbol

Pair make_pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}
int32_t pair_left(Pair p) { return static_cast<int32_t>(p >> 32); }
int32_t pair_right(Pair p) { return static_cast<int32_t>(p & 0xFFFFFFFFu); }

struct Word {
  std::vector<int32_t> syms;
  int64_t count;
  int32_t stamp = -1;  // last merge that rewrote this word (dedupes the occurrence lists)
};

// Heap entry; stale when its count no longer matches the pair's current count.
struct Candidate {
  int64_t count;
  Pair pair;
  bool operator<(const Candidate& o) const {  // largest count first, then the smaller pair (deterministic)
    return count != o.count ? count < o.count : pair > o.pair;
  }
};

class MergeLearner {
 public:
  explicit MergeLearner(std::vector<Word> words) : words_(std::move(words)) {
    for (int32_t w = 0; w < static_cast<int32_t>(words_.size()); ++w) {
      const auto& s = words_[w].syms;
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const Pair p = make_pair_key(s[i], s[i + 1]);
        counts_[p] += words_[w].count;
        where_[p].push_back(w);
      }
    }
    for (const auto& [p, c] : counts_) heap_.push({c, p});
  }

  // The most frequent pair with at least min_count occurrences, or false when none is left.
  bool best(int64_t min_count, Pair& out) {
    while (!heap_.empty()) {
      const Candidate c = heap_.top();
      heap_.pop();
      auto it = counts_.find(c.pair);
      if (it == counts_.end() || it->second != c.count) continue;  // stale
      if (c.count < min_count) return false;
      out = c.pair;
      return true;
    }
    return false;
  }

  // Rewrites every word containing `p` with symbol x and updates the neighbouring pair counts.
  void merge(Pair p, int32_t x, int32_t merge_index) {
    const int32_t a = pair_left(p), b = pair_right(p);
    std::vector<int32_t> occurrences = std::move(where_[p]);
    where_.erase(p);
    changed_.clear();
    std::vector<int32_t> out;
    for (int32_t w : occurrences) {
      Word& word = words_[w];
      if (word.stamp == merge_index) continue;
      word.stamp = merge_index;
      const auto& s = word.syms;
      const int64_t n = word.count;
      out.clear();
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          if (!out.empty()) {
            add(make_pair_key(out.back(), a), -n, w);
            add(make_pair_key(out.back(), x), n, w);
          }
          if (i + 2 < s.size()) {
            add(make_pair_key(b, s[i + 2]), -n, w);
            add(make_pair_key(x, s[i + 2]), n, w);
          }
          add(p, -n, w);
          out.push_back(x);
          i += 2;
        } else {
          out.push_back(s[i]);
          ++i;
        }
      }
      word.syms.assign(out.begin(), out.end());
    }
    counts_.erase(p);
    for (Pair c : changed_) {
      auto it = counts_.find(c);
      if (it == counts_.end()) continue;
      if (it->second <= 0) {
        counts_.erase(it);
        where_.erase(c);
      } else {
        heap_.push({it->second, c});
      }
    }
  }

 private:
  void add(Pair p, int64_t delta, int32_t w) {
    counts_[p] += delta;
    if (delta > 0) where_[p].push_back(w);
    changed_.push_back(p);
  }

  std::vector<Word> words_;
  std::unordered_map<Pair, int64_t> counts_;
  std::unordered_map<Pair, std::vector<int32_t>> where_;
  std::priority_queue<Candidate> heap_;
  std::vector<Pair> changed_;
};

}  // namespace

const char* BpeTrainer::chatml_template() {
  return "{%- for message in messages %}"
         "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
         "{%- endfor %}"
         "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
}

BpeTrainer::BpeTrainer(BpeTrainerOptions options) : opt_(std::move(options)) {
  const PreTokenizerSpec* spec = find_pre_tokenizer(opt_.pre);
  if (!spec) throw UsageError("unknown pre-tokenizer '" + opt_.pre + "'");
  opt_.pre = spec->name;
  const int64_t min_size = 256 + static_cast<int64_t>(opt_.special_tokens.size()) + 1;
  if (opt_.vocab_size < min_size)
    throw UsageError("vocabulary size " + std::to_string(opt_.vocab_size) + " is too small (at least " +
                     std::to_string(min_size) + ": 256 bytes, the special tokens and one merge)");
  splitter_ = RegexSplitter(spec->regexes);
  nfc_ = spec->nfc;
}

void BpeTrainer::add_text(std::string_view text) {
  std::string normalized;
  if (nfc_ && !unicode::is_nfc_quick(text)) {  // the tokenizer will see NFC text, so learn from NFC text
    normalized = unicode::to_nfc(text);
    text = normalized;
  }
  std::vector<RegexSplitter::Piece> pieces;
  splitter_.split(text, pieces);
  for (const auto& p : pieces) ++word_counts_[std::string(text.substr(p.offset, p.length))];
  total_words_ += static_cast<int64_t>(pieces.size());
}

TokenizerMetadata BpeTrainer::train() const {
  TokenizerMetadata m;
  m.model = "gpt2";
  m.pre = opt_.pre;
  // Symbols 0..255 are the bytes in byte order, written in GPT-2's printable alphabet.
  for (int b = 0; b < 256; ++b) m.tokens.push_back(unicode::byte_to_symbol(static_cast<uint8_t>(b)));

  std::vector<Word> words;
  words.reserve(word_counts_.size());
  for (const auto& [text, count] : word_counts_) {
    Word w;
    w.count = count;
    for (char c : text) w.syms.push_back(static_cast<unsigned char>(c));
    words.push_back(std::move(w));
  }
  // Deterministic regardless of hash order: sort words by their bytes.
  std::sort(words.begin(), words.end(), [](const Word& x, const Word& y) { return x.syms < y.syms; });

  const int32_t wanted = opt_.vocab_size - 256 - static_cast<int32_t>(opt_.special_tokens.size());
  MergeLearner learner(std::move(words));
  // Two merges can spell the same string ("ab c" and "a bc"): they share one token, as in HF's trainer.
  std::unordered_map<std::string, int32_t> id_of;
  for (int32_t i = 0; static_cast<int32_t>(m.tokens.size()) < 256 + wanted; ++i) {
    Pair p;
    if (!learner.best(opt_.min_pair_count, p)) break;
    const std::string l = m.tokens[pair_left(p)], r = m.tokens[pair_right(p)];
    m.merges.push_back(l + " " + r);
    auto [it, added] = id_of.emplace(l + r, static_cast<int32_t>(m.tokens.size()));
    if (added) m.tokens.push_back(l + r);
    learner.merge(p, it->second, i);
    const int32_t learnt = static_cast<int32_t>(m.tokens.size()) - 256;
    if (opt_.progress && added && (learnt % 256 == 0 || learnt == wanted)) opt_.progress(learnt, wanted);
  }
  m.token_types.assign(m.tokens.size(), kTokenNormal);
  for (const auto& s : opt_.special_tokens) {
    m.tokens.push_back(s);
    m.token_types.push_back(kTokenControl);
  }
  if (!opt_.special_tokens.empty()) {
    const int64_t eot = static_cast<int64_t>(m.tokens.size() - opt_.special_tokens.size());
    m.bos = m.eos = m.eot = m.pad = eot;
  }
  m.add_bos = false;
  m.add_eos = false;
  m.chat_template = chatml_template();
  return m;
}

}  // namespace moe
