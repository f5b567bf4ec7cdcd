"""Live filtering: the file path's total EQ response, applied to an endless stream in blocks.

:func:`total_fir` turns a room's filter (the biquad cascade of :mod:`tools.eq`, optionally followed by a
device-transfer FIR from :mod:`tools.transfer`) into one FIR with the same response. :class:`LiveFilter`
runs that FIR on a stream: uniformly partitioned overlap-save convolution (the FIR is cut into
``block_size``-tap partitions, each transformed once; every input block is transformed once into a
frequency-domain delay line, and one output block is the inverse FFT of the sum over partitions of
``input spectrum (p blocks ago) x partition p``). Filter changes crossfade, volume changes ramp, and the
gain never exceeds a ceiling, so a voice command never clicks or blasts.

Source: W. G. Gardner, "Efficient convolution without input-output delay", JAES 43(3), 1995, and
F. Wefers, "Partitioned convolution algorithms for real-time auralization", 2015, ch. 5 (uniformly
partitioned overlap-save with a frequency-domain delay line); FFTs by scipy.fft.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
import scipy.signal

from tools.eq import Filter, design_sos, frequency_response_db

DEFAULT_BLOCK_SIZE = 1024
"""Samples per channel of one internal block (21 ms at 48 kHz): the stream's latency and FFT half-size."""
DEFAULT_FADE_S = 0.05
"""Raised-cosine crossfade time of a filter change, seconds."""
DEFAULT_RAMP_S = 0.05
"""Raised-cosine ramp time of a volume change, seconds."""
MAX_TOTAL_TAPS = 65536
"""Longest biquad impulse response :func:`total_fir` grows to (1.4 s at 48 kHz)."""
FIR_TOLERANCE_DB = 0.02
""":func:`total_fir` lengthens the biquads' impulse response until it matches their response this closely."""
_CHECK_GRID_HZ = np.geomspace(20.0, 20000.0, 400)


def _min_taps(sample_rate: float) -> int:
    """2**k >= sample_rate / 6: resolves ~6 Hz (8192 taps at 44.1/48 kHz), as tools.transfer does."""
    return 2 ** int(math.ceil(math.log2(sample_rate / 6.0)))


def _impulse_response(sos: np.ndarray, n_taps: int) -> np.ndarray:
    """The cascade's first ``n_taps`` impulse-response samples, the last 1/16 faded out (half Hann)."""
    impulse = np.zeros(n_taps)
    impulse[0] = 1.0
    h = scipy.signal.sosfilt(sos, impulse)
    fade = max(n_taps // 16, 1)
    h[-fade:] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(1, fade + 1) / fade)
    return h


def _fir_error_db(h: np.ndarray, filters: list[Filter], sample_rate: float) -> float:
    """Largest |FIR response - cascade response|, dB, 20 Hz-20 kHz (below Nyquist)."""
    grid = _CHECK_GRID_HZ[_CHECK_GRID_HZ < 0.95 * sample_rate / 2]
    _, resp = scipy.signal.freqz(h, worN=grid, fs=sample_rate)
    got = 20.0 * np.log10(np.maximum(np.abs(resp), 1e-30))
    return float(np.max(np.abs(got - frequency_response_db(filters, grid, sample_rate))))


