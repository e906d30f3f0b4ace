"""The training half of a job spec: the recipe's knobs and the learning-rate search, each with bounds and help text
that the CLI flags, the Train tab's controls and the REST schema are made from."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Method = Literal["lora", "ia3", "full"]
Precision = Literal["auto", "bf16", "bf16-pure", "fp16", "fp32"]
Optimizer = Literal["adamw", "adafactor"]
Schedule = Literal["linear", "cosine", "cosine_with_restarts", "constant_with_warmup", "polynomial"]
EvalStrategy = Literal["epoch", "steps"]
Compile = Literal["auto", "on", "off"]


class Frozen(BaseModel):
    """A spec part: immutable, and a misspelt field is an error rather than silently ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class TrainingParams(Frozen):
    """Hyper-parameters; bounds and descriptions double as the UI's slider bounds and help text."""

    epochs: float = Field(default=3, gt=0, le=100, description="Passes over the training data.")
    learning_rate: float = Field(
        default=1e-4,
        gt=0,
        le=1e-2,
        description="Peak learning rate. 1e-4 suits small encoders such as MiniLM; use 2e-5 to 5e-5 for base-size "
        "models, one or two orders below the rate they were pre-trained with.",
    )
    batch_size: int = Field(default=16, ge=1, le=1024, description="Examples per forward pass.")
    gradient_accumulation_steps: int = Field(
        default=1,
        ge=1,
        le=256,
        description="Add up the gradients of this many batches before each update: the effective batch is batch "
        "size x this, at the memory of one batch.",
    )
    max_length: int = Field(
        default=128, ge=8, le=8192, description="Texts longer than this many tokens are truncated (and counted)."
    )
    optimizer: Optimizer = Field(
        default="adamw",
        description="'adamw' (the standard); 'adafactor' keeps far smaller optimizer state, for tight memory.",
    )
    schedule: Schedule = Field(
        default="linear",
        description="How the learning rate moves after warm-up: 'linear' decay to 0, 'cosine', "
        "'cosine_with_restarts', 'constant_with_warmup' or 'polynomial'.",
    )
    schedule_cycles: int = Field(
        default=2, ge=1, le=50, description="cosine_with_restarts: how many cosine cycles (hard restarts) to run."
    )
    warmup_ratio: float = Field(
        default=0.06, ge=0, le=0.5, description="Share of training steps over which the learning rate warms up."
    )
    warmup_steps: int | None = Field(
        default=None,
        ge=0,
        le=100_000,
        description="Warm-up length in optimizer steps; when set it replaces the warm-up share.",
    )
    weight_decay: float = Field(default=0.01, ge=0, le=1, description="Decoupled weight decay of the optimizer.")
    max_grad_norm: float = Field(
        default=1.0, ge=0, le=100, description="Clip the gradient norm to this before each update; 0 turns it off."
    )
    eval_strategy: EvalStrategy = Field(
        default="epoch",
        description="When the validation split is scored (and a checkpoint kept): each 'epoch', or every "
        "eval_steps optimizer 'steps'.",
    )
    eval_steps: int = Field(
        default=50, ge=1, le=100_000, description="eval_strategy 'steps': optimizer steps between evaluations."
    )
    early_stopping_patience: int = Field(
        default=0,
        ge=0,
        le=100,
        description="Stop after this many evaluations without improvement of the validation score, keeping the "
        "best checkpoint; 0 trains every epoch.",
    )
    early_stopping_threshold: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Early stopping: how much the validation score must improve to count as an improvement.",
    )
    seed: int = Field(default=42, ge=0, le=2**31 - 1, description="Seed for the data split, initialisation and order.")
    method: Method = Field(
        default="full",
        description="'full' trains every weight; 'lora' trains small adapter matrices and the task's head (fast, "
        "little memory, less over-fitting on small data); 'ia3' learns only a rescaling of keys, values and the MLP "
        "(the fewest weights). Classification and tagging default to 'full', chat to 'lora'.",
    )
    lora_rank: int = Field(default=16, ge=1, le=256, description="LoRA: rank of the adapter matrices.")
    lora_alpha: int = Field(default=32, ge=1, le=1024, description="LoRA: scaling of the adapter (alpha / rank).")
    lora_dropout: float = Field(default=0.05, ge=0, le=0.5, description="LoRA: dropout on the adapter's input.")
    lora_target_modules: tuple[str, ...] | None = Field(
        default=None,
        description="LoRA and IA3: names of the layers that get adapters; the architecture's attention and MLP "
        "projections when absent.",
    )
    precision: Precision = Field(
        default="auto",
        description="Numeric precision: 'auto' uses bf16 where the CPU or GPU runs it fast, fp32 otherwise; 'bf16' "
        "is autocast over fp32 weights. 'bf16-pure' (classification and tagging) keeps the weights themselves in "
        "bf16 and fp32 masters in the optimizer: 6 to 14 percent faster than 'bf16' in bench.train_speed, but 4 "
        "points lower test accuracy on 3,000 review snippets (one seed), so it is not the default.",
    )
    gradient_checkpointing: bool = Field(
        default=False,
        description="Recompute activations in the backward pass instead of keeping them: much less memory for "
        "long texts and big batches, but slower (1.7x the time in bench.recipes on 240 short reviews).",
    )
    compile: Compile = Field(
        default="auto",
        description="Compile the model with torch.compile (its graphs cached on disk for the next job): 'auto' "
        "compiles on a GPU when the job has 300 steps or more, where the warm-up pays back; never on the CPU, "
        "where MiniLM's training step compiled for 1.5 minutes on 2 cores and ran no faster. 'on' always, 'off' "
        "never.",
    )
    dropout: float | None = Field(
        default=None,
        ge=0,
        le=0.9,
        description="Override the model's hidden and attention dropout (more regularises small data); unset: "
        "the model's own.",
    )
    label_smoothing: float = Field(
        default=0.0,
        ge=0,
        le=0.5,
        description="Spread this share of each target over the other labels (less over-confident models).",
    )
    class_weights: Literal["balanced"] | dict[str, float] | None = Field(
        default=None,
        description="Weigh the loss per label for imbalanced data: 'balanced' (inverse to label frequency) or "
        "'label=weight, ...'; unset: every example counts the same.",
    )
    freeze_embeddings: bool | None = Field(
        default=None,
        description="Keep the token embeddings as pretrained. Unset: frozen when they hold most of the model's "
        "weights (a large multilingual vocabulary such as Gemma 3's), which trains several times faster.",
    )
    freeze_layers: int = Field(
        default=0, ge=0, le=200, description="Keep the lowest this many transformer layers as pretrained."
    )

    @field_validator("class_weights", mode="before")
    @classmethod
    def _weights_from_text(cls, value: object) -> object:
        # The CLI and the Train tab pass 'balanced' or 'rare=5, common=1' as typed.
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str) or value.strip() == "balanced":
            return value.strip() if isinstance(value, str) else value
        weights = {}
        for part in value.split(","):
            label, sep, weight = part.rpartition("=")
            try:
                weights[label.strip()] = float(weight)
            except ValueError:
                sep = ""
            if not sep or not label.strip():
                raise ValueError(f"write class weights as 'balanced' or 'label=weight, label=weight'; got {part!r}")
        return weights

    @field_validator("class_weights")
    @classmethod
    def _positive_weights(cls, value: object) -> object:
        if isinstance(value, dict) and (not value or any(w <= 0 for w in value.values())):
            raise ValueError(f"class weights must be positive numbers, one per label; got {value}")
        return value


