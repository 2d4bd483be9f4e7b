"""Stub for wandb (Weights & Biases; not installable here).

FedScale's aggregator.py and executor.py import it at the top, but only
use it when --wandb_token is non-empty (it is empty in this job). Any use
raises StubUsedError.
"""
from _poison import poison_getattr

__getattr__ = poison_getattr("wandb")
