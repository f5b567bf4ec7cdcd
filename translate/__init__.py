"""Translation reports: how tracks sound through many devices (``sense translate``).

- :mod:`translate.devices` — every headphone and loudspeaker model, with the product's transfer curves;
- :mod:`translate.render` — one track × one device → :class:`translate.render.RenderResult`
  (octave-band balance, LUFS, true peak);
- :mod:`translate.cluster` — the renders serially or on a Dask cluster (same results, same order);
- :mod:`translate.report` — CSV and an HTML grid of band-balance plots;
- :mod:`translate.cli` — the ``sense translate`` command; :mod:`translate.bench` — the full run
  (serial vs 1 and 2 workers), ``python -m translate.bench``.
"""
