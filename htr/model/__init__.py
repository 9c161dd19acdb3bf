"""The CNN-BiLSTM-CTC model."""

from htr.model.crnn import CRNN, count_parameters

__all__ = ["CRNN", "count_parameters"]
