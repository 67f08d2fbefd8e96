// The reverse loop of tfstate's LSTM gradient as one TensorFlow op (C kernel API).
//
// TfstateLstmGradient<Variant>(gates [T,B,4H], c_prev [T,B,H], d_outputs [T,B,H], d_c [B,H], d_h [B,H],
//            w_h [H,4H], wci/wcf/wco [H], lengths [B], resets [T,B] bool)
//   -> d_gates [T,B,4H], d_c0 [B,H], d_h0 [B,H], d_reset_c [B,H], d_reset_h [B,H]
//
// The sequences are [B,T,...] instead with time_major=false; `resets` is time-major either way,
// and an empty one means none (the reset gradients are then zeros).
// The maths is in lstm_gradient.h; naming and registration in kernel_op.h.

#include "kernel_op.h"
#include "lstm_gradient.h"

#define TFSTATE_OP TFSTATE_OP_NAME(TfstateLstmGradient)

namespace {

using tfstate::HasShape;

struct Settings {
  float forget_bias;
  float cell_clip;  // < 0: no clipping
  bool use_peephole;
  bool time_major;
};

void* Create(TF_OpKernelConstruction* construction) {
  auto* s = new Settings();
  tfstate::ReadAttributes(construction, {{"forget_bias", &s->forget_bias}, {"cell_clip", &s->cell_clip}},
                          {{"use_peephole", &s->use_peephole}, {"time_major", &s->time_major}});
  return s;
}

void Delete(void* settings) { delete static_cast<Settings*>(settings); }

enum Input { kGates, kCPrev, kDOutputs, kDC, kDH, kWH, kWci, kWcf, kWco, kLengths, kResets, kNumInputs };

// Checks every shape against c_prev's; false (with what is wrong written to `message`) if one does not fit.
bool ShapesMatch(TF_Tensor* const* in, bool time_major, char* message, size_t size) {
  if (TF_NumDims(in[kCPrev]) != 3) {
    std::snprintf(message, size, "needs a 3-D c_prev; got rank %d.", TF_NumDims(in[kCPrev]));
    return false;
  }
  const int64_t first = TF_Dim(in[kCPrev], 0), second = TF_Dim(in[kCPrev], 1), H = TF_Dim(in[kCPrev], 2);
  const int64_t T = time_major ? first : second, B = time_major ? second : first;
  if (HasShape(in[kGates], {first, second, 4 * H}) && HasShape(in[kDOutputs], {first, second, H}) &&
      HasShape(in[kDC], {B, H}) &&
      HasShape(in[kDH], {B, H}) && HasShape(in[kWH], {H, 4 * H}) && HasShape(in[kWci], {H}) &&
      HasShape(in[kWcf], {H}) && HasShape(in[kWco], {H}) && HasShape(in[kLengths], {B}) &&
      (TF_TensorElementCount(in[kResets]) == 0 || HasShape(in[kResets], {T, B}))) {
    return true;
  }
  std::snprintf(message, size,
                "with c_prev [%lld, %lld, %lld] needs gates [%lld, %lld, %lld], d_outputs like c_prev, "
                "d_c, d_h [%lld, %lld], w_h [%lld, %lld], peepholes [%lld], lengths [%lld], resets [%lld, %lld] "
                "or empty.",
                (long long)first, (long long)second, (long long)H, (long long)first, (long long)second,
                (long long)(4 * H),
                (long long)B, (long long)H, (long long)H, (long long)(4 * H), (long long)H, (long long)B,
                (long long)T, (long long)B);
  return false;
}

void Compute(void* kernel, TF_OpKernelContext* context) {
  const Settings& settings = *static_cast<Settings*>(kernel);
  tfstate::OpCall call(context, TFSTATE_OP, kNumInputs);
  char message[512] = {0};
  if (!call.ok()) return;
  TF_Tensor* const* in = call.inputs();
  if (!ShapesMatch(in, settings.time_major, message, sizeof(message))) return call.Fail(message);
  tfstate::lstm_gradient::Sequence s;
  s.time_major = settings.time_major;
  s.steps = TF_Dim(in[kCPrev], s.time_major ? 0 : 1);
  s.batch = TF_Dim(in[kCPrev], s.time_major ? 1 : 0);
  s.units = TF_Dim(in[kCPrev], 2);
  s.use_peephole = settings.use_peephole;
  s.forget_bias = settings.forget_bias;
  s.cell_clip = settings.cell_clip;
  s.gates = call.Input<float>(kGates);
  s.c_prev = call.Input<float>(kCPrev);
  s.d_outputs = call.Input<float>(kDOutputs);
  s.d_c = call.Input<float>(kDC);
  s.d_h = call.Input<float>(kDH);
  s.w_h = call.Input<float>(kWH);
  s.wci = call.Input<float>(kWci);
  s.wcf = call.Input<float>(kWcf);
  s.wco = call.Input<float>(kWco);
  s.lengths = call.Input<int32_t>(kLengths);
  s.resets = TF_TensorElementCount(in[kResets]) > 0 ? call.Input<bool>(kResets) : nullptr;
  s.d_gates = call.Output(0, {TF_Dim(in[kCPrev], 0), TF_Dim(in[kCPrev], 1), 4 * s.units});
  s.d_c0 = call.Output(1, {s.batch, s.units});
  s.d_h0 = call.Output(2, {s.batch, s.units});
  s.d_reset_c = call.Output(3, {s.batch, s.units});
  s.d_reset_h = call.Output(4, {s.batch, s.units});
  float* workspace = call.Workspace(tfstate::lstm_gradient::WorkspaceFloats(s));
  call.Run([&s, workspace] { tfstate::lstm_gradient::RunSequence(s, workspace); });
}

struct Registration {
  Registration() {
    tfstate::Register(TFSTATE_OP,
                      {"gates: float", "c_prev: float", "d_outputs: float", "d_c: float", "d_h: float", "w_h: float",
                       "wci: float", "wcf: float", "wco: float", "lengths: int32", "resets: bool"},
                      {"d_gates: float", "d_c0: float", "d_h0: float", "d_reset_c: float", "d_reset_h: float"},
                      {"forget_bias: float = 1.0", "cell_clip: float = -1.0", "use_peephole: bool = false",
                       "time_major: bool = true"},
                      &Create, &Compute, &Delete);
  }
};

Registration registration;

}  // namespace
