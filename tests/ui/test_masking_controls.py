"""The masking option at the edges: the CLI's --mask-personal-data (train and inspect) and the Train tab's boxes
build the same spec field, and `playground inspect` says what was masked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.spec import JobSpec
from tests.ui.test_tab_callbacks import ctx, train_inputs, uploaded  # noqa: F401 - ctx is a fixture
from ui import cli
from ui.context import AppContext
from ui.tabs import train


@pytest.fixture
def reviews(tmp_path: Path) -> Path:
    rows = [f'"Loved it, write to fan{i}@example.com",pos' for i in range(12)]
    rows += [f'"太差了，退款请打13800138{i:03d}",neg' for i in range(12)]
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _args(*argv: str):
    return cli.build_parser().parse_args(list(argv))


def test_the_cli_flag_sets_the_spec_field(reviews: Path, tmp_path: Path):
    args = _args("train", "--train", str(reviews), "--mask-personal-data", "url, email", "--output", str(tmp_path))
    assert cli.spec_from_args(args).data.mask_personal_data == ("email", "url")
    config = tmp_path / "job.yaml"
    config.write_text(f"data:\n  train: {reviews}\n  mask_personal_data: [phone]\n", encoding="utf-8")
    from_config = _args("train", "--config", str(config), "--output", str(tmp_path))
    assert cli.spec_from_args(from_config).data.mask_personal_data == ("phone",)
    wrong = _args("train", "--train", str(reviews), "--mask-personal-data", "email,ssn", "--output", str(tmp_path))
    with pytest.raises(ValueError, match="'ssn'; the kinds are email, phone, id, card, url"):
        cli.spec_from_args(wrong)


def test_inspect_counts_what_was_masked(reviews: Path, capsys):
    argv = ["inspect", "--train", str(reviews), "--base-model", "minilm-l6", "--mask-personal-data", "all"]
    assert cli.main([*argv, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["masked"] == {"email": 12, "phone": 12, "id": 0, "card": 0, "url": 0}
    assert sum(sum(c.values()) for c in summary["masked_per_split"].values()) == 24
    assert cli.main(argv) == 0
    assert "Personal data masked before training: 12 e-mail addresses as [EMAIL], 12 phone numbers" in (
        capsys.readouterr().out
    )


def test_the_train_tab_sends_the_ticked_kinds(ctx: AppContext, reviews: Path):  # noqa: F811 - the fixture
    values = train_inputs(
        dataset_id=uploaded(ctx, reviews),
        text_column="text",
        label_column="label",
        task="text-classification",
        base_model="minilm-l6",
        mask_personal_data=["phone", "email"],
    )
    spec, _ = train.spec_from(ctx, ctx.owner(None), values)
    assert JobSpec.from_dict(spec).data.mask_personal_data == ("email", "phone")
    _, command, spec_yaml = train.preview_spec(ctx, **values)
    assert "--mask-personal-data phone,email" in command and "mask_personal_data:" in spec_yaml
    unticked, _ = train.spec_from(ctx, ctx.owner(None), values | {"mask_personal_data": []})
    assert "mask_personal_data" not in unticked["data"]
