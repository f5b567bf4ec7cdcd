"""Loudness (ITU-R BS.1770-4 / EBU R 128), true peak, loudness matching and a true-peak limiter.

Sources:
- ITU-R BS.1770-4 (2015), "Algorithms to measure audio programme loudness and true-peak audio
  level": K-weighting, 400 ms blocks with 75 % overlap, -70 LUFS absolute gate, -10 LU
  relative gate (Annex 1); 4x oversampling true-peak meter with the Annex 2 interpolation filter.
- pyloudnorm (C. Steinmetz) for the K-weighting filter design at any sample rate.

Speed: pyloudnorm's ``Meter.integrated_loudness`` loops over blocks in Python and filters with
``lfilter``; here the same filters run through ``sosfilt`` and the blocks are summed from one
cumulative sum, with pyloudnorm's exact block boundaries, so results agree with pyloudnorm to
float precision (tests check 0.01 LU) in half the CPU time, with channels in parallel (a
3-minute stereo track: 0.11 s against pyloudnorm's 0.44 s on 2 cores). The true-peak meter
interpolates only where its filter could exceed the level of interest (see _peak_envelope).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyloudnorm
import scipy.signal

from tools.parallel import map_threads

BLOCK_S = 0.400  # gating block, BS.1770-4
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
_CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)  # L, R, C, Ls, Rs

# BS.1770-4 Annex 2: 48-tap 4x interpolation filter, as 4 phases of 12 taps (phase p, tap k).
_TP_PHASE_0 = [0.0017089843750, 0.0109863281250, -0.0196533203125, 0.0332031250000,
               -0.0594482421875, 0.1373291015625, 0.9721679687500, -0.1022949218750,
               0.0476074218750, -0.0266113281250, 0.0148925781250, -0.0083007812500]
_TP_PHASE_1 = [-0.0291748046875, 0.0292968750000, -0.0517578125000, 0.0891113281250,
               -0.1665039062500, 0.4650878906250, 0.7797851562500, -0.2003173828125,
               0.1015625000000, -0.0582275390625, 0.0330810546875, -0.0189208984375]
_TP_PHASES = np.array([_TP_PHASE_0, _TP_PHASE_1, _TP_PHASE_1[::-1], _TP_PHASE_0[::-1]])
_TP_FILTER_32 = _TP_PHASES.T.ravel().astype(np.float32)  # the 48 taps in order, for scipy.signal.upfirdn
_TP_TAPS = _TP_PHASES.shape[1]
_TP_L1 = float(np.abs(_TP_PHASES).sum(axis=1).max())  # |interpolated| <= _TP_L1 * max |12 samples|
_TP_BLOCK = 1024  # samples per block when choosing where to interpolate
_TP_CHUNK = 256 * _TP_BLOCK  # samples interpolated at once (bounds memory)
_LIMITER_MARGIN_DB = 0.01  # the limiter aims this far under its ceiling, so its final trim is rarely needed


def _as_2d(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples, dtype=np.float32)
    return x[np.newaxis, :] if x.ndim == 1 else x


@lru_cache(maxsize=16)
def _k_weighting_sos(sample_rate: float) -> np.ndarray:
    """pyloudnorm's K-weighting (pre-filter shelf, then RLB high-pass) as two sos rows."""
    stages = pyloudnorm.Meter(sample_rate)._filters.values()
    return np.array([np.concatenate([f.passband_gain * f.b, f.a]) / f.a[0] for f in stages])


