// The LSTM recurrence of tfstate's compiled kernel, in plain C++ (the TensorFlow op is lstm_kernel.cc).
//
// The vectors, gate maths, barrier and threads are kernel_base.h's (one source for every CPU). An
// Eigen GEMM per step instead of the register tile measured slower than this whole kernel (gates
// included), and takes 11 s to compile.
//
//   for t in range(T):
//     i, j, f, o = split([x[t], h] @ kernel + bias)              # gate order i, j, f, o
//     c' = sigmoid(f + forget_bias [+ wcf*c]) * c + sigmoid(i [+ wci*c]) * tanh(j), clipped to +-cell_clip
//     h' = sigmoid(o [+ wco*c']) * tanh(c')
//     rows with t >= lengths[row] keep (c, h) and output zeros; before that, rows with
//     resets[t, row] start the step from (reset_c, reset_h) instead of (c, h)
//     cs[t] = c (the cell state after step t, which the gradient needs)
//     gates[t] = [x[t], h] @ kernel + bias, when asked (save_gates: the gradient then need not recompute it)
//
// The hidden units come in groups of kWidth, all four gates of a group packed together, so each
// step is one register-blocked matmul (kRows batch rows x 4 gate vectors of accumulators) with the
// gate maths fused into its epilogue. The threads own batch rows, or groups of units with one
// barrier a step (kernel_base.h's RunSplit). The weights are packed per group once per call, and
// the running state is kept padded to whole groups, so the inner loops never need a mask.

#ifndef TFSTATE_LSTM_RECURRENCE_H_
#define TFSTATE_LSTM_RECURRENCE_H_

#include "kernel_base.h"

namespace tfstate {

// Batch rows per register tile: its accumulators (4 per row: gates i, j, f, o), one broadcast per
// row and one weight vector must fit in the vector registers (measured: 6 rows with AVX-512,
// 3 with AVX2 + FMA, 2 with SSE2, whose multiply-add needs a temporary).
#if defined(__AVX512F__) || defined(__aarch64__)  // 32 registers
constexpr int kRows = 6;
#elif defined(__FMA__)  // 16 registers
constexpr int kRows = 3;
#else
constexpr int kRows = 2;
#endif

constexpr int kPanel = 4 * kWidth;  // packed columns per group: i, j, f, o of kWidth units
constexpr int kConstants = 8;       // per group after its weights: bias i, j, f, o; wci, wcf, wco; padding

// One chunk: TensorFlow's tensors (x [B,T,D] or [T,B,D], outputs and cs the same with width H).
struct Sequence : Chunk {
  int64_t depth;
  bool use_peephole;
  float forget_bias, cell_clip;  // cell_clip < 0: no clipping
  const float *x, *c0, *h0, *kernel, *bias, *wci, *wcf, *wco;
  const float *reset_c, *reset_h;   // [batch, units], read where resets is set
  float *outputs, *cs, *c, *h;
  float* gates;  // like x with width 4H, or nullptr: not saved

