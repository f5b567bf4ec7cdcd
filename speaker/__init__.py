"""SENSE home speaker: one room's live DSP state and the stream that plays through it.

- :mod:`speaker.room`: :class:`~speaker.room.RoomState` (filters, device curve, volume under a hard
  ceiling, speaker model, now playing) and :class:`~speaker.room.RoomStore`, its crash-safe SQLite
  home with a multi-level undo stack and a per-room log of everything done and why.
- :mod:`speaker.stream`: sources (sound files, raw PCM on a pipe, arrays), sinks (WAV file, raw PCM
  pipe/FIFO such as Snapcast's, ``aplay``) and :class:`~speaker.stream.Player`, which runs
  :class:`tools.live.LiveFilter` between them and takes new room states from another thread.
"""
