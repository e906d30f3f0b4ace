"""Classification scores as Finetune Playground reports them, as an `evaluate` module wrapping scikit-learn.

Load it with `evaluate.load(path_to_this_folder)`; `engine.metrics.metric_module_path("classification")` gives the
path. It needs only evaluate, datasets and scikit-learn, so it also works outside the playground and offline.
"""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support
from sklearn.utils.multiclass import unique_labels

_DESCRIPTION = """
Accuracy; macro, micro and weighted precision, recall and F1; per-class precision, recall, F1 and support; and the
confusion matrix (rows are true classes, columns predicted ones). Every number is scikit-learn's own. Pass `labels`
to score a fixed set of classes: a class absent from this split then still counts in the macro average (with zeros)
and keeps its row and column in the matrix, so scores of different splits describe the same classes.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int` or `str`): the predicted class of each example.
    references (`list` of `int` or `str`): the true class of each example.
    labels (`list`, optional): every class, in the order of the per-class scores and the matrix. Defaults to the
        classes seen in references or predictions, sorted.
    zero_division (`float`, defaults to 0.0): the score of a class with no prediction (precision) or no example
        (recall), instead of scikit-learn's warning.
Returns:
    accuracy, macro_precision, macro_recall, macro_f1, micro_precision, micro_recall, micro_f1, weighted_precision,
    weighted_recall, weighted_f1 (`float`); labels (`list`): the classes scored; per_class (`dict`): label ->
    {precision, recall, f1, support}; confusion_matrix (`list` of `list` of `int`).
Examples:
    >>> metric = evaluate.load("engine/metric_modules/classification")
    >>> scores = metric.compute(predictions=["正面", "négatif"], references=["正面", "正面"],
    ...     labels=["négatif", "正面"])
    >>> scores["accuracy"], scores["per_class"]["正面"]["recall"]
    (0.5, 0.5)
"""

_CITATION = """
@article{scikit-learn,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and Varoquaux, G. and Gramfort, A. and Michel, V. and Thirion, B. and Grisel, O. and others},
  journal={Journal of Machine Learning Research},
  volume={12},
  pages={2825--2830},
  year={2011}
}
"""

AVERAGES = ("macro", "micro", "weighted")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ClassificationScores(evaluate.Metric):
    """Accuracy, averaged and per-class precision/recall/F1 and the confusion matrix, by scikit-learn."""

    def _info(self):
        # Strings first: an int schema would turn a label spelled "1" into the number 1; a string schema refuses ints.
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
                datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
            ],
            reference_urls=["https://scikit-learn.org/stable/modules/model_evaluation.html#classification-metrics"],
        )

    def _compute(self, predictions, references, labels=None, zero_division=0.0):
        classes = np.asarray(labels if labels is not None else unique_labels(references, predictions)).tolist()
        scores = {"accuracy": float(accuracy_score(references, predictions))}
        for average in AVERAGES:
            precision, recall, f1, _ = precision_recall_fscore_support(
                references, predictions, labels=classes, average=average, zero_division=zero_division
            )
            scores[f"{average}_precision"] = float(precision)
            scores[f"{average}_recall"] = float(recall)
            scores[f"{average}_f1"] = float(f1)
        precision, recall, f1, support = precision_recall_fscore_support(
            references, predictions, labels=classes, average=None, zero_division=zero_division
        )
        scores["labels"] = classes
        scores["per_class"] = {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(classes)
        }
        matrix = confusion_matrix(references, predictions, labels=classes)
        scores["confusion_matrix"] = matrix.astype(int).tolist()
        return scores
