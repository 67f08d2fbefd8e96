// tfstate's native LSTM recurrence: one TensorFlow op (C kernel API) that runs a whole chunk.
//
// TfstateLstmSequence(x [B,T,D] or [T,B,D], c0 [B,H], h0 [B,H], kernel [D+H,4H], bias [4H],
//                     wci/wcf/wco [H], lengths [B]) -> outputs (like x, width H), c [B,H], h [B,H], cs (like outputs)
//
// TF1's LSTM (LSTMCell / LSTMBlockCell) over the chunk, gate order i, j, f, o:
//
//   for t in range(T):
//     i, j, f, o = split([x[t], h] @ kernel + bias)
//     c' = sigmoid(f + forget_bias [+ wcf*c]) * c + sigmoid(i [+ wci*c]) * tanh(j), clipped to +-cell_clip
//     h' = sigmoid(o [+ wco*c']) * tanh(c')
//     rows with t >= lengths[row] keep (c, h) and output zeros
//     cs[t] = c (the cell state after step t, which the gradient needs)
//
// Built at first use by tfstate/native.py with -march=native (AVX-512F required), so it only
// ever runs on the machine that compiled it. The hidden units are split across threads in groups
// of 16; a thread owns all four gates of its units, so each step is one register-blocked matmul
// with the gate maths fused into its epilogue, and one barrier.

#include <immintrin.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <thread>
#include <vector>

#include "tensorflow/c/kernels.h"
#include "tensorflow/c/ops.h"
#include "tensorflow/c/tf_status.h"
#include "tensorflow/c/tf_tensor.h"

