"""Stable theme ids across runs: a new fit's themes are matched to the previous run's (Hungarian
assignment on centroid similarity and member overlap, per level), keep their ids, and the lineage
is recorded: same, merged, split, new, retired. New ids never reuse one issued before.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from analyzer.common.vectors import normalise_rows
from analyzer.themes.ids import subtheme_id, theme_id
from analyzer.themes.model import LineageEvent, Theme

_ID_RE = re.compile(r"^([A-Za-z]+)(\d+)(?:\.(\d+))?$")


def _parse_id(tid: str) -> tuple[str, int, int | None]:
    m = _ID_RE.match(tid)
    if not m:
        raise ValueError(f"not a theme id: {tid!r}")
    return m.group(1), int(m.group(2)), None if m.group(3) is None else int(m.group(3))


def members_by_theme(
    record_ids: Iterable[Hashable],
    theme_ids: Iterable[str | None],
    subtheme_ids: Iterable[str | None],
) -> dict[str, set[Hashable]]:
    """Record ids per theme and per sub-theme, from one (theme, sub-theme) pair per record
    (``None`` where unassigned): the ``*_members`` arguments of :func:`match_themes`."""
    out: dict[str, set[Hashable]] = {}
    for rid, top, sub in zip(record_ids, theme_ids, subtheme_ids, strict=True):
        for tid in (top, sub):
            if isinstance(tid, str) and tid:
                out.setdefault(tid, set()).add(rid)
    return out


def next_free_ids(used_ids: Iterable[str]) -> tuple[int, dict[str, int]]:
    """(next top-level number, next sub-theme number per parent) after every id ever issued."""
    top, sub = 0, {}
    for tid in used_ids:
        try:
            _, num, child = _parse_id(tid)
        except ValueError:
            continue
        top = max(top, num)
        if child is not None:
            parent = tid.rsplit(".", 1)[0]
            sub[parent] = max(sub.get(parent, 0), child)
    return top + 1, {p: c + 1 for p, c in sub.items()}


def _match_level(
    previous: list[Theme],
    current: list[Theme],
    prev_members: dict[str, set[Hashable]] | None,
    cur_members: dict[str, set[Hashable]] | None,
    *,
    min_score: float,
    min_flow: float,
    centroid_weight: float,
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Hungarian matching of one level: ({current id: previous id}, links (previous, current))."""
    if not previous or not current:
        return {}, []
    pc = normalise_rows(np.stack([p.centroid for p in previous]))
    cc = normalise_rows(np.stack([c.centroid for c in current]))
    sim = pc @ cc.T
    with_members = prev_members is not None and cur_members is not None
    if with_members:
        prev_sets = [set(prev_members.get(p.theme_id, set())) for p in previous]
        cur_sets = [set(cur_members.get(c.theme_id, set())) for c in current]
        # records new in this run cannot overlap anything: leave them out of the current sets. A
        # previous member that is now unassigned (or gone) stays in its previous set and so counts
        # against the overlap.
        prev_all = set().union(*prev_sets)
        cur_sets = [s & prev_all for s in cur_sets]
        inter = np.array([[len(p & c) for c in cur_sets] for p in prev_sets], dtype=np.float64)
        psize = np.array([len(s) for s in prev_sets], dtype=np.float64)
        csize = np.array([len(s) for s in cur_sets], dtype=np.float64)
        union = psize[:, None] + csize[None, :] - inter
        jaccard = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        score = centroid_weight * sim + (1 - centroid_weight) * jaccard
        # share of a previous theme's members that went to each current theme
        flow = np.divide(inter, psize[:, None], out=np.zeros_like(inter), where=psize[:, None] > 0)
        inflow = np.divide(
            inter, csize[None, :], out=np.zeros_like(inter), where=csize[None, :] > 0
        )
        linked = (flow >= min_flow) & ((inflow >= min_flow) | (flow >= 0.5))
    else:
        score = sim
        best_c = sim.argmax(axis=1)
        best_p = sim.argmax(axis=0)
        linked = np.zeros_like(sim, dtype=bool)
        for i in range(len(previous)):
            for j in range(len(current)):
                if sim[i, j] >= min_score and (best_c[i] == j or best_p[j] == i):
                    linked[i, j] = True
    rows, cols = linear_sum_assignment(-score)
    matched: dict[str, str] = {}
    for i, j in zip(rows, cols, strict=True):
        if score[i, j] >= min_score and (not with_members or linked[i, j] or sim[i, j] >= 0.95):
            matched[current[j].theme_id] = previous[i].theme_id
    links = [
        (previous[i].theme_id, current[j].theme_id)
        for i, j in zip(*np.nonzero(linked), strict=True)
    ]
    for cur_id, prev_id in matched.items():
        if (prev_id, cur_id) not in links:
            links.append((prev_id, cur_id))
    return matched, links


