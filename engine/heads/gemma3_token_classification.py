"""Gemma 3 (text) with a token-classification head: transformers has sequence classification for it, not tagging.

This file imports only transformers, so a saved model folder carries a copy of it: a plain transformers user loads
the folder with `AutoModelForTokenClassification.from_pretrained(folder, trust_remote_code=True)`, and the
playground's Predictor loads it without remote code because importing this module registers the class.
"""

from transformers import AutoModelForTokenClassification
from transformers.modeling_layers import GenericForTokenClassification
from transformers.models.gemma3.configuration_gemma3 import Gemma3TextConfig
from transformers.models.gemma3.modeling_gemma3 import Gemma3PreTrainedModel


class Gemma3TextForTokenClassification(GenericForTokenClassification, Gemma3PreTrainedModel):
    """Gemma 3's text decoder with a linear tag classifier on every token's last hidden state."""

    config: Gemma3TextConfig
    input_modalities = ("text",)


AUTO_MAP = {"AutoModelForTokenClassification": f"{__name__.rsplit('.', 1)[-1]}.Gemma3TextForTokenClassification"}

# exist_ok: this file may be imported twice (as our module and as a model folder's remote code).
AutoModelForTokenClassification.register(Gemma3TextConfig, Gemma3TextForTokenClassification, exist_ok=True)
