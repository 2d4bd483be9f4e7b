"""Stand-in for torch.utils.tensorboard (it needs the `tensorboard` package,
which Debian does not ship). Loaded by sitecustomize.py in this folder.

FedScale's aggregator creates one SummaryWriter(log_dir=...) and, after each
round, calls add_scalar (loss, clock, accuracy) and add_histogram (client
durations): TensorBoard event-file logging only, never read back. The stub
accepts exactly those calls, counts them and writes nothing; at exit it
prints the counts to stderr. Any other attribute raises StubUsedError.
"""
import atexit
import collections
import sys

from _poison import StubUsedError, poison_getattr

__getattr__ = poison_getattr("torch.utils.tensorboard")

_calls = collections.Counter()


@atexit.register
def _report():
    if _calls:
        counts = ", ".join(f"{k} x{v}" for k, v in sorted(_calls.items()))
        print(f"[fedscale-ref stub] torch.utils.tensorboard calls discarded: {counts}", file=sys.stderr)


class SummaryWriter:
    def __init__(self, log_dir=None, *args, **kwargs):
        _calls["SummaryWriter()"] += 1

    def add_scalar(self, *args, **kwargs):
        _calls["add_scalar"] += 1

    def add_histogram(self, *args, **kwargs):
        _calls["add_histogram"] += 1

    def close(self):
        _calls["close"] += 1

    def flush(self):
        _calls["flush"] += 1

    def __getattr__(self, name):
        raise StubUsedError(f"stub SummaryWriter: method {name!r} was used")
