"""The CNN-BiLSTM-CTC model."""

from htr.model.crnn import CRNN, count_parameters, feature_rows, width_stride

__all__ = ["CRNN", "count_parameters", "feature_rows", "width_stride"]
