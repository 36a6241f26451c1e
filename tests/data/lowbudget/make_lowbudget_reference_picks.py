"""Produce lowbudget_reference_picks.json: the authors' TypiClust / ProbCover selection on small inputs.

    git clone https://github.com/avihu111/TypiClust /tmp/TypiClust    # commit 4097a71c
    python tests/data/lowbudget/make_lowbudget_reference_picks.py /tmp/TypiClust OUT.json

Not part of the test suite and nothing of the reference is kept in this repository: the script
reads `deep-al/pycls/al/typiclust.py` and `prob_cover.py` from the clone and runs their
`select_samples` unchanged, with these stand-ins (selection logic untouched):
- faiss -> an exact numpy `IndexFlatL2` (squared L2 distances, ascending, as faiss returns them);
- `pycls.datasets.utils.load_features` -> the case's features, L2-normalised (normalized=True);
- torch `.cuda()` -> the CPU tensor;
- TypiClust's `kmeans()` -> the case's given cluster labels (the reference's KMeans is unseeded);
- `ProbCover.construct_graph` batch_size 25 (its default 500 skips the last N % 500 rows: all of
  them for N < 500).
Cases: unlabelled sets in ascending order, so both codes break ties to the lowest pool index.
"""

import json
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch

COMMIT = "4097a71c348f60492ab22be0c4c9da224e637af6"


class IndexFlatL2:
    def __init__(self, d):
        self.x = np.zeros((0, d))

    def add(self, x):
        self.x = np.concatenate([self.x, np.asarray(x, np.float64)])

    def search(self, q, k):
        d = ((np.asarray(q, np.float64)[:, None, :] - self.x[None, :, :]) ** 2).sum(-1)
        idx = np.argsort(d, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(d, idx, 1), idx


def load_reference(clone: Path) -> tuple[types.ModuleType, types.ModuleType, dict]:
    tmp = Path(tempfile.mkdtemp())
    (tmp / "pycls" / "al").mkdir(parents=True)
    (tmp / "pycls" / "datasets").mkdir()
    for init in ("pycls", "pycls/al", "pycls/datasets"):
        (tmp / init / "__init__.py").write_text("")
    for name in ("typiclust.py", "prob_cover.py"):
        src = subprocess.run(["git", "-C", str(clone), "show", f"{COMMIT}:deep-al/pycls/al/{name}"],
                             check=True, capture_output=True, text=True).stdout
        (tmp / "pycls" / "al" / name).write_text(src)
    state = {"features": None}

    def load_features(ds_name, seed=1, train=True, normalized=True):
        f = np.asarray(state["features"], dtype=np.float64)
        return f / np.linalg.norm(f, axis=1, keepdims=True) if normalized else f

    faiss = types.ModuleType("faiss")
    faiss.IndexFlatL2 = IndexFlatL2
    faiss.index_cpu_to_all_gpus = lambda index: index
    sys.modules["faiss"] = faiss
    sys.path.insert(0, str(tmp))
    import pycls.datasets as ds

    ds.utils = types.SimpleNamespace(load_features=load_features)
    sys.modules["pycls.datasets.utils"] = ds.utils
    torch.Tensor.cuda = lambda self, *a, **k: self
    import pycls.al.prob_cover as prob_cover
    import pycls.al.typiclust as typiclust

    prob_cover.ProbCover.construct_graph.__defaults__ = (25,)
    return typiclust, prob_cover, state


def blobs(rng, n_per, centres, sd):
    x = np.concatenate([rng.normal(c, sd, (n, len(c))) for n, c in zip(n_per, centres, strict=True)])
    y = np.concatenate([[i] * n for i, n in enumerate(n_per)])
    return np.round(x, 4), y


def main(clone: Path, out: Path) -> None:
    typiclust, prob_cover, state = load_reference(clone)
    cfg = {"DATASET": {"NAME": "case"}, "RNG_SEED": 0}
    cases = []
    rng = np.random.default_rng(17)
    # TypiClust: Gaussian blobs; clusters = blob ids (blobs of 3-4 images: below MIN_CLUSTER_SIZE)
    for name, n_per, lab_n, budget, sd in [("typiclust_a", [12, 9, 15, 4, 10, 8], 5, 9, 0.5),
                                           ("typiclust_b", [30, 7, 22, 11], 0, 6, 0.8),
                                           ("typiclust_c", [6, 6, 40, 13, 3], 3, 7, 1.0)]:
        x, y = blobs(rng, n_per, rng.normal(0, 2, (len(n_per), 5)), sd)
        lset = np.sort(rng.choice(len(x), lab_n, replace=False)).astype(int)
        uset = np.setdiff1d(np.arange(len(x)), lset)
        state["features"] = x
        typiclust.kmeans = lambda features, num_clusters, _y=y: _y.copy()
        active, _ = typiclust.TypiClust(cfg, lset, uset, budgetSize=budget).select_samples()
        cases.append({"name": name, "algorithm": "typiclust", "features": x.tolist(), "clusters": y.tolist(),
                      "labelled": lset.tolist(), "budget": budget, "k_nn": typiclust.TypiClust.K_NN,
                      "min_cluster_size": typiclust.TypiClust.MIN_CLUSTER_SIZE,
                      "picks": [int(i) for i in active]})
    # ProbCover: Gaussian clouds (ties in ball size happen: both codes take the lowest index)
    for name, n, d, lab_n, budget, delta in [("probcover_a", 100, 3, 4, 8, 0.6),
                                            ("probcover_b", 75, 4, 0, 10, 0.8),
                                            ("probcover_c", 50, 2, 10, 5, 0.2)]:
        x = np.round(rng.normal(0, 1, (n, d)), 4)
        lset = np.sort(rng.choice(n, lab_n, replace=False)).astype(int)
        uset = np.setdiff1d(np.arange(n), lset)
        state["features"] = x
        active, _ = prob_cover.ProbCover(cfg, lset, uset, budgetSize=budget, delta=delta).select_samples()
        cases.append({"name": name, "algorithm": "probcover", "features": x.tolist(), "labelled": lset.tolist(),
                      "budget": budget, "delta": delta, "picks": [int(i) for i in active]})
    out.write_text(json.dumps({"source": f"github.com/avihu111/TypiClust @ {COMMIT}, deep-al/pycls/al/"
                                         "typiclust.py and prob_cover.py (select_samples)",
                               "made_by": "tests/data/lowbudget/make_lowbudget_reference_picks.py",
                               "cases": cases}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
