"""What one SENSE process loads once and shares between turns: knowledge stores and the LLM."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from agent.llm import LLMBackend, load_backend
from knowledge.descriptors import DescriptorPrior
from knowledge.devices import DeviceIndex
from knowledge.expert import ExpertVocabulary
from knowledge.fr_store import FRStore
from knowledge.preferences import PreferenceStore
from knowledge.words import WordEQ


@dataclass
class Runtime:
    """Loaded resources.

    Attributes:
        store: frequency-response store (AutoEq measurements and targets).
        devices: device-name index over ``store``.
        prior: word→EQ population prior (Audealize).
        prefs: per-user preference store and profiles.
        llm: planner backend, or None for the rule-based parser only.
        load_seconds: time to load each part, seconds.
        words: tone words → meanings and calibrated filters (the expert vocabulary beside ``prior``).
    """

    store: FRStore
    devices: DeviceIndex
    prior: DescriptorPrior
    prefs: PreferenceStore
    llm: LLMBackend | None
    load_seconds: dict[str, float] = field(default_factory=dict)
    words: WordEQ | None = None
    _population: object = field(default=None, repr=False)

    def __post_init__(self):
        if self.words is None:
            self.words = WordEQ(self.prior, ExpertVocabulary.load())

    @property
    def population(self):
        """The word → EQ population model (:class:`knowledge.population.PopulationModel`), built on first use
        from the English crowd words and the MiniLM embedder (a few seconds)."""
        if self._population is None:
            from knowledge.embeddings import get_embedder
            from knowledge.population import PopulationModel, load_english

            self._population = PopulationModel.build(load_english(), get_embedder())
        return self._population

    @classmethod
    def load(
        cls,
        *,
        model: str | None = None,
        llm_url: str | None = None,
        use_llm: bool = True,
        fr_root: Path | None = None,
        prefs_path: Path | None = None,
        llm: LLMBackend | None = None,
    ) -> "Runtime":
        """Load everything a turn needs.

        Args:
            model: planner model name or GGUF path (see :func:`agent.llm.load_backend`).
            llm_url: OpenAI-compatible server instead of the local model.
            use_llm: False to run with the rule-based parser only.
            fr_root: a folder of AutoEq-format CSVs instead of the shared data set.
            prefs_path: preference store file (default ``SENSE_HOME/preferences.sqlite``).
            llm: an already built backend (tests pass a fake one here).
        Raises:
            knowledge.config.DataMissingError, agent.models.ModelMissingError, agent.llm.LLMError.
        """
        seconds: dict[str, float] = {}
        start = time.perf_counter()
        store = FRStore.load(fr_root)
        devices = DeviceIndex.build(store)
        seconds["devices"] = time.perf_counter() - start
        start = time.perf_counter()
        prior = DescriptorPrior.load()
        prefs = PreferenceStore(prefs_path)
        seconds["prior_and_prefs"] = time.perf_counter() - start
        if llm is None and use_llm:
            start = time.perf_counter()
            llm = load_backend(model, llm_url)
            seconds["llm"] = time.perf_counter() - start
        return cls(store, devices, prior, prefs, llm, seconds)
