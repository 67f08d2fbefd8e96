"""Reproducible speed comparisons of tfstate against plain TF1 code, Keras 3 and PyTorch (`tfstate bench`)."""
