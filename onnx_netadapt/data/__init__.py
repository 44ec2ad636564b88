"""Training, holdout and validation data for adaptation: sources, splits and checks."""

from __future__ import annotations

from onnx_netadapt.data.check import check_fits
from onnx_netadapt.data.dataset import ArrayDataset, DataSplits
from onnx_netadapt.data.sources import load_data
from onnx_netadapt.data.split import carve_holdout

__all__ = ["ArrayDataset", "DataSplits", "carve_holdout", "check_fits", "load_data"]
