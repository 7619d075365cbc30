"""The lexical leg: BM25 over SQLite FTS5 inside the encrypted database.

Each organisation has two FTS5 tables, created on first use, so term statistics (and therefore scores) never depend
on another organisation's articles: `fts_chunks_<org>` (rowid = chunk id; columns title, heading path, passage) and
`fts_articles_<org>` (rowid = article id; columns title, whole published text). A question becomes an OR of its
content words (the porter tokenizer stems them as it stems the indexed text), so no exact phrase is needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from appliance.store import Connection

TOKENIZER = "porter unicode61 remove_diacritics 2"
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*", re.UNICODE)
MAX_TERMS = 32

# Stop words: the Glasgow information retrieval group's English list, less the words that carry meaning in support
# questions ("turn off", "sign up", "system settings", "call back", "fill in", "show", "bill", ...).
STOPWORDS = frozenset(
    """a about above across after afterwards again against all almost alone along already also although always am
    among amongst amoungst amount an and another any anyhow anyone anything anyway anywhere are around as at be
    became because become becomes becoming been before beforehand behind being below beside besides between beyond
    both but by can cannot cant co con could couldnt de do done due during each eg eight either eleven else
    elsewhere enough etc even ever every everyone everything everywhere except few fifteen fifty first five for
    former formerly forty found four from further get give go had has hasnt have he hence her here hereafter hereby
    herein hereupon hers herself him himself his how however hundred i ie if in inc indeed into is it its itself
    last latter latterly least less ltd made many may me meanwhile might mine more moreover most mostly much must
    my myself namely neither never nevertheless next nine no nobody none noone nor not nothing now nowhere of often
    once one only onto or other others otherwise our ours ourselves out over own per perhaps please put rather re
    same see seem seemed seeming seems serious several she should since sincere six sixty so some somehow someone
    something sometime sometimes somewhere still such take ten than that the their them themselves then thence
    there thereafter thereby therefore therein thereupon these they third this those though three through
    throughout thru thus to together too toward towards twelve twenty two un under until upon us very via was we
    well were what whatever when whence whenever where whereafter whereas whereby wherein whereupon wherever
    whether which while whither who whoever whole whom whose why will with within without would yet you your yours
    yourself yourselves""".split()
)


def chunk_table(org_id: int) -> str:
    return f"fts_chunks_{int(org_id)}"


def article_table(org_id: int) -> str:
    return f"fts_articles_{int(org_id)}"


def ensure_tables(conn: Connection, org_id: int) -> None:
    conn.execute(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {chunk_table(org_id)} USING fts5(title, headings, body,"
        f" article_id UNINDEXED, tokenize = '{TOKENIZER}')"
    )
    conn.execute(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {article_table(org_id)} USING fts5(title, body, tokenize = '{TOKENIZER}')"
    )


def has_tables(conn: Connection, org_id: int) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)",
        (chunk_table(org_id), article_table(org_id)),
    ).fetchone()
    return int(row[0]) == 2


def put_chunk(
    conn: Connection, org_id: int, chunk_id: int, article_id: int, title: str, headings: Sequence[str], body: str
) -> None:
    conn.execute(
        f"INSERT INTO {chunk_table(org_id)} (rowid, title, headings, body, article_id) VALUES (?, ?, ?, ?, ?)",
        (chunk_id, title, " > ".join(headings), body, article_id),
    )


def delete_chunks(conn: Connection, org_id: int, chunk_ids: Iterable[int]) -> None:
    conn.executemany(f"DELETE FROM {chunk_table(org_id)} WHERE rowid = ?", [(i,) for i in chunk_ids])


def put_article(conn: Connection, org_id: int, article_id: int, title: str | None, body: str) -> None:
    """The article's whole published text (title None: the article is not published and leaves the table)."""
    conn.execute(f"DELETE FROM {article_table(org_id)} WHERE rowid = ?", (article_id,))
    if title is not None:
        conn.execute(
            f"INSERT INTO {article_table(org_id)} (rowid, title, body) VALUES (?, ?, ?)", (article_id, title, body)
        )


def query_terms(text: str) -> list[str]:
    """Content words of a question, lower-cased, in order, without duplicates or possessive 's."""
    seen: dict[str, None] = {}
    for match in _WORD.finditer(text.lower().replace("’", "'")):
        word = match.group(0)
        if word.endswith("'s"):
            word = word[:-2]
        if len(word) >= 2 and word not in STOPWORDS:
            seen.setdefault(word, None)
    return list(seen)[:MAX_TERMS]


def match_expression(terms: Sequence[str]) -> str:
    """Each term quoted (FTS5 syntax in user text stays literal), OR-ed."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def search_chunks(conn: Connection, org_id: int, terms: Sequence[str], limit: int) -> list[tuple[int, int, float]]:
    """(chunk id, article id, score) best first; score = -bm25 (higher is better), columns weighted equally."""
    if not terms or not has_tables(conn, org_id):
        return []
    table = chunk_table(org_id)
    rows = conn.execute(  # ORDER BY rank (= bm25 with equal weights): FTS5's own top-N path, no join
        f"SELECT rowid, article_id, -rank FROM {table} WHERE {table} MATCH ? ORDER BY rank LIMIT ?",
        (match_expression(terms), limit),
    ).fetchall()
    return [(int(r[0]), int(r[1]), float(r[2])) for r in rows]


def search_articles(conn: Connection, org_id: int, terms: Sequence[str], limit: int) -> list[tuple[int, float]]:
    """(article id, score) best first, over whole articles."""
    if not terms or not has_tables(conn, org_id):
        return []
    table = article_table(org_id)
    rows = conn.execute(
        f"SELECT rowid, -rank FROM {table} WHERE {table} MATCH ? ORDER BY rank LIMIT ?",
        (match_expression(terms), limit),
    ).fetchall()
    return [(int(r[0]), float(r[1])) for r in rows]


def article_frequencies(conn: Connection, org_id: int, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
    """How many published articles the organisation has, and how many of them contain each term (stemmed as the
    index stems it). These give the question's words their weight (rare words matter more)."""
    if not terms or not has_tables(conn, org_id):
        return 0, {}
    table = article_table(org_id)
    total = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    counts = {
        t: int(conn.execute(f"SELECT count(*) FROM {table} WHERE {table} MATCH ?", (match_expression([t]),)).fetchone()[0])
        for t in terms
    }  # fmt: skip
    return total, counts
