"""The techniques block of a job spec: augmentation, adversarial training, ensembles, domain pre-training and
self-training, each off unless given, each with bounds and help text the CLI, the Train tab and REST are made from.

This module is light (pydantic only); the techniques themselves live in the modules beside it and load on use.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from engine.params import Frozen

AugmentMethod = Literal["swap", "delete", "insert", "substitute"]
AdversarialMethod = Literal["fgm", "pgd"]
EnsembleSplit = Literal["seeds", "folds"]

# The block's fields in the order a report and the Train tab list them, with how a person calls each.
TECHNIQUES = {
    "augment": "Data augmentation",
    "adversarial": "Adversarial training",
    "ensemble": "Ensemble",
    "domain_pretraining": "Domain pre-training",
    "self_training": "Self-training",
}


class AugmentSpec(Frozen):
    """Offline data augmentation of the training split only: edited copies of each labeled text."""

    methods: tuple[AugmentMethod, ...] = Field(
        default=("swap", "delete", "insert"),
        description="Edits to draw from, one per copy: 'swap' two words, 'delete' words, 'insert' a word from "
        "texts of the same label, 'substitute' a word by one from texts of the same label. Chinese and Japanese "
        "texts are edited character by character.",
    )
    copies: int = Field(default=2, ge=1, le=10, description="Augmented copies added per training example.")
    rate: float = Field(
        default=0.1, gt=0, le=0.5, description="Share of each text's words (or characters) that one edit changes."
    )

    @model_validator(mode="after")
    def _some_method(self) -> AugmentSpec:
        if not self.methods:
            raise ValueError("augment.methods: give at least one of swap, delete, insert, substitute")
        return self


class AdversarialSpec(Frozen):
    """Adversarial training: each step also trains on inputs whose embeddings are pushed the way that hurts most."""

    method: AdversarialMethod = Field(
        default="fgm",
        description="'fgm' takes one step along the loss gradient of the embeddings; 'pgd' takes several smaller "
        "ones inside the same radius (stronger, slower).",
    )
    epsilon: float = Field(
        default=0.5,
        gt=0,
        le=5,
        description="Size of the push: its L2 norm per example over the word-embedding outputs (MiniLM's word "
        "vectors are about 1.1 long, so 0.5 moves one word half-way or several words a little). The report's "
        "robustness check attacks with the same size.",
    )
    steps: int = Field(default=3, ge=1, le=10, description="pgd: perturbation steps per training step.")


class EnsembleSpec(Frozen):
    """Several fine-tunes inside one job; the model answers with their averaged probabilities."""

    members: int = Field(default=3, ge=2, le=10, description="How many models to train and average.")
    split: EnsembleSplit = Field(
        default="seeds",
        description="'seeds': every member sees the whole training split with its own seed (head and order); "
        "'folds': member k leaves out the k-th of `members` folds of the training split.",
    )


class DomainPretrainingSpec(Frozen):
    """A first stage that continues masked-language-model pre-training of the encoder on the user's own texts."""

    epochs: float = Field(default=3, gt=0, le=50, description="Passes over the domain texts.")
    learning_rate: float = Field(default=5e-5, gt=0, le=1e-2, description="Peak learning rate of this stage.")
    mlm_probability: float = Field(
        default=0.15, ge=0.05, le=0.5, description="Share of tokens masked for the model to fill in."
    )
    use_training_texts: bool = Field(
        default=True,
        description="Add the training split's texts (labels unused) to the unlabeled file's texts; without an "
        "unlabeled file they are the domain text.",
    )


class SelfTrainingSpec(Frozen):
    """Self-training: the model labels the unlabeled texts and is trained again with its confident guesses."""

    rounds: int = Field(default=1, ge=1, le=5, description="Times to pseudo-label and train again.")
    threshold: float = Field(
        default=0.9,
        ge=0.5,
        lt=1,
        description="Only predictions at least this probable join the training data as pseudo-labels.",
    )
    balance: bool = Field(
        default=True,
        description="Keep the pseudo-labels in the labeled split's label proportions (the most confident of each "
        "label): a model sure of one label only would otherwise teach itself to say it everywhere.",
    )
    max_per_label: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Take at most this many pseudo-labels per label in a round (the most confident); unset: all "
        "above the threshold.",
    )


class Techniques(Frozen):
    """Techniques for little labeled data and robust models; every one is off unless given."""

    augment: AugmentSpec | None = Field(default=None, description="Offline augmentation of the training split.")
    adversarial: AdversarialSpec | None = Field(
        default=None, description="FGM or PGD perturbations of the embeddings during training."
    )
    ensemble: EnsembleSpec | None = Field(default=None, description="Several fine-tunes averaged into one model.")
    domain_pretraining: DomainPretrainingSpec | None = Field(
        default=None, description="Masked-LM pre-training on your own texts before fine-tuning."
    )
    self_training: SelfTrainingSpec | None = Field(
        default=None, description="Pseudo-label the unlabeled texts and train again."
    )
    compare_with_plain: bool = Field(
        default=True,
        description="Also train the plain recipe on the same split, so that the report shows what the techniques "
        "bought (takes about as long again).",
    )

    def used(self) -> list[str]:
        """The names of the techniques that are on, in TECHNIQUES order."""
        return [name for name in TECHNIQUES if getattr(self, name) is not None]

    def titles(self) -> list[str]:
        """How a person calls the techniques that are on."""
        return [TECHNIQUES[name] for name in self.used()]
