"""`tfstate.legacy_seq2seq`: TF1 contrib's `tf.contrib.legacy_seq2seq` (rnn_decoder, attention seq2seq, buckets, losses)."""

__all__ = []
