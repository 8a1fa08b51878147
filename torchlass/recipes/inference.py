"""Check a device name before anything is loaded.

[`resolve_device`][torchlass.recipes.inference.resolve_device] turns a device name into a
``torch.device`` this machine has, or fails in one line. Loading a separator and its encoder is
[`torchlass.inference.load_separator`][torchlass.inference.load_separator].
"""

from __future__ import annotations

import torch

from torchlass.errors import ValueRangeError

__all__ = ["resolve_device"]

_DEVICE_TYPES = ("cpu", "cuda", "mps")


def resolve_device(device: str | torch.device, *, fn: str = "resolve_device",
                   name: str = "device") -> torch.device:
    """Parse a device name and check that this machine has that device.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` (or a ``torch.device``).
        fn: the function the message names (``""``: none, for a command-line option).
        name: the argument (or option) the message names.

    Returns:
        The ``torch.device``.

    Raises:
        ValueRangeError: for a name torch does not parse, a device type torchlass does not
            run on, CUDA (or MPS) absent on this machine, or a CUDA index past the last GPU.

    Examples:
        >>> resolve_device("cpu")
        device(type='cpu')
        >>> resolve_device("gpu")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        torchlass.errors.ValueRangeError: resolve_device(): argument 'device' ... got 'gpu'
    """
    where = f"{fn}(): argument '{name}'" if fn else name  # fn="": a command-line option
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        parsed = None
    if parsed is None or parsed.type not in _DEVICE_TYPES:
        raise ValueRangeError(f"{where} expected cpu, cuda, cuda:N or mps, got {str(device)!r}")
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueRangeError(f"{where} is {str(device)!r} but CUDA is not available on "
                                  f"this machine (torch {torch.__version__}); use cpu")
        if parsed.index is not None and parsed.index >= count:
            raise ValueRangeError(f"{where} is {str(device)!r} but this machine has {count} "
                                  f"CUDA device(s): cuda:0 to cuda:{count - 1}")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueRangeError(f"{where} is {str(device)!r} but MPS is not available on this "
                              "machine; use cpu")
    return parsed
