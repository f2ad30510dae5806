#include "moe/cache_policy.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <queue>
#include <unordered_map>

#include "core/error.h"

namespace moe {

CachePolicyKind parse_cache_policy(const std::string& name) {
  if (name == "lru") return CachePolicyKind::Lru;
  if (name == "lfu") return CachePolicyKind::Lfu;
  if (name == "slru") return CachePolicyKind::Slru;
  throw UsageError("unknown cache policy '" + name + "' (lru, lfu or slru)");
}

const char* cache_policy_name(CachePolicyKind k) {
  switch (k) {
    case CachePolicyKind::Lru: return "lru";
    case CachePolicyKind::Lfu: return "lfu";
    case CachePolicyKind::Slru: return "slru";
  }
  return "?";
}

double lfu_half_life(int moe_layers, int n_expert, int experts_per_token) {
  if (moe_layers <= 0 || n_expert <= 0 || experts_per_token <= 0) return 0;
  return std::max(8.0, 8.0 * n_expert / experts_per_token * moe_layers);
}

CachePolicy::CachePolicy(CachePolicyKind kind, int n_slots, double half_life)
    : kind_(kind), meta_(static_cast<size_t>(n_slots)) {
  max_protected_ = std::max(1, n_slots * 4 / 5);
  // Without a model's shape, frequencies forget over about as many epochs as the cache has slots: long enough to
  // tell hot experts from a burst, short enough to follow a change of topic.
  half_life_ = half_life > 0 ? half_life : std::max(8.0, static_cast<double>(n_slots));
  ghost_cap_ = 4 * static_cast<size_t>(std::max(n_slots, 1));
}

double CachePolicy::frequency(int slot) const {
  const Meta& m = meta_[static_cast<size_t>(slot)];
  return m.freq * std::exp2(-static_cast<double>(now_ - m.last) / half_life_);
}

void CachePolicy::on_insert(int slot, int64_t key) {
  Meta& m = meta_[static_cast<size_t>(slot)];
  if (m.protected_) --n_protected_;
  m = Meta{now_, 1.0, false, true, key};
  auto g = ghosts_.find(key);
  if (g == ghosts_.end() || kind_ == CachePolicyKind::Lru) return;
  // Seen before: a second use.
  m.freq = g->second.freq * std::exp2(-static_cast<double>(now_ - g->second.last) / half_life_);
  ghosts_.erase(g);
  on_hit(slot);
}

void CachePolicy::on_hit(int slot) {
  Meta& m = meta_[static_cast<size_t>(slot)];
  m.freq = frequency(slot) + 1.0;
  m.last = now_;
  if (kind_ == CachePolicyKind::Slru && !m.protected_) {
    // Promote; when the protected segment is full, its least recently used member drops back to probation.
    if (n_protected_ >= max_protected_) {
      int oldest = -1;
      for (size_t i = 0; i < meta_.size(); ++i)
        if (meta_[i].protected_ && (oldest < 0 || meta_[i].last < meta_[static_cast<size_t>(oldest)].last))
          oldest = static_cast<int>(i);
      if (oldest >= 0) {
        meta_[static_cast<size_t>(oldest)].protected_ = false;
        --n_protected_;
      }
    }
    m.protected_ = true;
    ++n_protected_;
  }
}

void CachePolicy::on_remove(int slot) {
  Meta& m = meta_[static_cast<size_t>(slot)];
  if (m.protected_) --n_protected_;
  if (m.used && m.key >= 0 && kind_ != CachePolicyKind::Lru) {
    ghosts_[m.key] = Ghost{m.last, m.freq, ++ghost_seq_};
    ghost_order_.emplace_back(m.key, ghost_seq_);
    while (ghost_order_.size() > ghost_cap_) {  // forget the oldest; a key re-evicted later has a newer seq
      const auto [k, seq] = ghost_order_.front();
      ghost_order_.pop_front();
      auto g = ghosts_.find(k);
      if (g != ghosts_.end() && g->second.seq == seq) ghosts_.erase(g);
    }
  }
  m = Meta{};
}

int CachePolicy::victim(std::span<const uint8_t> evictable) const {
  int best = -1;
  auto better = [&](int a, int b) {  // is slot a a better victim than slot b?
    const Meta& x = meta_[static_cast<size_t>(a)];
    const Meta& y = meta_[static_cast<size_t>(b)];
    if (x.used != y.used) return !x.used;  // empty slots first
    switch (kind_) {
      case CachePolicyKind::Lru: return x.last < y.last;
      case CachePolicyKind::Lfu: {
        const double fa = frequency(a), fb = frequency(b);
        return fa != fb ? fa < fb : x.last < y.last;
      }
      case CachePolicyKind::Slru:
        if (x.protected_ != y.protected_) return !x.protected_;  // probation goes first
        return x.last < y.last;
    }
    return false;
  };
  for (size_t i = 0; i < evictable.size(); ++i)
    if (evictable[i] && (best < 0 || better(static_cast<int>(i), best))) best = static_cast<int>(i);
  return best;
}

uint64_t simulate_cache(CachePolicyKind kind, int n_slots, std::span<const int32_t> requests,
                        std::span<const uint8_t> epoch_starts, std::span<const int32_t> pinned, double half_life) {
  if (n_slots <= 0) return 0;
  CachePolicy policy(kind, n_slots, half_life);
  std::unordered_map<int32_t, int> where;  // key -> slot
  std::vector<int32_t> key_of(static_cast<size_t>(n_slots), -1);
  std::vector<uint8_t> evictable(static_cast<size_t>(n_slots), 1), permanent(static_cast<size_t>(n_slots), 0);
  int next_free = 0;
  for (int32_t k : pinned) {
    if (next_free >= n_slots) break;
    where[k] = next_free;
    key_of[static_cast<size_t>(next_free)] = k;
    evictable[static_cast<size_t>(next_free)] = 0;
    permanent[static_cast<size_t>(next_free)] = 1;
    ++next_free;
  }
  std::vector<int> in_epoch;  // slots used in the current epoch may not be evicted by it
  uint64_t hits = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    if (epoch_starts.empty() || epoch_starts[i]) {
      policy.tick();
      for (int s : in_epoch) evictable[static_cast<size_t>(s)] = 1;
      in_epoch.clear();
    }
    auto it = where.find(requests[i]);
    if (it != where.end()) {
      ++hits;
      const size_t s = static_cast<size_t>(it->second);
      if (permanent[s]) continue;
      if (evictable[s]) {  // first use in this epoch
        policy.on_hit(it->second);
        evictable[s] = 0;
        in_epoch.push_back(it->second);
      }
      continue;
    }
    const int v = policy.victim(evictable);
    if (v < 0) continue;  // every slot busy in this epoch: the request streams through
    if (key_of[static_cast<size_t>(v)] >= 0) where.erase(key_of[static_cast<size_t>(v)]);
    policy.on_remove(v);
    key_of[static_cast<size_t>(v)] = requests[i];
    where[requests[i]] = v;
    policy.on_insert(v, requests[i]);
    evictable[static_cast<size_t>(v)] = 0;
    in_epoch.push_back(v);
  }
  return hits;
}

