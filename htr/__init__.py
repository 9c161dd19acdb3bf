"""htr: a PyTorch recognizer for handwritten text lines (CNN -> BiLSTM -> CTC)."""

__version__ = "0.1.0"

# Bumped when the checkpoint layout changes incompatibly; checked on load.
CHECKPOINT_FORMAT = 1
