"""hwbench.latency (theoretical): Table 2 of the paper, peak and roofline on hand-computed cases."""

from __future__ import annotations

import json

import pytest
from torch import nn

from hwbench.count import count
from hwbench.errors import UserError
from hwbench.latency import latency
from hwbench.latency.roofline import layer_category, roofline
from hwbench.profiles import DeviceProfile, Peak, load_profile
from hwbench.report import PAPER_GOPS, PAPER_LATENCY_MS, PAPER_TOPS

# Table 2 of Frickenstein et al. 2024, transcribed here independently of hwbench.report:
# header GOPs per model, TOPS per device, latency (ms) rows TX2 (1.3) / Xavier (21) / Orin (50).
T2_MODELS = ("deeplabv3plus_resnet20", "deeplabv3plus_mobilenetv3_small", "deeplabv3plus_resnet18",
             "deeplabv3plus_resnet50", "deeplabv3plus_xception65")
T2_GOPS = dict(zip(T2_MODELS, (60.3, 61.1, 181.8, 404.1, 512.8), strict=True))
T2_TOPS = {"tx2": 1.3, "xavier_nx": 21.0, "orin_nx": 50.0}
T2_MS = {"tx2": dict(zip(T2_MODELS, (46.4, 47.0, 139.8, 310.8, 394.5), strict=True)),
         "xavier_nx": dict(zip(T2_MODELS, (2.9, 2.9, 8.7, 19.2, 24.4), strict=True)),
         "orin_nx": dict(zip(T2_MODELS, (1.2, 1.2, 3.6, 8.1, 10.3), strict=True))}


def toy_device(tops: float = 1.0, bw: float = 1.0) -> DeviceProfile:
    """1 TOPS fp16 / 2 TOPS int8 on the GPU, `bw` GB/s, no DLA."""
    return DeviceProfile(
        name="toy", display_name="Toy", generation="Toy", year=2024, power_mode="-", mem_bw_gbps=bw,
        memory_gb=1.0, peak=(Peak("fp16", "gpu", tops, "s"), Peak("int8", "gpu", 2 * tops, "s")),
        sources={}, paper_tops=0.5, paper_precision="int8", paper_engine="gpu")


@pytest.fixture(scope="module")
def counts():
    return {m: count(m) for m in T2_MODELS}


@pytest.mark.parametrize("device", ["tx2", "xavier_nx", "orin_nx"])
@pytest.mark.parametrize("model", ["deeplabv3plus_mobilenetv3_small", "deeplabv3plus_resnet18",
                                   "deeplabv3plus_resnet50", "deeplabv3plus_xception65"])
def test_table2_within_one_percent(counts, device, model):
    ours = latency(counts[model], device, mode="paper").latency_ms
    paper_arith = T2_GOPS[model] / T2_TOPS[device]                # the paper's unrounded GOPs / TOPS
    assert abs(ours - paper_arith) / paper_arith < 0.01
    published = T2_MS[device][model]                              # rounded to 0.1 ms in the paper
    assert abs(ours - published) <= 0.05 + 0.01 * published


def test_table2_res20_is_the_documented_exception(counts):
    # the paper's 60.3 GOPs cannot come from a CIFAR ResNet-20 made OS16; ours is 32.06 GMACs
    ours = latency(counts["deeplabv3plus_resnet20"], "tx2", mode="paper").latency_ms
    assert ours == pytest.approx(32.06 / 1.3, rel=1e-3)
    assert ours < 0.6 * T2_MS["tx2"]["deeplabv3plus_resnet20"]


def test_published_table_is_internally_consistent():
    # every published latency is the paper's GOPs / TOPS rounded to 0.1 ms ...
    for dev, row in T2_MS.items():
        for model, ms in row.items():
            assert round(T2_GOPS[model] / T2_TOPS[dev], 1) == pytest.approx(ms)
    # ... and the report's constants are the same transcription
    assert (PAPER_GOPS, PAPER_TOPS, PAPER_LATENCY_MS) == (T2_GOPS, T2_TOPS, T2_MS)


def test_peak_by_hand():
    conv = nn.Conv2d(3, 8, 3, padding=1)                            # 13,824 MACs on 1x3x8x8
    est = latency(conv, toy_device(tops=1.0), mode="peak", input_shape=(1, 3, 8, 8))
    assert est.latency_ms == pytest.approx(2 * 13824 / 1e12 * 1e3)
    int8 = latency(conv, toy_device(tops=1.0), mode="peak", precision="int8", input_shape=(1, 3, 8, 8))
    assert int8.latency_ms == pytest.approx(est.latency_ms / 2)
    paper = latency(conv, toy_device(), mode="paper", input_shape=(1, 3, 8, 8))
    assert paper.latency_ms == pytest.approx(13824 / (0.5 * 1e9))   # MACs / paper TOPS
    assert (paper.precision, paper.engine) == ("int8", "gpu")


