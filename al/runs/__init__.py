"""Run and experiment directories: layout, atomic state, resume (one implementation for all).

- `run_dir.RunDir`          an `al run` directory: config.toml, state.json, JSON lines, checkpoints, DONE
- `experiment_dir.open_out_dir`  an experiment directory (`al surrogate`, `al entropy`): identity
                             in experiment.json, reuse on `--resume`, DONE removed until finished again
- `files`                   content fingerprints, model weights and score arrays written atomically
"""