  int64_t PanelFloats() const { return (depth + units) * kPanel + kConstants * kWidth; }
};

// Padded [batch, units] arrays in the working memory: c, h twice (double-buffered), and the reset values.
inline int64_t StateArrays(const Sequence& s) { return s.resets != nullptr ? 5 : 3; }

// Floats of working memory RunSequence needs: the packed weights and the padded state arrays.
inline int64_t WorkspaceFloats(const Sequence& s) {
  return s.Groups() * s.PanelFloats() + StateArrays(s) * s.batch * s.Padded();
}

struct Workspace {
  float* packed;                     // per group: [depth + units][i, j, f, o][kWidth], then the constants
  float *c, *h_even, *h_odd;         // [batch, padded units]; h is double-buffered across steps
  float *reset_c, *reset_h;          // [batch, padded units] (with resets only)
};

inline int64_t GroupWidth(const Sequence& s, int64_t group) {
  return std::min<int64_t>(kWidth, s.units - group * kWidth);
}

inline void Pack(const Sequence& s, const Workspace& w, int64_t group) {
  const int64_t H = s.units, width = GroupWidth(s, group), unit0 = group * kWidth;
  float* panel = w.packed + group * s.PanelFloats();
  const int64_t rows = s.depth + s.units;
  auto copy = [width](float* to, const float* from) {  // a partial group's missing units are zeros
    std::memcpy(to, from, width * sizeof(float));
    std::fill(to + width, to + kWidth, 0.0f);
  };
  for (int64_t k = 0; k < rows; ++k) {
    for (int gate = 0; gate < 4; ++gate) {
      copy(panel + k * kPanel + gate * kWidth, s.kernel + k * 4 * H + gate * H + unit0);
    }
  }
  float* constants = panel + rows * kPanel;
  for (int gate = 0; gate < 4; ++gate) copy(constants + gate * kWidth, s.bias + gate * H + unit0);
  copy(constants + 4 * kWidth, s.wci + unit0);
  copy(constants + 5 * kWidth, s.wcf + unit0);
  copy(constants + 6 * kWidth, s.wco + unit0);
  std::fill(constants + 7 * kWidth, constants + 8 * kWidth, 0.0f);
}

// acc[r] += a[r] @ panel[0:K] for MR rows whose values start at a[r] (stride 1).
template <int MR>
inline void Accumulate(const float* const* a, int64_t K, const float* panel, Vec (&acc)[MR][4]) {
  for (int64_t k = 0; k < K; ++k) {
    const float* w = panel + k * kPanel;
    Vec v[MR];
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) v[r] = Splat(a[r][k]);
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      const Vec weights = Load(w + q * kWidth);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) acc[r][q] += v[r] * weights;
    }
  }
}

// Rows [row0, row0 + MR) x the units of `group` for step t: [x, h] @ kernel + bias, gates, state update.
template <int MR>
void Tile(const Sequence& s, const Workspace& w, int64_t t, int64_t row0, int64_t group, const float* h_prev,
          float* h_next) {
  const int64_t D = s.depth, H = s.units, padded = s.Padded();
  const int64_t unit0 = group * kWidth, width = GroupWidth(s, group);
  const float* panel = w.packed + group * s.PanelFloats();
  const float* constants = panel + (D + H) * kPanel;
  Vec acc[MR][4];
  const float* xs[MR];
  const float* hs[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    xs[r] = s.x + s.Offset(t, row0 + r, D);
    hs[r] = (s.Resets(t, row0 + r) ? w.reset_h : h_prev) + (row0 + r) * padded;
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) acc[r][q] = Load(constants + q * kWidth);
  }
  Accumulate<MR>(xs, D, panel, acc);
  Accumulate<MR>(hs, H, panel + D * kPanel, acc);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const int64_t row = row0 + r, state = row * padded + unit0;
    float* output = s.outputs + s.Offset(t, row, H) + unit0;
    float* trace = s.cs + s.Offset(t, row, H) + unit0;
    if (t >= s.lengths[row]) {  // past this row's length: keep the state, output zeros
      Store(h_next + state, Load(h_prev + state));
      StoreFirst(trace, Load(w.c + state), width);
      StoreFirst(output, Vec{}, width);
      continue;
    }
    if (s.gates != nullptr) {
      float* gates = s.gates + s.Offset(t, row, 4 * H) + unit0;
      for (int q = 0; q < 4; ++q) StoreFirst(gates + q * H, acc[r][q], width);
    }
    const Vec c_prev = Load((s.Resets(t, row) ? w.reset_c : w.c) + state);
    Vec i = acc[r][0], f = acc[r][2] + s.forget_bias, o = acc[r][3];
    if (s.use_peephole) {
      i += Load(constants + 4 * kWidth) * c_prev;
      f += Load(constants + 5 * kWidth) * c_prev;
    }
    Vec c = Sigmoid(f) * c_prev + Sigmoid(i) * Tanh(acc[r][1]);
    if (s.cell_clip >= 0.0f) c = Clamp(c, -s.cell_clip, s.cell_clip);
    if (s.use_peephole) o += Load(constants + 6 * kWidth) * c;
    const Vec h = Sigmoid(o) * Tanh(c);
    Store(w.c + state, c);
    Store(h_next + state, h);
    StoreFirst(trace, c, width);
    StoreFirst(output, h, width);
  }
}

