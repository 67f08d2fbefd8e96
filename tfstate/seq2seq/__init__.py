"""`tfstate.seq2seq`: TF1 contrib's `tf.contrib.seq2seq` (helpers, decoders, attention, beam search, losses)."""

__all__ = []
