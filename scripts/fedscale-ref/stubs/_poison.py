"""Shared helper of the stub modules: a module-level __getattr__ that fails.

Any attribute of a stub module that the stub does not define raises
StubUsedError, so a run that finishes proves FedScale never touched it.
Dunder names raise AttributeError, as the import machinery expects.
"""


class StubUsedError(RuntimeError):
    """Raised when FedScale uses something a stub only pretends to provide."""


def poison_getattr(module_name):
    def __getattr__(name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        raise StubUsedError(
            f"stub module {module_name!r}: attribute {name!r} was used; "
            f"the stub assumed FedScale's torch/CPU path never touches it"
        )

    return __getattr__
