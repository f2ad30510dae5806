#include "moe/cached_store.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/error.h"
#include "kernels/packed.h"

namespace moe {

namespace {

using Clock = std::chrono::steady_clock;

size_t align64(size_t n) { return (n + 63) & ~size_t{63}; }

bool packs(const ExpertMats& m, bool pack) { return pack && packable(m.type) && m.rows >= kPackRows; }

size_t part_bytes(const ExpertMats& m, bool pack) {
  return packs(m, pack) ? packed_bytes(m.type, m.rows, m.cols) : row_bytes(m.type, m.cols) * static_cast<size_t>(m.rows);
}

}  // namespace

size_t expert_slot_bytes(const std::vector<LayerExperts>& layers, bool pack) {
  size_t best = 0;
  for (const LayerExperts& l : layers)
    if (l.present())
      best = std::max(best, align64(part_bytes(l.gate, pack)) + align64(part_bytes(l.up, pack)) +
                                align64(part_bytes(l.down, pack)));
  return best;
}

CachedExpertStore::CachedExpertStore(CachedStoreConfig cfg)
    : cfg_(std::move(cfg)), file_(cfg_.path), policy_(cfg_.policy, 1) {
  layout_.resize(cfg_.layers.size());
  size_t largest_part = 0;
  for (size_t il = 0; il < cfg_.layers.size(); ++il) {
    LayerLayout& l = layout_[il];
    l.mats = cfg_.layers[il];
    if (!l.mats.present()) continue;
    max_expert_ = std::max(max_expert_, static_cast<int>(l.mats.gate.n_expert));
    const ExpertMats* m[3] = {&l.mats.gate, &l.mats.up, &l.mats.down};
    size_t off = 0;
    for (int p = 0; p < 3; ++p) {
      if (m[p]->expert_stride != m[p]->row_stride * static_cast<size_t>(m[p]->rows))
        throw FormatError(cfg_.path + ": expert rows are not contiguous; cannot stream experts");
      const size_t src = m[p]->expert_stride;
      l.parts[p] = {m[p]->type, m[p]->rows, m[p]->cols, src, m[p]->row_stride, off, packs(*m[p], cfg_.pack)};
      off += align64(part_bytes(*m[p], cfg_.pack));
      largest_part = std::max(largest_part, src);
    }
  }
  slot_bytes_ = expert_slot_bytes(cfg_.layers, cfg_.pack);
  if (slot_bytes_ == 0) throw UsageError("the model has no experts to cache");
  const size_t n_slots = cfg_.cache_bytes / slot_bytes_;
  if (n_slots == 0) throw UsageError("the expert cache cannot hold one expert");
  pool_bytes_ = n_slots * slot_bytes_;
  pool_ = alloc_pages(pool_bytes_);
  slots_.resize(n_slots);
  for (size_t s = 0; s < n_slots; ++s) slots_[s].mem = pool_ + s * slot_bytes_;
  slot_of_.assign(cfg_.layers.size() * static_cast<size_t>(max_expert_), -1);
  int moe_layers = 0;
  for (const LayerLayout& l : layout_) moe_layers += l.mats.present();
  policy_ = CachePolicy(cfg_.policy, static_cast<int>(n_slots), lfu_half_life(moe_layers, max_expert_, cfg_.experts_per_token));
  evictable_.assign(n_slots, 0);
  hint_.assign(cfg_.layers.size(), std::vector<uint8_t>(static_cast<size_t>(max_expert_), 0));
  has_hint_.assign(cfg_.layers.size(), 0);
  chunk_.reserve(n_slots);
  pinned_now_.reserve(n_slots);

  for (const auto& [layer, e] : cfg_.pinned)
    if (layer < 0 || layer >= static_cast<int>(layout_.size()) || !layout_[static_cast<size_t>(layer)].mats.present() ||
        e < 0 || e >= layout_[static_cast<size_t>(layer)].mats.gate.n_expert)
      throw UsageError("pinned expert " + std::to_string(layer) + ":" + std::to_string(e) + " is not in this model");

  staging_bytes_ = DirectFile::staging_bytes(largest_part);
  const int n_io = std::max(1, cfg_.io_threads);
  for (int t = 0; t < n_io; ++t) staging_.push_back(alloc_pages(staging_bytes_));
  for (int t = 0; t < n_io; ++t) io_.emplace_back([this, t] { io_loop(t); });

  // Hot experts measured by `moe profile`: loaded now, never evicted. At least one layer's worth of slots stays free.
  std::unique_lock lk(mu_);
  for (const auto& [layer, e] : cfg_.pinned) {
    if (permanent_ + std::max(1, cfg_.min_free_slots) > static_cast<int>(n_slots)) break;
    const int32_t key = layer * max_expert_ + e;
    if (slot_of_[static_cast<size_t>(key)] >= 0) continue;
    const int s = permanent_;  // the first slots, still empty
    slots_[static_cast<size_t>(s)].permanent = true;
    ++permanent_;
    start_load(s, key, false);
  }
  loaded_.wait(lk, [&] {
    for (int s = 0; s < permanent_; ++s)
      if (slots_[static_cast<size_t>(s)].state == State::Loading) return false;
    return true;
  });
  if (!error_.empty()) {
    const std::string err = error_;
    lk.unlock();
    shutdown();
    throw Error(err);
  }
}

void CachedExpertStore::shutdown() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  work_.notify_all();
  for (std::thread& t : io_) t.join();
  io_.clear();
  for (uint8_t* p : staging_) free_pages(p, staging_bytes_);
  staging_.clear();
  free_pages(pool_, pool_bytes_);
  pool_ = nullptr;
}

