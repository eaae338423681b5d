"""Lexical retrieval: Okapi BM25 over the policy chunks, in memory.

Dense embeddings understand paraphrase ("send it back" ~ "return") but blur rare, exact
words a customer types ("tankini", "Parcelo", "PIN", "hemming"); BM25 is the opposite, and
`shopbot.policy.retrieval` fuses the two. A shop's policies are a few hundred chunks, so
the index is rebuilt in milliseconds from the texts the vector store already holds.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    """a about after all also am an and any are as at be been before being but by can could
    did do does doing for from get got had has have having how i if in into is it its just me
    my no not of on once only or our out so some than that the their them then there these
    they this to too up us was we were what when where which while who why will with would
    you your yours im ive dont cant whats""".split()  # noqa: SIM905
)
_SUFFIXES = ("ings", "ing", "ies", "ied", "es", "ed", "s")


def stem(word: str) -> str:
    """A deliberately light stemmer: plural and verb endings only ("returns" -> "return")."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            return word + "y" if suffix in ("ies", "ied") else word
    return word


def terms(text: str) -> list[str]:
    """Lower-cased, stop-word-free, stemmed words of `text`."""
    return [stem(w) for w in _WORD.findall(text.lower().replace("'", "")) if w not in _STOPWORDS]


class BM25:
    """Okapi BM25 over a fixed list of texts, addressed by the ids given with them."""

    def __init__(self, docs: Iterable[tuple[str, str]], k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self._ids: list[str] = []
        self._tfs: list[Counter[str]] = []
        self._lengths: list[int] = []
        document_frequency: Counter[str] = Counter()
        for doc_id, text in docs:
            tf = Counter(terms(text))
            self._ids.append(doc_id)
            self._tfs.append(tf)
            self._lengths.append(sum(tf.values()))
            document_frequency.update(tf.keys())
        n = len(self._ids)
        self._average_length = sum(self._lengths) / n if n else 0.0
        self._idf = {
            t: math.log(1 + (n - df + 0.5) / (df + 0.5)) for t, df in document_frequency.items()
        }

    def __len__(self) -> int:
        return len(self._ids)

    def search(self, query: str, n: int) -> list[tuple[str, float]]:
        """The `n` best (id, score) pairs, best first; texts sharing no term are left out."""
        query_terms = [t for t in set(terms(query)) if t in self._idf]
        scored: list[tuple[float, int]] = []
        for i, tf in enumerate(self._tfs):
            score = 0.0
            norm = self.k1 * (1 - self.b + self.b * self._lengths[i] / self._average_length)
            for t in query_terms:
                f = tf.get(t)
                if f:
                    score += self._idf[t] * f * (self.k1 + 1) / (f + norm)
            if score > 0:
                scored.append((score, i))
        scored.sort(key=lambda pair: (-pair[0], pair[1]))
        return [(self._ids[i], score) for score, i in scored[:n]]