class SearchSpec(Frozen):
    """A learning-rate search: trials of the same job with sampled knobs, run inside the job, the best one kept."""

    trials: int = Field(default=6, ge=2, le=200, description="Trainings to try; the best one is the job's model.")
    learning_rate: tuple[float, float] = Field(
        default=(1e-5, 1e-3),
        description="Lowest and highest learning rate to try, sampled on a log scale.",
    )
    batch_sizes: tuple[int, ...] | None = Field(
        default=None, description="Batch sizes to choose from (e.g. 8, 16, 32); unset: the job's batch size."
    )
    epochs: tuple[float, float] | None = Field(
        default=None, description="Fewest and most epochs to try; unset: the job's epochs."
    )
    warmup_ratio: tuple[float, float] | None = Field(
        default=None, description="Smallest and largest warm-up share to try; unset: the job's warm-up."
    )
    time_budget_minutes: float | None = Field(
        default=None,
        gt=0,
        le=10_080,
        description="Start no new trial after this many minutes; the trials finished by then are compared.",
    )
    prune: bool = Field(
        default=True,
        description="Stop a trial early when its validation score falls below the median of earlier trials at the "
        "same evaluation (Optuna's median pruner).",
    )
    ensemble: int = Field(
        default=1,
        ge=1,
        le=5,
        description="How many of the best complete trials answer together, with the mean of their probabilities; "
        "a trial more than 0.05 behind the best validation score stays out. 1: the best trial alone. "
        "Classification and tagging.",
    )

    @model_validator(mode="after")
    def _ranges_inside_the_params(self) -> SearchSpec:
        fields = TrainingParams.model_fields
        for name in ("learning_rate", "epochs", "warmup_ratio"):
            span = getattr(self, name)
            if span is None:
                continue
            low, high = span
            if not low <= high:
                raise ValueError(f"search.{name}: the lowest value {low:g} is above the highest {high:g}")
            TrainingParams.model_validate({name: low})  # the knob's own bounds, with its message
            TrainingParams.model_validate({name: high})
        for size in self.batch_sizes or ():
            TrainingParams.model_validate({"batch_size": size})
        if self.batch_sizes is not None and not self.batch_sizes:
            raise ValueError(f"search.batch_sizes: give at least one ({fields['batch_size'].description})")
        return self


