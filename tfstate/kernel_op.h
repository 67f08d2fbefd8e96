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
#include <utility>
#include <vector>

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

// Reads the op's float and bool attributes into `floats` and `bools` ({name, where} pairs); the
// first failure is the construction's.
inline void ReadAttributes(TF_OpKernelConstruction* construction,
                           std::initializer_list<std::pair<const char*, float*>> floats,
                           std::initializer_list<std::pair<const char*, bool*>> bools) {
  TF_Status* status = TF_NewStatus();
  for (const auto& [name, value] : floats) {
    if (TF_GetCode(status) == TF_OK) TF_OpKernelConstruction_GetAttrFloat(construction, name, value, status);
  }
  for (const auto& [name, value] : bools) {
    TF_Bool flag = false;
    if (TF_GetCode(status) == TF_OK) TF_OpKernelConstruction_GetAttrBool(construction, name, &flag, status);
    *value = flag;
  }
  if (TF_GetCode(status) != TF_OK) TF_OpKernelConstruction_Failure(construction, status);
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

// One Compute call of op `op`: the inputs it fetched, the outputs it allocated and its working
// memory, all released when the call ends. The first failure (TensorFlow's, or Fail's) is handed
// to TensorFlow, and ok() is false from then on.
class OpCall {
 public:
  OpCall(TF_OpKernelContext* context, const char* op, int inputs)
      : context_(context), op_(op), status_(TF_NewStatus()), in_(inputs, nullptr) {
    for (int i = 0; i < inputs && Check(); ++i) TF_GetInput(context_, i, &in_[i], status_);
    Check();
  }
  ~OpCall() {
    std::free(workspace_);
    for (TF_Tensor* tensor : out_) TF_DeleteTensor(tensor);
    for (TF_Tensor* tensor : in_) TF_DeleteTensor(tensor);
    TF_DeleteStatus(status_);
  }
  OpCall(const OpCall&) = delete;
  OpCall& operator=(const OpCall&) = delete;

  bool ok() const { return !failed_; }
  TF_Tensor* const* inputs() const { return in_.data(); }
  template <typename T>
  const T* Input(int i) const { return static_cast<const T*>(TF_TensorData(in_[i])); }

  // Allocates float output `i` of shape `dims`; its data, or nullptr once the call has failed.
  float* Output(int i, std::initializer_list<int64_t> dims) {
    if (!ok()) return nullptr;
    const std::vector<int64_t> shape(dims);
    int64_t size = 1;
    for (int64_t dim : shape) size *= dim;
    out_.push_back(TF_AllocateOutput(context_, i, TF_FLOAT, shape.data(), static_cast<int>(shape.size()),
                                     size * sizeof(float), status_));
    return Check() ? static_cast<float*>(TF_TensorData(out_.back())) : nullptr;
  }

  // 64-byte aligned working memory of `floats` floats (at least one cache line), or nullptr once the call has failed.
  float* Workspace(int64_t floats) {
    if (!ok()) return nullptr;
    const size_t bytes = floats * sizeof(float);
    workspace_ = static_cast<float*>(std::aligned_alloc(64, (bytes + 64) / 64 * 64));
    if (workspace_ == nullptr) Fail("could not allocate its working memory");
    return workspace_;
  }

  // Fails the call with "<op> <message>" (the first failure only).
  void Fail(const char* message) {
    if (!ok()) return;
    char text[768];
    std::snprintf(text, sizeof(text), "%s %s", op_, message);
    tfstate::Fail(context_, text);
    failed_ = true;
  }

  // Runs `body` (the recurrence) unless the call has failed, turning an exception into the call's
  // failure: none may cross the C API.
  template <typename Body>
  void Run(const Body& body) {
    if (!ok()) return;
    try {
      body();
    } catch (const std::exception& error) {
      char message[512];
      std::snprintf(message, sizeof(message), "failed: %s", error.what());
      Fail(message);
    }
  }

 private:
  bool Check() {  // hands a TensorFlow failure on; true while there is none
    if (!failed_ && TF_GetCode(status_) != TF_OK) {
      TF_OpKernelContext_Failure(context_, status_);
      failed_ = true;
    }
    return !failed_;
  }

  TF_OpKernelContext* context_;
  const char* op_;
  TF_Status* status_;
  std::vector<TF_Tensor*> in_;
  std::vector<TF_Tensor*> out_;
  float* workspace_ = nullptr;
  bool failed_ = false;
};

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