namespace {

constexpr int kUnits = 16;           // hidden units per group: one zmm per gate (the last group may be partial)
constexpr int kPanel = 4 * kUnits;   // packed columns per group: i, j, f, o of 16 units
constexpr int kRows = 6;             // batch rows per register tile (6 rows x 4 gates = 24 accumulators)

inline __m512 Exp(__m512 x) {
  // Cephes-style expf: x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial, 2^n by scalef.
  // max/min return their second operand for NaN, so NaN stays NaN (as in TensorFlow's own ops).
  x = _mm512_min_ps(_mm512_set1_ps(88.0f), _mm512_max_ps(_mm512_set1_ps(-88.0f), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

inline __m512 Sigmoid(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_div_ps(one, _mm512_add_ps(one, Exp(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

inline __m512 Tanh(__m512 x) {
  // tanh(x) = 2 sigmoid(2x) - 1: absolute error ~1e-7, which is what float32 LSTM maths needs.
  const __m512 two = _mm512_set1_ps(2.0f);
  return _mm512_fmsub_ps(two, Sigmoid(_mm512_mul_ps(two, x)), _mm512_set1_ps(1.0f));
}

struct Settings {
  float forget_bias;
  float cell_clip;  // < 0: no clipping
  bool use_peephole;
  bool time_major;
};

struct Problem {
  int64_t steps, batch, depth, units;
  const float *x, *kernel, *bias, *wci, *wcf, *wco;
  const int32_t* lengths;
  float *outputs, *cs, *c, *h_even, *h_odd;  // c: the running cell state; h: double-buffered across steps
  float* packed;                        // per group: [depth + units][i, j, f, o][16]
  Settings settings;

  // Offset of (step, row) in x ([T, B, D] or [B, T, D]) or outputs (same layout, width H).
  int64_t Offset(int64_t t, int64_t row, int64_t width) const {
    return (settings.time_major ? t * batch + row : row * steps + t) * width;
  }
};

// Spin barrier for the few threads of one op call (one wait per step).
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
        _mm_pause();
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

int64_t GroupWidth(const Problem& p, int64_t group) { return std::min<int64_t>(kUnits, p.units - group * kUnits); }

__mmask16 GroupMask(const Problem& p, int64_t group) {
  return static_cast<__mmask16>((1u << GroupWidth(p, group)) - 1u);
}

void Pack(const Problem& p, int64_t group) {
  const int64_t H = p.units, rows = p.depth + p.units, width = GroupWidth(p, group);
  float* panel = p.packed + group * rows * kPanel;
  for (int64_t k = 0; k < rows; ++k) {
    for (int gate = 0; gate < 4; ++gate) {
      float* column = panel + k * kPanel + gate * kUnits;
      std::memcpy(column, p.kernel + k * 4 * H + gate * H + group * kUnits, width * sizeof(float));
      std::fill(column + width, column + kUnits, 0.0f);  // a partial group's missing units
    }
  }
}

// acc[r] += a[r] @ panel[0:K] for MR rows whose values start at a[r] (stride 1).
template <int MR>
inline void Accumulate(const float* const* a, int64_t K, const float* panel, __m512 (&acc)[MR][4]) {
  for (int64_t k = 0; k < K; ++k) {
    const float* w = panel + k * kPanel;
    const __m512 w0 = _mm512_load_ps(w), w1 = _mm512_load_ps(w + 16), w2 = _mm512_load_ps(w + 32),
                 w3 = _mm512_load_ps(w + 48);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 v = _mm512_set1_ps(a[r][k]);
      acc[r][0] = _mm512_fmadd_ps(v, w0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(v, w1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_ps(v, w2, acc[r][2]);
      acc[r][3] = _mm512_fmadd_ps(v, w3, acc[r][3]);
    }
  }
}

// Rows [row0, row0 + MR) x units of `group` for step t: [x, h] @ kernel + bias, gates, state update.
template <int MR>
void Tile(const Problem& p, int64_t t, int64_t row0, int64_t group, const float* h_prev, float* h_next) {
  const int64_t D = p.depth, H = p.units;
  const int64_t unit0 = group * kUnits, width = GroupWidth(p, group);
  const __mmask16 m = GroupMask(p, group);  // the group's units (all 16 but in a partial last group)
  const float* panel = p.packed + group * (D + H) * kPanel;
  __m512 acc[MR][4];
  const float* xs[MR];
  const float* hs[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    xs[r] = p.x + p.Offset(t, row0 + r, D);
    hs[r] = h_prev + (row0 + r) * H;
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) acc[r][q] = _mm512_maskz_loadu_ps(m, p.bias + q * H + unit0);
  }
  Accumulate<MR>(xs, D, panel, acc);
  Accumulate<MR>(hs, H, panel + D * kPanel, acc);
  const Settings& s = p.settings;
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const int64_t row = row0 + r;
    const int64_t offset = row * H + unit0;
    float* output = p.outputs + p.Offset(t, row, H) + unit0;
    float* cell_trace = p.cs + p.Offset(t, row, H) + unit0;
    if (t >= p.lengths[row]) {  // past this row's length: keep the state, output zeros
      std::memcpy(h_next + offset, h_prev + offset, width * sizeof(float));
      std::memcpy(cell_trace, p.c + offset, width * sizeof(float));
      _mm512_mask_storeu_ps(output, m, _mm512_setzero_ps());
      continue;
    }
    const __m512 c_prev = _mm512_maskz_loadu_ps(m, p.c + offset);
    __m512 i = acc[r][0], f = acc[r][2], o = acc[r][3];
    if (s.use_peephole) {
      i = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, p.wci + unit0), c_prev, i);
      f = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, p.wcf + unit0), c_prev, f);
    }
    __m512 c = _mm512_fmadd_ps(Sigmoid(_mm512_add_ps(f, _mm512_set1_ps(s.forget_bias))), c_prev,
                               _mm512_mul_ps(Sigmoid(i), Tanh(acc[r][1])));
    if (s.cell_clip >= 0.0f) {
      c = _mm512_min_ps(_mm512_set1_ps(s.cell_clip), _mm512_max_ps(_mm512_set1_ps(-s.cell_clip), c));
    }
    if (s.use_peephole) o = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, p.wco + unit0), c, o);
    const __m512 h = _mm512_mul_ps(Sigmoid(o), Tanh(c));
    _mm512_mask_storeu_ps(p.c + offset, m, c);
    _mm512_mask_storeu_ps(cell_trace, m, c);
    _mm512_mask_storeu_ps(h_next + offset, m, h);
    _mm512_mask_storeu_ps(output, m, h);
  }
}

void RunGroups(const Problem& p, int64_t first_group, int64_t end_group, Barrier* barrier) {
  for (int64_t g = first_group; g < end_group; ++g) Pack(p, g);
  const int64_t B = p.batch;
  for (int64_t t = 0; t < p.steps; ++t) {
    const float* h_prev = (t % 2 == 0) ? p.h_even : p.h_odd;
    float* h_next = (t % 2 == 0) ? p.h_odd : p.h_even;
    for (int64_t g = first_group; g < end_group; ++g) {
      int64_t row = 0;
      for (; row + kRows <= B; row += kRows) Tile<kRows>(p, t, row, g, h_prev, h_next);
      switch (B - row) {  // the last rows, fewer than kRows (measured faster than splitting the tail evenly)
        case 5: Tile<5>(p, t, row, g, h_prev, h_next); break;
        case 4: Tile<4>(p, t, row, g, h_prev, h_next); break;
        case 3: Tile<3>(p, t, row, g, h_prev, h_next); break;
        case 2: Tile<2>(p, t, row, g, h_prev, h_next); break;
        case 1: Tile<1>(p, t, row, g, h_prev, h_next); break;
        default: break;
      }
    }
    if (barrier != nullptr) barrier->Wait();
  }
}

// Worker threads of all calls running now, so that concurrent calls (a bidirectional RNN, two
// towers) share the cores instead of each spinning at barriers with one per core.
std::atomic<int> busy_threads{0};

int UsableCores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

// How many threads this call runs; counted in busy_threads until the call releases them.
int ThreadCount(int64_t batch, int64_t depth, int64_t units, int64_t groups) {
  if (const char* env = std::getenv("TFSTATE_NATIVE_THREADS")) {
    const int wanted = static_cast<int>(std::min<int64_t>(std::atoi(env), groups));
    if (wanted > 0) {
      busy_threads.fetch_add(wanted, std::memory_order_relaxed);
      return wanted;
    }
  }
  // Below ~1 MFLOP per step a barrier per step costs more than a second thread saves.
  if (2 * batch * (depth + units) * 4 * units < (1 << 20)) {
    busy_threads.fetch_add(1, std::memory_order_relaxed);
    return 1;
  }
  const int cores = UsableCores();
  int busy = busy_threads.load(std::memory_order_relaxed), take;
  do {  // claim up to one thread per core not already working for another call (at least one)
    take = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(cores - busy, groups)));
  } while (!busy_threads.compare_exchange_weak(busy, busy + take, std::memory_order_relaxed));
  return take;
}

