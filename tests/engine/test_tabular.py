"""Decoding uploads saved in the code pages real spreadsheets use: each is read exactly, a guess is shown with
samples, and the user's own encoding overrides the guess."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.encodings import decode_text, sample_lines
from engine.errors import DataError
from engine.spec import DataSpec
from engine.tabular import read_table

# Long reviews as people write them, one per language, with the characters that rarer code pages get wrong.
REVIEWS = {
    "cp1252": "Très déçu : le café était tiède, le serveur n'a pas daigné s'excuser et l'addition était salée. "
    "Seule la crème brûlée, parfaite, sauve un peu la soirée ; ça ne vaut pas le détour, hélas.",
    "latin_1": "El niño comió piñata y la canción fue increíble; mañana iremos a São Paulo, ¿verdad? ¡Qué señor "
    "más amable! La habitación era pequeña pero limpísima, y el desayuno, con zumo recién exprimido, excelente.",
    "gb18030": "这件羽绒服质量很好，物流也很快，包装完好，五星好评！不过尺码偏小，建议买大一号。"
    "穿了一个冬天也没有跑绒，客服态度也不错，下次还会再来。",
    "shift_jis": "この商品はとても良かったです。配送も早く、梱包も丁寧でした。サイズは少し小さめなので、"
    "一つ大きいサイズをおすすめします。また購入したいと思います。",
    "big5": "這件衣服品質很好，物流也很快，包裝完好，五星好評！不過尺碼偏小，建議買大一號。"
    "客服態度也不錯，下次還會再來。",
    "euc_kr": "이 제품은 정말 좋았습니다. 배송도 빠르고 포장도 꼼꼼했어요. 사이즈가 조금 작으니 한 치수 큰 것을 "
    "추천합니다. 다시 구매하고 싶습니다.",
    "cp1250": "Bardzo dobra jakość, szybka dostawa i świetny kontakt ze sprzedawcą. Polecam każdemu, żółta "
    "kurtka leży idealnie, choć rękawy są trochę za długie.",
    "cp1251": "Очень доволен покупкой: доставка быстрая, упаковка надёжная, продавец вежливый. Рекомендую всем "
    "друзьям, куртка тёплая и лёгкая.",
}


def _csv(text: str, rows: int = 30) -> str:
    return "id,avis,note\r\n" + "".join(f'{i},"{text} ({i})",{"pos" if i % 3 else "neg"}\r\n' for i in range(rows))


@pytest.mark.parametrize("encoding", sorted(REVIEWS))
def test_a_file_in_a_common_code_page_is_decoded_exactly_and_the_guess_shown_with_samples(tmp_path, encoding):
    body = _csv(REVIEWS[encoding])
    text, used, [notice] = decode_text(body.encode(encoding), tmp_path / "avis.csv")
    assert text == body  # not one character changed
    # Latin-1 text is also valid Windows-1252, which is what such files nearly always are.
    assert used == ("cp1252" if encoding == "latin_1" else encoding)
    assert "(not UTF-8): check that accents and characters look right, e.g. “" in notice
    assert REVIEWS[encoding][:12] in notice  # the decoded sample a person checks the guess by
    assert notice.endswith("if they don't, pick the file's encoding")


def test_the_users_encoding_overrides_the_guess_and_a_wrong_one_says_what_to_do(tmp_path):
    path = tmp_path / "avis.csv"
    path.write_bytes(_csv(REVIEWS["cp1250"]).encode("cp1250"))
    table = read_table(path, encoding="cp1250")
    assert table.encoding == "cp1250" and table.notices == []  # chosen, so no guess to check
    assert table.frame["avis"].iloc[0] == REVIEWS["cp1250"] + " (0)"
    with pytest.raises(DataError, match=r"avis.csv is not valid utf-8: the bytes at position \d+ \(\w\w"):
        read_table(path, encoding="utf-8")
    with pytest.raises(DataError, match="unknown encoding 'klingon'"):
        read_table(path, encoding="klingon")
    utf8 = tmp_path / "bom.csv"
    utf8.write_bytes(b"\xef\xbb\xbf" + _csv("ok").encode())
    assert list(read_table(utf8, encoding="utf-8").frame.columns) == ["id", "avis", "note"]  # the BOM is dropped


def test_the_spec_names_encodings_the_way_python_does_and_refuses_unknown_ones():
    assert DataSpec(train="a.csv", encoding="Latin-1").encoding == "iso8859-1"
    assert DataSpec(train="a.csv", encoding="GBK").encoding == "gbk"
    assert DataSpec(train="a.csv", encoding=" ").encoding is None
    with pytest.raises(ValueError, match="unknown encoding 'utf-9'; use a name such as utf-8, cp1252"):
        DataSpec(train="a.csv", encoding="utf-9")


def test_samples_are_cut_around_the_first_non_ascii_character():
    long = "x" * 200 + " déçu " + "y" * 200
    [sample] = sample_lines(f"plain ascii\n{long}\n")
    assert sample.startswith("…") and sample.endswith("…") and "déçu" in sample and len(sample) <= 62
    assert sample_lines("only ascii here\n") == []
    assert len(sample_lines("é\n" * 10)) == 3


def test_a_broken_chat_line_is_explained_in_plain_words_with_the_files_own_record_shape(tmp_path):
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "chat" / "zh_support.jsonl"
    lines = fixture.read_text(encoding="utf-8").splitlines()[:5]
    lines[3] = lines[3][:-2]  # a multi-turn chat cut short, as a bad copy-paste leaves it
    path = tmp_path / "chats.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_table(path)
    message = str(caught.value)
    assert message.startswith("chats.jsonl line 4, column ")
    assert "is not valid JSON: " in message and "Expecting" not in message  # json's own words are translated
    assert message.endswith('each line must hold one JSON object like the lines before it ({"messages": …})')
    assert '"text"' not in message  # not the classification format
