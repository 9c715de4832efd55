"""Reading torch checkpoints with ``weights_only=True``: a pickle that needs code is refused, never run."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from ..errors import UnknownModelError, UnsafeModelFileError

__all__ = ["load_torch_weights"]


def load_torch_weights(torch: Any, path: Path) -> Any:
    """``torch.load`` restricted to tensors and plain containers, with modeldeck's errors.

    torch's own message for a refused pickle suggests ``weights_only=False``, which would run the
    file's code; only the line naming what the file wanted to run is passed on.
    """
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [line.strip() for line in str(exc).splitlines()]
        reason = next((line for line in lines if "GLOBAL" in line or "global" in line.lower()), "")
        raise UnsafeModelFileError(
            f"{str(path)!r} needs code to load (it is a pickle of more than tensors), so it was refused"
            + (f": {reason}" if reason else ""),
            hint="save only the weights: torch.save(model.state_dict(), 'model.pth')",
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise UnknownModelError(
            f"{str(path)!r} is not a readable torch checkpoint ({type(exc).__name__}: {exc})",
            hint="save the weights with torch.save(model.state_dict(), path)",
        ) from None