// Runs the recurrence on `threads` fresh threads while the calling thread waits. Computing on
// TensorFlow's own inter-op thread measured 2-3x slower: TF's idle pool threads then compete
// with the second worker for the cores, and every step's barrier waits for the slower one.
void Run(const Problem& p) {
  const int64_t groups = (p.units + kUnits - 1) / kUnits;
  const int wanted = ThreadCount(p.batch, p.depth, p.units, groups);
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
      workers.emplace_back([&p, &parties, &barrier, groups, index] {
        int count;
        while ((count = parties.load(std::memory_order_acquire)) == 0) sched_yield();
        RunGroups(p, groups * index / count, groups * (index + 1) / count, count > 1 ? &barrier : nullptr);
      });
    }
  } catch (const std::system_error&) {  // out of threads: fewer workers
  }
  if (workers.empty()) {
    RunGroups(p, 0, groups, nullptr);
  } else {
    const int count = static_cast<int>(workers.size());
    barrier.SetParties(count);
    parties.store(count, std::memory_order_release);
    for (auto& worker : workers) worker.join();
  }
}

void Fail(TF_OpKernelContext* context, const char* message) {
  TF_Status* status = TF_NewStatus();
  TF_SetStatus(status, TF_INVALID_ARGUMENT, message);
  TF_OpKernelContext_Failure(context, status);
  TF_DeleteStatus(status);
}

