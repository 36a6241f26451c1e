"""Studies, one module each: a plan of cells and the code that runs a cell.

- `matrix`     surrogate × deployment matrix (paper Tables 3–5): `al surrogate`
- `chains`     generation chains: `al surrogate --chain`
- `entropy`    entropy histograms of models trained on one random subset (paper Fig. 4): `al entropy`
- `surrogate`  `run_experiment` / `surrogate_matrix`: the matrix or chain study end to end

Shared by the studies: `config` (experiment TOML), `deployable` (surrogates from `hwbench.deploy`),
`backend` (datasets, training, scoring), `context` (the experiment being run: directory, timing).
"""
