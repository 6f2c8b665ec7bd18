"""libspandsp's DTMF generator (``dtmf_tx``) through ctypes: a second, independent implementation
of Q.23 signalling to hold our receiver to (Debian's libspandsp2, 0.0.6).

spandsp's conventions, measured with an FFT by ``test_spandsp_dtmf.py`` rather than taken on
trust: ``dtmf_tx_set_level(s, level, twist)`` puts the low-group tone at ``level`` dBm0 and the
high-group tone at ``level + twist`` (positive twist: high group louder); ``dtmf_tx_set_timing``
takes the tone and the pause after it in ms; the output starts with the first tone.
"""

from __future__ import annotations

import ctypes

import numpy as np
import numpy.typing as npt

from tests.support.tools import require_library

LIBRARY = "libspandsp.so.2"
PACKAGE = "libspandsp2"
_BLOCK = 160


class SpandspDtmf:
    """The few ``dtmf_tx`` calls a test needs, with their C signatures declared."""

    def __init__(self, library: ctypes.CDLL) -> None:
        self._lib = library
        state = ctypes.c_void_p
        # 0.0.6: dtmf_tx_init(state, callback, user_data); NULL state makes spandsp allocate it.
        library.dtmf_tx_init.argtypes = [state, ctypes.c_void_p, ctypes.c_void_p]
        library.dtmf_tx_init.restype = state
        library.dtmf_tx_set_level.argtypes = [state, ctypes.c_int, ctypes.c_int]
        library.dtmf_tx_set_level.restype = None
        library.dtmf_tx_set_timing.argtypes = [state, ctypes.c_int, ctypes.c_int]
        library.dtmf_tx_set_timing.restype = None
        library.dtmf_tx_put.argtypes = [state, ctypes.c_char_p, ctypes.c_int]
        library.dtmf_tx_put.restype = ctypes.c_size_t  # digits that did not fit in its queue
        library.dtmf_tx.argtypes = [state, ctypes.POINTER(ctypes.c_int16), ctypes.c_int]
        library.dtmf_tx.restype = ctypes.c_int
        library.dtmf_tx_free.argtypes = [state]
        library.dtmf_tx_free.restype = ctypes.c_int

    def generate(
        self, digits: str, *, level_dbm0: int, twist_db: int, on_ms: int, off_ms: int
    ) -> npt.NDArray[np.int16]:
        """8 kHz 16-bit samples of `digits`, each `on_ms` of tone then `off_ms` of silence."""
        lib = self._lib
        state = lib.dtmf_tx_init(None, None, None)
        if not state:
            raise RuntimeError("dtmf_tx_init failed")
        try:
            lib.dtmf_tx_set_level(state, level_dbm0, twist_db)
            lib.dtmf_tx_set_timing(state, on_ms, off_ms)
            left = lib.dtmf_tx_put(state, digits.encode("ascii"), len(digits))
            if left:
                raise ValueError(f"spandsp queued only {len(digits) - left} of {digits!r}")
            buffer = (ctypes.c_int16 * _BLOCK)()
            blocks = []
            while (count := lib.dtmf_tx(state, buffer, _BLOCK)) > 0:
                blocks.append(np.array(buffer[:count], dtype=np.int16))
        finally:
            lib.dtmf_tx_free(state)
        return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int16)


def require_spandsp() -> SpandspDtmf:
    """libspandsp's generator, or a skip (a failure under SWITCHBOARD_REQUIRE_TOOLS=1)."""
    return SpandspDtmf(require_library(LIBRARY, PACKAGE))