def total_fir(filters: list[Filter], sample_rate: float, fir: np.ndarray | None = None,
              n_taps: int | None = None) -> np.ndarray:
    """One FIR with the total response the file path computes: the EQ biquads, then the device transfer.

    The biquads' impulse response (scipy.signal.sosfilt of a unit impulse through
    :func:`tools.eq.design_sos`), truncated with a half-Hann fade over its last 1/16, convolved with
    ``fir``. By default its length starts at 2**k >= sample_rate / 6 (8192 at 48 kHz) and doubles, up to
    :data:`MAX_TOTAL_TAPS`, until its magnitude is within :data:`FIR_TOLERANCE_DB` of
    :func:`tools.eq.frequency_response_db` over 20 Hz-20 kHz (narrow boosts at low frequencies ring long:
    a +12 dB, Q 4.31 peak at 40 Hz needs 32768 taps at 48 kHz). Minimum phase, as the biquads are.

    Args:
        filters: the EQ bands, applied in order (bands at or above Nyquist are left out, as design_sos does).
        sample_rate: Hz.
        fir: a device-transfer FIR, float array (taps,) (e.g. tools.transfer.minimum_phase_fir), or None.
        n_taps: biquad impulse-response length (fixed, no growing), or None for the automatic length.
    Returns:
        float64 array (taps,): ``len(biquad response) + len(fir) - 1`` taps; just ``fir`` (or ``[1.0]``)
        when no band is below Nyquist.
    Raises:
        ValueError: ``n_taps`` < 16, or ``fir`` not 1-D, empty or non-finite.
    """
    extra = np.ones(1) if fir is None else np.asarray(fir, dtype=np.float64)
    if extra.ndim != 1 or extra.size == 0 or not np.isfinite(extra).all():
        raise ValueError(f"fir must be a non-empty, finite 1-D array, got shape {extra.shape}")
    if n_taps is not None and n_taps < 16:
        raise ValueError(f"n_taps must be >= 16, got {n_taps}")
    sos = design_sos(filters, sample_rate)
    if len(sos) == 0:
        return extra.copy()
    length = n_taps or _min_taps(sample_rate)
    h = _impulse_response(sos, length)
    while n_taps is None and length < MAX_TOTAL_TAPS and _fir_error_db(h, filters, sample_rate) > FIR_TOLERANCE_DB:
        length *= 2
        h = _impulse_response(sos, length)
    return h if fir is None else scipy.signal.fftconvolve(h, extra)


def _raised_cosine(start: int, count: int, length: int) -> np.ndarray:
    """Weights 0 -> 1 of a raised-cosine fade ``length`` samples long, at positions start+1 .. start+count."""
    t = np.minimum(np.arange(start + 1, start + count + 1), length) / max(length, 1)
    return 0.5 - 0.5 * np.cos(np.pi * t)