CachedExpertStore::~CachedExpertStore() { shutdown(); }

int CachedExpertStore::capacity_experts(int) const { return static_cast<int>(slots_.size()) - permanent_; }

void CachedExpertStore::start_load(int slot, int32_t key, bool prefetched) {
  Slot& s = slots_[static_cast<size_t>(slot)];
  s.key = key;
  s.state = State::Loading;
  s.prefetched = prefetched;
  s.queued = true;
  slot_of_[static_cast<size_t>(key)] = slot;
  policy_.on_insert(slot, key);
  (prefetched ? prefetch_queue_ : queue_).push_back(slot);
  ++stats_.loads;
  work_.notify_one();
}

void CachedExpertStore::drop_stale_prefetches(int layer, bool same_layer) {
  for (auto it = prefetch_queue_.begin(); it != prefetch_queue_.end();) {
    Slot& s = slots_[static_cast<size_t>(*it)];
    const int l = s.key / max_expert_;
    if (l > layer || (l == layer && !same_layer)) {
      ++it;
      continue;
    }
    if (s.pins > 0) {  // asked for by this acquire(): a demand load now
      queue_.push_back(*it);
    } else {
      slot_of_[static_cast<size_t>(s.key)] = -1;
      policy_.on_remove(*it);
      --stats_.loads;
      s = Slot{-1, State::Empty, 0, false, false, false, s.mem};
    }
    it = prefetch_queue_.erase(it);
  }
}

int CachedExpertStore::evict_for_new(std::unique_lock<std::mutex>&) {
  for (size_t s = 0; s < slots_.size(); ++s) {
    const Slot& sl = slots_[s];
    evictable_[s] = !sl.permanent && sl.pins == 0 && sl.state != State::Loading;
  }
  const int v = policy_.victim(evictable_);
  if (v < 0) return -1;
  Slot& s = slots_[static_cast<size_t>(v)];
  if (s.key >= 0) slot_of_[static_cast<size_t>(s.key)] = -1;
  policy_.on_remove(v);
  s = Slot{-1, State::Empty, 0, false, false, false, s.mem};
  return v;
}

