// What tfstate's compiled recurrences share (lstm_recurrence.h, gru_recurrence.h): vectors of the
// variant's width, the gate maths, the per-step barrier and the worker threads.
//
// One source for every CPU: the vectors are GCC/Clang vector extensions of the widest width the
// compile flags allow, so the same code becomes AVX-512 (16 floats, -mavx512f), AVX2 + FMA
// (8 floats, -mavx2 -mfma) or 128-bit SIMD (4 floats: SSE2 on any x86-64, NEON on aarch64); only
// min / max use an intrinsic, with AVX-512 (see Min).
//
// A recurrence runs on a few threads (RunSplit): each owns some batch rows for the whole chunk
// (rows are independent), or, where the batch is too small for that, some groups of kWidth hidden
// units, meeting the others at a barrier whenever a step needs all units.

#ifndef TFSTATE_KERNEL_BASE_H_
#define TFSTATE_KERNEL_BASE_H_

#include <sched.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <thread>
#include <vector>

namespace tfstate {

#if defined(__AVX512F__)
constexpr int kWidth = 16;
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kWidth = 8;
#else
constexpr int kWidth = 4;
#endif

typedef float Vec __attribute__((vector_size(kWidth * sizeof(float))));
typedef uint32_t Bits __attribute__((vector_size(kWidth * sizeof(float))));

// The scalar operand is broadcast; subtracting zero is exact, so the compiler emits only the broadcast.
inline Vec Splat(float value) { return value - Vec{}; }

inline Vec Load(const float* from) {
  Vec v;
  std::memcpy(&v, from, sizeof(v));
  return v;
}

inline void Store(float* to, Vec v) { std::memcpy(to, &v, sizeof(v)); }

// Stores the first `width` lanes (all of them but in a partial last group).
inline void StoreFirst(float* to, Vec v, int64_t width) {
  if (width == kWidth) {
    Store(to, v);
  } else {
    std::memcpy(to, &v, width * sizeof(float));
  }
}

// Min(a, b) = a < b ? a : b and Max(a, b) = a > b ? a : b: b where either is NaN, as x86's
// minps / maxps. With AVX-512, GCC makes a compare and a masked move of the plain form (3% of the
// kernel's time, measured); with SSE2 the intrinsics measured 16% slower, with AVX2 the same.
#if defined(__AVX512F__)
inline Vec Min(Vec a, Vec b) { return _mm512_min_ps(a, b); }
inline Vec Max(Vec a, Vec b) { return _mm512_max_ps(a, b); }
#else
inline Vec Min(Vec a, Vec b) { return a < b ? a : b; }
inline Vec Max(Vec a, Vec b) { return a > b ? a : b; }
#endif

// NaN stays NaN (as in TensorFlow's own ops).
inline Vec Clamp(Vec x, float low, float high) { return Min(Splat(high), Max(Splat(low), x)); }

inline Vec Exp(Vec x) {
  // Cephes-style expf: x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial. Adding 1.5 * 2^23 rounds
  // x / ln2 to the integer n and leaves n in the low mantissa bits, from which 2^n is assembled.
  x = Clamp(x, -88.0f, 88.0f);
  const Vec shifter = Splat(12582912.0f);
  const Vec t = x * 1.44269504088896341f + shifter;
  const Vec n = t - shifter;
  Vec r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  Vec p = Splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + (r + 1.0f);
  const Bits two_to_n = (reinterpret_cast<Bits>(t) + 127u) << 23;  // n in [-127, 127]
  return p * reinterpret_cast<Vec>(two_to_n);
}

inline Vec Sigmoid(Vec x) { return 1.0f / (1.0f + Exp(-x)); }

// tanh(x) = 2 sigmoid(2x) - 1: absolute error ~1e-7, which is what float32 LSTM maths needs.
inline Vec Tanh(Vec x) { return 2.0f * Sigmoid(2.0f * x) - 1.0f; }

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Batch rows per register tile of Accumulate<MR, NQ> with NQ <= 2: NQ accumulators a row, NQ
// weight vectors and one broadcast must fit in the vector registers.
#if defined(__AVX512F__) || defined(__aarch64__)  // 32 registers
constexpr int kTileRows = 12;
#elif defined(__FMA__)  // 16 registers
constexpr int kTileRows = 6;
#else
constexpr int kTileRows = 4;
#endif

// acc[r] += a[r] @ panel[0:K] for MR rows whose values start at a[r], NQ weight vectors per k.
template <int MR, int NQ>
inline void Accumulate(const float* const* a, int64_t K, const float* panel, Vec (&acc)[MR][NQ]) {
  for (int64_t k = 0; k < K; ++k) {
    Vec weights[NQ];
#pragma GCC unroll 2
    for (int q = 0; q < NQ; ++q) weights[q] = Load(panel + (k * NQ + q) * kWidth);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const Vec v = Splat(a[r][k]);
#pragma GCC unroll 2
      for (int q = 0; q < NQ; ++q) acc[r][q] += v * weights[q];
    }
  }
}

