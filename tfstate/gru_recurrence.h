// The GRU recurrence of tfstate's compiled kernel, in plain C++ (the TensorFlow op is gru_kernel.cc).
//
// TF1's GRUCell maths (the reset gate applies to h before the candidate's matmul):
//
//   for t in range(T):
//     h_read = reset_h where resets[t, row] else h
//     r, u = sigmoid([x[t], h_read] @ gate_kernel + gate_bias)               # [B, 2H]: r, then u
//     c = tanh([x[t], r * h_read] @ candidate_kernel + candidate_bias)      # [B, H]
//     h = u * h_read + (1 - u) * c
//     rows with t >= lengths[row] keep h and output zeros
//
// A step has two phases, each a register-blocked matmul over groups of kWidth units with its
// elementwise maths in the epilogue: the gates (2 vectors of accumulators a row) write r * h_read
// and u, then the candidate (1 vector a row) writes the new h. The threads own batch rows, or
// groups of units (kernel_base.h's RunSplit); with units, a barrier follows each phase (the
// candidate needs r * h of every unit). The weights are packed per group once per call.

#ifndef TFSTATE_GRU_RECURRENCE_H_
#define TFSTATE_GRU_RECURRENCE_H_

#include "kernel_base.h"

namespace tfstate {
namespace gru {

// One chunk: TensorFlow's tensors (x [B,T,D] or [T,B,D], outputs the same with width H).
struct Sequence : Chunk {
  int64_t depth;
  const float *x, *h0, *gate_kernel, *gate_bias, *candidate_kernel, *candidate_bias;
  const float* reset_h;   // [batch, units], read where resets is set
  float *outputs, *h;

  // Packed floats per group: the gates' [depth + units][r, u][kWidth] and their biases, then the
  // candidate's [depth + units][kWidth] and its bias.
  int64_t GateFloats() const { return (depth + units + 1) * 2 * kWidth; }
  int64_t PanelFloats() const { return GateFloats() + (depth + units + 1) * kWidth; }
};

// Padded [batch, units] arrays in the working memory: h, r * h_read, u, and reset_h (with resets).
inline int64_t StateArrays(const Sequence& s) { return s.resets != nullptr ? 4 : 3; }

inline int64_t WorkspaceFloats(const Sequence& s) {
  return s.Groups() * s.PanelFloats() + StateArrays(s) * s.batch * s.Padded();
}

struct Workspace {
  float* packed;             // per group: PanelFloats()
  float *h, *rh, *u;         // [batch, padded units]
  float* reset_h;            // [batch, padded units] (with resets only)
};

inline void Pack(const Sequence& s, const Workspace& w, int64_t group) {
  const int64_t H = s.units, K = s.depth + s.units, unit0 = group * kWidth;
  const int64_t width = std::min<int64_t>(kWidth, H - unit0);
  float* gates = w.packed + group * s.PanelFloats();
  float* candidate = gates + s.GateFloats();
  auto copy = [width](float* to, const float* from) {  // a partial group's missing units are zeros
    std::memcpy(to, from, width * sizeof(float));
    std::fill(to + width, to + kWidth, 0.0f);
  };
  for (int64_t k = 0; k < K; ++k) {
    copy(gates + k * 2 * kWidth, s.gate_kernel + k * 2 * H + unit0);
    copy(gates + k * 2 * kWidth + kWidth, s.gate_kernel + k * 2 * H + H + unit0);
    copy(candidate + k * kWidth, s.candidate_kernel + k * H + unit0);
  }
  copy(gates + K * 2 * kWidth, s.gate_bias + unit0);
  copy(gates + K * 2 * kWidth + kWidth, s.gate_bias + H + unit0);
  copy(candidate + K * kWidth, s.candidate_bias + unit0);
}

// The gate phase of rows [row0, row0 + MR) x the units of `group` at step t: r * h_read and u.
template <int MR>
void GateTile(const Sequence& s, const Workspace& w, int64_t t, int64_t row0, int64_t group) {
  const int64_t D = s.depth, H = s.units, padded = s.Padded(), unit0 = group * kWidth;
  const float* gates = w.packed + group * s.PanelFloats();
  const float* bias = gates + (D + H) * 2 * kWidth;
  Vec acc[MR][2];
  const float* xs[MR];
  const float* hs[MR];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    xs[r] = s.x + s.Offset(t, row0 + r, D);
    hs[r] = (s.Resets(t, row0 + r) ? w.reset_h : w.h) + (row0 + r) * padded;
    acc[r][0] = Load(bias);
    acc[r][1] = Load(bias + kWidth);
  }
  Accumulate<MR, 2>(xs, D, gates, acc);
  Accumulate<MR, 2>(hs, H, gates + D * 2 * kWidth, acc);
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    const int64_t state = (row0 + r) * padded + unit0;
    Store(w.rh + state, Sigmoid(acc[r][0]) * Load(hs[r] + unit0));
    Store(w.u + state, Sigmoid(acc[r][1]));
  }
}

