// Encode (special-token partition, then the model on each run of text), decode and streaming decode.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "core/error.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/tokenizer_metadata.h"
#include "tokenizer/unicode.h"

namespace moe {

namespace {

using Impl = Tokenizer::Impl;

// A piece of the input: a special token, or a run of plain text [offset, offset + length).
struct Fragment {
  int32_t token;  // -1 for text
  size_t offset, length;
};

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// The special tokens that occur in `text` (one scan, testing only tokens whose first byte matches).
std::vector<int32_t> specials_in(const Impl& t, std::string_view text, bool parse_special) {
  std::array<std::vector<int32_t>, 256> by_first;
  size_t n_candidates = 0;
  for (int32_t id : t.specials) {
    if (!parse_special && (t.attr[id] & (kAttrControl | kAttrUnknown))) continue;  // only user-defined ones
    by_first[static_cast<unsigned char>(t.text[id][0])].push_back(id);
    ++n_candidates;
  }
  std::vector<int32_t> found;
  if (n_candidates == 0) return found;
  std::vector<char> seen(t.text.size(), 0);
  for (size_t pos = 0; pos < text.size() && found.size() < n_candidates; ++pos) {
    for (int32_t id : by_first[static_cast<unsigned char>(text[pos])]) {
      if (!seen[id] && text.compare(pos, t.text[id].size(), t.text[id]) == 0) {
        seen[id] = 1;
        found.push_back(id);
      }
    }
  }
  // Keep the loader's order (longest first), which decides overlaps exactly as llama.cpp does.
  std::vector<int32_t> ordered;
  for (int32_t id : t.specials)
    if (seen[id]) ordered.push_back(id);
  return ordered;
}

// llama.cpp's tokenizer_st_partition: each special token in turn (longest first) splits every remaining
// text fragment at all its occurrences; LSTRIP/RSTRIP tokens eat the whitespace beside them.
std::vector<Fragment> partition(const Impl& t, std::string_view text, bool parse_special) {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({-1, 0, text.size()});
  std::vector<Fragment> next;
  for (int32_t id : specials_in(t, text, parse_special)) {
    const std::string& tok = t.text[id];
    const uint32_t a = t.attr[id];
    next.clear();
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      const size_t end = f.offset + f.length;
      const std::string_view window = text.substr(0, end);
      size_t pos = f.offset;
      for (size_t m; (m = window.find(tok, pos)) != std::string_view::npos;) {
        size_t left_len = m - pos;
        if (a & kAttrLstrip)
          while (left_len > 0 && is_space(text[pos + left_len - 1])) --left_len;
        if (left_len > 0) next.push_back({-1, pos, left_len});
        next.push_back({id, 0, 0});
        pos = m + tok.size();
        if (a & kAttrRstrip)
          while (pos < end && is_space(text[pos])) ++pos;
      }
      if (pos < end) next.push_back({-1, pos, end - pos});
    }
    frags.swap(next);
  }
  return frags;
}

}  // namespace

void Tokenizer::Impl::check_id(int32_t id) const {
  if (id < 0 || id >= n_vocab())
    throw UsageError("token id " + std::to_string(id) + " is out of range (the vocabulary has " +
                     std::to_string(n_vocab()) + " tokens)");
}

