"""Run and experiment directories: layout, atomic state, resume, lock (one implementation for all).

- `run_dir.RunDir`      an `al run` directory: config.toml, state.json (validated), JSON lines, checkpoints, DONE
- `resume`              may a run directory be used as asked; where a run continues; a finished run verified
- `experiment_dir`      an experiment directory (`al surrogate`, `al entropy`): identity in experiment.json,
                        reuse on `--resume`, DONE removed until finished again
- `lock.DirLock`        exclusive lock of any directory (run, experiment, cell): a second process is refused
- `files`               content fingerprints, model weights, score arrays, cache entries
"""