def test_peak_is_twice_paper_on_the_papers_own_figure(counts):
    c = counts["deeplabv3plus_resnet50"]
    paper = latency(c, "xavier_nx", mode="paper").latency_ms
    peak = latency(c, "xavier_nx", mode="peak", precision="int8", engine="gpu+dla").latency_ms
    assert peak == pytest.approx(2 * paper)


def test_roofline_by_hand():
    # conv 3->8 k3 on 1x3x8x8: 13,824 MACs; bytes at fp16 = 2 * (192 in + 512 out + 224 weights)
    conv = nn.Conv2d(3, 8, 3, padding=1)
    nbytes = 2 * (192 + 512 + 224)
    compute_ms = 2 * 13824 / 1e12 * 1e3
    slow_mem = latency(conv, toy_device(tops=1.0, bw=1e-3), mode="roofline", input_shape=(1, 3, 8, 8))
    assert slow_mem.bytes_moved == nbytes
    assert slow_mem.latency_ms == pytest.approx(nbytes / 1e6 * 1e3)         # memory-bound
    fast_mem = latency(conv, toy_device(tops=1.0, bw=1e6), mode="roofline", input_shape=(1, 3, 8, 8))
    assert fast_mem.latency_ms == pytest.approx(compute_ms)                  # compute-bound


def test_roofline_sums_layers_and_fuses_elementwise():
    seq = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 4, 1, bias=False), nn.MaxPool2d(2))
    c = count(seq, (1, 3, 8, 8))
    kinds = {lc.kind: lc for lc in c.layers}
    assert layer_category("BatchNorm2d") == "norm" and layer_category("MaxPool2d") == "other"
    bw_gbps, tops, bpe = 1e-3, 1e-6, 2

    def t(lc):  # one layer by hand: max(compute, memory), in ms
        compute_s = 2 * lc.macs / (tops * 1e12)
        memory_s = (lc.input_elems + lc.output_elems + lc.weight_elems) * bpe / (bw_gbps * 1e9)
        return max(compute_s, memory_s) * 1e3

    convs = [lc for lc in c.layers if lc.kind == "Conv2d"]
    fused = roofline(c.layers, tops=tops, mem_bw_gbps=bw_gbps, bytes_per_elem=bpe)
    assert fused.latency_ms == pytest.approx(sum(t(lc) for lc in convs) + t(kinds["MaxPool2d"]))
    unfused = roofline(c.layers, tops=tops, mem_bw_gbps=bw_gbps, bytes_per_elem=bpe, fuse=False)
    assert unfused.latency_ms == pytest.approx(fused.latency_ms + t(kinds["BatchNorm2d"]) + t(kinds["ReLU"]))


def test_records_and_errors(counts):
    est = latency(counts["deeplabv3plus_resnet18"], "orin_nx", mode="roofline")
    rec = est.record()
    assert {"model", "device", "mode", "precision", "engine", "latency_ms", "macs", "bytes_moved"} <= set(rec)
    assert (rec["precision"], rec["engine"], rec["input"]) == ("fp16", "gpu", [1, 3, 1024, 2048])
    assert est.compute_ms <= est.latency_ms and est.memory_ms <= est.latency_ms
    with pytest.raises(UserError, match="no int8/gpu"):
        latency(counts["deeplabv3plus_resnet18"], "tx2", mode="peak", precision="int8")
    with pytest.raises(UserError, match="no DLA"):
        latency(counts["deeplabv3plus_resnet18"], "orin_nano", mode="roofline", precision="int8", engine="dla")
    with pytest.raises(UserError, match="paper_tops"):
        latency(counts["deeplabv3plus_resnet18"], load_profile("agx_orin"), mode="paper")
    with pytest.raises(UserError, match="unknown latency mode"):
        latency(counts["deeplabv3plus_resnet18"], "tx2", mode="measured")
    with pytest.raises(UserError, match="differs"):
        latency(counts["deeplabv3plus_resnet18"], "tx2", input_shape=(1, 3, 512, 1024))


def test_cli_latency_json(capsys):
    from hwbench.cli import main

    assert main(["latency", "deeplabv3plus_resnet18", "--device", "tx2", "orin_nx", "--mode", "peak",
                 "--input", "256x512", "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert [(r["device"], r["mode"], r["precision"]) for r in recs] == [("tx2", "peak", "fp16"),
                                                                       ("orin_nx", "peak", "fp16")]
    for r in recs:  # peak = 2 x MACs / (fp16 GPU peak TOPS), in ms
        tops = load_profile(r["device"]).peak_tops("fp16", "gpu")
        assert r["latency_ms"] == pytest.approx(2 * r["macs"] / (tops * 1e12) * 1e3)
    assert recs[0]["macs"] == recs[1]["macs"] == count("deeplabv3plus_resnet18", (1, 3, 256, 512)).macs
    assert main(["latency", "--device", "tx2", "--mode", "peak", "--precision", "int8", "--input", "64x64"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "int8" in err and "\n" not in err
