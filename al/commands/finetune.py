"""`al finetune MODEL --weights DEPLOYED.pt --frames LABELLED --out DIR`: continue training the devices'
model on the labelled frames they sent; DIR/model.pt goes to `hwbench export MODEL --weights`."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="zoo segmentation model the devices run (e.g. deeplabv3plus_resnet20)")
    parser.add_argument("--weights", required=True, help="the checkpoint the devices' ONNX was exported from")
    parser.add_argument("--frames", required=True, action="append", metavar="LABELLED",
                        help="labelled frame directory of `al label` (repeat to add earlier rounds)")
    parser.add_argument("--out", required=True, metavar="DIR", help="new directory: model.pt + finetune.json")
    parser.add_argument("--val", default=None, metavar="FRAME_DIR", help="labelled frames to report mIoU before/after on")
    parser.add_argument("--num-classes", type=int, default=8, help="classes of the labels (default 8: the drives)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs (default 2)")
    parser.add_argument("--batch-size", type=int, default=8, help="batch size (default 8)")
    parser.add_argument("--lr", type=float, default=0.01, help="learning rate (default 0.01)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    from al.finetune import finetune
    from hwbench.console import emit, line
    from hwbench.errors import UserError

    if args.num_classes < 2:
        raise UserError(f"--num-classes must be >= 2, got {args.num_classes}")
    rec = finetune(args.model, args.weights, args.frames, args.out, num_classes=args.num_classes, epochs=args.epochs,
                   batch_size=args.batch_size, lr=args.lr, seed=args.seed, val=args.val, show_progress=not args.json)
    if args.json:
        emit([rec], as_json=True)
        return 0
    miou = (f"; val mIoU {rec['val_miou_before']:.1f} -> {rec['val_miou_after']:.1f} %"
            if "val_miou_after" in rec else "")
    line(f"finetuned {rec['model']} from {rec['weights']} on {rec['n_frames']} frames, {rec['epochs']} epochs"
         f"{miou}; export it: hwbench export {rec['model']} --weights {args.out}/model.pt ...")
    return 0