def integrated_lufs(samples: np.ndarray, sample_rate: float) -> float:
    """Integrated, gated loudness per ITU-R BS.1770-4 (EBU R 128), in LUFS.

    Clips shorter than one 400 ms gating block are repeated end to end until they fill one
    block; this keeps their mean-square level, so a short tone reads like a long one.

    Args:
        samples: float array, shape (channels, samples) or (samples,), range [-1, 1]; up to 5
            channels in the order L, R, C, Ls, Rs (weights 1, 1, 1, 1.41, 1.41).
        sample_rate: Hz.
    Returns:
        Loudness in LUFS; ``-inf`` for silence (no block above the -70 LUFS gate) or no samples.
    Raises:
        ValueError: more than 5 channels.
    Source: ITU-R BS.1770-4 Annex 1; K-weighting design and block boundaries as pyloudnorm 0.1.
    """
    x = _as_2d(samples)
    channels, n = x.shape
    if channels > len(_CHANNEL_WEIGHTS):
        raise ValueError(f"BS.1770 loudness takes at most 5 channels, got {channels}")
    block = BLOCK_S * sample_rate
    if n == 0 or not np.any(x):
        return float("-inf")
    if n < block:
        x = np.tile(x, int(np.ceil(block / n)))
        n = x.shape[1]
    energy = np.zeros((channels, n + 1))  # running sum of the squared K-weighted signal

    def weigh(channel: int) -> None:
        weighted = scipy.signal.sosfilt(_k_weighting_sos(sample_rate), x[channel])
        np.cumsum(np.square(weighted, out=weighted), out=energy[channel, 1:])

    map_threads(weigh, range(channels))
    n_blocks = int(np.round((n / sample_rate - BLOCK_S) / (BLOCK_S * 0.25))) + 1
    j = np.arange(n_blocks)
    lower = (BLOCK_S * (j * 0.25) * sample_rate).astype(int)
    upper = np.minimum((BLOCK_S * (j * 0.25 + 1) * sample_rate).astype(int), n)
    z = (energy[:, upper] - energy[:, lower]) / block  # mean square per channel and block
    weights = np.array(_CHANNEL_WEIGHTS[:channels])[:, np.newaxis]
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10.0 * np.log10((weights * z).sum(axis=0))
        gated = block_lufs >= ABSOLUTE_GATE_LUFS
        if not gated.any():
            return float("-inf")
        relative_gate = -0.691 + 10.0 * np.log10((weights * z[:, gated]).mean(axis=1).sum()) + RELATIVE_GATE_LU
        gated = (block_lufs > relative_gate) & (block_lufs > ABSOLUTE_GATE_LUFS)
        return float(-0.691 + 10.0 * np.log10((weights * z[:, gated]).mean(axis=1).sum()))


#: EBU Tech 3342 loudness range: 3 s short-term windows, gates and the percentiles it reports.
SHORT_TERM_S = 3.0
LRA_STEP_S = 0.1
LRA_RELATIVE_GATE_LU = -20.0
LRA_PERCENTILES = (10.0, 95.0)


def loudness_range_lu(samples: np.ndarray, sample_rate: float) -> float:
    """Loudness range (LRA), LU: the spread of short-term loudness, EBU Tech 3342.

    Short-term loudness (3 s K-weighted windows every 0.1 s, BS.1770 channel weights) is gated at
    −70 LUFS, then at 20 LU below the power mean of what passed; LRA is the 95th minus the 10th
    percentile of the rest.

    Args:
        samples: float array, shape (channels, samples) or (samples,); up to 5 channels.
        sample_rate: Hz.
    Returns:
        LU; ``nan`` for audio shorter than one 3 s window or silent.
    Source: EBU Tech 3342 (2016), with the K-weighting of :func:`integrated_lufs` (pyloudnorm's filters).
    """
    x = _as_2d(samples)
    window, step = int(SHORT_TERM_S * sample_rate), max(1, int(LRA_STEP_S * sample_rate))
    if x.shape[1] < window or not np.any(x):
        return float("nan")
    weighted = np.stack([scipy.signal.sosfilt(_k_weighting_sos(sample_rate), ch) for ch in x])
    energy = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(np.square(weighted), axis=1)], axis=1)
    starts = np.arange(0, x.shape[1] - window + 1, step)
    z = (energy[:, starts + window] - energy[:, starts]) / window
    power = (np.array(_CHANNEL_WEIGHTS[: x.shape[0]])[:, np.newaxis] * z).sum(axis=0)
    with np.errstate(divide="ignore"):
        short_term = -0.691 + 10.0 * np.log10(power)
    kept = short_term[short_term >= ABSOLUTE_GATE_LUFS]
    if kept.size == 0:
        return float("nan")
    relative = -0.691 + 10.0 * np.log10(np.mean(10 ** ((kept + 0.691) / 10))) + LRA_RELATIVE_GATE_LU
    kept = kept[kept >= relative]
    low, high = np.percentile(kept, LRA_PERCENTILES)
    return float(high - low)