// The last `rows` (< kRows) rows of the batch, as one smaller tile (measured faster than splitting the tail evenly).
template <int MR>
void TailTile(const Sequence& s, const Workspace& w, int64_t t, int64_t row0, int64_t rows, int64_t group,
              const float* h_prev, float* h_next) {
  if constexpr (MR > 0) {
    if (rows == MR) {
      Tile<MR>(s, w, t, row0, group, h_prev, h_next);
    } else {
      TailTile<MR - 1>(s, w, t, row0, rows, group, h_prev, h_next);
    }
  }
}

inline void RunGroups(const Sequence& s, const Workspace& w, int64_t first_group, int64_t end_group,
                      Barrier* barrier) {
  for (int64_t g = first_group; g < end_group; ++g) Pack(s, w, g);
  const int64_t B = s.batch;
  for (int64_t t = 0; t < s.steps; ++t) {
    const float* h_prev = (t % 2 == 0) ? w.h_even : w.h_odd;
    float* h_next = (t % 2 == 0) ? w.h_odd : w.h_even;
    for (int64_t g = first_group; g < end_group; ++g) {
      int64_t row = 0;
      for (; row + kRows <= B; row += kRows) Tile<kRows>(s, w, t, row, g, h_prev, h_next);
      TailTile<kRows - 1>(s, w, t, row, B - row, g, h_prev, h_next);
    }
    if (barrier != nullptr) barrier->Wait();
  }
}

// Rows [first_row, end_row) through the whole chunk: rows are independent, so no barrier but the
// one after packing (each thread packs its share of the groups, and every thread reads them all).
inline void RunRows(const Sequence& s, const Workspace& w, int64_t first_row, int64_t end_row, Barrier* barrier) {
  const int64_t G = s.Groups(), B = s.batch;
  for (int64_t g = G * first_row / B; g < G * end_row / B; ++g) Pack(s, w, g);
  if (barrier != nullptr) barrier->Wait();
  for (int64_t t = 0; t < s.steps; ++t) {
    const float* h_prev = (t % 2 == 0) ? w.h_even : w.h_odd;
    float* h_next = (t % 2 == 0) ? w.h_odd : w.h_even;
    for (int64_t g = 0; g < G; ++g) {
      int64_t row = first_row;
      for (; row + kRows <= end_row; row += kRows) Tile<kRows>(s, w, t, row, g, h_prev, h_next);
      TailTile<kRows - 1>(s, w, t, row, end_row - row, g, h_prev, h_next);
    }
  }
}

// The whole chunk: fills s.outputs, s.cs, s.c, s.h. `workspace` holds WorkspaceFloats(s) floats.
inline void RunSequence(const Sequence& s, float* workspace) {
  const int64_t B = s.batch, H = s.units, padded = s.Padded();
  Workspace w;
  w.packed = workspace;
  w.c = workspace + s.Groups() * s.PanelFloats();
  w.h_even = w.c + B * padded;
  w.h_odd = w.h_even + B * padded;
  w.reset_c = w.h_odd + B * padded;
  w.reset_h = w.reset_c + B * padded;
  std::fill(w.c, w.c + StateArrays(s) * B * padded, 0.0f);
  for (int64_t row = 0; row < B; ++row) {
    std::memcpy(w.c + row * padded, s.c0 + row * H, H * sizeof(float));
    std::memcpy(w.h_even + row * padded, s.h0 + row * H, H * sizeof(float));
    if (s.resets != nullptr) {
      std::memcpy(w.reset_c + row * padded, s.reset_c + row * H, H * sizeof(float));
      std::memcpy(w.reset_h + row * padded, s.reset_h + row * H, H * sizeof(float));
    }
  }
  if (s.steps > 0 && B > 0 && H > 0) {
    RunSplit(
        s.Groups(), B, 2 * B * (s.depth + H) * 4 * H,
        [&s, &w](int64_t first, int64_t end, Barrier* barrier) { RunGroups(s, w, first, end, barrier); },
        [&s, &w](int64_t first, int64_t end, Barrier* barrier) { RunRows(s, w, first, end, barrier); });
  }
  const float* h = s.steps % 2 == 0 ? w.h_even : w.h_odd;
  for (int64_t row = 0; row < B; ++row) {
    std::memcpy(s.c + row * H, w.c + row * padded, H * sizeof(float));
    std::memcpy(s.h + row * H, h + row * padded, H * sizeof(float));
  }
}

}  // namespace tfstate

#endif  // TFSTATE_LSTM_RECURRENCE_H_