uint64_t simulate_cache_optimal(int n_slots, std::span<const int32_t> requests, std::span<const uint8_t> epoch_starts) {
  if (n_slots <= 0) return 0;
  const size_t n = requests.size();
  constexpr size_t kNever = std::numeric_limits<size_t>::max();
  std::vector<size_t> next_use(n, kNever);  // index of the next request of the same expert
  std::unordered_map<int32_t, size_t> later;
  for (size_t i = n; i-- > 0;) {
    auto it = later.find(requests[i]);
    if (it != later.end()) next_use[i] = it->second;
    later[requests[i]] = i;
  }
  // Resident experts by next use, farthest first; entries go stale when the expert is used again (lazy deletion).
  std::priority_queue<std::pair<size_t, int32_t>> by_next;
  std::unordered_map<int32_t, size_t> resident;  // expert -> its current next use
  std::unordered_map<int32_t, uint64_t> used_in_epoch;  // expert -> epoch of its last use
  std::vector<std::pair<size_t, int32_t>> held;  // popped entries of experts the current epoch uses
  uint64_t hits = 0, epoch = 0;
  for (size_t i = 0; i < n; ++i) {
    if (epoch_starts.empty() || epoch_starts[i]) ++epoch;
    const int32_t key = requests[i];
    auto it = resident.find(key);
    if (it != resident.end()) {
      ++hits;
    } else if (static_cast<int>(resident.size()) >= n_slots) {
      bool evicted = false;
      while (!by_next.empty()) {
        const auto top = by_next.top();
        by_next.pop();
        auto r = resident.find(top.second);
        if (r == resident.end() || r->second != top.first) continue;  // stale
        auto u = used_in_epoch.find(top.second);
        if (u != used_in_epoch.end() && u->second == epoch) {
          held.push_back(top);
          continue;
        }
        resident.erase(r);
        evicted = true;
        break;
      }
      for (const auto& h : held) by_next.push(h);
      held.clear();
      if (!evicted) continue;  // every slot busy in this epoch: the request streams through
    }
    resident[key] = next_use[i];
    by_next.push({next_use[i], key});
    used_in_epoch[key] = epoch;
  }
  return hits;
}

}  // namespace moe