// Rows [0, batch) through `Tile<MR>::Run(row0, args...)`: tiles of kTileRows rows, then the rest in
// tiles of 8, 4, 2, 1 rows (fewer instantiations to compile than one tile for each remainder).
template <template <int> class Tile, typename... Args>
void AllRows(int64_t begin, int64_t end, const Args&... args) {
  int64_t row = begin;
  for (; row + kTileRows <= end; row += kTileRows) Tile<kTileRows>::Run(row, args...);
  if constexpr (kTileRows > 8) {
    if (end - row >= 8) Tile<8>::Run(row, args...), row += 8;
  }
  if constexpr (kTileRows > 4) {
    if (end - row >= 4) Tile<4>::Run(row, args...), row += 4;
  }
  if (end - row >= 2) Tile<2>::Run(row, args...), row += 2;
  if (end - row >= 1) Tile<1>::Run(row, args...);
}

// The first `width` lanes from `from`, zeros after (all of them but in a partial last group).
inline Vec LoadFirst(const float* from, int64_t width) {
  if (width == kWidth) return Load(from);
  Vec v{};
  std::memcpy(&v, from, width * sizeof(float));
  return v;
}

// What every recurrence's chunk holds besides its tensors: sizes, layout, the rows' lengths and
// the reset mask. Sequences (x, outputs, ...) are [batch, steps, width], or [steps, batch, width]
// with time_major; the state is kept padded to whole groups of kWidth units.
struct Chunk {
  int64_t steps, batch, units;
  bool time_major;
  const int32_t* lengths;  // [batch]: rows with t >= lengths[row] do not run step t
  const bool* resets;      // [steps, batch], or nullptr: no resets inside the chunk

  int64_t Groups() const { return (units + kWidth - 1) / kWidth; }
  int64_t Padded() const { return Groups() * kWidth; }
  // Offset of (step, row) in a sequence of width `width`.
  int64_t Offset(int64_t t, int64_t row, int64_t width) const {
    return (time_major ? t * batch + row : row * steps + t) * width;
  }
  // Whether `row` starts step t from the reset values (past the row's length the step keeps the state anyway).
  bool Resets(int64_t t, int64_t row) const { return resets != nullptr && resets[t * batch + row]; }
};

// Spin barrier for the few threads of one call (one wait per step).
class Barrier {
 public:
  explicit Barrier(int parties) : parties_(parties) {}
  void SetParties(int parties) { parties_ = parties; }  // only before anyone waits
  void Wait() {
    const int generation = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) == parties_ - 1) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.store(generation + 1, std::memory_order_release);
      return;
    }
    for (int spins = 0; generation_.load(std::memory_order_acquire) == generation; ++spins) {
      if (spins < 2000) {  // ~50 us; then let a descheduled partner (or anything else) run
        CpuRelax();
      } else {
        sched_yield();
      }
    }
  }

 private:
  int parties_;
  std::atomic<int> arrived_{0};
  std::atomic<int> generation_{0};
};

