// tfstate's native GRU recurrence as one TensorFlow op (C kernel API) that runs a whole chunk.
//
// TfstateGruSequence<Variant>(x [B,T,D] or [T,B,D], h0 [B,H], gate_kernel [D+H,2H], gate_bias [2H],
//            candidate_kernel [D+H,H], candidate_bias [H], lengths [B], resets [T,B] bool, reset_h [B,H])
//   -> outputs (like x, width H), h [B,H]
//
// `resets` is time-major whatever the layout of x; an empty one means no resets inside the chunk
// (reset_h is then not read and may be empty too). The maths is in gru_recurrence.h; naming and
// registration in kernel_op.h.

#include "gru_recurrence.h"
#include "kernel_op.h"

#define TFSTATE_OP TFSTATE_OP_NAME(TfstateGruSequence)

namespace {

using tfstate::HasShape;

enum Input {
  kX, kH0, kGateKernel, kGateBias, kCandidateKernel, kCandidateBias, kLengths, kResets, kResetH, kNumInputs
};

void* Create(TF_OpKernelConstruction* construction) {
  auto* time_major = new bool(false);
  tfstate::ReadAttributes(construction, {}, {{"time_major", time_major}});
  return time_major;
}

void Delete(void* time_major) { delete static_cast<bool*>(time_major); }

// Checks every shape against x's and h0's; false (with what is wrong written to `message`) if one does not fit.
bool ShapesMatch(TF_Tensor* const* in, bool time_major, char* message, size_t size) {
  if (TF_NumDims(in[kX]) != 3 || TF_NumDims(in[kH0]) != 2) {
    std::snprintf(message, size, "needs 3-D x and 2-D h0; got ranks %d and %d.", TF_NumDims(in[kX]),
                  TF_NumDims(in[kH0]));
    return false;
  }
  const int64_t B = TF_Dim(in[kX], time_major ? 1 : 0), T = TF_Dim(in[kX], time_major ? 0 : 1);
  const int64_t D = TF_Dim(in[kX], 2), H = TF_Dim(in[kH0], 1);
  const bool resets = TF_TensorElementCount(in[kResets]) > 0;
  if (HasShape(in[kH0], {B, H}) && HasShape(in[kGateKernel], {D + H, 2 * H}) &&
      HasShape(in[kGateBias], {2 * H}) && HasShape(in[kCandidateKernel], {D + H, H}) &&
      HasShape(in[kCandidateBias], {H}) && HasShape(in[kLengths], {B}) &&
      (!resets || (HasShape(in[kResets], {T, B}) && HasShape(in[kResetH], {B, H})))) {
    return true;
  }
  std::snprintf(message, size,
                "with %lld steps, batch %lld, depth %lld and %lld units needs h0 [%lld, %lld], "
                "gate_kernel [%lld, %lld], gate_bias [%lld], candidate_kernel [%lld, %lld], candidate_bias [%lld], "
                "lengths [%lld], and resets [%lld, %lld] (time-major; empty for none) with reset_h [%lld, %lld].",
                (long long)T, (long long)B, (long long)D, (long long)H, (long long)B, (long long)H,
                (long long)(D + H), (long long)(2 * H), (long long)(2 * H), (long long)(D + H), (long long)H,
                (long long)H, (long long)B, (long long)T, (long long)B, (long long)B, (long long)H);
  return false;
}

void Compute(void* kernel, TF_OpKernelContext* context) {
  const bool time_major = *static_cast<bool*>(kernel);
  tfstate::OpCall call(context, TFSTATE_OP, kNumInputs);
  char message[640] = {0};
  if (!call.ok()) return;
  TF_Tensor* const* in = call.inputs();
  if (!ShapesMatch(in, time_major, message, sizeof(message))) return call.Fail(message);
  tfstate::gru::Sequence s;
  s.time_major = time_major;
  s.steps = TF_Dim(in[kX], time_major ? 0 : 1);
  s.batch = TF_Dim(in[kX], time_major ? 1 : 0);
  s.depth = TF_Dim(in[kX], 2);
  s.units = TF_Dim(in[kH0], 1);
  s.resets = TF_TensorElementCount(in[kResets]) > 0 ? call.Input<bool>(kResets) : nullptr;
  s.x = call.Input<float>(kX);
  s.h0 = call.Input<float>(kH0);
  s.gate_kernel = call.Input<float>(kGateKernel);
  s.gate_bias = call.Input<float>(kGateBias);
  s.candidate_kernel = call.Input<float>(kCandidateKernel);
  s.candidate_bias = call.Input<float>(kCandidateBias);
  s.lengths = call.Input<int32_t>(kLengths);
  s.reset_h = call.Input<float>(kResetH);
  s.outputs = call.Output(0, {TF_Dim(in[kX], 0), TF_Dim(in[kX], 1), s.units});
  s.h = call.Output(1, {s.batch, s.units});
  float* workspace = call.Workspace(tfstate::gru::WorkspaceFloats(s));
  call.Run([&s, workspace] { tfstate::gru::RunSequence(s, workspace); });
}

struct Registration {
  Registration() {
    tfstate::Register(TFSTATE_OP,
                      {"x: float", "h0: float", "gate_kernel: float", "gate_bias: float", "candidate_kernel: float",
                       "candidate_bias: float", "lengths: int32", "resets: bool", "reset_h: float"},
                      {"outputs: float", "h: float"}, {"time_major: bool = false"}, &Create, &Compute, &Delete);
  }
};

Registration registration;

}  // namespace
