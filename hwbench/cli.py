"""`hwbench` command line."""

from __future__ import annotations

import sys

from hwbench.cli_base import make_main

COMMANDS: dict[str, tuple[str, str]] = {
    "models": ("hwbench.commands.models", "list the model zoo"),
    "profiles": ("hwbench.commands.profiles", "list device profiles and their figures"),
    "count": ("hwbench.commands.count", "count MACs and parameters"),
    "latency": ("hwbench.commands.latency", "theoretical latency: paper, peak or roofline"),
    "deploy": ("hwbench.commands.deploy", "which model fits which device under a latency budget"),
    "report": ("hwbench.commands.report", "write the markdown/CSV/PNG hardware report"),
    "measure": ("hwbench.commands.measure", "measure latency with torch, onnxruntime or tensorrt"),
    "export": ("hwbench.commands.export", "export a model to ONNX and check it against PyTorch"),
    "ingest": ("hwbench.commands.ingest", "read trtexec logs or --exportTimes JSON into records"),
    "predict": ("hwbench.commands.predict", "predict measured latency from a calibrated roofline"),
}

main = make_main("hwbench", "Model cost, device profiles, latency and deployability.", COMMANDS)

if __name__ == "__main__":
    sys.exit(main())
