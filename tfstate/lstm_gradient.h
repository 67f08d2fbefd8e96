// The reverse loop of the LSTM's gradient in plain C++ (the TensorFlow op is lstm_gradient_kernel.cc).
//
// Given every step's gate pre-activations (recomputed by TensorFlow in one large matmul), the cell
// state each step read, and the upstream gradients, it chains (dh, dc) backwards through time
// (tfstate.fused.sequence.sequence_gradient is the same loop as TF ops; it has the formulas):
//
//   dh, dc = d_h, d_c
//   for t in reversed(range(T)):                       rows with t >= lengths[row] pass dh, dc through
//     d_gates[t] = the gates' gradients from dh + d_outputs[t], dc and step t's gate maths
//     dc = dc's share through the forget gate (and the peepholes)
//     dh = d_gates[t] @ w_h^T                          # [B, 4H] @ [4H, H]
//     rows with resets[t, row]: d_reset_h, d_reset_c += dh, dc; then dh = dc = 0
//   d_h0, d_c0 = dh, dc
//
// The threads own batch rows, or groups of kWidth hidden units (kernel_base.h's RunSplit). With
// units, a step's gate gradients of a thread's units need only that thread's (dh, dc), but its
// matmul needs every unit's gate gradients, so one barrier a step separates the two. w_h^T is
// packed per group once per call.

#ifndef TFSTATE_LSTM_GRADIENT_H_
#define TFSTATE_LSTM_GRADIENT_H_

#include "kernel_base.h"

namespace tfstate {
namespace lstm_gradient {

// One chunk: gates [T,B,4H], c_prev, d_outputs [T,B,H] and d_gates [T,B,4H], or all [B,T,...]
// without time_major; resets [T,B].
struct Sequence : Chunk {
  bool use_peephole;
  float forget_bias, cell_clip;  // cell_clip < 0: no clipping
  const float *gates, *c_prev, *d_outputs, *d_c, *d_h, *w_h, *wci, *wcf, *wco;
  float *d_gates, *d_c0, *d_h0, *d_reset_c, *d_reset_h;

  int64_t PanelFloats() const { return 4 * units * kWidth; }  // w_h^T: [4H][kWidth] per group
};

// Padded [batch, units] arrays: dh, dc, and the reset gradients being summed.
constexpr int kStateArrays = 4;

inline int64_t WorkspaceFloats(const Sequence& s) {
  return s.Groups() * s.PanelFloats() + kStateArrays * s.batch * s.Padded();
}

struct Workspace {
  float* packed;
  float *dh, *dc, *d_reset_h, *d_reset_c;  // [batch, padded units]
};

inline void Pack(const Sequence& s, const Workspace& w, int64_t group) {
  const int64_t N = 4 * s.units, unit0 = group * kWidth, width = std::min<int64_t>(kWidth, s.units - unit0);
  float* panel = w.packed + group * s.PanelFloats();
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < kWidth; ++k) panel[n * kWidth + k] = k < width ? s.w_h[(unit0 + k) * N + n] : 0.0f;
  }
}

// Step t's gate gradients of `group`'s units for every row, from (dh, dc); dc becomes dc's share before the step.
inline void GateGradients(const Sequence& s, const Workspace& w, int64_t t, int64_t group, int64_t first_row,
                          int64_t end_row) {
  const int64_t H = s.units, padded = s.Padded(), unit0 = group * kWidth;
  const int64_t width = std::min<int64_t>(kWidth, H - unit0);
  const Vec w_i = LoadFirst(s.wci + unit0, width), w_f = LoadFirst(s.wcf + unit0, width);
  const Vec w_o = LoadFirst(s.wco + unit0, width);
  for (int64_t row = first_row; row < end_row; ++row) {
    const int64_t state = row * padded + unit0, at = s.Offset(t, row, H) + unit0;
    const float* gates = s.gates + s.Offset(t, row, 4 * H) + unit0;
    float* d_gates = s.d_gates + s.Offset(t, row, 4 * H) + unit0;
    if (t >= s.lengths[row]) {  // the step does not run: no gate gradients, (dh, dc) pass through
      for (int gate = 0; gate < 4; ++gate) StoreFirst(d_gates + gate * H, Vec{}, width);
      continue;
    }
    const Vec c_prev = LoadFirst(s.c_prev + at, width);
    Vec i = LoadFirst(gates, width), f = LoadFirst(gates + 2 * H, width) + s.forget_bias;
    Vec o = LoadFirst(gates + 3 * H, width);
    if (s.use_peephole) {
      i += w_i * c_prev;
      f += w_f * c_prev;
    }
    const Vec s_i = Sigmoid(i), t_j = Tanh(LoadFirst(gates + H, width)), s_f = Sigmoid(f);
    const Vec c_raw = s_f * c_prev + s_i * t_j;
    const Vec c = s.cell_clip >= 0.0f ? Clamp(c_raw, -s.cell_clip, s.cell_clip) : c_raw;
    if (s.use_peephole) o += w_o * c;
    const Vec s_o = Sigmoid(o), t_c = Tanh(c);
    const Vec dh = Load(w.dh + state) + LoadFirst(s.d_outputs + at, width);
    const Vec d_o = dh * t_c * s_o * (1.0f - s_o);
    Vec dc = Load(w.dc + state) + dh * s_o * (1.0f - t_c * t_c);
    if (s.use_peephole) dc += d_o * w_o;
    if (s.cell_clip >= 0.0f) {  // the clip passes the gradient only where it did not clip (not at NaN)
      dc = (c_raw <= s.cell_clip) & (-s.cell_clip <= c_raw) ? dc : Vec{};
    }
    const Vec d_i = dc * t_j * s_i * (1.0f - s_i), d_j = dc * s_i * (1.0f - t_j * t_j);
    const Vec d_f = dc * c_prev * s_f * (1.0f - s_f);
    Vec dc_prev = dc * s_f;
    if (s.use_peephole) dc_prev += d_i * w_i + d_f * w_f;
    StoreFirst(d_gates, d_i, width);
    StoreFirst(d_gates + H, d_j, width);
    StoreFirst(d_gates + 2 * H, d_f, width);
    StoreFirst(d_gates + 3 * H, d_o, width);
    Store(w.dc + state, dc_prev);
  }
}

