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
  auto* settings = new Settings();
  TF_Status* status = TF_NewStatus();
  TF_OpKernelConstruction_GetAttrFloat(construction, "forget_bias", &settings->forget_bias, status);
  if (TF_GetCode(status) == TF_OK) {
    TF_OpKernelConstruction_GetAttrFloat(construction, "cell_clip", &settings->cell_clip, status);
  }
  TF_Bool flag = false;
  if (TF_GetCode(status) == TF_OK) TF_OpKernelConstruction_GetAttrBool(construction, "use_peephole", &flag, status);
  settings->use_peephole = flag;
  if (TF_GetCode(status) == TF_OK) TF_OpKernelConstruction_GetAttrBool(construction, "time_major", &flag, status);
  settings->time_major = flag;
  if (TF_GetCode(status) != TF_OK) TF_OpKernelConstruction_Failure(construction, status);
  TF_DeleteStatus(status);
  return settings;
}

void Delete(void* settings) { delete static_cast<Settings*>(settings); }

enum Input { kGates, kCPrev, kDOutputs, kDC, kDH, kWH, kWci, kWcf, kWco, kLengths, kResets, kNumInputs };

// Checks every shape against c_prev's; false (with what is wrong written to `message`) if one does not fit.
bool ShapesMatch(TF_Tensor* const* in, bool time_major, char* message, size_t size) {
  if (TF_NumDims(in[kCPrev]) != 3) {
    std::snprintf(message, size, TFSTATE_OP " needs a 3-D c_prev; got rank %d.", TF_NumDims(in[kCPrev]));
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
                TFSTATE_OP " with c_prev [%lld, %lld, %lld] needs gates [%lld, %lld, %lld], d_outputs like c_prev, "
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
  TF_Status* status = TF_NewStatus();
  TF_Tensor* in[kNumInputs] = {nullptr};
  for (int i = 0; i < kNumInputs && TF_GetCode(status) == TF_OK; ++i) TF_GetInput(context, i, &in[i], status);
  TF_Tensor* out[5] = {nullptr};
  float* workspace = nullptr;
  char message[512] = {0};
  if (TF_GetCode(status) != TF_OK) {
    TF_OpKernelContext_Failure(context, status);
  } else if (!ShapesMatch(in, settings.time_major, message, sizeof(message))) {
    tfstate::Fail(context, message);
  } else {
    tfstate::lstm_gradient::Sequence s;
    s.time_major = settings.time_major;
    s.steps = TF_Dim(in[kCPrev], s.time_major ? 0 : 1);
    s.batch = TF_Dim(in[kCPrev], s.time_major ? 1 : 0);
    s.units = TF_Dim(in[kCPrev], 2);
    const int64_t gate_dims[3] = {TF_Dim(in[kCPrev], 0), TF_Dim(in[kCPrev], 1), 4 * s.units};
    const int64_t state_dims[2] = {s.batch, s.units};
    out[0] = TF_AllocateOutput(context, 0, TF_FLOAT, gate_dims, 3, s.steps * s.batch * 4 * s.units * sizeof(float),
                               status);
    for (int i = 1; i < 5 && TF_GetCode(status) == TF_OK; ++i) {
      out[i] = TF_AllocateOutput(context, i, TF_FLOAT, state_dims, 2, s.batch * s.units * sizeof(float), status);
    }
    if (TF_GetCode(status) == TF_OK) workspace = tfstate::AllocateWorkspace(tfstate::lstm_gradient::WorkspaceFloats(s));
    if (TF_GetCode(status) != TF_OK) {
      TF_OpKernelContext_Failure(context, status);
    } else if (workspace == nullptr) {
      tfstate::Fail(context, TFSTATE_OP " could not allocate its working memory.");
    } else {
      s.use_peephole = settings.use_peephole;
      s.forget_bias = settings.forget_bias;
      s.cell_clip = settings.cell_clip;
      s.gates = static_cast<const float*>(TF_TensorData(in[kGates]));
      s.c_prev = static_cast<const float*>(TF_TensorData(in[kCPrev]));
      s.d_outputs = static_cast<const float*>(TF_TensorData(in[kDOutputs]));
      s.d_c = static_cast<const float*>(TF_TensorData(in[kDC]));
      s.d_h = static_cast<const float*>(TF_TensorData(in[kDH]));
      s.w_h = static_cast<const float*>(TF_TensorData(in[kWH]));
      s.wci = static_cast<const float*>(TF_TensorData(in[kWci]));
      s.wcf = static_cast<const float*>(TF_TensorData(in[kWcf]));
      s.wco = static_cast<const float*>(TF_TensorData(in[kWco]));
      s.lengths = static_cast<const int32_t*>(TF_TensorData(in[kLengths]));
      s.resets = TF_TensorElementCount(in[kResets]) > 0 ? static_cast<const bool*>(TF_TensorData(in[kResets]))
                                                       : nullptr;
      s.d_gates = static_cast<float*>(TF_TensorData(out[0]));
      s.d_c0 = static_cast<float*>(TF_TensorData(out[1]));
      s.d_h0 = static_cast<float*>(TF_TensorData(out[2]));
      s.d_reset_c = static_cast<float*>(TF_TensorData(out[3]));
      s.d_reset_h = static_cast<float*>(TF_TensorData(out[4]));
      tfstate::Guarded(context, TFSTATE_OP, [&s, workspace] { tfstate::lstm_gradient::RunSequence(s, workspace); });
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