// The candidate phase of the same tile: the new h (rows past their length keep theirs, output zeros).
template <int MR>
void CandidateTile(const Sequence& s, const Workspace& w, int64_t t, int64_t row0, int64_t group) {
  const int64_t D = s.depth, H = s.units, padded = s.Padded(), unit0 = group * kWidth;
  const int64_t width = std::min<int64_t>(kWidth, H - unit0);
  const float* candidate = w.packed + group * s.PanelFloats() + s.GateFloats();
  Vec acc[MR][1];
  const float* xs[MR];
  const float* rhs[MR];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    xs[r] = s.x + s.Offset(t, row0 + r, D);
    rhs[r] = w.rh + (row0 + r) * padded;
    acc[r][0] = Load(candidate + (D + H) * kWidth);
  }
  Accumulate<MR, 1>(xs, D, candidate, acc);
  Accumulate<MR, 1>(rhs, H, candidate + D * kWidth, acc);
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    const int64_t row = row0 + r, state = row * padded + unit0;
    float* output = s.outputs + s.Offset(t, row, H) + unit0;
    if (t >= s.lengths[row]) {
      StoreFirst(output, Vec{}, width);
      continue;
    }
    const Vec c = Tanh(acc[r][0]);
    const Vec h = c + Load(w.u + state) * (Load((s.Resets(t, row) ? w.reset_h : w.h) + state) - c);
    Store(w.h + state, h);
    StoreFirst(output, h, width);
  }
}

template <int MR>
struct Gates {
  static void Run(int64_t row, const Sequence& s, const Workspace& w, int64_t t, int64_t group) {
    GateTile<MR>(s, w, t, row, group);
  }
};

template <int MR>
struct Candidates {
  static void Run(int64_t row, const Sequence& s, const Workspace& w, int64_t t, int64_t group) {
    CandidateTile<MR>(s, w, t, row, group);
  }
};

inline void RunGroups(const Sequence& s, const Workspace& w, int64_t first_group, int64_t end_group,
                      Barrier* barrier) {
  for (int64_t g = first_group; g < end_group; ++g) Pack(s, w, g);
  for (int64_t t = 0; t < s.steps; ++t) {
    for (int64_t g = first_group; g < end_group; ++g) AllRows<Gates>(0, s.batch, s, w, t, g);
    if (barrier != nullptr) barrier->Wait();
    for (int64_t g = first_group; g < end_group; ++g) AllRows<Candidates>(0, s.batch, s, w, t, g);
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
    for (int64_t g = 0; g < G; ++g) AllRows<Gates>(first_row, end_row, s, w, t, g);
    for (int64_t g = 0; g < G; ++g) AllRows<Candidates>(first_row, end_row, s, w, t, g);
  }
}

// The whole chunk: fills s.outputs and s.h. `workspace` holds WorkspaceFloats(s) floats.
inline void RunSequence(const Sequence& s, float* workspace) {
  const int64_t B = s.batch, H = s.units, padded = s.Padded();
  Workspace w;
  w.packed = workspace;
  w.h = workspace + s.Groups() * s.PanelFloats();
  w.rh = w.h + B * padded;
  w.u = w.rh + B * padded;
  w.reset_h = w.u + B * padded;
  std::fill(w.h, w.h + StateArrays(s) * B * padded, 0.0f);
  for (int64_t row = 0; row < B; ++row) {
    std::memcpy(w.h + row * padded, s.h0 + row * H, H * sizeof(float));
    if (s.resets != nullptr) std::memcpy(w.reset_h + row * padded, s.reset_h + row * H, H * sizeof(float));
  }
  if (s.steps > 0 && B > 0 && H > 0) {
    RunSplit(
        s.Groups(), B, 2 * B * (s.depth + H) * 3 * H,
        [&s, &w](int64_t first, int64_t end, Barrier* barrier) { RunGroups(s, w, first, end, barrier); },
        [&s, &w](int64_t first, int64_t end, Barrier* barrier) { RunRows(s, w, first, end, barrier); });
  }
  for (int64_t row = 0; row < B; ++row) std::memcpy(s.h + row * H, w.h + row * padded, H * sizeof(float));
}

}  // namespace gru
}  // namespace tfstate

#endif  // TFSTATE_GRU_RECURRENCE_H_
