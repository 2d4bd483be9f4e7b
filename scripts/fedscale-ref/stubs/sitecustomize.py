"""Loaded by Python at start-up because this folder is first on PYTHONPATH.

It serves torch.utils.tensorboard from _torch_utils_tensorboard.py: that
module lives inside the installed torch package, so a plain stub file on
PYTHONPATH cannot shadow it, and the real one needs the `tensorboard`
package (not in Debian). Nothing is imported until FedScale asks for it.

This replaces Debian's /etc/python3.11/sitecustomize.py, which only
installs the apport crash hook (apport is not installed here).
"""
import importlib.abc
import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_TARGET = "torch.utils.tensorboard"


class _TensorboardStubFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname != _TARGET:
            return None
        return importlib.util.spec_from_file_location(
            fullname, os.path.join(_HERE, "_torch_utils_tensorboard.py")
        )


sys.meta_path.insert(0, _TensorboardStubFinder())