void* Create(TF_OpKernelConstruction* construction) {
  auto* settings = new Settings();
  TF_Status* status = TF_NewStatus();
  TF_OpKernelConstruction_GetAttrFloat(construction, "forget_bias", &settings->forget_bias, status);
  if (TF_GetCode(status) == TF_OK) {
    TF_OpKernelConstruction_GetAttrFloat(construction, "cell_clip", &settings->cell_clip, status);
  }
  TF_Bool flag = false;
  if (TF_GetCode(status) == TF_OK) {
    TF_OpKernelConstruction_GetAttrBool(construction, "use_peephole", &flag, status);
    settings->use_peephole = flag;
  }
  if (TF_GetCode(status) == TF_OK) {
    TF_OpKernelConstruction_GetAttrBool(construction, "time_major", &flag, status);
    settings->time_major = flag;
  }
  if (TF_GetCode(status) != TF_OK) TF_OpKernelConstruction_Failure(construction, status);
  TF_DeleteStatus(status);
  return settings;
}

void Delete(void* settings) { delete static_cast<Settings*>(settings); }

enum Input { kX, kC0, kH0, kKernel, kBias, kWci, kWcf, kWco, kLengths, kNumInputs };

// Checks every shape against x's; false (with what is wrong written to `message`) if one does not fit.
bool ShapesMatch(TF_Tensor* const* in, bool time_major, char* message, size_t size) {
  if (TF_NumDims(in[kX]) != 3 || TF_NumDims(in[kC0]) != 2) {
    std::snprintf(message, size, "TfstateLstmSequence needs 3-D x and 2-D c0; got ranks %d and %d.",
                  TF_NumDims(in[kX]), TF_NumDims(in[kC0]));
    return false;
  }
  const int64_t B = TF_Dim(in[kX], time_major ? 1 : 0), D = TF_Dim(in[kX], 2), H = TF_Dim(in[kC0], 1);
  const bool ok = TF_Dim(in[kC0], 0) == B && TF_NumDims(in[kH0]) == 2 &&
                  TF_Dim(in[kH0], 0) == B && TF_Dim(in[kH0], 1) == H && TF_NumDims(in[kKernel]) == 2 &&
                  TF_Dim(in[kKernel], 0) == D + H && TF_Dim(in[kKernel], 1) == 4 * H &&
                  TF_NumDims(in[kBias]) == 1 && TF_Dim(in[kBias], 0) == 4 * H && TF_NumDims(in[kWci]) == 1 &&
                  TF_Dim(in[kWci], 0) == H && TF_NumDims(in[kWcf]) == 1 && TF_Dim(in[kWcf], 0) == H &&
                  TF_NumDims(in[kWco]) == 1 && TF_Dim(in[kWco], 0) == H && TF_NumDims(in[kLengths]) == 1 &&
                  TF_Dim(in[kLengths], 0) == B;
  if (!ok) {
    std::snprintf(message, size,
                  "TfstateLstmSequence with batch %lld, depth %lld and %lld units needs "
                  "c0, h0 [%lld, %lld], kernel [%lld, %lld], bias [%lld], peepholes [%lld], lengths [%lld].",
                  (long long)B, (long long)D, (long long)H, (long long)B, (long long)H,
                  (long long)(D + H), (long long)(4 * H), (long long)(4 * H), (long long)H, (long long)B);
  }
  return ok;
}

