// A pointer -> int map for one pass over a graph (planning, ordering): open
// addressing with linear probing in one flat array, no allocation per entry and
// no erase; keys are non-null. Node-keyed std::unordered_map lookups were a fifth
// of the host time of an eager gradient's evaluation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tmath::detail {

class PtrMap {
 public:
  explicit PtrMap(size_t expected = 16) { reset(expected); }

  // Empties the map, sized for `expected` entries (at most half full).
  void reset(size_t expected) {
    size_t cap = 16;
    while (cap < 2 * expected) cap <<= 1;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    size_ = 0;
  }
  // The value of `key`, or -1.
  int find(const void* key) const {
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) return s.value;
      if (!s.key) return -1;
    }
  }
  bool contains(const void* key) const { return find(key) >= 0; }
  // Inserts key -> value (value >= 0) unless key is present; true when inserted.
  bool insert(const void* key, int value) {
    Slot& s = slot_for(key);
    if (s.key) return false;
    s = Slot{key, value};
    ++size_;
    return true;
  }
  // Sets key -> value, inserting it if absent.
  void set(const void* key, int value) {
    Slot& s = slot_for(key);
    if (!s.key) ++size_;
    s = Slot{key, value};
  }
  size_t size() const { return size_; }

 private:
  struct Slot {
    const void* key = nullptr;
    int value = -1;
  };
  // The slot holding `key`, or the empty one where it goes (room for one more first).
  Slot& slot_for(const void* key) {
    if (2 * (size_ + 1) > slots_.size()) grow();
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_)
      if (slots_[i].key == key || !slots_[i].key) return slots_[i];
  }
  static size_t hash(const void* p) {
    uint64_t x = reinterpret_cast<uintptr_t>(p);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 29;
    return static_cast<size_t>(x);
  }
  void grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(old.size() * 2, Slot{});
    mask_ = slots_.size() - 1;
    size_ = 0;
    for (const Slot& s : old)
      if (s.key) insert(s.key, s.value);
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace tmath::detail
