// tfstate's native LSTM recurrence as one TensorFlow op (C kernel API) that runs a whole chunk.
//
// TfstateLstmSequence<Variant>(x [B,T,D] or [T,B,D], c0 [B,H], h0 [B,H], kernel [D+H,4H], bias [4H],
//            wci/wcf/wco [H], lengths [B], resets [T,B] bool, reset_c [B,H], reset_h [B,H])
//   -> outputs (like x, width H), c [B,H], h [B,H], cs (like outputs), gates (like x, width 4H)
//
// `gates` holds every step's [x, h] @ kernel + bias with save_gates=true (what the gradient would
// recompute), and is empty otherwise.
// `resets` is time-major whatever the layout of x; an empty one means no resets inside the chunk
// (reset_c and reset_h are then not read and may be empty too). The maths is in
// lstm_recurrence.h; naming and registration in kernel_op.h.

#include "kernel_op.h"
#include "lstm_recurrence.h"

#define TFSTATE_OP TFSTATE_OP_NAME(TfstateLstmSequence)

namespace {

struct Settings {
  float forget_bias;
  float cell_clip;  // < 0: no clipping
  bool use_peephole;
  bool time_major;
  bool save_gates;
};

void* Create(TF_OpKernelConstruction* construction) {
  auto* s = new Settings();
  tfstate::ReadAttributes(construction, {{"forget_bias", &s->forget_bias}, {"cell_clip", &s->cell_clip}},
                          {{"use_peephole", &s->use_peephole}, {"time_major", &s->time_major},
                           {"save_gates", &s->save_gates}});
  return s;
}

void Delete(void* settings) { delete static_cast<Settings*>(settings); }

enum Input { kX, kC0, kH0, kKernel, kBias, kWci, kWcf, kWco, kLengths, kResets, kResetC, kResetH, kNumInputs };

bool HasResets(TF_Tensor* const* in) { return TF_TensorElementCount(in[kResets]) > 0; }

// Checks every shape against x's; false (with what is wrong written to `message`) if one does not fit.
bool ShapesMatch(TF_Tensor* const* in, bool time_major, char* message, size_t size) {
  if (TF_NumDims(in[kX]) != 3 || TF_NumDims(in[kC0]) != 2) {
    std::snprintf(message, size, "needs 3-D x and 2-D c0; got ranks %d and %d.",
                  TF_NumDims(in[kX]), TF_NumDims(in[kC0]));
    return false;
  }
  const int64_t B = TF_Dim(in[kX], time_major ? 1 : 0), T = TF_Dim(in[kX], time_major ? 0 : 1);
  const int64_t D = TF_Dim(in[kX], 2), H = TF_Dim(in[kC0], 1);
  const bool ok = TF_Dim(in[kC0], 0) == B && TF_NumDims(in[kH0]) == 2 &&
                  TF_Dim(in[kH0], 0) == B && TF_Dim(in[kH0], 1) == H && TF_NumDims(in[kKernel]) == 2 &&
                  TF_Dim(in[kKernel], 0) == D + H && TF_Dim(in[kKernel], 1) == 4 * H &&
                  TF_NumDims(in[kBias]) == 1 && TF_Dim(in[kBias], 0) == 4 * H && TF_NumDims(in[kWci]) == 1 &&
                  TF_Dim(in[kWci], 0) == H && TF_NumDims(in[kWcf]) == 1 && TF_Dim(in[kWcf], 0) == H &&
                  TF_NumDims(in[kWco]) == 1 && TF_Dim(in[kWco], 0) == H && TF_NumDims(in[kLengths]) == 1 &&
                  TF_Dim(in[kLengths], 0) == B;
  if (ok && HasResets(in)) {
    const bool resets_ok = TF_NumDims(in[kResets]) == 2 && TF_Dim(in[kResets], 0) == T &&
                           TF_Dim(in[kResets], 1) == B && TF_NumDims(in[kResetC]) == 2 &&
                           TF_Dim(in[kResetC], 0) == B && TF_Dim(in[kResetC], 1) == H &&
                           TF_NumDims(in[kResetH]) == 2 && TF_Dim(in[kResetH], 0) == B && TF_Dim(in[kResetH], 1) == H;
    if (!resets_ok) {
      std::snprintf(message, size,
                    "with %lld steps, batch %lld and %lld units needs resets [%lld, %lld] "
                    "(time-major; empty for none) and reset_c, reset_h [%lld, %lld].",
                    (long long)T, (long long)B, (long long)H, (long long)T, (long long)B, (long long)B, (long long)H);
      return false;
    }
  }
  if (!ok) {
    std::snprintf(message, size,
                  "with batch %lld, depth %lld and %lld units needs "
                  "c0, h0 [%lld, %lld], kernel [%lld, %lld], bias [%lld], peepholes [%lld], lengths [%lld].",
                  (long long)B, (long long)D, (long long)H, (long long)B, (long long)H,
                  (long long)(D + H), (long long)(4 * H), (long long)(4 * H), (long long)H, (long long)B);
  }
  return ok;
}

void Compute(void* kernel, TF_OpKernelContext* context) {
  const Settings& settings = *static_cast<Settings*>(kernel);
  tfstate::OpCall call(context, TFSTATE_OP, kNumInputs);
  char message[512] = {0};
  if (!call.ok()) return;
  TF_Tensor* const* in = call.inputs();
  if (!ShapesMatch(in, settings.time_major, message, sizeof(message))) return call.Fail(message);
  tfstate::Sequence s;
  s.resets = HasResets(in) ? call.Input<bool>(kResets) : nullptr;
  s.time_major = settings.time_major;
  s.steps = TF_Dim(in[kX], s.time_major ? 0 : 1);
  s.batch = TF_Dim(in[kX], s.time_major ? 1 : 0);
  s.depth = TF_Dim(in[kX], 2);
  s.units = TF_Dim(in[kC0], 1);
  s.use_peephole = settings.use_peephole;
  s.forget_bias = settings.forget_bias;
  s.cell_clip = settings.cell_clip;
  s.x = call.Input<float>(kX);
  s.c0 = call.Input<float>(kC0);
  s.h0 = call.Input<float>(kH0);
  s.kernel = call.Input<float>(kKernel);
  s.bias = call.Input<float>(kBias);
  s.wci = call.Input<float>(kWci);
  s.wcf = call.Input<float>(kWcf);
  s.wco = call.Input<float>(kWco);
  s.lengths = call.Input<int32_t>(kLengths);
  s.reset_c = call.Input<float>(kResetC);
  s.reset_h = call.Input<float>(kResetH);
  const int64_t first = TF_Dim(in[kX], 0), second = TF_Dim(in[kX], 1);
  s.outputs = call.Output(0, {first, second, s.units});
  s.c = call.Output(1, {s.batch, s.units});
  s.h = call.Output(2, {s.batch, s.units});
  s.cs = call.Output(3, {first, second, s.units});
  float* gates = settings.save_gates ? call.Output(4, {first, second, 4 * s.units}) : call.Output(4, {0});
  s.gates = settings.save_gates ? gates : nullptr;
  float* workspace = call.Workspace(tfstate::WorkspaceFloats(s));
  call.Run([&s, workspace] { tfstate::RunSequence(s, workspace); });
}

struct Registration {
  Registration() {
    tfstate::Register(TFSTATE_OP,
                      {"x: float", "c0: float", "h0: float", "kernel: float", "bias: float", "wci: float", "wcf: float",
                       "wco: float", "lengths: int32", "resets: bool", "reset_c: float", "reset_h: float"},
                      {"outputs: float", "c: float", "h: float", "cs: float", "gates: float"},
                      {"forget_bias: float = 1.0", "cell_clip: float = -1.0", "use_peephole: bool = false",
                       "time_major: bool = false", "save_gates: bool = false"},
                      &Create, &Compute, &Delete);
  }
};

Registration registration;

}  // namespace