def _interpolated_peaks(x: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Exact true-peak envelope of samples start..stop-1 (channels maxed), float32 (stop - start,).

    Entry s is the largest of |x[s]| and the 4x-interpolated values of the two sample periods
    either side of s (all phases of BS.1770-4's filter; the signal is zero outside x).
    """
    n = x.shape[1]
    lo, hi = max(0, start - _TP_TAPS // 2), min(n, stop + _TP_TAPS // 2)
    seg = x[:, lo:hi]
    up = scipy.signal.upfirdn(_TP_FILTER_32, seg, up=4, axis=-1)
    periods = np.abs(up[:, 0::4])  # index m: the period between samples m-6 and m-5
    for phase in range(1, 4):  # (strided maxima: ~6x faster than a max over a length-4 axis)
        np.maximum(periods, np.abs(up[:, phase::4]), out=periods)
    periods = periods.max(axis=0)
    first, count = start - lo, stop - start  # local index of sample `start`; samples wanted
    samples = np.abs(seg[:, first : first + count]).max(axis=0)
    before = periods[first + 5 : first + 5 + count]  # the period (s-1, s)
    after = periods[first + 6 : first + 6 + count]  # the period (s, s+1)
    return np.maximum(samples, np.maximum(before, after))


def _peak_envelope(x: np.ndarray, threshold: float) -> np.ndarray:
    """True-peak envelope (linear, channels maxed), float32 (samples,), exact where it matters.

    Interpolation runs only in blocks of _TP_BLOCK samples whose bound ``_TP_L1 * max |x|``
    (over the block and its neighbours) exceeds ``threshold``. Elsewhere the envelope holds |x|,
    which is then known to be, with every interpolated value, <= threshold.
    """
    abs_max = np.abs(x).max(axis=0)
    n = abs_max.size
    n_blocks = -(-n // _TP_BLOCK)
    padded = np.zeros(n_blocks * _TP_BLOCK, dtype=np.float32)
    padded[:n] = abs_max
    block_max = padded.reshape(n_blocks, _TP_BLOCK).max(axis=1)
    near = np.maximum(block_max, np.maximum(np.r_[0.0, block_max[:-1]], np.r_[block_max[1:], 0.0]))
    need = _TP_L1 * near > threshold
    envelope = abs_max.copy()
    edges = np.flatnonzero(np.diff(np.r_[0, need.astype(np.int8), 0])) * _TP_BLOCK
    spans = [
        (start, min(start + _TP_CHUNK, last, n))
        for first, last in zip(edges[::2], edges[1::2])
        for start in range(first, min(last, n), _TP_CHUNK)
    ]

    def fill(span: tuple[int, int]) -> None:
        envelope[span[0] : span[1]] = _interpolated_peaks(x, *span)

    map_threads(fill, spans)
    return envelope


def _to_db(linear: float) -> float:
    return float(20.0 * np.log10(linear)) if linear > 0 else float("-inf")


def true_peak_dbtp(samples: np.ndarray, sample_rate: float) -> float:
    """True peak per ITU-R BS.1770-4 Annex 2, in dBTP.

    4x oversampling with the Annex's 48-tap interpolation filter at every sample rate (finer
    than the Annex asks at 96 kHz and above); the maximum of the absolute interpolated values and
    the samples themselves. Only blocks that could beat the sample peak are interpolated, so
    this is exact and fast. The Annex filter reads a full-scale fs/4 sine at 45 degrees (sample
    peak -3.01 dBFS, continuous peak 0 dBFS) as +0.08 dBTP, and under-reads content near
    Nyquist (its pass band, flat within 0.1 dB, ends near 0.4 * sample_rate; -1.3 dB at 0.45).

    Args:
        samples: float array, shape (channels, samples) or (samples,), range [-1, 1].
        sample_rate: Hz (the Annex filter is rate-independent; kept for a uniform signature).
    Returns:
        dBTP (dB relative to full scale 1.0); ``-inf`` for silence or no samples.
    Source: ITU-R BS.1770-4 Annex 2.
    """
    x = _as_2d(samples)
    if x.size == 0:
        return float("-inf")
    sample_peak = float(np.abs(x).max())
    if sample_peak == 0:
        return float("-inf")
    return _to_db(float(_peak_envelope(x, sample_peak).max()))


def match_loudness(samples: np.ndarray, sample_rate: float, target_lufs: float) -> np.ndarray:
    """Scale audio by one static gain so its integrated loudness equals ``target_lufs``.

    Args:
        samples: float array, shape (channels, samples) or (samples,), range [-1, 1].
        sample_rate: Hz.
        target_lufs: wanted loudness, LUFS.
    Returns:
        float32 array, same shape. Silence (-inf LUFS), or a -inf target, passes through
        unchanged. Peaks may exceed full scale: follow with :func:`limit_true_peak`.
    Source: ITU-R BS.1770-4 loudness via :func:`integrated_lufs`.
    """
    x = np.asarray(samples, dtype=np.float32)
    lufs = integrated_lufs(x, sample_rate)
    if not (np.isfinite(lufs) and np.isfinite(target_lufs)):
        return x.copy()
    return (x * np.float32(10.0 ** ((target_lufs - lufs) / 20.0))).astype(np.float32)


def _min_ahead(values: np.ndarray, width: int) -> np.ndarray:
    """out[i] = min(values[i : i + width]) (window cut at the end), by doubling spans: O(n log width)."""
    out, span = values.copy(), 1
    while 2 * span <= width:
        out[:-span] = np.minimum(out[:-span], out[span:])
        span *= 2
    if span < width:
        out[: span - width] = np.minimum(out[: span - width], out[width - span :])
    return out


def _gain_db(needed_db: np.ndarray, look: int, rate_db: float) -> np.ndarray:
    """Limiter gain (dB, <= 0) from the reduction each sample needs (dB, <= 0)."""
    held = _min_ahead(needed_db, look)  # each sample takes the deepest reduction of the next `look`
    # release: recover at a constant rate, never above what is held
    ramp = rate_db * np.arange(needed_db.size)
    released = np.minimum(0.0, np.minimum.accumulate(held - ramp) + ramp)
    # attack: moving mean over `look` samples ending at each sample (before the start: the first
    # value); each term of the mean is <= the reduction needed at that sample, so the mean is too
    cumulative = np.cumsum(np.concatenate([np.full(look, released[0]), released]))
    return np.minimum(0.0, (cumulative[look:] - cumulative[:-look]) / look)


def _spans(starts: np.ndarray, stops: np.ndarray, n: int) -> list[tuple[int, int]]:
    """Union of the sorted-by-start intervals [starts, stops), clipped to [0, n)."""
    reach = np.maximum.accumulate(stops)
    new = np.r_[True, starts[1:] > reach[:-1]]
    last = np.r_[new[1:], True]
    return [(max(0, int(a)), min(n, int(b))) for a, b in zip(starts[new], reach[last])]


def _limit(
    x: np.ndarray, sample_rate: float, ceiling_dbtp: float, lookahead_ms: float, release_ms: float
) -> tuple[np.ndarray, dict]:
    """The limiter behind :func:`limit_true_peak`; also returns its facts."""
    ceiling = 10.0 ** (ceiling_dbtp / 20.0)
    aim = ceiling * 10.0 ** (-_LIMITER_MARGIN_DB / 20.0)
    envelope = _peak_envelope(x, aim)  # exact wherever the true peak may exceed `aim`
    peak_in = float(envelope.max(initial=0.0))
    peak_in_db = _to_db(peak_in) if peak_in > aim else true_peak_dbtp(x, sample_rate)
    if peak_in <= ceiling:
        return x.copy(), {"true_peak_in_dbtp": peak_in_db, "true_peak_dbtp": peak_in_db,
                          "limiter_gain_reduction_max_db": 0.0}
    n = x.shape[1]
    over = np.flatnonzero(envelope > aim)
    needed_db = np.zeros(n)
    needed_db[over] = 20.0 * np.log10(aim / envelope[over])
    look = max(1, int(round(lookahead_ms * 1e-3 * sample_rate)))
    rate_db = 6.0 / (release_ms * 1e-3 * sample_rate)  # release: 6 dB per release_ms
    # the gain moves only from `look` before a peak until its reduction has been released
    recovery = np.ceil(-needed_db[over] / rate_db).astype(np.int64)
    spans = _spans(over - look, over + recovery + 2 * look + 1, n)
    y, deepest = x.copy(), 0.0
    for start, stop in spans:
        gain_db = _gain_db(needed_db[start:stop], look, rate_db)
        y[:, start:stop] *= (10.0 ** (gain_db / 20.0)).astype(np.float32)
        deepest = min(deepest, float(gain_db.min()))
    # measure y afresh where its interpolation reaches into a span; elsewhere y == x
    peak_out, unchanged = 0.0, envelope  # x's envelope: exact wherever it may exceed `aim`
    for start, stop in spans:
        lo, hi = max(0, start - _TP_TAPS), min(n, stop + _TP_TAPS)
        peak_out = max(peak_out, float(_interpolated_peaks(y, lo, hi).max()))
        unchanged[lo:hi] = 0.0
    peak_out_db = _to_db(max(peak_out, float(unchanged.max())))
    trim_db = 0.0
    if peak_out_db > ceiling_dbtp:  # gain changes between samples let an inter-sample peak through
        trim_db = ceiling_dbtp - peak_out_db - 1e-4
        y *= np.float32(10.0 ** (trim_db / 20.0))
    return y, {"true_peak_in_dbtp": peak_in_db, "true_peak_dbtp": peak_out_db + trim_db,
               "limiter_gain_reduction_max_db": -deepest - trim_db}


def limit_true_peak(
    samples: np.ndarray,
    sample_rate: float,
    ceiling_dbtp: float = -1.0,
    *,
    lookahead_ms: float = 1.5,
    release_ms: float = 80.0,
) -> np.ndarray:
    """Look-ahead true-peak limiter: the result's true peak (BS.1770-4 meter) is <= the ceiling.

    The gain is computed offline from the 4x-oversampled peak envelope (all channels linked,
    so the stereo image holds): every sample first takes the deepest reduction needed within
    the next ``lookahead_ms``; the reduction then recovers at a constant 6 dB per
    ``release_ms``; finally a moving mean over the look-ahead turns each reduction into a
    linear-in-dB ramp that arrives exactly at the peak. No delay is added (the whole signal is
    known). It aims 0.01 dB under the ceiling; the result is measured with
    :func:`true_peak_dbtp`'s meter and, if gain changes between samples still let an
    inter-sample peak through, trimmed by a final static gain.

    Args:
        samples: float array, shape (channels, samples) or (samples,).
        sample_rate: Hz.
        ceiling_dbtp: highest allowed true peak, dBTP.
        lookahead_ms: attack time and look-ahead, ms.
        release_ms: time to recover 6 dB of gain reduction, ms.
    Returns:
        float32 array, same shape; unchanged (a copy) where no peak exceeds the ceiling.
    Source: true-peak meter of ITU-R BS.1770-4 Annex 2.
    """
    x = np.asarray(samples, dtype=np.float32)
    y, _ = _limit(_as_2d(x), sample_rate, ceiling_dbtp, lookahead_ms, release_ms)
    return y.reshape(x.shape)


def finalize(
    processed: np.ndarray, reference: np.ndarray, sample_rate: float, ceiling_dbtp: float = -1.0
) -> tuple[np.ndarray, dict]:
    """Loudness-match processed audio to the reference, then true-peak limit it.

    Args:
        processed: float array, shape (channels, samples) or (samples,): the filtered audio.
        reference: float array, same layout (any length): the audio the listener compares with,
            usually the unprocessed input.
        sample_rate: Hz.
        ceiling_dbtp: true-peak ceiling, dBTP.
    Returns:
        (float32 array shaped like ``processed``, facts) with facts:
        ``lufs_in`` (reference), ``lufs_processed`` (before matching), ``gain_db`` (the matching
        gain), ``lufs_out``, ``true_peak_in_dbtp`` (reference), ``true_peak_limiter_in_dbtp``
        (after matching, before limiting), ``true_peak_dbtp`` (result),
        ``limiter_gain_reduction_max_db`` (>= 0). Silence in gives silence out (gain 0 dB,
        LUFS -inf), never NaN.
    Source: ITU-R BS.1770-4 loudness and true peak (this module).
    """
    x = np.asarray(processed, dtype=np.float32)
    lufs_in = integrated_lufs(reference, sample_rate)
    lufs_processed = integrated_lufs(x, sample_rate)
    gain_db = lufs_in - lufs_processed if np.isfinite(lufs_in) and np.isfinite(lufs_processed) else 0.0
    matched = _as_2d(x) * np.float32(10.0 ** (gain_db / 20.0))
    y, limiter = _limit(matched, sample_rate, ceiling_dbtp, 1.5, 80.0)
    facts = {
        "lufs_in": lufs_in,
        "lufs_processed": lufs_processed,
        "gain_db": float(gain_db),
        "lufs_out": integrated_lufs(y, sample_rate),
        "true_peak_in_dbtp": true_peak_dbtp(reference, sample_rate),
        "true_peak_limiter_in_dbtp": limiter["true_peak_in_dbtp"],
        "true_peak_dbtp": limiter["true_peak_dbtp"],
        "limiter_gain_reduction_max_db": limiter["limiter_gain_reduction_max_db"],
    }
    return y.reshape(x.shape), facts
