"""On-disk cache of FAISS inner-product indices over text embeddings.

Each index is derived data: a file ``cache_dir()/<kind>-<key>.faiss`` whose key is a hash of
the caller's content hash, the embedding model id and the embedded texts, so any change of
inputs gives a new file and a stale index is never read. Files are written atomically
(temp file + ``os.replace``); an unreadable or mismatching file is rebuilt.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import faiss

from knowledge.config import cache_dir
from knowledge.embeddings import EMBEDDING_DIM
from tools.atomic import replace_file

log = logging.getLogger(__name__)


def cached_text_index(kind: str, content_hash: str, texts: list[str], embedder) -> faiss.IndexFlatIP:
    """Return a FAISS IndexFlatIP whose row i is ``embedder.encode([texts[i]])``, cached on disk.

    Args:
        kind: short name of the index ("devices", "descriptors"), the file-name prefix.
        content_hash: hash of the data the texts came from (e.g. ``FRStore.content_hash()``).
        texts: n strings to embed, in row order.
        embedder: object with ``encode(list[str]) -> float32 (n, EMBEDDING_DIM)`` and ``model_id``.
    Returns:
        faiss.IndexFlatIP with n rows of dimension EMBEDDING_DIM (inner product = cosine).
    """
    digest = hashlib.sha256()
    for part in (content_hash, embedder.model_id, *texts):
        digest.update(part.encode("utf-8") + b"\0")
    path = cache_dir() / f"{kind}-{digest.hexdigest()[:24]}.faiss"
    if path.exists():
        try:
            index = faiss.read_index(str(path))
            if index.ntotal == len(texts) and index.d == EMBEDDING_DIM:
                return index
        except RuntimeError as exc:  # faiss raises RuntimeError on a damaged file
            log.warning("rebuilding unreadable index cache %s: %s", path, exc)
    index = faiss.IndexFlatIP(EMBEDDING_DIM)
    if texts:
        index.add(embedder.encode(texts))
    replace_file(path, lambda tmp: faiss.write_index(index, str(tmp)))
    return index
