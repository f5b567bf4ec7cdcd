"""Import demucs's HTDemucs code without torchaudio.

`demucs` (4.0.1) imports `openunmix.filtering.wiener`, and `openunmix/__init__.py` imports
torchaudio, which has no wheel for torch 2.13.0. `filtering.py` itself needs only torch, so it is
loaded on its own as `openunmix.filtering` before demucs is imported. Audio I/O stays with the
project's own `tools.audio_io` (demucs.audio needs torchaudio and is never imported).
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from tools.errors import SenseError


class DemucsUnavailable(SenseError, RuntimeError):
    """demucs or openunmix is not installed (scripts/setup.sh installs both with --no-deps)."""


def load_demucs():
    """Return the `demucs` package, ready for `demucs.htdemucs`, `demucs.apply`, `demucs.pretrained`.

    Raises: DemucsUnavailable if demucs or openunmix is not installed.
    """
    if "openunmix.filtering" not in sys.modules:
        spec = importlib.util.find_spec("openunmix")
        if spec is None or spec.origin is None:
            raise DemucsUnavailable("openunmix is not installed: run `pip install --no-deps openunmix==1.3.0`")
        path = Path(spec.origin).with_name("filtering.py")
        fspec = importlib.util.spec_from_file_location("openunmix.filtering", path)
        module = importlib.util.module_from_spec(fspec)
        sys.modules["openunmix.filtering"] = module
        fspec.loader.exec_module(module)
    try:
        import demucs
        import demucs.apply  # noqa: F401  (imports htdemucs, hdemucs)
    except ImportError as exc:
        raise DemucsUnavailable(f"demucs is not usable ({exc}): run `pip install --no-deps demucs==4.0.1`") from exc
    return demucs
