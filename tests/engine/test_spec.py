"""The job spec: round-trips through its file formats, stays frozen, and names the field in every error."""

from __future__ import annotations

import json

import pydantic
import pytest
import yaml

from engine.spec import DataSpec, JobSpec, TrainingParams


def full_spec() -> JobSpec:
    """A spec with every field away from its default, so a lost field cannot hide behind a default."""
    return JobSpec(
        task="text-classification",
        base_model="minilm-l6",
        data=DataSpec(
            train="data/train.csv",
            validation="data/dev.tsv",
            test="data/test.jsonl",
            format="csv",
            text_column="review_body",
            label_column="verdict",
            validation_fraction=0.2,
            test_fraction=0.15,
        ),
        params=TrainingParams(
            epochs=2.5,
            learning_rate=3e-5,
            batch_size=8,
            max_length=64,
            warmup_ratio=0.1,
            weight_decay=0.0,
            seed=7,
            precision="fp32",
        ),
    )


def test_spec_round_trips_through_json(tmp_path):
    spec = full_spec()
    path = tmp_path / "spec.json"
    spec.save(path)
    assert json.loads(path.read_text(encoding="utf-8"))["params"]["epochs"] == 2.5
    loaded = JobSpec.load(path)
    assert loaded == spec
    assert loaded.to_json() == spec.to_json()


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_spec_round_trips_through_yaml(tmp_path, suffix):
    spec = full_spec()
    path = tmp_path / f"job{suffix}"
    path.write_text(yaml.safe_dump(spec.model_dump()), encoding="utf-8")
    assert JobSpec.load(path) == spec


def test_minimal_yaml_fills_in_the_defaults(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("data:\n  train: reviews.csv\nparams:\n  epochs: 1\n", encoding="utf-8")
    spec = JobSpec.load(path)
    assert spec == JobSpec(data=DataSpec(train="reviews.csv"), params=TrainingParams(epochs=1))
    assert spec.base_model == "minilm-l6" and spec.task == "text-classification"
    assert spec.params.batch_size == TrainingParams().batch_size


def test_spec_is_frozen():
    spec = full_spec()
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        spec.base_model = "other"
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        spec.params.epochs = 9
    assert spec == full_spec()


def test_unknown_field_is_rejected_by_name():
    raw = full_spec().model_dump()
    raw["params"]["epoch"] = 3  # a typo of "epochs" must not be silently ignored
    with pytest.raises(ValueError, match=r"params\.epoch: Extra inputs are not permitted"):
        JobSpec.from_dict(raw)
    with pytest.raises(ValueError, match=r"learning_rat\b"):
        JobSpec.from_dict({"data": {"train": "a.csv"}, "learning_rat": 0.1})


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("params", "epochs", 0),
        ("params", "epochs", 101),
        ("params", "batch_size", 0),
        ("params", "learning_rate", -1),
        ("params", "max_length", 4),
        ("params", "warmup_ratio", 0.9),
        ("params", "seed", -1),
        ("params", "precision", "fp8"),
        ("data", "validation_fraction", 0.0),
        ("data", "test_fraction", 0.6),
        ("data", "format", "xlsx"),
    ],
)
def test_out_of_bounds_values_name_the_dotted_field_and_the_value(section, field, value):
    raw = {"data": {"train": "a.csv"}, section: {"train": "a.csv"} if section == "data" else {}}
    raw[section][field] = value
    with pytest.raises(ValueError, match=rf"  - {section}\.{field}: .*\(got {value!r}\)") as info:
        JobSpec.from_dict(raw, source="job.yaml")
    assert str(info.value).startswith("job.yaml is not a valid job spec:")
    assert isinstance(info.value.__cause__, pydantic.ValidationError)


def test_several_problems_are_reported_one_per_line():
    with pytest.raises(ValueError) as info:
        JobSpec.from_dict({"data": {"train": "a.csv"}, "params": {"epochs": 0, "batch_size": 0}})
    lines = str(info.value).splitlines()[1:]
    assert [line.split(":")[0] for line in lines] == ["  - params.epochs", "  - params.batch_size"]


def test_missing_training_file_is_named():
    with pytest.raises(ValueError, match=r"data\.train: Field required"):
        JobSpec.from_dict({"data": {}})
    with pytest.raises(ValueError, match=r"  - data: Field required"):
        JobSpec.from_dict({})


@pytest.mark.parametrize(("validation", "test"), [(0.45, 0.45), (0.5, 0.4)])
def test_fractions_that_leave_too_little_training_data_are_rejected(validation, test):
    with pytest.raises(ValueError, match=r"keep their sum below 0\.9"):
        JobSpec.from_dict({"data": {"train": "a.csv", "validation_fraction": validation, "test_fraction": test}})


