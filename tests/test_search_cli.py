"""`paraxl index build|add` and `paraxl search` with the tiny model; the corpus reader; one real-model test."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from paraxl.cli.main import app
from paraxl.errors import InputError
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.serving.corpus import read_corpus
from paraxl.serving.index import VectorIndex

from .tiny import save_tiny

runner = CliRunner()
SENTENCES = {
    "a": "the cat sat on the mat",
    "b": "the dog ran",
    "c": "le chat",
    "d": "der hund",
    "e": "the cat ran on the mat",
    "f": "dog sat",
}


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.tsv"
    path.write_text("id\ttext\n" + "".join(f"{key}\t{text}\n" for key, text in SENTENCES.items()), encoding="utf-8")
    return path


@pytest.fixture()
def built(corpus: Path, tiny_model_dir: Path, tmp_path: Path) -> Path:
    index_dir = tmp_path / "ix"
    code, out, err = run(
        "index", "build", str(corpus), "-o", str(index_dir), "-m", str(tiny_model_dir), "--id-column", "id"
    )
    assert code == 0, err
    assert "indexed 6 texts (exact index, 32-d)" in out
    return index_dir


def test_build_records_the_model_and_search_finds_the_identical_sentence(built: Path, tiny_model_dir: Path) -> None:
    info = VectorIndex.load(built).info
    assert info.model == str(tiny_model_dir.resolve()) and info.prompt_name == "query"
    assert info.model_fingerprint == BiEncoder.load(tiny_model_dir).fingerprint
    assert info.inference_backend == "torch" and info.count == 6
    code, out, err = run("search", str(built), "the dog ran", "-k", "3", "--json")
    assert code == 0, err
    hits = [json.loads(line) for line in out.splitlines()]
    assert len(hits) == 3 and [hit["rank"] for hit in hits] == [1, 2, 3]
    assert hits[0]["id"] == "b" and hits[0]["text"] == "the dog ran"
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
    # the scores are the model's cosines (query prompt on both sides)
    encoder = BiEncoder.load(tiny_model_dir)
    query, target = encoder.encode(["the dog ran", SENTENCES[hits[1]["id"]]], prompt_name="query")
    assert hits[1]["score"] == pytest.approx(float(query @ target), abs=1e-5)
    code, out, err = run("search", str(built), "der hund", "-k", "2")
    assert code == 0, err
    assert "der hund" in out and "1.0000" in out  # the rich table


def test_queries_file_writes_a_tsv_of_hits(built: Path, tmp_path: Path) -> None:
    queries = tmp_path / "queries.txt"
    queries.write_text("le chat\nthe cat sat on the mat\ndog sat\n", encoding="utf-8")
    target = tmp_path / "hits.tsv"
    code, out, err = run("search", str(built), "--queries", str(queries), "-k", "2", "-o", str(target))
    assert code == 0, err
    assert "wrote 6 hits for 3 queries" in out
    rows = [line.split("\t") for line in target.read_text(encoding="utf-8").splitlines()]
    assert rows[0] == ["query", "rank", "id", "score", "text"]
    firsts = {row[0]: row for row in rows[1:] if row[1] == "1"}
    assert {query: row[2] for query, row in firsts.items()} == {
        "le chat": "c",
        "the cat sat on the mat": "a",
        "dog sat": "f",
    }
    assert all(float(row[3]) == pytest.approx(1.0, abs=1e-4) for row in firsts.values())
    assert len(rows) == 7
    code, out, _ = run("search", str(built), "--queries", str(queries), "-k", "1")  # TSV on stdout
    assert code == 0 and out.splitlines()[0] == "query\trank\tid\tscore\ttext" and len(out.splitlines()) == 4
    jsonl = tmp_path / "hits.jsonl"
    code, _, err = run("search", str(built), "--queries", str(queries), "-k", "1", "-o", str(jsonl))
    assert code == 0, err
    assert [json.loads(line)["id"] for line in jsonl.read_text().splitlines()] == ["c", "a", "f"]


def test_index_add_appends_with_the_recorded_model_and_rejects_known_ids(built: Path, tmp_path: Path) -> None:
    more = tmp_path / "more.jsonl"
    more.write_text(json.dumps({"id": 7, "text": "le chat sat\ton the mat"}) + "\n", encoding="utf-8")
    code, out, err = run("index", "add", str(built), str(more), "--id-column", "id")
    assert code == 0, err
    assert "added 1 texts" in out and "7 in all" in out
    code, out, err = run("search", str(built), "le chat sat\ton the mat", "-k", "1", "--json")
    assert code == 0, err
    hit = json.loads(out)
    assert hit["id"] == "7" and hit["text"] == "le chat sat\ton the mat"
    before = (built / "items.jsonl").read_bytes()
    code, out, err = run("index", "add", str(built), str(more), "--id-column", "id")
    assert code == 2 and err.strip() == "error: duplicate id '7' (already in the index)"
    assert (built / "items.jsonl").read_bytes() == before  # nothing changed
    lines = tmp_path / "lines.txt"
    lines.write_text("the mat\n")
    code, _, err = run("index", "add", str(built), str(lines), "--id-prefix", "lines:")
    assert code == 0, err
    assert VectorIndex.load(built).ids[-1] == "lines:1"


def test_rebuild_changes_the_index_type_without_re_embedding(built: Path, tmp_path: Path) -> None:
    before = VectorIndex.load(built)
    code, out, err = run("index", "rebuild", str(built), "--index-type", "ivf", "--nlist", "2", "--nprobe", "2")
    assert code == 0, err
    assert "rebuilt 6 items (ivf index)" in out
    after = VectorIndex.load(built)
    assert after.info.backend_params["nlist"] == 2 and after.info.model_fingerprint == before.info.model_fingerprint
    np.testing.assert_allclose(after.vectors(), before.vectors(), atol=1e-7)
    assert [hit.id for hit in after.search(before.vectors(), 1)[0]] == ["a"]
    more = tmp_path / "more.txt"
    more.write_text("the mat\n")
    code, _, err = run("index", "add", str(built), str(more), "--id-prefix", "m")
    assert code == 0 and "not retrained on add" in err
    code, out, err = run("index", "rebuild", str(built), "-o", str(tmp_path / "copy"), "--index-type", "hnsw")
    assert code == 0, err
    assert VectorIndex.load(tmp_path / "copy").info.backend == "hnsw" and len(VectorIndex.load(built)) == 7


def test_the_table_shows_texts_literally(built: Path, tmp_path: Path) -> None:
    more = tmp_path / "more.txt"
    more.write_text("[bold]the mat[/bold]\n")
    assert run("index", "add", str(built), str(more), "--id-prefix", "x")[0] == 0
    code, out, err = run("search", str(built), "[bold]the mat[/bold]", "-k", "1")
    assert code == 0, err
    assert "[bold]the mat[/bold]" in out  # not swallowed as rich markup


def test_a_different_query_model_is_refused_unless_allowed(built: Path, tmp_path: Path) -> None:
    other = save_tiny(tmp_path / "other", seed=1)
    code, out, err = run("search", str(built), "the cat", "-m", str(other))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "--allow-model-mismatch" in err and "fingerprint" in err
    code, out, err = run("search", str(built), "the cat", "-m", str(other), "--allow-model-mismatch", "--json")
    assert code == 0 and "model mismatch allowed" in err
    assert len(out.splitlines()) == 6
    more = tmp_path / "more.txt"
    more.write_text("the mat\n")
    code, _, err = run("index", "add", str(built), str(more), "-m", str(other))  # adding: never allowed
    assert code == 2 and "fingerprint" in err


def test_the_recorded_prompt_is_used_for_queries(corpus: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "ix"
    code, _, err = run(
        "index", "build", str(corpus), "-o", str(index_dir), "-m", str(tiny_model_dir),
        "--id-column", "id", "--prompt-name", "passage", "--index-type", "hnsw", "--ef-search", "40",
    )  # fmt: skip
    assert code == 0, err
    info = VectorIndex.load(index_dir).info
    assert info.prompt_name == "passage" and info.backend == "hnsw" and info.backend_params["ef_search"] == 40
    encoder = BiEncoder.load(tiny_model_dir)
    vectors = encoder.encode(["the dog ran", "le chat"], prompt_name="passage")
    code, out, err = run("search", str(index_dir), "le chat", "-k", "6", "--json")
    assert code == 0, err
    scores = {json.loads(line)["id"]: json.loads(line)["score"] for line in out.splitlines()}
    assert scores["b"] == pytest.approx(float(vectors[0] @ vectors[1]), abs=1e-5)
    code, _, err = run("search", str(index_dir), "le chat", "--prompt-name", "nope")
    assert code == 2 and "unknown prompt name 'nope'" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "{ix}"], "give either a query or --queries FILE"),
        (["search", "{ix}", "   "], "empty query"),
        (["search", "{ix}", "x", "-o", "{tmp}/hits.csv"], "output must be a .tsv or .jsonl file"),
        (["search", "{tmp}/nowhere", "x"], "no such index folder"),
        (["index", "build", "{tmp}/corpus.tsv", "-o", "{tmp}/new", "--index-type", "annoy"], "unknown --index-type"),
        (["index", "build", "{tmp}/corpus.tsv", "-o", "{tmp}", "-m", "{model}"], "is not a paraxl index"),
        (["index", "build", "{tmp}/corpus.tsv", "-o", "{tmp}/new", "-m", "{model}", "--prompt-name", "x"],
         "unknown prompt"),
        (["index", "build", "{tmp}/corpus.tsv", "-o", "{tmp}/new", "-m", "{model}", "--nprobe", "4"], "takes no param"),
    ],
)  # fmt: skip
def test_bad_requests_are_one_line_errors(
    args: list[str], message: str, built: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    filled = [arg.format(ix=built, tmp=tmp_path, model=tiny_model_dir) for arg in args]
    code, _, err = run(*filled)
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "new").exists()


def test_a_bad_corpus_or_damaged_index_leaves_nothing_behind(built: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("id\ttext\n1\tthe cat\n2\t  \n", encoding="utf-8")
    code, _, err = run("index", "build", str(bad), "-o", str(tmp_path / "new"), "-m", str(tiny_model_dir))
    assert code == 2 and "bad.tsv:3: empty text" in err
    assert not (tmp_path / "new").exists() and not list(tmp_path.glob(".new*"))
    (built / "vectors.npy").unlink()
    code, _, err = run("search", str(built), "the cat")
    assert code == 2 and "vectors.npy: missing index file" in err


def test_read_corpus_ids_from_columns_or_line_numbers(tmp_path: Path) -> None:
    txt = tmp_path / "c.txt"
    txt.write_text("one\ttab\ntwo\n", encoding="utf-8")
    assert read_corpus(txt) == (["1", "2"], ["one\ttab", "two"])
    assert read_corpus(txt, id_prefix="x-") == (["x-1", "x-2"], ["one\ttab", "two"])
    tsv = tmp_path / "c.tsv"
    tsv.write_text("key\tsentence\tother\nk1\thello\tz\nk2\tworld\tz\n", encoding="utf-8")
    assert read_corpus(tsv, column="sentence", id_column="key") == (["k1", "k2"], ["hello", "world"])
    assert read_corpus(tsv, column="sentence") == (["2", "3"], ["hello", "world"])  # physical line numbers
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text('{"id": 5, "text": "a\\nb"}\n{"id": "x", "text": "c"}\n', encoding="utf-8")
    assert read_corpus(jsonl, id_column="id") == (["5", "x"], ["a\nb", "c"])
    only = tmp_path / "only.tsv"
    only.write_text("sentence\nhello\n", encoding="utf-8")
    assert read_corpus(only) == (["2"], ["hello"])


@pytest.mark.parametrize(
    ("name", "content", "kwargs", "message"),
    [
        ("d.tsv", "id\ttext\na\tx\nb\ty\na\tz\n", {"id_column": "id"}, "d.tsv:4: duplicate id 'a' (first on line 2)"),
        ("e.tsv", "id\ttext\n\tx\n", {"id_column": "id"}, "e.tsv:2: empty id"),
        ("f.txt", "x\n", {"id_column": "id"}, "--id-column needs a tsv or jsonl corpus"),
        ("g.tsv", "id\ttext\n", {}, "g.tsv: no texts found"),
        ("h.tsv", "id\ttext\na\tx\n", {"id_column": "key"}, "no column 'key'"),
        ("i.jsonl", '{"text": "x"}\n', {"id_column": "id"}, "i.jsonl:1: no key 'id'"),
    ],
)
def test_read_corpus_errors(name: str, content: str, kwargs: dict[str, str], message: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_corpus(path, **kwargs)  # type: ignore[arg-type]
    assert message in str(caught.value)


# 50 English sentences and their Portuguese translations (written for this test)
PARALLEL = [
    ("The weather is lovely today.", "O tempo está ótimo hoje."),
    ("Where is the train station?", "Onde fica a estação de trem?"),
    ("I would like a cup of coffee.", "Eu gostaria de uma xícara de café."),
    ("My brother lives in London.", "Meu irmão mora em Londres."),
    ("The children are playing in the park.", "As crianças estão brincando no parque."),
    ("She reads a book every week.", "Ela lê um livro toda semana."),
    ("How much does this shirt cost?", "Quanto custa esta camisa?"),
    ("We missed the last bus home.", "Perdemos o último ônibus para casa."),
    ("The doctor said I need more sleep.", "O médico disse que preciso dormir mais."),
    ("Please close the window, it is cold.", "Por favor, feche a janela, está frio."),
    ("The museum opens at nine in the morning.", "O museu abre às nove da manhã."),
    ("He forgot his umbrella at the office.", "Ele esqueceu o guarda-chuva no escritório."),
    ("Our team won the football match.", "Nosso time ganhou a partida de futebol."),
    ("The soup is too salty.", "A sopa está salgada demais."),
    ("I am learning to play the guitar.", "Estou aprendendo a tocar violão."),
    ("The price of bread has gone up again.", "O preço do pão subiu de novo."),
    ("They are getting married next summer.", "Eles vão se casar no próximo verão."),
    ("The cat is sleeping on the sofa.", "O gato está dormindo no sofá."),
    ("Can you help me carry these boxes?", "Você pode me ajudar a carregar estas caixas?"),
    ("The meeting was moved to Friday.", "A reunião foi transferida para sexta-feira."),
    ("My phone battery is almost empty.", "A bateria do meu celular está quase acabando."),
    ("The river flooded the small village.", "O rio inundou a pequena aldeia."),
    ("She speaks three languages fluently.", "Ela fala três idiomas fluentemente."),
    ("The restaurant is closed on Mondays.", "O restaurante fecha às segundas-feiras."),
    ("I lost my keys yesterday.", "Perdi minhas chaves ontem."),
    ("The flight to Lisbon was delayed.", "O voo para Lisboa atrasou."),
    ("Vegetables are good for your health.", "Os legumes fazem bem à saúde."),
    ("The teacher explained the lesson again.", "A professora explicou a lição de novo."),
    ("We planted tomatoes in the garden.", "Plantamos tomates no jardim."),
    ("The hospital needs more nurses.", "O hospital precisa de mais enfermeiros."),
    ("He runs five kilometres every morning.", "Ele corre cinco quilômetros todas as manhãs."),
    ("The library has thousands of old books.", "A biblioteca tem milhares de livros antigos."),
    ("It rained all weekend.", "Choveu o fim de semana inteiro."),
    ("The company hired twenty new workers.", "A empresa contratou vinte novos funcionários."),
    ("I need to buy a new pair of shoes.", "Preciso comprar um par de sapatos novos."),
    ("The baby started crying at midnight.", "O bebê começou a chorar à meia-noite."),
    ("The bridge was built a hundred years ago.", "A ponte foi construída há cem anos."),
    ("Turn left at the next traffic light.", "Vire à esquerda no próximo semáforo."),
    ("The film was longer than I expected.", "O filme foi mais longo do que eu esperava."),
    ("My grandmother bakes delicious cakes.", "Minha avó faz bolos deliciosos."),
    ("The police arrested two suspects.", "A polícia prendeu dois suspeitos."),
    ("The sea is calm this evening.", "O mar está calmo esta noite."),
    ("He painted the kitchen walls blue.", "Ele pintou as paredes da cozinha de azul."),
    ("The students are preparing for the exam.", "Os alunos estão se preparando para a prova."),
    ("We watched the sunset from the hill.", "Assistimos ao pôr do sol do alto da colina."),
    ("The computer will not turn on.", "O computador não liga."),
    ("Fresh fruit is sold at the market.", "Frutas frescas são vendidas na feira."),
    ("The dog barked at the postman.", "O cachorro latiu para o carteiro."),
    ("She is writing a letter to her friend.", "Ela está escrevendo uma carta para a amiga."),
    ("The concert tickets sold out quickly.", "Os ingressos do show esgotaram rapidamente."),
]


@pytest.mark.real_model
def test_real_model_finds_english_sentences_from_portuguese_queries(paraxl_cache: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "english.tsv"
    corpus.write_text("id\ttext\n" + "".join(f"en{i}\t{en}\n" for i, (en, _) in enumerate(PARALLEL)), encoding="utf-8")
    queries = tmp_path / "portuguese.txt"
    queries.write_text("".join(f"{pt}\n" for _, pt in PARALLEL), encoding="utf-8")
    spec = "bundled:multilingual-e5-small-enpt"
    code, _, err = run("index", "build", str(corpus), "-o", str(tmp_path / "ix"), "-m", spec, "--id-column", "id")
    assert code == 0, err
    code, _, err = run(
        "search", str(tmp_path / "ix"), "--queries", str(queries), "-k", "1", "-o", str(tmp_path / "h.tsv")
    )
    assert code == 0, err
    rows = [line.split("\t") for line in (tmp_path / "h.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    found = np.array([row[2] == f"en{i}" for i, row in enumerate(rows)])
    assert len(rows) == len(PARALLEL)
    print(f"top-1 accuracy pt -> en: {found.mean():.2f}")
    assert found.mean() >= 0.8, [row for row, ok in zip(rows, found, strict=True) if not ok]
    shutil.rmtree(tmp_path / "ix")
