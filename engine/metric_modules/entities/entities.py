"""Entity-level tagging scores as Finetune Playground reports them, as an `evaluate` module wrapping seqeval.

Load it with `evaluate.load(path_to_this_folder)`; `engine.metrics.metric_module_path("entities")` gives the path.
It needs only evaluate, datasets and seqeval, so it also works outside the playground and offline.
"""

import datasets
import evaluate
from seqeval import scheme as schemes
from seqeval.metrics import accuracy_score
from seqeval.metrics.v1 import precision_recall_fscore_support

_DESCRIPTION = """
Strict entity-level precision, recall and F1 (micro, macro and weighted averages, and per entity type) by seqeval:
an entity counts only when its type and both of its boundaries match, read with the tagging scheme given (IOB2 by
default), so an I-X that continues no X entity is no entity at all. Averages cover the types seen in references or
predictions, as seqeval's own do. Also the token accuracy (the share of tags that are right, "O" included).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `str`): the predicted tags of each sentence, e.g. ["B-PER", "I-PER", "O"].
    references (`list` of `list` of `str`): the true tags, one per predicted tag.
    scheme (`str`, defaults to "IOB2"): one of "IOB2", "IOE2", "IOBES", "BILOU".
    zero_division (`float`, defaults to 0.0): the score of an empty ratio, instead of seqeval's warning.
Returns:
    micro_precision, micro_recall, micro_f1, macro_precision, macro_recall, macro_f1, weighted_precision,
    weighted_recall, weighted_f1, token_accuracy (`float`); per_type (`dict`): entity type -> {precision, recall, f1,
    support}, sorted by type. With no entity anywhere every score but token_accuracy is 0.0.
Examples:
    >>> metric = evaluate.load("engine/metric_modules/entities")
    >>> scores = metric.compute(predictions=[["B-人名", "O"]], references=[["B-人名", "I-人名"]])
    >>> scores["micro_f1"], scores["token_accuracy"]
    (0.0, 0.5)
"""

_CITATION = """
@misc{seqeval,
  title={{seqeval}: A Python framework for sequence labeling evaluation},
  url={https://github.com/chakki-works/seqeval},
  note={Software available from https://github.com/chakki-works/seqeval},
  author={Hiroki Nakayama},
  year={2018},
}
"""

SCHEMES = ("IOB2", "IOE2", "IOBES", "BILOU")  # the schemes seqeval's strict mode reads
AVERAGES = ("micro", "macro", "weighted")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class EntityScores(evaluate.Metric):
    """Strict entity-level precision/recall/F1 (averaged and per type) and token accuracy, by seqeval."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("string")),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
            codebase_urls=["https://github.com/chakki-works/seqeval"],
        )

    def _compute(self, predictions, references, scheme="IOB2", zero_division=0.0):
        if scheme not in SCHEMES:
            raise ValueError(f"scheme {scheme!r} is not one strict mode reads; choose one of {list(SCHEMES)}")
        tagging = getattr(schemes, scheme)
        # Read the entities once and hand them to every call, as seqeval allows, instead of once per average.
        entities_true = schemes.Entities(references, tagging)
        entities_pred = schemes.Entities(predictions, tagging)
        types = sorted(entities_true.unique_tags | entities_pred.unique_tags)

        def prf(average):
            if not types:  # nothing to find and nothing found wrongly; seqeval would average an empty list
                return (0.0, 0.0, 0.0, 0) if average else ((), (), (), ())
            return precision_recall_fscore_support(
                references,
                predictions,
                average=average,
                scheme=tagging,
                zero_division=zero_division,
                entities_true=entities_true,
                entities_pred=entities_pred,
            )

        scores = {}
        for average in AVERAGES:
            precision, recall, f1, _ = prf(average)
            scores[f"{average}_precision"] = float(precision)
            scores[f"{average}_recall"] = float(recall)
            scores[f"{average}_f1"] = float(f1)
        n_tags = sum(len(tags) for tags in references)
        scores["token_accuracy"] = float(accuracy_score(references, predictions)) if n_tags else 0.0
        per_type = zip(types, *prf(None), strict=True)
        scores["per_type"] = {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in per_type
        }
        return scores
