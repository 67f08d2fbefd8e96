// What tfstate's TensorFlow ops (lstm_kernel.cc, gru_kernel.cc, lstm_gradient_kernel.cc) share: names, errors, working
// memory and registration through TensorFlow's C kernel API.
//
// tfstate/native.py builds the ops at first use, once per variant (AVX-512, AVX2 + FMA,
// portable), with -DTFSTATE_VARIANT=<Variant>; every op's name ends in the variant's
// (TfstateLstmSequenceAvx2, ...), so that several variants can be loaded in one process.

#ifndef TFSTATE_KERNEL_OP_H_
#define TFSTATE_KERNEL_OP_H_

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <initializer_list>
#include <string>

#include "tensorflow/c/kernels.h"
#include "tensorflow/c/ops.h"
#include "tensorflow/c/tf_status.h"
#include "tensorflow/c/tf_tensor.h"

#ifndef TFSTATE_VARIANT
#error "build with -DTFSTATE_VARIANT=<Variant> (tfstate/native.py does)"
#endif
#define TFSTATE_STRING(name) #name
#define TFSTATE_JOIN(base, variant) TFSTATE_STRING(base##variant)
#define TFSTATE_EXPAND_JOIN(base, variant) TFSTATE_JOIN(base, variant)
// The op name `base` + the variant's, as a string literal.
#define TFSTATE_OP_NAME(base) TFSTATE_EXPAND_JOIN(base, TFSTATE_VARIANT)

namespace tfstate {

inline void Fail(TF_OpKernelContext* context, const char* message) {
  TF_Status* status = TF_NewStatus();
  TF_SetStatus(status, TF_INVALID_ARGUMENT, message);
  TF_OpKernelContext_Failure(context, status);
  TF_DeleteStatus(status);
}

// Whether `tensor` has exactly the dimensions `dims`.
inline bool HasShape(TF_Tensor* tensor, std::initializer_list<int64_t> dims) {
  if (TF_NumDims(tensor) != static_cast<int>(dims.size())) return false;
  int axis = 0;
  for (int64_t dim : dims) {
    if (TF_Dim(tensor, axis++) != dim) return false;
  }
  return true;
}

// 64-byte aligned working memory of `floats` floats (at least one cache line), or nullptr; std::free it.
inline float* AllocateWorkspace(int64_t floats) {
  const size_t bytes = floats * sizeof(float);
  return static_cast<float*>(std::aligned_alloc(64, (bytes + 64) / 64 * 64));
}

// Runs `body` (the recurrence), turning an exception into the op's failure: none may cross the C API.
template <typename Body>
void Guarded(TF_OpKernelContext* context, const char* op, const Body& body) {
  try {
    body();
  } catch (const std::exception& error) {
    char message[512];
    std::snprintf(message, sizeof(message), "%s failed: %s", op, error.what());
    Fail(context, message);
  }
}

// Registers op `name` with its inputs, outputs and attributes and its CPU kernel.
inline void Register(const char* name, std::initializer_list<const char*> inputs,
                     std::initializer_list<const char*> outputs, std::initializer_list<const char*> attrs,
                     void* (*create)(TF_OpKernelConstruction*), void (*compute)(void*, TF_OpKernelContext*),
                     void (*destroy)(void*)) {
  TF_Status* status = TF_NewStatus();
  TF_OpDefinitionBuilder* op = TF_NewOpDefinitionBuilder(name);
  for (const char* input : inputs) TF_OpDefinitionBuilderAddInput(op, input);
  for (const char* output : outputs) TF_OpDefinitionBuilderAddOutput(op, output);
  for (const char* attr : attrs) TF_OpDefinitionBuilderAddAttr(op, attr);
  TF_RegisterOpDefinition(op, status);
  if (TF_GetCode(status) == TF_OK) {
    TF_KernelBuilder* builder = TF_NewKernelBuilder(name, "CPU", create, compute, destroy);
    TF_RegisterKernelBuilder((std::string(name) + "CPU").c_str(), builder, status);
  }
  if (TF_GetCode(status) != TF_OK) std::fprintf(stderr, "tfstate: %s\n", TF_Message(status));
  TF_DeleteStatus(status);
}

}  // namespace tfstate

#endif  // TFSTATE_KERNEL_OP_H_
