"""SENSE's voice front end: wake word, end-of-speech detection, speech-to-text and spoken answers.

Model-level pieces: :mod:`voice.models` (where the models are; Whisper assembly), :mod:`voice.asr`
(faster-whisper), :mod:`voice.wake` (pymicro-wakeword), :mod:`voice.vad` (Silero VAD endpointing),
:mod:`voice.tts` (Piper or espeak-ng), :mod:`voice.audio` (sample format helpers). Everything runs
offline; no module downloads anything.
"""