@dataclass(frozen=True)
class Knob:
    """How an edge offers a spec field: its kind ('number', 'choice', 'switch', 'text' or 'list'), the number type
    or the choices, and whether it may be left unset."""

    name: str
    kind: Literal["number", "choice", "switch", "text", "list"]
    number: type | None = None  # int or float, for numbers and the items of lists
    choices: tuple[str, ...] = ()
    optional: bool = False

    def parse(self, text: str) -> Any:
        """A value typed as text (a CLI argument, a text box): lists are comma-separated."""
        if self.kind == "list":
            items = [item.strip() for item in text.split(",") if item.strip()]
            return tuple(self.number(item) if self.number else item for item in items)
        if self.kind == "number":
            return self.number(text)
        return text


def knob(model: type[BaseModel], name: str) -> Knob:
    """The Knob of field `name` of a spec model, read from its type annotation."""
    annotation = model.model_fields[name].annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    optional = type(None) in typing.get_args(annotation)
    if typing.get_origin(annotation) is Literal:
        return Knob(name, "choice", choices=tuple(typing.get_args(annotation)))
    if annotation in (int, float) or (optional and len(args) == 1 and args[0] in (int, float)):
        return Knob(name, "number", number=annotation if annotation in (int, float) else args[0], optional=optional)
    if annotation is bool or (optional and args == [bool]):
        return Knob(name, "switch", optional=optional)
    sequence = args[0] if optional and len(args) == 1 else annotation
    if typing.get_origin(sequence) is tuple:
        item = typing.get_args(sequence)[0]
        return Knob(name, "list", number=item if item in (int, float) else None, optional=optional)
    return Knob(name, "text", optional=optional)  # parsed by the field's own validator (class weights)