int CachedExpertStore::acquire(int layer, std::span<const int32_t> experts, ExpertWeights* out) {
  if (layer < 0 || layer >= static_cast<int>(layout_.size()) || !layout_[static_cast<size_t>(layer)].mats.present())
    throw Error("expert store: layer " + std::to_string(layer) + " has no experts");
  const int64_t n_expert = layout_[static_cast<size_t>(layer)].mats.gate.n_expert;
  std::unique_lock lk(mu_);
  policy_.tick();
  chunk_.clear();
  drop_stale_prefetches(layer, false);  // earlier layers' hints that were never used free their slots
  for (;;) {
    for (size_t i = chunk_.size(); i < experts.size(); ++i) {
      const int32_t e = experts[i];
      if (e < 0 || e >= n_expert) throw Error("expert store: expert id out of range");
      const int32_t key = layer * max_expert_ + e;
      int s = slot_of_[static_cast<size_t>(key)];
      if (s >= 0) {
        Slot& sl = slots_[static_cast<size_t>(s)];
        ++stats_.hits;
        if (sl.prefetched) {
          ++stats_.prefetch_useful;
          sl.prefetched = false;
        }
        if (!sl.permanent) policy_.on_hit(s);
      } else {
        s = evict_for_new(lk);
        if (s < 0) break;
        start_load(s, key, false);
      }
      ++slots_[static_cast<size_t>(s)].pins;
      pinned_now_.push_back(s);
      chunk_.push_back(s);
    }
    if (!chunk_.empty()) break;
    // Every slot is pinned or being filled by a prefetch: wait for a load to finish, then try again.
    bool loading = false;
    for (const Slot& sl : slots_) loading = loading || (sl.state == State::Loading && sl.pins == 0);
    if (!loading || !error_.empty())
      throw Error(error_.empty() ? "expert cache too small: every slot is in use (raise --mem-budget)" : error_);
    loaded_.wait(lk);
  }
  const size_t n = chunk_.size();
  stats_.requests += n;
  drop_stale_prefetches(layer, true);  // this layer's: promote the ones asked for, drop the rest
  if (has_hint_[static_cast<size_t>(layer)]) {
    for (size_t i = 0; i < n; ++i) stats_.prefetch_hint_hits += hint_[static_cast<size_t>(layer)][static_cast<size_t>(experts[i])];
    stats_.acquired_after_hint += n;
  }
  // Wait for this chunk's loads (the I/O threads fill slots while earlier chunks compute).
  auto ready = [&] {
    for (int s : chunk_)
      if (slots_[static_cast<size_t>(s)].state == State::Loading) return false;
    return true;
  };
  if (!ready()) {
    const auto t0 = Clock::now();
    loaded_.wait(lk, ready);
    stats_.stall_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  for (int s : chunk_)
    if (slots_[static_cast<size_t>(s)].state == State::Failed) throw Error(error_);
  for (size_t i = 0; i < n; ++i) out[i] = weights_of(chunk_[i]);
  return static_cast<int>(n);
}

void CachedExpertStore::release(int layer) {
  std::lock_guard lk(mu_);
  for (int s : pinned_now_) --slots_[static_cast<size_t>(s)].pins;
  pinned_now_.clear();
  // A hint is used up by the layer it was for.
  if (layer >= 0 && layer < static_cast<int>(has_hint_.size()) && has_hint_[static_cast<size_t>(layer)]) {
    std::fill(hint_[static_cast<size_t>(layer)].begin(), hint_[static_cast<size_t>(layer)].end(), 0);
    has_hint_[static_cast<size_t>(layer)] = 0;
  }
}

void CachedExpertStore::prefetch(int layer, std::span<const int32_t> experts) {
  if (layer < 0 || layer >= static_cast<int>(layout_.size()) || !layout_[static_cast<size_t>(layer)].mats.present()) return;
  const int64_t n_expert = layout_[static_cast<size_t>(layer)].mats.gate.n_expert;
  std::unique_lock lk(mu_);
  auto& hint = hint_[static_cast<size_t>(layer)];
  has_hint_[static_cast<size_t>(layer)] = 1;
  for (int32_t e : experts) {
    if (e < 0 || e >= n_expert || hint[static_cast<size_t>(e)]) continue;
    hint[static_cast<size_t>(e)] = 1;
    ++stats_.prefetch_hinted;
    const int32_t key = layer * max_expert_ + e;
    if (slot_of_[static_cast<size_t>(key)] >= 0) continue;
    const int s = evict_for_new(lk);
    if (s < 0) break;
    start_load(s, key, true);
    ++stats_.prefetch_issued;
  }
}

ExpertStoreStats CachedExpertStore::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

void CachedExpertStore::reset_stats() {
  std::lock_guard lk(mu_);
  stats_ = {};
}

ExpertWeights CachedExpertStore::weights_of(int slot) const {
  const Slot& s = slots_[static_cast<size_t>(slot)];
  const LayerLayout& l = layout_[static_cast<size_t>(s.key / max_expert_)];
  WeightRef w[3];
  for (int p = 0; p < 3; ++p) {
    const Part& part = l.parts[p];
    const uint8_t* mem = s.mem + part.dst_offset;
    // With a packed copy the kernels read only `packed`; data then just marks the matrix present.
    w[p] = {Mat{part.type, part.rows, part.cols, mem, part.row_stride}, part.packed ? mem : nullptr};
  }
  return {w[0], w[1], w[2]};
}

void CachedExpertStore::io_loop(int thread) {
  std::unique_lock lk(mu_);
  for (;;) {
    work_.wait(lk, [&] { return stop_ || !queue_.empty() || !prefetch_queue_.empty(); });
    if (stop_) return;
    std::deque<int>& q = !queue_.empty() ? queue_ : prefetch_queue_;
    const int slot = q.front();
    q.pop_front();
    slots_[static_cast<size_t>(slot)].queued = false;
    lk.unlock();
    std::string err;
    const auto t0 = Clock::now();
    try {
      load(slot, staging_[static_cast<size_t>(thread)]);
    } catch (const std::exception& e) {
      err = e.what();
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    lk.lock();
    Slot& s = slots_[static_cast<size_t>(slot)];
    stats_.read_seconds += secs;
    if (err.empty()) {
      s.state = State::Ready;
      const LayerLayout& l = layout_[static_cast<size_t>(s.key / max_expert_)];
      stats_.bytes_read += l.parts[0].src_bytes + l.parts[1].src_bytes + l.parts[2].src_bytes;
    } else {
      s.state = State::Failed;
      if (error_.empty()) error_ = err;
    }
    loaded_.notify_all();
  }
}

// Reads one expert's three projections from the file and lays them out in its slot (packed where the store packs).
// Runs on an I/O thread without the lock: the slot is Loading, so nobody else touches it.
void CachedExpertStore::load(int slot, uint8_t* staging) {
  const Slot& s = slots_[static_cast<size_t>(slot)];
  const int layer = s.key / max_expert_, e = s.key % max_expert_;
  const LayerLayout& l = layout_[static_cast<size_t>(layer)];
  const ExpertMats* m[3] = {&l.mats.gate, &l.mats.up, &l.mats.down};
  for (int p = 0; p < 3; ++p) {
    const Part& part = l.parts[p];
    const uint8_t* src_in_map = m[p]->data + static_cast<size_t>(e) * m[p]->expert_stride;
    const uint64_t offset = static_cast<uint64_t>(src_in_map - cfg_.file_base);
    const uint8_t* src = file_.read(offset, part.src_bytes, staging);
    uint8_t* dst = s.mem + part.dst_offset;
    if (part.packed) pack_rows(part.type, src, part.row_stride, part.rows, part.cols, dst);
    else std::memcpy(dst, src, part.src_bytes);
  }
}

}  // namespace moe
