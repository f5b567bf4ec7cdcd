"""The speaker service's control API: a small HTTP/JSON app, bound to 127.0.0.1 by ``sense speaker``.

Endpoints (``ROOM`` is a room the service runs):

- ``GET  /rooms`` -> ``{"rooms": [...]}``
- ``GET  /rooms/ROOM`` -> status: settings, playing, now playing, undo depth, the total curve (dB on a log grid)
- ``POST /rooms/ROOM/request`` ``{"text": "less boomy"}`` -> the reply (what a voice front end would say)
- ``POST /rooms/ROOM/undo`` -> the reply
- ``POST /rooms/ROOM/volume`` ``{"volume_db": -15}`` -> the reply (capped at the ceiling, and says so)
- ``GET  /rooms/ROOM/history?n=20`` -> the room's log, newest first
- ``GET  /rooms/ROOM/camilladsp`` -> the room's filter as a CamillaDSP YAML config (text)

No authentication: it listens on the loopback interface only (anyone who can reach it can change the
room's sound, within the volume ceiling).
"""

from __future__ import annotations

import numpy as np
from fastapi import FastAPI, HTTPException
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from knowledge.fr_store import FR_GRID_HZ
from speaker.room import RoomState
from speaker.service import Room, RoomReply
from tools.export import combined_response_db

MAX_REQUEST_CHARS = 500


class RequestBody(BaseModel):
    """A request in words (typed or transcribed)."""

    text: str = Field(min_length=1, max_length=MAX_REQUEST_CHARS)


class VolumeBody(BaseModel):
    """A volume to set, dB (capped at the room's ceiling)."""

    volume_db: float = Field(ge=-200.0, le=200.0)


def room_curve(state: RoomState, sample_rate: float = 48000.0) -> dict[str, list[float]]:
    """The room's total filter response: EQ bands then device curve, dB on FR_GRID_HZ (481 points)."""
    graphic = None
    if state.fir_db is not None:
        graphic = (np.asarray(state.fir_db.frequency_hz), np.asarray(state.fir_db.gain_db))
    db = combined_response_db(state.filters, graphic, FR_GRID_HZ, sample_rate)
    return {"frequency_hz": [round(float(f), 2) for f in FR_GRID_HZ], "gain_db": [round(float(g), 3) for g in db]}


def reply_json(reply: RoomReply) -> dict:
    """A :class:`RoomReply` as JSON-ready data (the state's settings, no timestamps)."""
    return {"text": reply.text, "action": reply.action, "changed": reply.changed, "details": reply.details,
            "timings_s": {k: round(v, 4) for k, v in reply.timings_s.items()}, "state": reply.state.settings()}


def status_json(room: Room) -> dict:
    """What ``GET /rooms/ROOM`` returns."""
    state = room.state
    return {"room": room.name, "playing": room.playing, "now_playing": state.now_playing,
            "settings": state.settings(), "undo_depth": room.store.undo_depth(room.name),
            "curve": room_curve(state, room.sample_rate)}


def create_app(rooms: dict[str, Room]) -> FastAPI:
    """The control API over ``rooms`` (name -> :class:`Room`)."""
    app = FastAPI(title="SENSE speaker", description=__doc__)

    def get(name: str) -> Room:
        if name not in rooms:
            raise HTTPException(404, f"no room {name!r}; rooms: {', '.join(sorted(rooms))}")
        return rooms[name]

    @app.get("/rooms")
    def list_rooms() -> dict:
        return {"rooms": sorted(rooms)}

    @app.get("/rooms/{name}")
    def status(name: str) -> dict:
        return status_json(get(name))

    @app.post("/rooms/{name}/request")
    def request(name: str, body: RequestBody) -> dict:
        return reply_json(get(name).handle(body.text))

    @app.post("/rooms/{name}/undo")
    def undo(name: str) -> dict:
        return reply_json(get(name).handle("undo"))

    @app.post("/rooms/{name}/volume")
    def volume(name: str, body: VolumeBody) -> dict:
        return reply_json(get(name).set_volume(body.volume_db, "volume (API)"))

    @app.get("/rooms/{name}/history")
    def history(name: str, n: int = 20) -> dict:
        room = get(name)
        rows = room.store.history(room.name, max(1, min(n, 500)))
        return {"history": [{"at": r.at.isoformat(), "action": r.action, "reason": r.reason} for r in rows]}

    @app.get("/rooms/{name}/camilladsp", response_class=PlainTextResponse)
    def camilladsp(name: str) -> str:
        from speaker.export import room_config
        from tools.camilladsp import config_yaml

        room = get(name)
        return config_yaml(room_config(room.state, room.sample_rate))

    return app