class LiveFilter:
    """Streaming FIR filter for live audio: partitioned FFT convolution, crossfaded filter changes,
    ramped volume under a hard ceiling.

    Any caller block length works (internal buffering). ``process`` returns as many samples as it is
    given: the filtered stream delayed by :attr:`latency` (= ``block_size``) samples, the first
    ``latency`` outputs being silence. :meth:`flush` returns the last ``latency`` samples of the filtered
    input; so ``concatenate(outputs + [flush()])[:, latency:]`` has exactly the input's length and equals
    the first ``len(input)`` samples of the full convolution (the decaying tail past the end is dropped,
    as tools.transfer.apply_fir does), times the volume.

    Example (48 kHz stereo, a room's EQ)::

        live = LiveFilter(total_fir(filters, 48000), 48000, channels=2)
        out = live.process(block)          # float32 (2, n) in, float32 (2, n) out
        live.set_filter(total_fir(new_filters, 48000))   # 50 ms crossfade
        applied = live.set_volume(-6.0)                  # 50 ms ramp; returns the applied gain (dB)
    """

    def __init__(self, fir: np.ndarray, sample_rate: float, channels: int = 2, *,
                 block_size: int = DEFAULT_BLOCK_SIZE, fade_s: float = DEFAULT_FADE_S,
                 ramp_s: float = DEFAULT_RAMP_S, gain_db: float = 0.0, ceiling_db: float = 0.0,
                 clip: bool = True, max_taps: int = 2 * MAX_TOTAL_TAPS) -> None:
        """Set up the stream.

        Args:
            fir: the filter, float array (taps,) (e.g. :func:`total_fir`).
            sample_rate: Hz (converts fade and ramp times to samples).
            channels: channels of every block; all are filtered by the same FIR.
            block_size: internal block, samples (latency; FFT size is twice this); a power of two is fastest.
            fade_s: default crossfade time of :meth:`set_filter`, seconds (0: switch at once).
            ramp_s: default ramp time of :meth:`set_volume`, seconds.
            gain_db: starting volume, dB (clipped to ``ceiling_db``).
            ceiling_db: the largest volume gain :meth:`set_volume` ever applies, dB.
            clip: clip the output to [-1, 1] (a safety net after boosts; False keeps the exact convolution).
            max_taps: longest FIR :meth:`set_filter` accepts (sets the delay line's size).
        Raises:
            ValueError: bad fir, channels < 1, block_size < 16, negative times, NaN gain_db.
        """
        if channels < 1 or block_size < 16 or fade_s < 0 or ramp_s < 0 or sample_rate <= 0 or math.isnan(gain_db):
            raise ValueError("need channels >= 1, block_size >= 16, sample_rate > 0, fade/ramp times >= 0, gain_db")
        self.sample_rate, self.channels, self.block_size = float(sample_rate), int(channels), int(block_size)
        self.fade_s, self.ramp_s, self.ceiling_db, self.clip = float(fade_s), float(ramp_s), float(ceiling_db), clip
        fir = np.asarray(fir, dtype=np.float64)
        self.max_taps = max(int(max_taps), fir.size)
        self._slots = -(-self.max_taps // self.block_size)  # partitions the delay line holds
        self._H = self._partition(fir)
        self._H_old: np.ndarray | None = None
        self._fade_pos = self._fade_len = 0
        self._gain = self._gain_from = self._gain_to = self._db_to_linear(min(gain_db, ceiling_db))
        self._gain_db = min(float(gain_db), self.ceiling_db)
        self._ramp_pos = self._ramp_len = 0
        self._reset_stream()

    @property
    def latency(self) -> int:
        """Delay of the output behind the input, samples (= block_size)."""
        return self.block_size

    @property
    def gain_db(self) -> float:
        """The volume the ramp is heading to (or holds), dB (``-inf`` for silence)."""
        return self._gain_db

    def _reset_stream(self) -> None:
        c, b = self.channels, self.block_size
        self._fdl = np.zeros((c, self._slots, b + 1), dtype=np.complex128)  # input spectra, ring buffer
        self._head = 0
        self._prev = np.zeros((c, b))
        self._pending = np.zeros((c, 0))
        self._ready = np.zeros((c, b))  # the latency: one block of silence

    def _partition(self, fir: np.ndarray) -> np.ndarray:
        """FIR (taps,) -> its partitions' spectra, complex (P, block_size + 1), each zero-padded to 2 blocks."""
        fir = np.asarray(fir, dtype=np.float64)
        if fir.ndim != 1 or fir.size == 0 or not np.isfinite(fir).all():
            raise ValueError(f"fir must be a non-empty, finite 1-D array, got shape {fir.shape}")
        if fir.size > self.max_taps:
            raise ValueError(f"fir has {fir.size} taps; this LiveFilter holds at most {self.max_taps} (max_taps)")
        b = self.block_size
        parts = -(-fir.size // b)
        padded = np.zeros((parts, 2 * b))
        padded[:, :b] = np.pad(fir, (0, parts * b - fir.size)).reshape(parts, b)
        return scipy.fft.rfft(padded, axis=-1)

    @staticmethod
    def _db_to_linear(gain_db: float) -> float:
        return 0.0 if gain_db == -math.inf else 10.0 ** (gain_db / 20.0)

    def set_filter(self, fir: np.ndarray, fade_s: float | None = None) -> None:
        """Change the filter with a raised-cosine crossfade (both filters run during it; no click).

        The fade starts with the next internal block, i.e. it is heard ``latency`` samples or less after
        the samples already passed to :meth:`process`. A change during a fade starts a new fade from the
        mix playing at that moment (the two running filters, summed with the fade's current weights).

        Args:
            fir: the new filter, float array (taps,), at most ``max_taps`` taps.
            fade_s: crossfade time, seconds (None: the constructor's ``fade_s``; 0: switch at once).
        Raises:
            ValueError: bad or too long fir, negative fade time.
        """
        new = self._partition(fir)
        length = round((self.fade_s if fade_s is None else fade_s) * self.sample_rate)
        if length < 0:
            raise ValueError("fade_s must be >= 0")
        if length == 0:
            self._H, self._H_old, self._fade_len = new, None, 0
            return
        if self._H_old is not None:  # freeze the mix now playing as the fade's start
            w = float(_raised_cosine(self._fade_pos - 1, 1, self._fade_len)[0]) if self._fade_pos else 0.0
            self._H = self._mix(self._H_old, self._H, w)
        self._H_old, self._H, self._fade_pos, self._fade_len = self._H, new, 0, length

    @staticmethod
    def _mix(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
        """(1 - w) a + w b for partition spectra of possibly different counts."""
        n = max(len(a), len(b))
        out = np.zeros((n, a.shape[1]), dtype=np.complex128)
        out[: len(a)] += (1.0 - w) * a
        out[: len(b)] += w * b
        return out

    def set_volume(self, gain_db: float, ramp_s: float | None = None) -> float:
        """Ramp the volume to ``gain_db`` (raised cosine in linear gain), never above the ceiling.

        Takes effect from the next sample :meth:`process` returns; a change during a ramp starts from the
        gain reached.

        Args:
            gain_db: the wanted volume, dB (``-inf``: silence); values above ``ceiling_db`` are clipped to it.
            ramp_s: ramp time, seconds (None: the constructor's ``ramp_s``).
        Returns:
            The gain applied, dB: ``min(gain_db, ceiling_db)``.
        Raises:
            ValueError: gain_db is NaN or ramp_s negative.
        """
        if math.isnan(gain_db) or (ramp_s is not None and ramp_s < 0):
            raise ValueError("gain_db must not be NaN and ramp_s must be >= 0")
        self._gain_db = min(float(gain_db), self.ceiling_db)
        self._gain_from, self._gain_to = self._gain, self._db_to_linear(self._gain_db)
        self._ramp_len = round((self.ramp_s if ramp_s is None else ramp_s) * self.sample_rate)
        self._ramp_pos = 0
        return self._gain_db

    def _gains(self, n: int) -> np.ndarray | float:
        """Per-sample linear gains for the next ``n`` output samples (a float when steady)."""
        if self._ramp_pos >= self._ramp_len:
            self._gain = self._gain_to
            return self._gain
        if n == 0:
            return self._gain
        w = _raised_cosine(self._ramp_pos, n, self._ramp_len)
        self._ramp_pos += n
        gains = self._gain_from + (self._gain_to - self._gain_from) * w
        self._gain = float(gains[-1])
        return gains

    def _convolve(self, spectra: np.ndarray) -> np.ndarray:
        """One output block (channels, block_size) of the FIR given by its partition spectra."""
        idx = (self._head - np.arange(len(spectra))) % self._slots
        acc = np.einsum("cpf,pf->cf", self._fdl[:, idx], spectra)
        return scipy.fft.irfft(acc, n=2 * self.block_size, axis=-1)[:, self.block_size:]

    def _run_block(self, x: np.ndarray) -> np.ndarray:
        """Filter one internal block, float64 (channels, block_size) -> same."""
        self._head = (self._head + 1) % self._slots
        self._fdl[:, self._head] = scipy.fft.rfft(np.concatenate([self._prev, x], axis=1), axis=-1)
        self._prev = x
        y = self._convolve(self._H)
        if self._H_old is not None:
            w = _raised_cosine(self._fade_pos, self.block_size, self._fade_len)
            y = self._convolve(self._H_old) * (1.0 - w) + y * w
            self._fade_pos += self.block_size
            if self._fade_pos >= self._fade_len:
                self._H_old = None
        return y

    def _take(self, n: int) -> np.ndarray:
        """The next ``n`` ready output samples with the volume applied (and clipped), float32."""
        out, self._ready = self._ready[:, :n], self._ready[:, n:]
        out = out * self._gains(n)
        if self.clip:
            out = np.clip(out, -1.0, 1.0)
        return out.astype(np.float32)

    def process(self, block: np.ndarray) -> np.ndarray:
        """Filter the next samples of the stream.

        Args:
            block: float array, shape (channels, n), any n >= 0 (range [-1, 1] for live audio).
        Returns:
            float32 array (channels, n): the filtered stream ``latency`` samples behind the input, times
            the volume, clipped to [-1, 1] unless ``clip`` is False.
        Raises:
            ValueError: wrong shape (not 2-D or another channel count).
        """
        x = np.asarray(block, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != self.channels:
            raise ValueError(f"block must have shape ({self.channels}, samples), got {x.shape}")
        pending = np.concatenate([self._pending, x], axis=1)
        whole = pending.shape[1] // self.block_size * self.block_size
        if whole:
            outs = [self._run_block(pending[:, i:i + self.block_size]) for i in range(0, whole, self.block_size)]
            self._ready = np.concatenate([self._ready, *outs], axis=1)
        self._pending = pending[:, whole:]
        return self._take(x.shape[1])

    def flush(self) -> np.ndarray:
        """End the stream: the last ``latency`` filtered samples (input zero-padded), then a fresh stream.

        Returns:
            float32 array (channels, latency). The filter, volume and ceiling are kept; the delay line,
            buffers and any crossfade in progress (completed at once) are reset.
        """
        b = self.block_size
        if self._ready.shape[1] < b:
            padded = np.pad(self._pending, ((0, 0), (0, b - self._pending.shape[1])))
            self._ready = np.concatenate([self._ready, self._run_block(padded)], axis=1)
        out = self._take(b)
        self._H_old = None
        self._reset_stream()
        return out
