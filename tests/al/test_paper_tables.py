"""The paper's Tables 3-5 as data: shapes, and the paper's own prose figures recomputed from them."""

from __future__ import annotations

import pytest

from al.paper import PAPER_CLAIM_PAIRS, RANDOM, TABLE3, TABLE4, TABLE5, TABLES, off_diagonal_better
from hwbench.models import list_models


def test_tables_are_complete_and_name_zoo_models() -> None:
    zoo = set(list_models())
    for t in TABLES.values():
        assert set(t.surrogates) <= zoo and set(t.deployments) <= zoo
        for row in t.cells.values():
            assert list(row) == [*t.surrogates, RANDOM]
            assert all(m > 0 and s >= 0 for m, s in row.values())
    assert (len(TABLE3.deployments), len(TABLE3.surrogates)) == (5, 5)
    assert (len(TABLE4.deployments), len(TABLE4.surrogates)) == (3, 3)
    assert (len(TABLE5.deployments), len(TABLE5.surrogates)) == (2, 2)


def test_transcription_reproduces_the_papers_prose() -> None:
    """§5.3 quotes differences that follow from the cells: a check on the transcription."""
    c3, c4, c5 = TABLE3.cells, TABLE4.cells, TABLE5.cells
    r18, r50, xc = "deeplabv3plus_resnet18", "deeplabv3plus_resnet50", "deeplabv3plus_xception65"
    r20, mnv3 = "deeplabv3plus_resnet20", "deeplabv3plus_mobilenetv3_small"
    assert c3[r50][r18][0] - c3[r50][RANDOM][0] == pytest.approx(3.2)           # "+3.2 p.p."
    assert c5["resnet34"]["resnet18"][0] - c5["resnet34"][RANDOM][0] == pytest.approx(1.33)  # "+1.33 p.p."
    assert c4[r50][r18][0] - c4[r50][RANDOM][0] == pytest.approx(0.81)          # "+0.81 p.p."
    assert min(c4[d][xc][0] - c4[d][RANDOM][0] for d in c4) == pytest.approx(-1.19)   # "up to -1.19 p.p."
    assert c3[r20][mnv3][0] - c3[r20][RANDOM][0] == pytest.approx(2.3)
    # "MobileNetV3 ... selects three times the best and two times the second best" (Table 3, per row)
    # (dense ranks: Res-18's row ties MNV3 with Res-20 for second, Res-50's ties it with Res-18 for first)
    ranks = [len({c3[d][s][0] for s in TABLE3.surrogates if c3[d][s][0] > c3[d][mnv3][0]}) for d in c3]
    assert sorted(ranks) == [0, 0, 0, 1, 1]


def test_pair_counts_recomputed() -> None:
    pairs = [off_diagonal_better(t) for t in TABLES.values()]
    assert [p for p, _ in pairs] == [20, 6, 2] and sum(p for p, _ in pairs) == PAPER_CLAIM_PAIRS["pairs"]
    # §5.3: "25 out of the 28": Table 3 all 20, Table 4 three of six, Table 5 both (by the means)
    assert [b for _, b in pairs] == [20, 3, 2] and sum(b for _, b in pairs) == PAPER_CLAIM_PAIRS["better_than_random"]
