"""The paper's device-embedding path: draw the frequency response as a line graph, embed it with a
vision-language model (VLM), average-pool the last hidden layer.

arXiv 2511.17136 uses Llama-3.2-11B-Vision (4096-d embeddings). No VLM weights exist on this
machine, so the default embedding is the curve encoder (:func:`demt.devices.encode_curve`); this
module is the option, tested with a tiny randomly initialised LLaVA-style model built from a config.

Using real weights (downloaded by the user beforehand; nothing is downloaded at run time)::

    emb = VLMEmbedder.from_pretrained("/models/Llama-3.2-11B-Vision-Instruct")
    pool = embedding_pool(device, encoder=emb)          # (n, 4096) float32
    # train with DemtConfig(embed_dim=emb.dim, embedder="vlm:/models/...")

``from_pretrained`` loads ``AutoProcessor`` and ``AutoModelForImageTextToText`` with
``local_files_only=True``; any transformers image-text-to-text model works (Llama 3.2 Vision,
LLaVA, Qwen2-VL, ...).
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from knowledge.fr_store import FR_GRID_HZ

PROMPT = "This is the frequency response of an audio device."


def render_curve_png(db: np.ndarray, size_px: int = 336, path: Path | None = None) -> bytes:
    """The curve (dB on FR_GRID_HZ) as a PNG line graph: log frequency 20 Hz-20 kHz, -30..+20 dB.

    Returns the PNG bytes (and writes them to ``path`` when given). Deterministic for a given curve.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(size_px / 100, size_px / 100), dpi=100)
    ax = fig.add_axes([0.12, 0.1, 0.85, 0.85])
    ax.semilogx(FR_GRID_HZ, np.asarray(db), color="black", lw=1.5)
    ax.set_xlim(20, 20000)
    ax.set_ylim(-30, 20)
    ax.grid(True, which="both", lw=0.3)
    ax.tick_params(labelsize=5)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    data = buf.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


def tiny_vlm(seed: int = 0):
    """A randomly initialised LLaVA (CLIP vision tower + Llama text model), a few hundred k parameters.

    Only for tests and for wiring checks: its embeddings carry no meaning beyond the pixels.
    """
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    torch.manual_seed(seed)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=64, patch_size=16, projection_dim=32)
    text = LlamaConfig(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=2,
                       num_key_value_heads=2, vocab_size=128)
    cfg = LlavaConfig(vision_config=vision, text_config=text, image_token_index=127,
                      vision_feature_layer=-1, vision_feature_select_strategy="default")
    return LlavaForConditionalGeneration(cfg).eval()


class VLMEmbedder:
    """Curve -> VLM embedding: float32 (dim,), the mean over tokens of the last hidden layer.

    Build with :meth:`tiny` (random, for tests) or :meth:`from_pretrained` (real local weights).
    Callable like :func:`demt.devices.encode_curve`, so it can replace it in ``embedding_pool``.
    """

    def __init__(self, model, processor=None, image_size: int = 64, image_token_id: int = 127):
        self.model, self.processor = model, processor
        self.image_size, self.image_token_id = image_size, image_token_id
        text_cfg = getattr(model.config, "text_config", model.config)
        self.dim = int(text_cfg.hidden_size)

    @classmethod
    def tiny(cls, seed: int = 0) -> "VLMEmbedder":
        return cls(tiny_vlm(seed))

    @classmethod
    def from_pretrained(cls, path: str | Path) -> "VLMEmbedder":
        """Load a local image-text-to-text model and its processor (no download).

        Raises: OSError when the folder does not hold a transformers model.
        """
        from transformers import AutoModelForImageTextToText, AutoProcessor

        processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True).eval()
        return cls(model, processor)

    def _inputs(self, png: bytes) -> dict:
        import torch
        from PIL import Image

        image = Image.open(io.BytesIO(png)).convert("RGB")
        if self.processor is not None:  # real model: its own chat template and image processing
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": PROMPT}]}]
            text = self.processor.apply_chat_template(messages, add_generation_prompt=False)
            return dict(self.processor(images=image, text=text, return_tensors="pt"))
        img = np.asarray(image.resize((self.image_size, self.image_size)), dtype=np.float32) / 255.0
        pixels = torch.from_numpy((img - 0.5) / 0.5).permute(2, 0, 1)[None]  # (1, 3, H, W)
        n_patches = (self.image_size // self.model.config.vision_config.patch_size) ** 2
        ids = torch.tensor([[1] + [self.image_token_id] * n_patches + [5, 6, 7]])
        return {"input_ids": ids, "pixel_values": pixels, "attention_mask": torch.ones_like(ids)}

    def __call__(self, db: np.ndarray) -> np.ndarray:
        import torch

        inputs = self._inputs(render_curve_png(db))
        with torch.no_grad():
            out = self.model(**inputs, output_hidden_states=True)
        last = out.hidden_states[-1]  # (1, tokens, dim)
        return last.mean(dim=1)[0].float().numpy()
