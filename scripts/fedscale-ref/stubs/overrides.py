"""Stub for the `overrides` package (not packaged by Debian).

fedscale/cloud/execution/torch_client.py (the torch path: it IS used) and
tensorflow_client.py decorate methods with @overrides. The real decorator
only checks, at class-definition time, that the method overrides one in a
base class, marks it (__override__ = True) and returns the same function;
it does nothing when the method is called. This stub does the same minus
the check, so the run's behaviour is unchanged.
"""


def overrides(method=None, *args, **kwargs):
    if method is None or not callable(method):
        # @overrides(check_signature=...) form
        return overrides
    method.__override__ = True
    return method