void Compute(void* kernel, TF_OpKernelContext* context) {
  const Settings& settings = *static_cast<Settings*>(kernel);
  TF_Status* status = TF_NewStatus();
  TF_Tensor* in[kNumInputs] = {nullptr};
  for (int i = 0; i < kNumInputs && TF_GetCode(status) == TF_OK; ++i) TF_GetInput(context, i, &in[i], status);
  TF_Tensor* out[4] = {nullptr};
  float* buffers = nullptr;
  char message[512] = {0};
  if (TF_GetCode(status) != TF_OK) {
    TF_OpKernelContext_Failure(context, status);
  } else if (!ShapesMatch(in, settings.time_major, message, sizeof(message))) {
    Fail(context, message);
  } else {
    const int64_t T = TF_Dim(in[kX], settings.time_major ? 0 : 1), B = TF_Dim(in[kX], settings.time_major ? 1 : 0);
    const int64_t D = TF_Dim(in[kX], 2), H = TF_Dim(in[kC0], 1);
    const int64_t output_dims[3] = {TF_Dim(in[kX], 0), TF_Dim(in[kX], 1), H}, state_dims[2] = {B, H};
    const int64_t state_size = B * H, packed_size = (H + kUnits - 1) / kUnits * kPanel * (D + H);
    for (int i = 0; i < 4 && TF_GetCode(status) == TF_OK; ++i) {
      const bool sequence = i == 0 || i == 3;
      out[i] = TF_AllocateOutput(context, i, TF_FLOAT, sequence ? output_dims : state_dims, sequence ? 3 : 2,
                                 (sequence ? T : 1) * state_size * sizeof(float), status);
    }
    if (TF_GetCode(status) == TF_OK) {
      const size_t bytes = (packed_size + 2 * state_size) * sizeof(float);
      buffers = static_cast<float*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));  // a multiple of 64
    }
    if (TF_GetCode(status) != TF_OK) {
      TF_OpKernelContext_Failure(context, status);
    } else if (buffers == nullptr) {
      Fail(context, "TfstateLstmSequence could not allocate its working buffers.");
    } else {
      Problem p;
      p.steps = T;
      p.batch = B;
      p.depth = D;
      p.units = H;
      p.x = static_cast<const float*>(TF_TensorData(in[kX]));
      p.kernel = static_cast<const float*>(TF_TensorData(in[kKernel]));
      p.bias = static_cast<const float*>(TF_TensorData(in[kBias]));
      p.wci = static_cast<const float*>(TF_TensorData(in[kWci]));
      p.wcf = static_cast<const float*>(TF_TensorData(in[kWcf]));
      p.wco = static_cast<const float*>(TF_TensorData(in[kWco]));
      p.lengths = static_cast<const int32_t*>(TF_TensorData(in[kLengths]));
      p.outputs = static_cast<float*>(TF_TensorData(out[0]));
      p.c = static_cast<float*>(TF_TensorData(out[1]));
      p.cs = static_cast<float*>(TF_TensorData(out[3]));
      p.packed = buffers;
      p.h_even = buffers + packed_size;
      p.h_odd = p.h_even + state_size;
      p.settings = settings;
      if (state_size > 0) {
        std::memcpy(p.c, TF_TensorData(in[kC0]), state_size * sizeof(float));
        std::memcpy(p.h_even, TF_TensorData(in[kH0]), state_size * sizeof(float));
      }
      bool ran = true;
      try {
        if (T > 0 && state_size > 0) Run(p);
      } catch (const std::exception& error) {  // never let an exception cross the C API
        std::snprintf(message, sizeof(message), "TfstateLstmSequence failed: %s", error.what());
        Fail(context, message);
        ran = false;
      }
      if (ran && state_size > 0) {
        std::memcpy(TF_TensorData(out[2]), T % 2 == 0 ? p.h_even : p.h_odd, state_size * sizeof(float));
      }
    }
  }
  std::free(buffers);
  for (TF_Tensor* tensor : out) TF_DeleteTensor(tensor);
  for (TF_Tensor* tensor : in) TF_DeleteTensor(tensor);
  TF_DeleteStatus(status);
}

struct Registration {
  Registration() {
    TF_Status* status = TF_NewStatus();
    TF_OpDefinitionBuilder* op = TF_NewOpDefinitionBuilder("TfstateLstmSequence");
    for (const char* input : {"x: float", "c0: float", "h0: float", "kernel: float", "bias: float", "wci: float",
                              "wcf: float", "wco: float", "lengths: int32"}) {
      TF_OpDefinitionBuilderAddInput(op, input);
    }
    for (const char* output : {"outputs: float", "c: float", "h: float", "cs: float"}) {
      TF_OpDefinitionBuilderAddOutput(op, output);
    }
    for (const char* attr : {"forget_bias: float = 1.0", "cell_clip: float = -1.0", "use_peephole: bool = false",
                             "time_major: bool = false"}) {
      TF_OpDefinitionBuilderAddAttr(op, attr);
    }
    TF_RegisterOpDefinition(op, status);
    if (TF_GetCode(status) == TF_OK) {
      TF_KernelBuilder* builder = TF_NewKernelBuilder("TfstateLstmSequence", "CPU", &Create, &Compute, &Delete);
      TF_RegisterKernelBuilder("TfstateLstmSequenceCPU", builder, status);
    }
    if (TF_GetCode(status) != TF_OK) std::fprintf(stderr, "tfstate: %s\n", TF_Message(status));
    TF_DeleteStatus(status);
  }
};

Registration registration;

}  // namespace
