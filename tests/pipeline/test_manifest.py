"""The manifest reader on files as users write them: BOMs, UTF-16, cp1252, stray quotes,
NUL bytes, over-long lines, headers without rows, binary files, parquet."""

import types

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from multihowto.pipeline.manifest import (
    ManifestError,
    ManifestRow,
    RejectedRow,
    check_manifest,
    iter_manifest,
    read_manifest,
)
from multihowto.schemas.manifest import MAX_LINE_CHARS, MAX_QUOTED_CHARS
from multihowto.schemas.sample import sanitize_id

YT = "https://www.youtube.com/watch?v={id}"
SITE = "http://127.0.0.1:8000/"


def rows(path, template=YT, base_url=SITE):
    out = list(iter_manifest(path, template, base_url))
    good = [(r.line, r.video_id, r.url) for r in out if isinstance(r, ManifestRow)]
    bad = [(r.line, r.reason) for r in out if isinstance(r, RejectedRow)]
    return good, bad


def test_a_utf8_bom_does_not_hide_the_video_id_column(tmp_path):
    p = tmp_path / "excel.csv"
    p.write_bytes("video_id,category_1,category_2,rank,task_id\r\nnVbIUDjzWY4,Cars,Motorcycles,27,52907\r\n".encode("utf-8-sig"))
    assert rows(p) == ([(2, "nVbIUDjzWY4", "https://www.youtube.com/watch?v=nVbIUDjzWY4")], [])


def test_utf16_with_a_bom(tmp_path):
    p = tmp_path / "unicode.csv"
    p.write_bytes("video_id,url\nabc,v/abc.html\nd\u00e9f,http://127.0.0.1/v/d\u00e9f.html\n".encode("utf-16"))
    assert rows(p)[0] == [
        (2, "abc", "http://127.0.0.1:8000/v/abc.html"),
        (3, sanitize_id("d\u00e9f"), "http://127.0.0.1/v/d\u00e9f.html"),
    ]


def test_cp1252_ids_and_urls_are_decoded(tmp_path):
    p = tmp_path / "windows.csv"
    names = ["vid\u00e9o", "cr\u00e8me_br\u00fbl\u00e9e", "fa\u00e7ade", "d\u00e9j\u00e0_vu", "\u00e9t\u00e9"]
    text = "video_id,url\n" + "".join(f"{n},http://127.0.0.1/v/{n}.html\n" for n in names)
    p.write_bytes(text.encode("cp1252"))
    good, bad = rows(p)
    assert bad == []
    assert good == [(i + 2, sanitize_id(n), f"http://127.0.0.1/v/{n}.html") for i, n in enumerate(names)]


def test_an_encoding_is_found_past_an_ascii_head(tmp_path):
    # the first non-ASCII byte 200 KB in: the whole file is checked, not its head only
    p = tmp_path / "late.csv"
    text = "video_id,url\n" + "".join(f"v{i:06d},http://127.0.0.1/v/{i}.html\n" for i in range(6000))
    text += "caf\u00e9,http://127.0.0.1/v/caf\u00e9.html\nna\u00efve,http://127.0.0.1/v/na\u00efve.html\n"
    p.write_bytes(text.encode("cp1252"))
    good, bad = rows(p)
    assert bad == [] and len(good) == 6002
    assert good[-2:] == [(6002, sanitize_id("caf\u00e9"), "http://127.0.0.1/v/caf\u00e9.html"),
                         (6003, sanitize_id("na\u00efve"), "http://127.0.0.1/v/na\u00efve.html")]


def test_a_stray_quote_costs_one_row(tmp_path):
    p = tmp_path / "quotes.csv"
    p.write_text(
        "video_id,url\n"
        "v1,v/1.html\n"
        '"v2,v/2.html\n'  # line 3: a quote never closed
        "v3,v/3.html\n"
        'v4,"v/4.html"\n'
        "v5,v/5.html\n",
        encoding="utf-8",
    )
    good, bad = rows(p)
    assert bad == [(3, "malformed_csv_row")]
    assert [(line, vid) for line, vid, _ in good] == [(2, "v1"), (4, "v3"), (5, "v4"), (6, "v5")]
    rejected = [r for r in iter_manifest(p, YT, SITE) if isinstance(r, RejectedRow)]
    assert rejected[0].value == '"v2,v/2.html'


def test_header_only_and_empty_files_are_empty_manifests(tmp_path):
    for name, content in [("header.csv", b"video_id,url\n"), ("empty.csv", b""), ("blank.csv", b"\n\n"),
                          ("empty.txt", b""), ("comments.txt", b"# nothing yet\n")]:
        p = tmp_path / name
        p.write_bytes(content)
        check_manifest(p)
        assert rows(p) == ([], []), name


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256)) * 4, "a binary file"),
        ("archive.txt", bytes(range(1, 256)) * 40, "a binary file"),
        ("columns.csv", b"id,link,title\n1,2,3\n", "no 'video_id' or 'url' column in the header on line 1 (found: 'id', 'link', 'title')"),
        ("wide.csv", ",".join(f"c{i}" for i in range(50)).encode() + b"\n", "found: 'c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', ... (50 in all)"),
        ("table.parquet", b"PAR1 not really", "not a parquet file"),
    ],
)
def test_a_file_that_is_not_a_manifest_is_refused_by_name(tmp_path, name, content, problem):
    p = tmp_path / name
    p.write_bytes(content)
    for attempt in (lambda: check_manifest(p), lambda: iter_manifest(p, YT), lambda: read_manifest(p, YT)):
        with pytest.raises(ManifestError) as err:
            attempt()
        assert str(err.value).startswith(f"{p}: ") and problem in str(err.value)
        assert "\n" not in str(err.value)