// Worker threads of all calls running now, so that concurrent calls (a bidirectional RNN, two
// towers) share the cores instead of each spinning at barriers with one per core.
inline std::atomic<int> busy_threads{0};

inline int UsableCores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

// How many threads a call of `step_flops` per step, whose work splits into at most `parts`, runs;
// counted in busy_threads until the call releases them.
inline int ThreadCount(int64_t parts, int64_t step_flops) {
  if (const char* env = std::getenv("TFSTATE_NATIVE_THREADS")) {
    const int wanted = static_cast<int>(std::min<int64_t>(std::atoi(env), parts));
    if (wanted > 0) {
      busy_threads.fetch_add(wanted, std::memory_order_relaxed);
      return wanted;
    }
  }
  // Below ~1 MFLOP per step a barrier per step costs more than a second thread saves.
  if (step_flops < (1 << 20)) {
    busy_threads.fetch_add(1, std::memory_order_relaxed);
    return 1;
  }
  const int cores = UsableCores();
  int busy = busy_threads.load(std::memory_order_relaxed), take;
  do {  // claim up to one thread per core not already working for another call (at least one)
    take = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(cores - busy, parts)));
  } while (!busy_threads.compare_exchange_weak(busy, busy + take, std::memory_order_relaxed));
  return take;
}

// Runs `run(first, end, barrier)` for `items` items (groups of units, or batch rows) split across at
// most `parts` fresh threads while the calling thread waits (`barrier` is nullptr for a single
// worker). Computing on TensorFlow's own inter-op thread measured 2-3x slower: TF's idle pool
// threads then compete with the second worker for the cores.
template <typename Run>
void RunThreads(int64_t items, int64_t parts, int64_t step_flops, const Run& run) {
  const int wanted = ThreadCount(parts, step_flops);
  struct Release {  // gives the claimed threads back however this returns
    int count;
    ~Release() { busy_threads.fetch_sub(count, std::memory_order_relaxed); }
  } release{wanted};
  // Workers wait until all are spawned (`parties` > 0), so that if a spawn fails the ones that
  // did start share all the groups instead of waiting at a barrier for a thread that never came.
  std::atomic<int> parties{0};
  Barrier barrier(wanted);
  std::vector<std::thread> workers;
  workers.reserve(wanted);
  try {
    for (int index = 0; index < wanted; ++index) {
      workers.emplace_back([&run, &parties, &barrier, items, index] {
        int count;
        while ((count = parties.load(std::memory_order_acquire)) == 0) sched_yield();
        run(items * index / count, items * (index + 1) / count, count > 1 ? &barrier : nullptr);
      });
    }
  } catch (const std::system_error&) {  // out of threads: fewer workers
  }
  if (workers.empty()) {
    run(0, items, nullptr);
  } else {
    const int count = static_cast<int>(workers.size());
    barrier.SetParties(count);
    parties.store(count, std::memory_order_release);
    for (auto& worker : workers) worker.join();
  }
}

// Batch rows a thread needs at least before a recurrence splits rows rather than units.
constexpr int64_t kRowsPerThread = 8;

// Runs a recurrence over `batch` rows and `groups` groups of units on threads: `rows(first_row,
// end_row, barrier)` where the batch gives every thread kRowsPerThread rows or more (rows are
// independent, so the threads meet once, after packing the weights), else `units(first_group,
// end_group, barrier)` (the threads meet at a barrier every step). Splitting rows measured 1.1-2x
// faster in medians on a loaded 2-core machine, where a descheduled thread stalls every step's
// barrier; both are the same speed on idle cores.
template <typename Units, typename Rows>
void RunSplit(int64_t groups, int64_t batch, int64_t step_flops, const Units& units, const Rows& rows) {
  if (batch >= 2 * kRowsPerThread) {
    RunThreads(batch, batch / kRowsPerThread, step_flops, rows);
  } else {
    RunThreads(groups, groups, step_flops, units);
  }
}

}  // namespace tfstate

#endif  // TFSTATE_KERNEL_BASE_H_