// dh = d_gates[t] @ w_h^T for rows [row0, row0 + MR) x `group`'s units (rows past their length keep
// dh); then a reset row hands (dh, dc) to the reset gradients and starts the earlier steps from zero.
template <int MR>
struct RecurrentTile {
  static void Run(int64_t row0, const Sequence& s, const Workspace& w, int64_t t, int64_t group) {
    const int64_t H = s.units, padded = s.Padded(), unit0 = group * kWidth;
    Vec acc[MR][1];
    const float* d_gates[MR];
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      d_gates[r] = s.d_gates + s.Offset(t, row0 + r, 4 * H);
      acc[r][0] = Vec{};
    }
    Accumulate<MR, 1>(d_gates, 4 * H, w.packed + group * s.PanelFloats(), acc);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const int64_t row = row0 + r, state = row * padded + unit0;
      if (t >= s.lengths[row]) continue;
      if (s.Resets(t, row)) {
        Store(w.d_reset_h + state, Load(w.d_reset_h + state) + acc[r][0]);
        Store(w.d_reset_c + state, Load(w.d_reset_c + state) + Load(w.dc + state));
        Store(w.dh + state, Vec{});
        Store(w.dc + state, Vec{});
      } else {
        Store(w.dh + state, acc[r][0]);
      }
    }
  }
};

inline void RunGroups(const Sequence& s, const Workspace& w, int64_t first_group, int64_t end_group,
                      Barrier* barrier) {
  for (int64_t g = first_group; g < end_group; ++g) Pack(s, w, g);
  for (int64_t t = s.steps - 1; t >= 0; --t) {
    for (int64_t g = first_group; g < end_group; ++g) GateGradients(s, w, t, g, 0, s.batch);
    if (barrier != nullptr) barrier->Wait();  // every unit's d_gates[t] is written
    for (int64_t g = first_group; g < end_group; ++g) AllRows<RecurrentTile>(0, s.batch, s, w, t, g);
  }
}

// Rows [first_row, end_row) through the whole reverse loop: no barrier but the one after packing.
inline void RunRows(const Sequence& s, const Workspace& w, int64_t first_row, int64_t end_row, Barrier* barrier) {
  const int64_t G = s.Groups(), B = s.batch;
  for (int64_t g = G * first_row / B; g < G * end_row / B; ++g) Pack(s, w, g);
  if (barrier != nullptr) barrier->Wait();
  for (int64_t t = s.steps - 1; t >= 0; --t) {
    for (int64_t g = 0; g < G; ++g) GateGradients(s, w, t, g, first_row, end_row);
    for (int64_t g = 0; g < G; ++g) AllRows<RecurrentTile>(first_row, end_row, s, w, t, g);
  }
}

// The whole reverse loop: fills s.d_gates, s.d_c0, s.d_h0, s.d_reset_c, s.d_reset_h.
inline void RunSequence(const Sequence& s, float* workspace) {
  const int64_t B = s.batch, H = s.units, padded = s.Padded();
  Workspace w;
  w.packed = workspace;
  w.dh = workspace + s.Groups() * s.PanelFloats();
  w.dc = w.dh + B * padded;
  w.d_reset_h = w.dc + B * padded;
  w.d_reset_c = w.d_reset_h + B * padded;
  std::fill(w.dh, w.dh + kStateArrays * B * padded, 0.0f);
  for (int64_t row = 0; row < B; ++row) {
    std::memcpy(w.dh + row * padded, s.d_h + row * H, H * sizeof(float));
    std::memcpy(w.dc + row * padded, s.d_c + row * H, H * sizeof(float));
  }
  if (s.steps > 0 && B > 0 && H > 0) {
    RunSplit(
        s.Groups(), B, 2 * B * 4 * H * H,
        [&s, &w](int64_t first, int64_t end, Barrier* barrier) { RunGroups(s, w, first, end, barrier); },
        [&s, &w](int64_t first, int64_t end, Barrier* barrier) { RunRows(s, w, first, end, barrier); });
  }
  for (int64_t row = 0; row < B; ++row) {
    std::memcpy(s.d_h0 + row * H, w.dh + row * padded, H * sizeof(float));
    std::memcpy(s.d_c0 + row * H, w.dc + row * padded, H * sizeof(float));
    std::memcpy(s.d_reset_h + row * H, w.d_reset_h + row * padded, H * sizeof(float));
    std::memcpy(s.d_reset_c + row * H, w.d_reset_c + row * padded, H * sizeof(float));
  }
}

}  // namespace lstm_gradient
}  // namespace tfstate

#endif  // TFSTATE_LSTM_GRADIENT_H_
