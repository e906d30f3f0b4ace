"""Chat data: formats, the assistant-only label mask, truncation, the summary, bad input and the split."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pytest

from engine.errors import DataError
from engine.spec import DataSpec
from engine.tasks.chat.data import (
    IGNORE_INDEX,
    ChatTemplateError,
    inspect_chat_data,
    load_chat_data,
    prompt_messages,
    tokenize_conversation,
    tokenize_text,
)

SUPPORT = Path(__file__).resolve().parents[3] / "fixtures" / "chat" / "support.jsonl"
END = "<|im_end|>"


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from engine.catalog import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model("smollm2-135m-instruct"))


def conversation(i: int, turns: int = 1, system: str | None = None) -> list[dict]:
    messages = [{"role": "system", "content": system}] if system else []
    for t in range(turns):
        messages += [
            {"role": "user", "content": f"question {t} about order {i}?"},
            {"role": "assistant", "content": f"Hi there! Answer {t} for order {i}."},
        ]
    return messages


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def chats(tmp_path: Path, conversations: list[list[dict]], name: str = "chats.jsonl") -> Path:
    return write_jsonl(tmp_path / name, [{"messages": c} for c in conversations])


def load(path: Path, **fields) -> object:
    return load_chat_data(DataSpec(train=str(path), **fields))


def labeled_spans(tokenizer, encoded: dict) -> list[str]:
    """The decoded runs of consecutive tokens that carry loss."""
    spans, current = [], []
    for token, label in zip(encoded["input_ids"], encoded["labels"], strict=True):
        if label != IGNORE_INDEX:
            assert label == token
            current.append(token)
        elif current:
            spans.append(tokenizer.decode(current))
            current = []
    if current:
        spans.append(tokenizer.decode(current))
    return spans


# --- formats -------------------------------------------------------------------------------------------------------


def test_messages_jsonl_fixture_loads_and_splits_80_10_10():
    data = load(SUPPORT)
    rows = [json.loads(line)["messages"] for line in SUPPORT.read_text(encoding="utf-8").splitlines()]
    assert data.kind == "conversations"
    assert (len(data.train), len(data.validation), len(data.test)) == (125, 16, 16)
    assert data.summary["conversations"] == len(rows) == 157
    assert data.train.column_names == ["messages"]
    first = data.train[0]["messages"]
    assert set(first[0]) == {"role", "content"} and first[-1]["role"] == "assistant"
    all_split = [m for split in (data.train, data.validation, data.test) for m in split["messages"]]
    assert sorted(map(json.dumps, all_split)) == sorted(map(json.dumps, rows))


def test_sharegpt_conversations_are_normalised(tmp_path):
    records = [
        {
            "id": i,
            "conversations": [
                {"from": "system", "value": "Be kind."},
                {"from": "human", "value": f"hello {i}"},
                {"from": "gpt", "value": f"Hi there! {i}"},
            ],
        }
        for i in range(5)
    ]
    data = load(write_jsonl(tmp_path / "sharegpt.jsonl", records))
    assert data.summary["columns"] == {"messages": "conversations"}
    messages = [m for split in (data.train, data.validation, data.test) for m in split["messages"]]
    assert messages[0] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "hello 0"},
        {"role": "assistant", "content": "Hi there! 0"},
    ]


def test_messages_json_array_and_mapped_column(tmp_path):
    path = tmp_path / "chats.json"
    path.write_text(json.dumps([{"dialogue": conversation(i)} for i in range(4)]), encoding="utf-8")
    data = load(path, messages_column="dialogue")
    assert data.kind == "conversations" and data.summary["examples"] == 4


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_messages_in_parquet_and_as_json_text_in_csv(tmp_path, suffix):
    conversations = [conversation(i, turns=2, system="Be brief.") for i in range(4)]
    path = tmp_path / f"chats.{suffix}"
    if suffix == "parquet":
        pd.DataFrame({"messages": conversations}).to_parquet(path)  # read back as numpy arrays of dicts
    else:
        pd.DataFrame({"messages": [json.dumps(c) for c in conversations]}).to_csv(path, index=False)
    data = load(path)
    loaded = [m for s in (data.train, data.validation, data.test) for m in s["messages"]]
    assert sorted(map(json.dumps, loaded)) == sorted(map(json.dumps, conversations))


def test_instruction_csv_with_input_becomes_user_and_assistant_turns(tmp_path):
    path = tmp_path / "pairs.csv"
    pd.DataFrame(
        {
            "instruction": [f"Summarise ticket {i}" for i in range(6)],
            "input": ["The app crashed." if i % 2 else "" for i in range(6)],
            "output": [f"Summary {i}" for i in range(6)],
        }
    ).to_csv(path, index=False)
    data = load(path)
    assert data.kind == "instructions"
    assert data.summary["columns"] == {"instruction": "instruction", "input": "input", "output": "output"}
    messages = sorted((m for s in (data.train, data.validation, data.test) for m in s["messages"]), key=json.dumps)
    contents = {m[0]["content"]: m[1]["content"] for m in messages}
    assert contents["Summarise ticket 1\n\nThe app crashed."] == "Summary 1"
    assert contents["Summarise ticket 0"] == "Summary 0"
    assert all([turn["role"] for turn in m] == ["user", "assistant"] for m in messages)


def test_instruction_columns_guessed_without_input_and_mapped_by_name(tmp_path):
    path = write_jsonl(tmp_path / "qa.jsonl", [{"question": f"q{i}", "answer": f"a{i}", "id": i} for i in range(5)])
    data = load(path)
    assert data.summary["columns"] == {"instruction": "question", "input": None, "output": "answer"}
    path = tmp_path / "mapped.csv"
    pd.DataFrame({"ask": [f"q{i}" for i in range(5)], "reply": [f"a{i}" for i in range(5)]}).to_csv(path, index=False)
    data = load(path, instruction_column="ask", output_column="reply")
    assert data.summary["columns"]["instruction"] == "ask" and data.summary["examples"] == 5


def test_plain_text_paragraphs_become_documents(tmp_path):
    paragraphs = [f"Paragraph {i} about the Quillmate sync engine.\nIt has two lines." for i in range(10)]
    path = tmp_path / "manual.txt"
    path.write_text("\n\n\n".join(paragraphs) + "\n", encoding="utf-8")
    data = load(path)
    assert data.kind == "text" and data.train.column_names == ["text"]
    assert data.summary["documents"] == 10
    assert sorted([*data.train["text"], *data.validation["text"], *data.test["text"]]) == sorted(paragraphs)
    markdown = tmp_path / "notes.md"
    markdown.write_text("# Title\n\nFirst part.\n\nSecond part.\n", encoding="utf-8")
    assert load(markdown).summary["documents"] == 3
    # Format "text" reads any file name as plain text.
    assert load(markdown, format="text").kind == "text"


def test_txt_with_a_chat_header_is_a_table(tmp_path):
    path = tmp_path / "pairs.txt"
    pd.DataFrame({"prompt": ["a", "b", "c"], "response": ["x", "y", "z"]}).to_csv(path, index=False, sep="\t")
    assert load(path).kind == "instructions"


def test_separate_validation_and_test_files_are_used_whole(tmp_path):
    train = chats(tmp_path, [conversation(i) for i in range(8)], "train.jsonl")
    val = chats(tmp_path, [conversation(100 + i) for i in range(2)], "val.jsonl")
    test = chats(tmp_path, [conversation(200 + i) for i in range(3)], "test.jsonl")
    data = load(train, validation=str(val), test=str(test))
    assert (len(data.train), len(data.validation), len(data.test)) == (8, 2, 3)
    assert data.summary["splits"]["test"]["source"] == "file"


# --- the label mask -------------------------------------------------------------------------------------------------


def test_only_assistant_tokens_carry_loss_in_a_multi_turn_conversation(tokenizer):
    messages = [
        {"role": "system", "content": "You are Ava from Quillmate support."},
        {"role": "user", "content": "My notes do not sync."},
        {"role": "assistant", "content": "Hi there! Press Sync now.\n\n— Ava from Support"},
        {"role": "user", "content": "Still broken, what next?"},
        {"role": "assistant", "content": "Sign out and back in.\n\n— Ava from Support"},
    ]
    encoded = tokenize_conversation(tokenizer, messages, max_length=512)
    assert labeled_spans(tokenizer, encoded) == [
        "Hi there! Press Sync now.\n\n— Ava from Support" + END,
        "Sign out and back in.\n\n— Ava from Support" + END,
    ]
    unlabeled = tokenizer.decode(
        [t for t, lab in zip(encoded["input_ids"], encoded["labels"], strict=True) if lab == IGNORE_INDEX]
    )
    for text in ("You are Ava from Quillmate support.", "My notes do not sync.", "Still broken, what next?"):
        assert text in unlabeled
    assert "<|im_start|>assistant\n" in unlabeled  # the assistant header carries no loss
    assert tokenizer.decode(encoded["input_ids"]) == tokenizer.apply_chat_template(messages, tokenize=False)
    assert encoded["attention_mask"] == [1] * len(encoded["input_ids"])


def test_default_system_prompt_of_the_template_carries_no_loss(tokenizer):
    messages = [{"role": "user", "content": "Hello?"}, {"role": "assistant", "content": "Hi there!"}]
    encoded = tokenize_conversation(tokenizer, messages, max_length=512)
    assert "SmolLM" in tokenizer.decode(encoded["input_ids"])  # the template injected its own system prompt
    assert labeled_spans(tokenizer, encoded) == ["Hi there!" + END]


def test_generation_markers_give_the_same_mask_as_prefix_rendering(tokenizer):
    marked = copy.copy(tokenizer)
    marked.chat_template = (
        "{% for message in messages %}{% if message['role'] == 'assistant' %}"
        "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
        "{{ '\n' }}{% else %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
        "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )
    plain = copy.copy(tokenizer)
    plain.chat_template = marked.chat_template.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    messages = conversation(1, turns=3, system="Be brief.")
    marked_out = marked.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)
    assert any(marked_out["assistant_masks"])  # transformers reads the markers: that path is the one under test
    with_markers = tokenize_conversation(marked, messages, max_length=512)
    assert with_markers == tokenize_conversation(plain, messages, max_length=512)
    assert labeled_spans(tokenizer, with_markers) == [m["content"] + END for m in messages if m["role"] == "assistant"]


def test_template_that_rewrites_earlier_turns_is_refused(tokenizer):
    rewriting = copy.copy(tokenizer)
    # Like templates that drop reasoning from earlier turns: the last answer renders differently from earlier ones.
    rewriting.chat_template = (
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' }}"
        "{% if message['role'] == 'assistant' and not loop.last %}{{ message['content'][:3] }}"
        "{% else %}{{ message['content'] }}{% endif %}{{ '<|im_end|>\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )
    with pytest.raises(ChatTemplateError, match="does not render conversations prefix by prefix"):
        tokenize_conversation(rewriting, conversation(1, turns=2), max_length=512)


def test_truncation_keeps_lengths_within_max_length(tokenizer):
    messages = conversation(7, turns=6, system="A long system prompt. " * 5)
    full = tokenize_conversation(tokenizer, messages, max_length=10_000)
    assert len(full["input_ids"]) > 64
    short = tokenize_conversation(tokenizer, messages, max_length=64)
    assert len(short["input_ids"]) == len(short["labels"]) == len(short["attention_mask"]) == 64
    assert short["labels"] == full["labels"][:64]


def test_tokenize_text_chunks_with_labels_equal_to_ids(tokenizer):
    text = "Quillmate keeps notes in sync across devices. " * 20
    chunks = tokenize_text(tokenizer, text, max_length=32)
    assert len(chunks) > 2
    assert all(len(c["input_ids"]) <= 32 and c["labels"] == c["input_ids"] for c in chunks)
    joined = [t for c in chunks for t in c["input_ids"]]
    expected = tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]
    assert joined == expected[: len(joined)] and len(expected) - len(joined) <= 1


def test_prompt_messages_splits_off_the_last_answer():
    messages = conversation(3, turns=2, system="S")
    prompt, reference = prompt_messages(messages)
    assert prompt == messages[:-1] and reference == "Hi there! Answer 1 for order 3."
    with pytest.raises(ValueError, match="no assistant turn"):
        prompt_messages([{"role": "user", "content": "hi"}])


# --- summary -------------------------------------------------------------------------------------------------------


def test_summary_counts_turns_lengths_and_truncation(tmp_path, tokenizer):
    long_answer = "word " * 300
    conversations = [conversation(i, turns=1 + i % 2, system="Be brief." if i < 3 else None) for i in range(10)]
    conversations[0] = [{"role": "user", "content": "long one " * 200}, {"role": "assistant", "content": "ok"}]
    conversations[1] = [{"role": "user", "content": "short"}, {"role": "assistant", "content": long_answer}]
    summary = inspect_chat_data(
        DataSpec(train=str(chats(tmp_path, conversations))), tokenizer=tokenizer, max_length=128
    )
    assert summary["conversations"] == 10
    assert summary["turns"] == {"total": 29, "system": 1, "user": 14, "assistant": 14}
    assert summary["multi_turn"] == 4 and summary["with_system_prompt"] == 1
    lengths = summary["length_tokens"]
    assert lengths["unit"] == "tokens" and lengths["p50"] <= lengths["p90"] <= lengths["max"]
    assert lengths["max"] == len(tokenizer.apply_chat_template(conversations[0], tokenize=True)["input_ids"])
    # Both long conversations are truncated; only the first loses its whole (only) answer.
    assert summary["truncated"] == {
        "count": 2,
        "max_length": 128,
        "unit": "tokens",
        "last_answer_lost": 1,
        "no_answer_left": 1,
    }
    assert any("lose their whole last assistant answer" in n for n in summary["notices"])
    assert any("default system prompt to the 9 conversation(s)" in n for n in summary["notices"])


def test_summary_without_tokenizer_estimates_tokens_and_counts_dropped_rows(tmp_path):
    records = [{"messages": conversation(i)} for i in range(6)]
    records += [{"messages": []}, {"other": 1}, {"messages": conversation(0)}]
    summary = inspect_chat_data(DataSpec(train=str(write_jsonl(tmp_path / "c.jsonl", records))), max_length=5)
    assert summary["length_tokens"]["unit"] == "tokens (estimated)"  # the unit max_length is in, as for chat jobs
    assert summary["dropped"] == {"empty conversation": 1, "no messages": 1}
    assert summary["duplicates"]["exact"] == 1
    assert summary["truncated"]["count"] == 7  # every conversation has 11 words
    assert summary["files"][0]["rows_read"] == 9 and summary["examples"] == 7
    assert any("dropped 1 row(s): empty conversation" in n for n in summary["notices"])


def test_blank_instruction_rows_are_dropped_with_a_reason(tmp_path):
    path = tmp_path / "pairs.csv"
    pd.DataFrame({"prompt": ["a", "", "c", "d", "e"], "completion": ["1", "2", "", "4", "5"]}).to_csv(
        path, index=False
    )
    summary = load(path).summary
    assert summary["dropped"] == {"blank instruction in 'prompt'": 1, "blank output in 'completion'": 1}
    assert summary["examples"] == 3


# --- bad input -----------------------------------------------------------------------------------------------------


def test_unknown_role_names_role_line_and_allowed_roles(tmp_path):
    records = [{"messages": conversation(i)} for i in range(3)]
    records[2]["messages"][0]["role"] = "bot"
    path = write_jsonl(tmp_path / "c.jsonl", records)
    path.write_text("\n" + path.read_text(encoding="utf-8"), encoding="utf-8")  # a blank first line shifts lines
    with pytest.raises(
        DataError, match=r"c\.jsonl line 4: unknown role 'bot' in message 1; allowed roles are system, "
    ):
        load(path)


def test_empty_assistant_turn_is_refused(tmp_path):
    bad = conversation(1, turns=2)
    bad[1]["content"] = "  "
    with pytest.raises(DataError, match="line 2: message 2 is an empty assistant turn"):
        load(chats(tmp_path, [conversation(0), bad, conversation(2)]))


def test_conversation_must_end_with_an_assistant_turn(tmp_path):
    bad = [*conversation(1), {"role": "user", "content": "and?"}]
    with pytest.raises(DataError, match="line 3 does not end with an assistant turn .*last message is a user turn"):
        load(chats(tmp_path, [conversation(0), conversation(2), bad]))


def test_conversation_must_not_start_with_the_assistant(tmp_path):
    bad = [{"role": "assistant", "content": "Hi!"}, *conversation(1)]
    with pytest.raises(DataError, match="line 1 starts with an assistant turn"):
        load(chats(tmp_path, [bad, conversation(2), conversation(3)]))


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ("hello there", r"record 1: malformed messages: expected a list of \{\"role\""),
        ([{"text": "hi"}], "message 1 is .*expected a list of"),
        ([{"role": "user", "content": ["a"]}], "needs a text role and text content"),
        ('[{"role": "user"', "the text is not valid JSON"),
    ],
)
def test_malformed_messages_are_explained(tmp_path, messages, match):
    path = tmp_path / "c.csv"
    pd.DataFrame({"messages": [json.dumps(messages) if not isinstance(messages, str) else messages]}).to_csv(
        path, index=False
    )
    if isinstance(messages, list):
        path = write_jsonl(tmp_path / "c.jsonl", [{"messages": messages}])
        match = match.replace("record 1", "line 1")
    with pytest.raises(DataError, match=match):
        load(path)


def test_file_without_any_usable_example(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"messages": []}, {"messages": None}])
    with pytest.raises(
        DataError, match="c.jsonl has no usable example: of 2 rows, dropped: 1 with empty conversation"
    ):
        load(path)


def test_missing_instruction_or_output_columns_are_listed(tmp_path):
    path = tmp_path / "pairs.csv"
    pd.DataFrame({"prompt": ["a", "b", "c"], "notes": ["x", "y", "z"]}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"no output column \(output/response/answer/completion\); columns are "):
        load(path)
    with pytest.raises(
        DataError, match=r"output column 'reply' not found in pairs.csv; columns are \['prompt', 'notes'"
    ):
        load(path, output_column="reply")


def test_fewer_than_three_examples_cannot_be_split(tmp_path):
    with pytest.raises(DataError, match="too few examples to split: chats.jsonl has 2 usable example"):
        load(chats(tmp_path, [conversation(0), conversation(1)]))


def test_tokenizer_without_chat_template_is_refused(tmp_path, tokenizer):
    bare = copy.copy(tokenizer)
    bare.chat_template = None
    with pytest.raises(ChatTemplateError, match="has no chat template"):
        load_chat_data(DataSpec(train=str(chats(tmp_path, [conversation(i) for i in range(3)]))), tokenizer=bare)


# --- split ---------------------------------------------------------------------------------------------------------


def test_split_is_deterministic_and_disjoint(tmp_path):
    path = chats(tmp_path, [conversation(i) for i in range(40)])

    def split(seed: int) -> list[list[str]]:
        data = load_chat_data(DataSpec(train=str(path)), seed=seed)
        return [[json.dumps(m) for m in s["messages"]] for s in (data.train, data.validation, data.test)]

    first = split(42)
    assert first == split(42)
    assert first != split(7)
    assert [len(s) for s in first] == [32, 4, 4]
    assert len({m for s in first for m in s}) == 40


def test_mask_matches_every_assistant_turn_of_the_fixture(tokenizer):
    data = load_chat_data(DataSpec(train=str(SUPPORT)), tokenizer=tokenizer, max_length=512)
    for messages in data.train["messages"]:
        encoded = tokenize_conversation(tokenizer, messages, max_length=512)
        assert labeled_spans(tokenizer, encoded) == [m["content"] + END for m in messages if m["role"] == "assistant"]
