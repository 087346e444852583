"""Which rows of a labelled file a tagger learns from, and why the others are left out.

Three kinds of rows teach a tagger nothing or something wrong:

- an empty text or an empty label;
- boilerplate (``analyzer.ingest.boilerplate``): a placeholder such as "This request was
  submitted to NYC 311 without a description." or a text shared by a large share of the rows.
  Learnt, it maps every placeholder to whichever category held most of them;
- a label with fewer than ``min_examples`` rows left (:data:`MIN_EXAMPLES` by default): nothing
  to validate it on. Real exports have such labels (form revisions, a category used once), so
  they are folded into one ``other`` label ("Other", joining the city's own "Other" if it has
  one) with a warning instead of stopping the training; without ``other`` they are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analyzer.errors import InputError
from analyzer.ingest.boilerplate import find_boilerplate

MIN_EXAMPLES = 2


@dataclass
class TrainingRows:
    """``keep``: the rows to learn from; the counts say what was left out and why."""

    keep: np.ndarray
    empty: int = 0
    boilerplate: list[tuple[str, int]] = field(default_factory=list)
    n_boilerplate: int = 0
    rare: dict[str, int] = field(default_factory=dict)
    labels: np.ndarray | None = None  # the labels to learn, rare ones folded into ``other``
    other: str | None = None  # the label rare ones were folded into (None: left out)
    min_examples: int = MIN_EXAMPLES

    def notes(self) -> list[str]:
        """One line per reason rows were left out (for the command's output)."""
        out = []
        if self.empty:
            out.append(f"skipped {self.empty} rows with an empty text or label")
        if self.n_boilerplate:
            shown = "; ".join(f"{n} × {t[:60]!r}" for t, n in self.boilerplate[:3])
            out.append(
                f"left out {self.n_boilerplate} rows of boilerplate text ({shown}); "
                "--keep-boilerplate keeps them"
            )
        if self.rare:
            names = ", ".join(f"{k!r} ({v})" for k, v in sorted(self.rare.items())[:8])
            more = f" and {len(self.rare) - 8} more" if len(self.rare) > 8 else ""
            if self.other is not None:
                out.append(
                    f"warning: folded {len(self.rare)} labels with fewer than "
                    f"{self.min_examples} examples into {self.other!r}: {names}{more} "
                    f"({sum(self.rare.values())} rows); --drop-rare leaves them out instead"
                )
            else:
                out.append(
                    f"left out {len(self.rare)} labels with fewer than {self.min_examples} "
                    f"examples: {names}{more} ({sum(self.rare.values())} rows); the tagger "
                    "cannot predict them"
                )
        return out


def training_rows(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    keep_boilerplate: bool = False,
    min_examples: int = MIN_EXAMPLES,
    other: str | None = "Other",
) -> TrainingRows:
    """Choose the rows a tagger learns from (see the module's docstring). Raises
    :class:`InputError` when fewer than two labels are left to tell apart."""
    text = pd.Series([str(t) for t in texts], dtype=object)
    label = pd.Series([str(x).strip() for x in labels], dtype=object)
    keep = np.array((text.str.strip() != "") & (label != ""), dtype=bool)
    out = TrainingRows(keep=keep, empty=int((~keep).sum()))
    if not keep_boilerplate and keep.any():
        found = find_boilerplate(text[keep])
        if found.count:
            idx = np.flatnonzero(keep)[found.mask]
            keep[idx] = False
            out.boilerplate, out.n_boilerplate = found.texts, found.count
    out.min_examples = min_examples
    counts = label[keep].value_counts()
    rare = counts[counts < min_examples]
    if len(rare):
        out.rare = {str(k): int(v) for k, v in rare.items() if str(k) != other}
        if other is not None and out.rare:
            label = label.where(~label.isin(set(out.rare)), other)
            out.other = other
        # what is still too rare (all of it without ``other``, or a folded group that stays
        # small) is left out
        still = label[keep].value_counts()
        too_few = set(still[still < min_examples].index)
        keep &= ~np.array(label.isin(too_few), dtype=bool)
        if out.other in too_few:
            out.other = None
    if label[keep].nunique() < 2:
        raise InputError(
            f"training needs two or more labels with at least {min_examples} examples each; "
            f"{label[keep].nunique()} left after leaving out "
            + "; ".join(out.notes() or ["nothing"])
        )
    out.keep = keep
    out.labels = label.to_numpy(dtype=object)
    return out


def file_order_times(labels: Sequence[str] | np.ndarray) -> pd.Series | None:
    """Stand-in times that put the rows in the file's order, for a history with no time column,
    or ``None`` when the file is grouped by category.

    Exports come oldest (or newest) first, and a history cut by time for a check comes in time
    order; validated in that order, the review threshold is chosen on the later rows as it will
    be used (on shuffled rows it promised 0.95 and kept 0.90-0.93 in three of the five cities of
    ``benchmarks.cities``). A shuffled file loses nothing by it. A file sorted or grouped by
    category would leave the later folds' categories unseen, so it is told apart: neighbouring
    rows share their category more often than halfway from chance (the sum of the squared
    category shares) to always.
    """
    y = np.asarray([str(v) for v in labels], dtype=object)
    n = len(y)
    if n < 3:
        return None
    _, counts = np.unique(y, return_counts=True)
    chance = float(((counts / n) ** 2).sum())
    same = float(np.mean(y[1:] == y[:-1]))
    if same >= (chance + 1.0) / 2:
        return None
    start = pd.Timestamp("2000-01-01", tz="UTC")
    return pd.Series(start + pd.to_timedelta(np.arange(n), unit="s"))
