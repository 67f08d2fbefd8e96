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
  TF_Status* status = TF_NewStatus();
  TF_Bool flag = false;
  TF_OpKernelConstruction_GetAttrBool(construction, "time_major", &flag, status);
  *time_major = flag;
  if (TF_GetCode(status) != TF_OK) TF_OpKernelConstruction_Failure(construction, status);
  TF_DeleteStatus(status);
  return time_major;
}

void Delete(void* time_major) { delete static_cast<bool*>(time_major); }

// Checks every shape against x's and h0's; false (with what is wrong written to `message`) if one does not fit.
bool ShapesMatch(TF_Tensor* const* in, bool time_major, char* message, size_t size) {
  if (TF_NumDims(in[kX]) != 3 || TF_NumDims(in[kH0]) != 2) {
    std::snprintf(message, size, TFSTATE_OP " needs 3-D x and 2-D h0; got ranks %d and %d.", TF_NumDims(in[kX]),
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
                TFSTATE_OP " with %lld steps, batch %lld, depth %lld and %lld units needs h0 [%lld, %lld], "
                "gate_kernel [%lld, %lld], gate_bias [%lld], candidate_kernel [%lld, %lld], candidate_bias [%lld], "
                "lengths [%lld], and resets [%lld, %lld] (time-major; empty for none) with reset_h [%lld, %lld].",
                (long long)T, (long long)B, (long long)D, (long long)H, (long long)B, (long long)H,
                (long long)(D + H), (long long)(2 * H), (long long)(2 * H), (long long)(D + H), (long long)H,
                (long long)H, (long long)B, (long long)T, (long long)B, (long long)B, (long long)H);
  return false;
}

void Compute(void* kernel, TF_OpKernelContext* context) {
  const bool time_major = *static_cast<bool*>(kernel);
  TF_Status* status = TF_NewStatus();
  TF_Tensor* in[kNumInputs] = {nullptr};
  for (int i = 0; i < kNumInputs && TF_GetCode(status) == TF_OK; ++i) TF_GetInput(context, i, &in[i], status);
  TF_Tensor* out[2] = {nullptr};
  float* workspace = nullptr;
  char message[640] = {0};
  if (TF_GetCode(status) != TF_OK) {
    TF_OpKernelContext_Failure(context, status);
  } else if (!ShapesMatch(in, time_major, message, sizeof(message))) {
    tfstate::Fail(context, message);
  } else {
    tfstate::gru::Sequence s;
    s.time_major = time_major;
    s.steps = TF_Dim(in[kX], time_major ? 0 : 1);
    s.batch = TF_Dim(in[kX], time_major ? 1 : 0);
    s.depth = TF_Dim(in[kX], 2);
    s.units = TF_Dim(in[kH0], 1);
    s.resets = TF_TensorElementCount(in[kResets]) > 0 ? static_cast<const bool*>(TF_TensorData(in[kResets])) : nullptr;
    const int64_t output_dims[3] = {TF_Dim(in[kX], 0), TF_Dim(in[kX], 1), s.units}, state_dims[2] = {s.batch, s.units};
    out[0] = TF_AllocateOutput(context, 0, TF_FLOAT, output_dims, 3, s.steps * s.batch * s.units * sizeof(float),
                               status);
    if (TF_GetCode(status) == TF_OK) {
      out[1] = TF_AllocateOutput(context, 1, TF_FLOAT, state_dims, 2, s.batch * s.units * sizeof(float), status);
    }
    if (TF_GetCode(status) == TF_OK) workspace = tfstate::AllocateWorkspace(tfstate::gru::WorkspaceFloats(s));
    if (TF_GetCode(status) != TF_OK) {
      TF_OpKernelContext_Failure(context, status);
    } else if (workspace == nullptr) {
      tfstate::Fail(context, TFSTATE_OP " could not allocate its working memory.");
    } else {
      s.x = static_cast<const float*>(TF_TensorData(in[kX]));
      s.h0 = static_cast<const float*>(TF_TensorData(in[kH0]));
      s.gate_kernel = static_cast<const float*>(TF_TensorData(in[kGateKernel]));
      s.gate_bias = static_cast<const float*>(TF_TensorData(in[kGateBias]));
      s.candidate_kernel = static_cast<const float*>(TF_TensorData(in[kCandidateKernel]));
      s.candidate_bias = static_cast<const float*>(TF_TensorData(in[kCandidateBias]));
      s.lengths = static_cast<const int32_t*>(TF_TensorData(in[kLengths]));
      s.reset_h = static_cast<const float*>(TF_TensorData(in[kResetH]));
      s.outputs = static_cast<float*>(TF_TensorData(out[0]));
      s.h = static_cast<float*>(TF_TensorData(out[1]));
      tfstate::Guarded(context, TFSTATE_OP, [&s, workspace] { tfstate::gru::RunSequence(s, workspace); });
    }
  }
  std::free(workspace);
  for (TF_Tensor* tensor : out) TF_DeleteTensor(tensor);
  for (TF_Tensor* tensor : in) TF_DeleteTensor(tensor);
  TF_DeleteStatus(status);
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