std::string_view Tokenizer::Impl::visible_piece(int32_t id, bool remove_special, bool& strip_space) const {
  check_id(id);
  if (id == bos) {  // SentencePiece: the encoder's leading space follows BOS; drop it from the next piece
    strip_space = true;
    return remove_special ? std::string_view() : std::string_view(piece[id]);
  }
  const bool strip = strip_space && model == Model::kSpm && add_space_prefix;
  strip_space = false;
  if (remove_special && (attr[id] & (kAttrControl | kAttrUnknown))) return {};
  std::string_view p = piece[id];
  if (strip && !p.empty() && p[0] == ' ') p.remove_prefix(1);
  return p;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  const Impl& t = *impl_;
  if (text.size() > (1u << 30))  // offsets inside the encoders are 32-bit; escaped SPM text can triple
    throw UsageError("text of " + std::to_string(text.size()) + " bytes is too long to tokenize at once (1 GiB max)");
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special && t.add_bos) out.push_back(t.bos);
  bool after_special = true;  // SentencePiece puts a space in front of text at the start and after a token
  std::string normalized;
  for (const Fragment& f : partition(t, text, parse_special)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      after_special = true;
      continue;
    }
    std::string_view run = text.substr(f.offset, f.length);
    if (t.nfc && !unicode::is_nfc_quick(run)) {
      normalized = unicode::to_nfc(run);
      run = normalized;
    }
    if (t.model == Impl::Model::kSpm) {
      t.encode_spm(run, t.add_space_prefix && after_special, out);
    } else {
      t.encode_bpe(run, out);
    }
    after_special = false;
  }
  if (add_special && t.add_eos) out.push_back(t.eos);
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool remove_special) const {
  std::string out;
  bool strip_space = true;
  for (int32_t id : ids) out.append(impl_->visible_piece(id, remove_special, strip_space));
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id) const {
  impl_->check_id(id);
  return impl_->piece[id];
}

const std::string& Tokenizer::token_text(int32_t id) const {
  impl_->check_id(id);
  return impl_->text[id];
}

int32_t Tokenizer::token_type(int32_t id) const {
  impl_->check_id(id);
  const uint32_t a = impl_->attr[id];
  if (a & kAttrControl) return kTokenControl;
  if (a & kAttrUserDefined) return kTokenUserDefined;
  if (a & kAttrUnknown) return kTokenUnknown;
  if (a & kAttrByte) return kTokenByte;
  if (a & kAttrUnused) return kTokenUnused;
  if (a & kAttrNormal) return kTokenNormal;
  return kTokenUndefined;
}

int32_t Tokenizer::find_token(std::string_view text) const { return impl_->find(text); }
int32_t Tokenizer::n_vocab() const { return impl_->n_vocab(); }
int32_t Tokenizer::bos() const { return impl_->bos; }
int32_t Tokenizer::eos() const { return impl_->eos; }
int32_t Tokenizer::eot() const { return impl_->eot; }
int32_t Tokenizer::eom() const { return impl_->eom; }
int32_t Tokenizer::unk() const { return impl_->unk; }
int32_t Tokenizer::pad() const { return impl_->pad; }
bool Tokenizer::add_bos() const { return impl_->add_bos; }
bool Tokenizer::add_eos() const { return impl_->add_eos; }
const std::string& Tokenizer::chat_template() const { return impl_->chat_template; }
std::vector<int32_t> Tokenizer::eog_ids() const { return impl_->eog; }

bool Tokenizer::is_eog(int32_t id) const { return std::binary_search(impl_->eog.begin(), impl_->eog.end(), id); }

bool Tokenizer::is_control(int32_t id) const {
  impl_->check_id(id);
  return (impl_->attr[id] & (kAttrControl | kAttrUnknown)) != 0;
}

std::string Tokenizer::kind() const {
  const Impl& t = *impl_;
  std::string k = t.model == Impl::Model::kSpm ? "llama (SentencePiece BPE, byte fallback)"
                                                : "gpt2 (byte-level BPE), pre " + t.pre_name;
  if (t.nfc) k += ", NFC";
  if (t.ignore_merges) k += ", whole-word tokens first";
  return k;
}

// ---------------------------------------------------------------------------------------------------------

StreamDecoder::StreamDecoder(const Tokenizer& tok, bool remove_special)
    : tok_(tok), remove_special_(remove_special) {}

std::string StreamDecoder::push(int32_t id) {
  pending_.append(tok_.impl_->visible_piece(id, remove_special_, strip_space_));
  const size_t hold = unicode::incomplete_utf8_tail(pending_);
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace moe
