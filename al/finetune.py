"""`al finetune MODEL --weights DEPLOYED.pt --frames LABELLED [--frames MORE] --out DIR`: the training run
that continues from the model on the devices with the frames they sent, once labelled (`al label`).

The model (a zoo segmentation model, `num_classes` of the frames: 8 for the drives) starts from the
checkpoint the devices run (`--weights`), trains `epochs` on every labelled frame of the given frame
directories (the `al.data.drive_io` format with labels) and writes

    DIR/model.pt        the new state dict: `hwbench export MODEL --weights DIR/model.pt` makes the
                        next ONNX file for the devices (`ondevice.py score --onnx ...`)
    DIR/finetune.json   what went in (frames, their hashes, the starting checkpoint's SHA-256),
                        the training summary and, with `--val FRAME_DIR`, mIoU before and after

Everything is checked before training starts; the outputs are written atomically at the end.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from hwbench.errors import UserError

log = logging.getLogger(__name__)


class LabelledFrames(Dataset):
    """Labelled frame directories (`al.data.drive_io` format) as one segmentation set, in memory."""

    task = "segmentation"
    name = "labelled_frames"

    def __init__(self, dirs: list[str | os.PathLike], num_classes: int) -> None:
        from al.data.base import SEG_IGNORE_INDEX, normalize
        from al.data.drive_io import read_frames

        images, labels, self.files = [], [], []
        for d in dirs:
            for f in read_frames(d):
                if f.label is None:
                    raise UserError(f"{d}: frame {f.drive_id}/{f.frame_index} has no label; label it with `al label`")
                images.append(f.image)
                labels.append(f.label)
        if not images:
            raise UserError(f"no labelled frames in {', '.join(map(str, dirs))}")
        shapes = {im.shape for im in images}
        if len(shapes) != 1:
            raise UserError(f"the labelled frames have different sizes {sorted(shapes)}; give frames of one size")
        y = np.stack(labels)                                                              # (N, H, W)
        bad = (y != SEG_IGNORE_INDEX) & (y >= num_classes)
        if bad.any():
            raise UserError(f"labels hold class ids >= --num-classes {num_classes} (max {int(y[bad].max())})")
        x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)    # (N, 3, H, W)
        self.x, self.y = normalize(x).contiguous(), torch.from_numpy(y).long()
        self.num_classes, self.ignore_index = int(num_classes), SEG_IGNORE_INDEX

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


def finetune(model_name: str, weights: str | os.PathLike, frames: list[str | os.PathLike], out: str | os.PathLike, *,
             num_classes: int = 8, epochs: int = 2, batch_size: int = 8, lr: float = 0.01, seed: int = 0,
             val: str | os.PathLike | None = None, show_progress: bool = True) -> dict[str, Any]:
    """Continue training `model_name` from `weights` on the labelled `frames`; see the module docstring."""
    from al.train import TrainConfig, evaluate, train
    from hwbench.io import atomic_write_bytes, atomic_write_text
    from hwbench.models import create_model, load_weights

    weights, out_dir = Path(weights), Path(out)
    if not weights.is_file():
        raise UserError(f"--weights {str(weights)!r} not found; give the checkpoint the devices' model was exported from")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UserError(f"--out {out_dir} exists and is not empty; choose a new directory")
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, amp=False, channels_last=False)
    data = LabelledFrames(frames, num_classes)
    val_set = LabelledFrames([val], num_classes) if val is not None else None
    torch.manual_seed(seed)
    model = load_weights(create_model(model_name, num_classes=num_classes), weights)
    before = evaluate(model, val_set, show_progress=False) if val_set is not None else None
    summary = train(model, data, np.arange(len(data)), cfg, seed=seed, show_progress=show_progress)
    after = evaluate(model, val_set, show_progress=False) if val_set is not None else None
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    record = {"model": model_name, "num_classes": num_classes, "weights": str(weights),
              "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
              "frames": [str(f) for f in frames], "n_frames": len(data), "epochs": epochs, "batch_size": batch_size,
              "lr": lr, "seed": seed, "loss_per_epoch": summary.get("loss_per_epoch"),
              "model_sha256": hashlib.sha256(buf.getvalue()).hexdigest()}
    if before is not None and after is not None:
        record.update(val=str(val), val_miou_before=before["miou"], val_miou_after=after["miou"])
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out_dir / "model.pt", buf.getvalue())
    atomic_write_text(out_dir / "finetune.json", json.dumps(record, indent=1, sort_keys=True) + "\n")
    log.info("finetuned %s on %d frames -> %s", model_name, len(data), out_dir / "model.pt")
    return record