def test_fractions_just_under_the_limit_are_accepted():
    spec = JobSpec.from_dict({"data": {"train": "a.csv", "validation_fraction": 0.5, "test_fraction": 0.39}})
    assert spec.data.validation_fraction + spec.data.test_fraction < 0.9


def test_malformed_yaml_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("data:\n  train: [unclosed\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"spec file .*broken\.yaml is not valid YAML") as info:
        JobSpec.load(path)
    assert isinstance(info.value.__cause__, yaml.YAMLError)


def test_malformed_json_names_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"data": {"train": "a.csv"}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"spec file .*broken\.json is not valid JSON"):
        JobSpec.load(path)


@pytest.mark.parametrize("text", ["- just\n- a list\n", "just a string\n", ""])
def test_a_file_that_is_not_a_mapping_names_the_file(tmp_path, text):
    path = tmp_path / "job.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=r"spec file .*job\.yaml must hold a mapping"):
        JobSpec.load(path)


def test_invalid_values_in_a_file_name_the_file_and_the_field(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("data:\n  train: a.csv\nparams:\n  batch_size: 0\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"job\.yaml is not a valid job spec:\n  - params\.batch_size"):
        JobSpec.load(path)


def test_a_missing_file_is_a_readable_value_error(tmp_path):
    with pytest.raises(ValueError, match=r"cannot read spec file .*nowhere\.yaml"):
        JobSpec.load(tmp_path / "nowhere.yaml")


def test_recipe_knobs_round_trip_and_bad_values_name_the_field():
    raw = {
        "data": {"train": "reviews.csv"},
        "params": {"class_weights": "rotten=3, fresh=1", "schedule": "cosine", "gradient_accumulation_steps": 4},
        "search": {"trials": 3, "learning_rate": [1e-5, 1e-3], "batch_sizes": [8, 16]},
    }
    spec = JobSpec.from_dict(raw)
    assert spec.params.class_weights == {"rotten": 3.0, "fresh": 1.0}
    assert JobSpec.model_validate_json(spec.to_json()) == spec
    for params, message in (
        ({"class_weights": "rotten:3"}, "label=weight"),
        ({"class_weights": "rotten=-1"}, "positive"),
        ({"schedule": "step"}, "params.schedule"),
        ({"early_stopping_patience": -1}, "params.early_stopping_patience"),
        ({"method": "prefix"}, "params.method"),
    ):
        with pytest.raises(ValueError, match=message):
            JobSpec.from_dict({**raw, "params": params})
    for search, message in (
        ({"learning_rate": [1e-3, 1e-5]}, "lowest value 0.001 is above the highest"),
        ({"learning_rate": [1e-5, 0.5]}, "learning_rate"),
        ({"batch_sizes": [0]}, "batch_size"),
        ({"trials": 1}, "search.trials"),
    ):
        with pytest.raises(ValueError, match=message):
            JobSpec.from_dict({**raw, "search": search})


def test_a_preset_expands_into_exact_knobs_that_the_users_own_beat():
    best = JobSpec.from_dict({"data": {"train": "r.csv"}, "preset": "best", "params": {"epochs": 4}})
    assert best.params.epochs == 4 and best.params.early_stopping_patience == 2 and best.params.schedule == "cosine"
    assert best.search is not None and best.search.learning_rate == (1e-5, 1e-3)  # around the default 1e-4
    chat = JobSpec.from_dict({"task": "chat", "data": {"train": "c.jsonl"}, "preset": "best"})
    assert chat.search.learning_rate == (2e-5, 2e-3)  # around chat's own 2e-4
    assert best.search.ensemble == 3 and chat.search.ensemble == 1  # chat offers no ensembles: its best trial alone
    with pytest.raises(ValueError, match="search.ensemble is for the tasks that offer ensembles, not chat"):
        JobSpec.from_dict({"task": "chat", "data": {"train": "c.jsonl"}, "search": {"ensemble": 2}})
    quick = JobSpec.from_dict({"data": {"train": "r.csv"}, "preset": "quick"})
    assert quick.params.epochs == 1 and quick.search is None
    assert "preset" not in json.loads(best.to_json())  # spec.json holds what the preset meant, not its name
    with pytest.raises(ValueError, match="unknown preset 'fastest'; choose one of quick, balanced, best"):
        JobSpec.from_dict({"data": {"train": "r.csv"}, "preset": "fastest"})
    with pytest.raises(ValueError, match="params.class_weights is for task"):
        JobSpec.from_dict({"task": "chat", "data": {"train": "c.jsonl"}, "params": {"class_weights": "balanced"}})
