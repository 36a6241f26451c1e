"""Registry, the one-call `al.select`, and invariants every strategy must keep."""

import numpy as np
import pytest

import al
from al.strategies import (
    EVIDENCE_KINDS,
    STRATEGIES,
    Evidence,
    get_strategy,
    list_strategies,
    select,
    top_k,
)
from hwbench.errors import UserError

N = 40


def full_evidence(seed=0):
    rng = np.random.default_rng(seed)
    return Evidence(image_score=rng.random(N), embedding=rng.standard_normal((N, 5)).astype(np.float32),
                    predicted_loss=rng.standard_normal(N), true_loss=rng.random(N) * 3)


def test_registry_names_and_needs():
    assert set(list_strategies()) >= {"entropy", "llal", "coreset", "true_loss", "random", "margin"}
    for name, cls in STRATEGIES.items():
        assert cls.name == name and cls.needs <= EVIDENCE_KINDS and cls.label
    assert get_strategy("entropy").needs == {"image_score"}
    assert get_strategy("true_loss").needs == {"true_loss"}
    assert get_strategy("random").needs == frozenset()
    assert get_strategy("True-Loss").name == "true_loss"


def test_unknown_name_and_option_are_user_errors():
    with pytest.raises(UserError, match="unknown strategy 'badge'; known: .*coreset.*entropy"):
        get_strategy("badge")
    with pytest.raises(UserError, match="no option 'k'; accepted: aggregation, exclude_ignored"):
        get_strategy("entropy", k=3)
    with pytest.raises(UserError, match="unknown aggregation"):
        get_strategy("entropy", aggregation="median")


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_never_labelled_never_duplicates_exact_budget(name, seed):
    rng = np.random.default_rng(seed)
    labelled = rng.random(N) < 0.4
    free = int((~labelled).sum())
    for budget in (0, 1, free // 2, free):
        picks = select(name, full_evidence(seed), budget, labelled, np.random.default_rng(seed))
        assert picks.dtype == np.int64 and picks.shape == (budget,)
        assert not labelled[picks].any()
        assert len(np.unique(picks)) == budget
    with pytest.raises(UserError, match=f"budget {free + 1} exceeds the {free} unlabelled"):
        select(name, full_evidence(seed), free + 1, labelled, rng)


def test_public_entry_is_lazily_exported():
    assert al.select is select


def test_top_k_descending_ties_lowest_index_and_nan_skipped():
    scores = np.array([0.3, 0.9, np.nan, 0.9, 0.1, 0.5, 0.9])
    labelled = np.array([False, False, False, False, False, False, True])
    assert top_k(scores, 4, labelled).tolist() == [1, 3, 5, 0]
    with pytest.raises(UserError, match="only 5 unlabelled images have evidence"):
        top_k(scores, 6, labelled)


def test_true_loss_and_entropy_are_top_k():
    ev = full_evidence(3)
    labelled = np.zeros(N, bool)
    labelled[np.argmax(ev.true_loss)] = True                           # the best one is already labelled
    picks = select("true_loss", ev, 5, labelled, 0)
    order = [i for i in np.argsort(-ev.true_loss, kind="stable") if not labelled[i]]
    assert picks.tolist() == order[:5]
    picks = select("entropy", ev, 5, np.zeros(N, bool), 0)
    assert picks.tolist() == np.argsort(-ev.image_score, kind="stable")[:5].tolist()


def test_random_reproducible_and_seed_dependent():
    labelled = np.zeros(500, bool)
    labelled[::3] = True
    a = select("random", Evidence(), 50, labelled, np.random.default_rng(11))
    b = select("random", Evidence(), 50, labelled, np.random.default_rng(11))
    c = select("random", Evidence(), 50, labelled, np.random.default_rng(12))
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()
    assert not labelled[a].any()


def test_missing_evidence_and_bad_inputs():
    labelled = np.zeros(N, bool)
    with pytest.raises(UserError, match="needs evidence 'image_score'"):
        select("entropy", Evidence(true_loss=np.zeros(N)), 3, labelled, 0)
    with pytest.raises(UserError, match="boolean mask"):
        select("entropy", full_evidence(), 3, np.zeros(N, int), 0)
    with pytest.raises(UserError, match="labelled mask has 10 entries"):
        select("entropy", full_evidence(), 3, np.zeros(10, bool), 0)
    with pytest.raises(UserError, match="budget must be >= 0"):
        select("entropy", full_evidence(), -1, labelled, 0)
    with pytest.raises(UserError, match="budget must be an integer"):
        select("entropy", full_evidence(), 2.5, labelled, 0)
    with pytest.raises(UserError, match="differ in length"):
        Evidence(image_score=np.zeros(3), true_loss=np.zeros(4))


@pytest.mark.parametrize("name, options", [(n, {}) for n in sorted(STRATEGIES)] + [("llal", {"subset": 15})])
def test_same_seed_same_picks_for_every_strategy(name, options):
    """Selections are a function of (evidence, labelled, seed): a fresh generator with the same seed
    gives the same picks; for strategies that draw (random, the LLAL subset, Core-Set's first centre
    on an empty labelled set) another seed gives other picks."""
    labelled = np.zeros(N, bool)
    ev = full_evidence(4)
    strat = get_strategy(name, **options)
    runs = {seed: [strat.select(ev, 8, labelled, np.random.default_rng(seed)).tolist() for _ in range(2)]
            for seed in (21, 22)}
    assert runs[21][0] == runs[21][1] and runs[22][0] == runs[22][1]
    if name == "random" or options or name == "coreset":
        assert runs[21][0] != runs[22][0]
    elif name in ("entropy", "true_loss", "llal", "margin"):
        assert runs[21][0] == runs[22][0]  # pure top-k of the evidence: no randomness at all
