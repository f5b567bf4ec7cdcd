"""SENSE in the browser: the Gradio web UI, one module per job.

- :mod:`webui.session`: browser sessions, their folders and expiry, upload checks;
- :mod:`webui.results`: running a turn through the conversation engine and showing its outcome;
- :mod:`webui.chat`: :class:`~webui.chat.SenseApp`, the event handlers;
- :mod:`webui.layout`: the Blocks page, its events and look;
- :mod:`webui.server`: runtime loading, login and launching the server;
- :mod:`webui.bench`: the send → playable benchmark;
- :mod:`webui.loadtest`: many sessions at once, timed, then isolation and file-route attack checks.

``app.py`` at the project root is the command (``python app.py --help``).
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline-first: no telemetry (before gradio is imported)