def test_missing_files_and_folders_are_refused_by_name(tmp_path):
    with pytest.raises(ManifestError, match="nowhere.csv: no such manifest file"):
        check_manifest(tmp_path / "nowhere.csv")
    with pytest.raises(ManifestError, match="is a folder"):
        iter_manifest(tmp_path, YT)


def test_nul_bytes_control_characters_and_long_values_are_rejected_per_row(tmp_path):
    p = tmp_path / "hostile.csv"
    p.write_bytes(
        b"video_id,url\n"
        b"v1,v/1.html\n"
        b"v\x002,v/2.html\n"
        b"v3\x1b[31m,v/3.html\n"
        + "v4\u202e,v/4.html\n".encode()
        + b"v" * 300 + b",v/5.html\n"
        + b"v6,http://127.0.0.1/" + b"a" * 5000 + b"\n"
        + b"v7," + b"x" * (MAX_LINE_CHARS + 10) + b"\n"
        + b"v8,ftp://127.0.0.1/8.mp4\n"
        b"v9,http://[::1/9.html\n"
        b"v10,v/10.html\n"
    )
    out = list(iter_manifest(p, YT, SITE))
    assert [(r.line, r.reason) for r in out if isinstance(r, RejectedRow)] == [
        (3, "control_characters"), (4, "control_characters"), (5, "control_characters"), (6, "id_too_long"),
        (7, "url_too_long"), (8, "line_too_long"), (9, "unsupported_url_scheme"), (10, "malformed_url"),
    ]
    assert [r.video_id for r in out if isinstance(r, ManifestRow)] == ["v1", "v10"]
    quoted = [r.value for r in out if isinstance(r, RejectedRow)]
    assert all(len(v) <= MAX_QUOTED_CHARS * 6 and v.isprintable() for v in quoted)
    assert quoted[0] == "v\\x002,v/2.html" and quoted[2] == "v4\\u202e"


def test_tsv_text_and_a_tab_separated_csv(tmp_path):
    tsv = tmp_path / "m.tsv"
    tsv.write_text("url\tvideo_id\nv/a.html\ta\n", encoding="utf-8")
    assert rows(tsv)[0] == [(2, "a", "http://127.0.0.1:8000/v/a.html")]
    misnamed = tmp_path / "tabs.csv"
    misnamed.write_text("video_id\turl\nb\tv/b.html\n", encoding="utf-8")
    assert rows(misnamed)[0] == [(2, "b", "http://127.0.0.1:8000/v/b.html")]
    txt = tmp_path / "list.txt"
    txt.write_text("# ids and URLs\nnVbIUDjzWY4\n\nhttps://www.youtube.com/watch?v=CTPAZ2euJ2Q\n", encoding="utf-8")
    assert rows(txt)[0] == [
        (2, "nVbIUDjzWY4", "https://www.youtube.com/watch?v=nVbIUDjzWY4"),
        (4, "CTPAZ2euJ2Q", "https://www.youtube.com/watch?v=CTPAZ2euJ2Q"),
    ]


def test_ids_are_quoted_into_a_template_url(tmp_path):
    p = tmp_path / "ids.txt"
    p.write_text("a/b?c#d\n", encoding="utf-8")
    (row,) = iter_manifest(p, "https://videos.example.org/{id}.mp4")
    assert row.url == "https://videos.example.org/a%2Fb%3Fc%23d.mp4" and row.video_id == sanitize_id("a/b?c#d")


def test_parquet_is_read_in_batches(tmp_path):
    p = tmp_path / "m.parquet"
    ids = [f"v{i:010d}" for i in range(20_000)]
    ids[5] = "bad id"
    urls = [None] * 20_000
    urls[7] = "ftp://127.0.0.1/x"
    table = pa.table({"video_id": ids, "url": urls, "rank": list(range(20_000))})
    pq.write_table(table, p, row_group_size=3000)
    check_manifest(p)
    out = list(iter_manifest(p, YT))
    assert len(out) == 20_000 and [r.line for r in out] == list(range(1, 20_001))
    assert [(r.line, r.reason) for r in out if isinstance(r, RejectedRow)] == [(6, "malformed_video_id"), (8, "unsupported_url_scheme")]
    assert out[0] == ManifestRow(1, "v0000000000", "https://www.youtube.com/watch?v=v0000000000")
    numeric = tmp_path / "n.parquet"
    pq.write_table(pa.table({"video_id": [12345678901], "url": ["http://127.0.0.1/v/1.html"]}), numeric)
    assert list(iter_manifest(numeric, YT)) == [ManifestRow(1, "12345678901", "http://127.0.0.1/v/1.html")]
    nameless = tmp_path / "x.parquet"
    pq.write_table(pa.table({"vid": [1], "link": ["x"]}), nameless)
    with pytest.raises(ManifestError, match=r"x.parquet: no 'video_id' or 'url' column \(found: 'vid', 'link'\)"):
        check_manifest(nameless)


def test_the_reader_streams_and_leaves_duplicates_to_its_caller(tmp_path):
    p = tmp_path / "dups.csv"
    p.write_text("video_id\nnVbIUDjzWY4\nCTPAZ2euJ2Q\nnVbIUDjzWY4\n", encoding="utf-8")
    stream = iter_manifest(p, YT)
    assert isinstance(stream, types.GeneratorType)
    assert [r.video_id for r in stream] == ["nVbIUDjzWY4", "CTPAZ2euJ2Q", "nVbIUDjzWY4"]
    m = read_manifest(p, YT)
    assert [r["video_id"] for r in m.rows] == ["nVbIUDjzWY4", "CTPAZ2euJ2Q"]
    assert m.rejected == [{"line": 4, "reason": "duplicate_video_id", "value": "nVbIUDjzWY4"}]
