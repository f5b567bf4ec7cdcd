"""Run the track x device renders serially or on a Dask cluster (dask.distributed).

By default an embedded ``LocalCluster`` (worker processes on this machine, one thread each) is
started and stopped around the run; ``address`` connects to a running scheduler instead
(``dask scheduler`` + ``dask worker``; the workers need this project installed and the data folder
at the same path). Each track is sent to the workers once (``Client.scatter``); every worker loads
the device catalogue once (:class:`WarmCatalogue` plugin, then the per-process cache of
:func:`translate.devices.load_catalogue`). Results come back in track-major, device-minor order,
whatever order the workers finish in, so a cluster run equals the serial run field by field.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from distributed.diagnostics.plugin import WorkerPlugin

from tools.errors import SenseError
from translate.devices import DeviceRef, catalogue_loads, load_catalogue
from translate.render import Method, RenderResult, Track, render

Progress = Callable[[RenderResult], None]
#: Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in workers (returns freed memory to the OS early, for
#: long-lived workers); with the renders' many 10 MB arrays it made each render 35 % slower
#: (0.57 s against 0.42 s, 30 s stereo excerpt), so the embedded cluster leaves glibc's default.
_LOCAL_WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


class ClusterError(SenseError, RuntimeError):
    """The Dask scheduler cannot be reached or the local cluster cannot start."""


class WarmCatalogue(WorkerPlugin):
    """Worker plugin: load the device catalogue when a worker starts (or joins), once per worker process."""

    name = "sense-translate-catalogue"

    def __init__(self, data_root: str):
        self.data_root = data_root

    def setup(self, worker) -> None:
        load_catalogue(self.data_root)


def run_serial(tracks: list[Track], devices: list[DeviceRef], method: Method, data_root: str,
               progress: Progress | None = None) -> list[RenderResult]:
    """Render every (track, device) pair in this process, track-major; ``progress`` is called per result."""
    results = []
    for track in tracks:
        for ref in devices:
            results.append(render(track, ref, method, data_root))
            if progress is not None:
                progress(results[-1])
    return results


@contextmanager
def open_client(address: str | None = None, workers: int = 2) -> Iterator:
    """A ``distributed.Client``: connected to ``address`` (``tcp://host:port``), else to a new
    ``LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)`` closed on exit.

    Raises:
        ClusterError: the scheduler does not answer within 10 s, or ``workers`` < 1.
    """
    import dask
    from distributed import Client, LocalCluster

    if address is None and workers < 1:
        raise ClusterError(f"--workers must be >= 1, got {workers}")
    try:
        if address is not None:
            client = Client(address, timeout="10s")
            cluster = None
        else:
            with dask.config.set(_LOCAL_WORKER_CONFIG):
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.ERROR)
            client = Client(cluster)
    except (OSError, TimeoutError) as exc:
        where = address or "a local cluster"
        raise ClusterError(f"cannot reach the Dask scheduler at {where}: {' '.join(str(exc).split())}") from exc
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def worker_catalogue_loads(client) -> dict[str, int]:
    """Worker address -> how many catalogues that worker process has loaded (1 when the cache works)."""
    return client.run(catalogue_loads)


def run_cluster(client, tracks: list[Track], devices: list[DeviceRef], method: Method, data_root: str,
                progress: Progress | None = None) -> list[RenderResult]:
    """Render every (track, device) pair on the client's workers; results track-major, device-minor.

    Raises:
        ClusterError: the cluster has no workers. Errors raised in a render (e.g. DataMissingError)
        are raised here.
    """
    from distributed import as_completed

    try:
        client.wait_for_workers(1, timeout=30)
    except TimeoutError as exc:
        raise ClusterError("the Dask cluster has no workers (waited 30 s); start some with `dask worker ADDRESS`") from exc
    client.register_plugin(WarmCatalogue(data_root))
    futures, order, run = [], {}, uuid.uuid4().hex[:8]
    for t, track in enumerate(tracks):
        remote = client.scatter(track, broadcast=True, hash=False)
        for d, ref in enumerate(devices):
            future = client.submit(render, remote, ref, method, data_root, key=f"translate-{run}-{t}-{d}")
            order[future.key] = (t, d)
            futures.append(future)
    results: dict[tuple[int, int], RenderResult] = {}
    for future in as_completed(futures):
        results[order[future.key]] = future.result()
        if progress is not None:
            progress(results[order[future.key]])
    return [results[key] for key in sorted(results)]