def _events(
    previous: list[Theme],
    current: list[Theme],
    matched: dict[str, str],
    links: list[tuple[str, str]],
    final_id: dict[str, str],
    level: int,
) -> list[LineageEvent]:
    into: dict[str, list[str]] = {c.theme_id: [] for c in current}
    out_of: dict[str, list[str]] = {p.theme_id: [] for p in previous}
    for p, c in links:
        into[c].append(p)
        out_of[p].append(c)
    events: list[LineageEvent] = []
    for c in current:
        cid = c.theme_id
        sources = sorted(into[cid])
        split_from = sorted(p for p in sources if len(out_of[p]) >= 2)
        if len(sources) >= 2:
            events.append(LineageEvent(final_id[cid], "merged", tuple(sources), level))
        elif split_from:
            events.append(LineageEvent(final_id[cid], "split", tuple(split_from), level))
        elif cid in matched:
            events.append(LineageEvent(final_id[cid], "same", (matched[cid],), level))
        else:
            events.append(LineageEvent(final_id[cid], "new", tuple(sources), level))
    carried = set(matched.values())
    for p in previous:
        if p.theme_id not in carried:
            went = tuple(sorted(final_id[c] for c in out_of[p.theme_id]))
            events.append(LineageEvent(p.theme_id, "retired", went, level))
    return events


def match_themes(
    previous: Sequence[Theme],
    current: Sequence[Theme],
    prev_members: dict[str, set[Hashable]] | None = None,
    cur_members: dict[str, set[Hashable]] | None = None,
    *,
    next_id: int | None = None,
    used_ids: Iterable[str] = (),
    min_score: float = 0.5,
    min_flow: float = 0.3,
    centroid_weight: float = 0.5,
    prefix: str = "T",
) -> tuple[dict[str, str], list[LineageEvent]]:
    """Carry theme ids from the previous run to the current one.

    Top-level themes are matched one-to-one by the Hungarian algorithm on ``centroid_weight`` x
    centroid cosine + (1 - ``centroid_weight``) x Jaccard overlap of members (centroid alone without
    members); a pair below ``min_score`` is no match. Sub-themes are matched the same way inside
    matched parents. Unmatched current themes get fresh ids counting up from ``next_id`` (default:
    one past the largest number in ``previous`` and ``used_ids``, so retired ids are never reused
    when ``used_ids`` holds every id ever issued).

    Returns ``id_map`` {current provisional id: final id} and the
    lineage: for each current theme "same", "merged" (related: the previous themes it joins),
    "split"
    (related: the previous theme it came from), or "new"; for each previous theme whose id is no
    longer used, "retired" (related: where its members went). A previous theme is linked to a
    current one when at least ``min_flow`` of its members moved there.
    """
    prev_top = [t for t in previous if t.level == 1]
    cur_top = [t for t in current if t.level == 1]
    all_used = [t.theme_id for t in previous] + list(used_ids)
    free_top, free_sub = next_free_ids(all_used)
    if next_id is not None:
        free_top = max(free_top, next_id)
    kw = {"min_score": min_score, "min_flow": min_flow, "centroid_weight": centroid_weight}
    matched, links = _match_level(prev_top, cur_top, prev_members, cur_members, **kw)
    id_map: dict[str, str] = {}
    for c in cur_top:
        if c.theme_id in matched:
            id_map[c.theme_id] = matched[c.theme_id]
        else:
            id_map[c.theme_id] = theme_id(free_top, prefix)
            free_top += 1
    lineage = _events(prev_top, cur_top, matched, links, id_map, level=1)

    prev_subs = [t for t in previous if t.level == 2]
    cur_subs = [t for t in current if t.level == 2]
    for c in cur_top:
        parent = id_map[c.theme_id]
        kids = [s for s in cur_subs if s.parent_id == c.theme_id]
        old_kids = [s for s in prev_subs if s.parent_id == parent] if c.theme_id in matched else []
        sub_matched, sub_links = _match_level(old_kids, kids, prev_members, cur_members, **kw)
        counter = free_sub.get(parent, 1)
        for s in kids:
            if s.theme_id in sub_matched:
                id_map[s.theme_id] = sub_matched[s.theme_id]
            else:
                id_map[s.theme_id] = subtheme_id(parent, counter)
                counter += 1
        free_sub[parent] = counter
        lineage += _events(old_kids, kids, sub_matched, sub_links, id_map, level=2)
    # sub-themes of previous themes that were not carried over retire with their parent
    carried_parents = set(matched.values())
    for s in prev_subs:
        if s.parent_id not in carried_parents:
            lineage.append(LineageEvent(s.theme_id, "retired", (), 2))
    return id_map, lineage
