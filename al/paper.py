"""The seed paper's surrogate tables as data (Frickenstein et al. 2024, "Back to the Future: Models as
Active Learning Surrogates for Next Generation ML Deployments", §5.3, Tables 3, 4 and 5).

Transcribed from the paper text: rows are deployment models, columns surrogate models plus
"random"; each cell is (mean, std) over three runs, in the paper's units (mIoU % for Cityscapes and
ADE20K, Top-1 % for ImageNet), entropy selection, 2 % initial + 2 % per cycle up to 20 % of the pool,
all backbones pre-trained on ImageNet. Model keys are the zoo names (`hwbench.models`).
"""

from __future__ import annotations

from dataclasses import dataclass

RANDOM = "random"

_SEG = {"Res-20": "deeplabv3plus_resnet20", "MNV3": "deeplabv3plus_mobilenetv3_small",
        "Res-18": "deeplabv3plus_resnet18", "Res-50": "deeplabv3plus_resnet50",
        "Xc-65": "deeplabv3plus_xception65"}
_CLS = {"Res-18": "resnet18", "Res-34": "resnet34"}


@dataclass(frozen=True)
class PaperTable:
    """One of the paper's deployment × surrogate tables."""

    number: int
    dataset: str                 # our dataset name (al.data): cityscapes | ade20k | folder (ImageNet)
    dataset_label: str           # as the paper writes it
    metric: str                  # "miou" | "top1"
    caption: str
    surrogates: tuple[str, ...]  # zoo names, the paper's column order (without random)
    cells: dict[str, dict[str, tuple[float, float]]]   # deployment -> surrogate | "random" -> (mean, std)

    @property
    def source(self) -> str:
        return f"Frickenstein et al. 2024, Table {self.number} (§5.3)"

    @property
    def deployments(self) -> tuple[str, ...]:
        return tuple(self.cells)


def _table(number: int, dataset: str, label: str, metric: str, caption: str, names: dict[str, str],
           columns: tuple[str, ...], rows: dict[str, tuple[tuple[float, float], ...]]) -> PaperTable:
    surrogates = tuple(names[c] for c in columns)
    cells = {names[r]: dict(zip((*surrogates, RANDOM), v, strict=True)) for r, v in rows.items()}
    return PaperTable(number, dataset, label, metric, caption, surrogates, cells)


TABLE3 = _table(
    3, "cityscapes", "CityScapes", "miou",
    "Prediction capability (mIoU [%]) of deployment models (rows) when trained on CityScapes data "
    "selected through surrogate models (columns).",
    _SEG, ("Res-20", "MNV3", "Res-18", "Res-50", "Xc-65"),
    {   # Res-20      MNV3        Res-18      Res-50      Xc-65       random
        "Res-20": ((59.6, 0.5), (60.1, 0.3), (59.7, 0.3), (58.6, 0.2), (58.4, 0.6), (57.8, 0.5)),
        "MNV3": ((63.8, 0.3), (64.2, 0.2), (63.6, 0.3), (63.7, 0.4), (61.8, 0.3), (61.0, 0.4)),
        "Res-18": ((57.2, 0.4), (57.2, 0.7), (57.6, 0.6), (56.4, 0.3), (56.6, 0.2), (54.8, 0.5)),
        "Res-50": ((73.5, 0.4), (74.4, 0.3), (74.4, 0.1), (73.7, 0.1), (73.8, 0.3), (71.2, 0.3)),
        "Xc-65": ((74.8, 0.3), (75.3, 0.2), (74.9, 0.3), (75.5, 0.2), (74.6, 0.3), (72.4, 0.6)),
    })

TABLE4 = _table(
    4, "ade20k", "ADE20K", "miou",
    "Prediction capability (mIoU [%]) of deployment models (rows) when trained on ADE20K data "
    "selected through surrogate models (columns).",
    _SEG, ("Res-18", "Res-50", "Xc-65"),
    {   # Res-18          Res-50          Xc-65           random
        "Res-18": ((11.30, 0.01), (11.26, 0.11), (10.30, 0.15), (11.49, 0.14)),
        "Res-50": ((31.17, 0.01), (30.99, 0.12), (29.84, 0.04), (30.36, 0.36)),
        "Xc-65": ((31.36, 0.02), (31.18, 0.12), (30.98, 0.36), (31.02, 0.02)),
    })

TABLE5 = _table(
    5, "folder", "ImageNet", "top1",
    "Prediction capability (Top-1 [%]) of deployment models (rows) when trained on ImageNet data "
    "selected through surrogate models (columns).",
    _CLS, ("Res-18", "Res-34"),
    {   # Res-18          Res-34          random
        "Res-18": ((59.19, 0.12), (59.27, 0.19), (58.47, 0.01)),
        "Res-34": ((62.16, 0.08), (62.22, 0.26), (60.83, 0.10)),
    })

TABLES: dict[int, PaperTable] = {t.number: t for t in (TABLE3, TABLE4, TABLE5)}

#: §5.3 "Surrogate vs. Random Selection": "25 out of the 28 surrogate/deployment pairs achieved better
#: prediction capability ... when compared to ... randomly selected data" (off-diagonal cells of
#: Tables 3-5, compared by mean only; the paper reports no test).
PAPER_CLAIM_PAIRS = {"pairs": 28, "better_than_random": 25}


def paper_table_for(dataset: str, task: str) -> PaperTable | None:
    """The paper's table for a dataset of ours (cityscapes -> 3, ade20k -> 4, ImageNet folder -> 5)."""
    for t in TABLES.values():
        if t.dataset == dataset:
            return t
    return None


def off_diagonal_better(table: PaperTable) -> tuple[int, int]:
    """(pairs, pairs whose mean beats random) over the off-diagonal cells of one table."""
    pairs = better = 0
    for dep, row in table.cells.items():
        for sur in table.surrogates:
            if sur != dep:
                pairs += 1
                better += row[sur][0] > row[RANDOM][0]
    return pairs, better
