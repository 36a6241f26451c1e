"""The ONNX counter against hand-computed MACs on graphs built with `onnx.helper` (not exported by this
project), and against the torch counter on the ONNX export of every zoo model at two input sizes."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from hwbench.count import count  # noqa: E402
from hwbench.counting.onnx_graph import count_onnx  # noqa: E402
from hwbench.errors import UserError  # noqa: E402


def _weight(name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array(np.random.default_rng(0).standard_normal(shape).astype(np.float32), name)


def _model(nodes, inputs, outputs, inits, opset: int = 13) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _x(name: str, *dims) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(dims))


def _save(tmp_path, m, name="m.onnx", **kw):
    p = tmp_path / name
    onnx.save_model(m, str(p), **kw)
    return p


# Conv 3->8, 3x3, stride 2, pad 1 on 10x12 -> 5x6: 8*3*3*3 weights, each used at 5*6 output pixels.
CONV_MACS = 8 * 3 * 3 * 3 * 5 * 6                     # 6480
# Grouped dilated conv 8->8, groups 4 (2 in-channels per group), 3x3, dilation 2, pad 2 on 5x6 -> 5x6.
GROUPED_MACS = 8 * 2 * 3 * 3 * 5 * 6                  # 4320
# ConvTranspose 8->2, 2x2, stride 2 on 5x6 -> 10x12: every input pixel meets all 8*2*2*2 weights.
DECONV_MACS = 8 * 2 * 2 * 2 * 5 * 6                   # 1920
# Global pool -> (1, 2, 1, 1) -> Flatten (1, 2) -> Gemm 2 -> 10.
GEMM_MACS = 1 * 2 * 10                                # 20
PARAMS = (8 * 3 * 9 + 8) + (8 * 2 * 9) + (8 * 2 * 4 + 2) + (10 * 2 + 10)


def _cnn(batch: int | str = 1, h: int | str = 10, w: int | str = 12) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], kernel_shape=[3, 3], group=4, dilations=[2, 2],
                         pads=[2, 2, 2, 2]),
        helper.make_node("ConvTranspose", ["c2", "w3", "b3"], ["d"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["d"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "w4", "b4"], ["y"], transB=1),
    ]
    inits = [_weight("w1", 8, 3, 3, 3), _weight("b1", 8), _weight("w2", 8, 2, 3, 3), _weight("w3", 8, 2, 2, 2),
             _weight("b3", 2), _weight("w4", 10, 2), _weight("b4", 10)]
    return _model(nodes, [_x("x", batch, 3, h, w)], [_x("y", batch, 10)], inits)


def test_hand_computed_cnn(tmp_path) -> None:
    r = count_onnx(_save(tmp_path, _cnn()))
    assert r.macs == CONV_MACS + GROUPED_MACS + DECONV_MACS + GEMM_MACS
    assert r.params == PARAMS and r.weight_elems == PARAMS
    assert r.input == [1, 3, 10, 12] and r.counter == "onnx" and r.model == "m"
    by_kind = {x.kind: x.macs for x in r.layers}
    assert by_kind["onnx::Conv"] in (CONV_MACS, GROUPED_MACS) and by_kind["onnx::ConvTranspose"] == DECONV_MACS
    assert sum(x.macs for x in r.layers) == r.macs
    conv1 = r.layers[0]  # reads x (3*10*12), writes 8*5*6, weights 8*27 + 8
    assert (conv1.input_elems, conv1.output_elems, conv1.weight_elems) == (360, 240, 224)
    assert r.unsupported == {}  # Relu, Flatten: no arithmetic counted; GlobalAveragePool only in "all"
    assert count_onnx(_save(tmp_path, _cnn()), ops="all").unsupported == {}


def test_all_mode_norm_resize_pool(tmp_path) -> None:
    nodes = [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["n"]),
             helper.make_node("Resize", ["n", "", "sc"], ["u"], mode="linear"),
             helper.make_node("Resize", ["u", "", "sc"], ["u2"], mode="nearest"),
             helper.make_node("GlobalAveragePool", ["u2"], ["p"]),
             helper.make_node("Add", ["p", "p"], ["y"])]
    inits = [_weight(k, 4) for k in "sbmv"] + [numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "sc")]
    m = _model(nodes, [_x("x", 1, 4, 3, 5)], [_x("y", 1, 4, 1, 1)], inits)
    p = _save(tmp_path, m)
    n = 4 * 3 * 5
    r = count_onnx(p, ops="all")
    # BN 2/elem on 60, linear resize 4/output on 240, nearest 1/output on 960, global pool 1/input on 960
    assert r.macs == 2 * n + 4 * (4 * n) + 16 * n + 16 * n
    assert r.unsupported == {"onnx::Add": 1}
    assert r.params == 8 and r.weight_elems == 16 + 4  # BN scale+bias are parameters; running stats weights
    plain = count_onnx(p, ops="convlinear")
    assert plain.macs == 0 and plain.unsupported == {"onnx::Add": 1}


@pytest.mark.parametrize(("a", "b", "macs"), [
    ((3, 4, 5), (5, 6), 3 * 4 * 5 * 6),               # batched x matrix
    ((2, 1, 4, 5), (3, 5, 6), 2 * 3 * 4 * 5 * 6),     # broadcast batch (2, 3)
    ((4, 5), (5,), 4 * 5),                            # matrix x vector
])
def test_matmul(tmp_path, a, b, macs) -> None:
    nodes = [helper.make_node("MatMul", ["a", "b"], ["y"])]
    m = _model(nodes, [_x("a", *a), _x("b", *b)], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [])
    assert count_onnx(_save(tmp_path, m)).macs == macs


def test_gemm_trans_a(tmp_path) -> None:
    nodes = [helper.make_node("Gemm", ["a", "w"], ["y"], transA=1)]
    m = _model(nodes, [_x("a", 7, 3)], [_x("y", 3, 5)], [_weight("w", 7, 5)])
    assert count_onnx(_save(tmp_path, m)).macs == 3 * 7 * 5


def test_dynamic_dims_fixed_or_refused(tmp_path) -> None:
    p = _save(tmp_path, _cnn("N", "H", "W"))
    with pytest.raises(UserError, match=r"input 'x' has dynamic dimensions \(Nx3xHxW\).*--input"):
        count_onnx(p)
    r = count_onnx(p, (2, 3, 20, 24))
    assert r.macs == 2 * 4 * (CONV_MACS + GROUPED_MACS + DECONV_MACS) + 2 * GEMM_MACS
    with pytest.raises(UserError, match=r"fixed at 1x3x10x12, not 1x3x20x24"):
        count_onnx(_save(tmp_path, _cnn(), "s.onnx"), (1, 3, 20, 24))


def test_control_flow_refused_naming_the_node(tmp_path) -> None:
    branch = helper.make_graph([helper.make_node("Identity", ["x"], ["o"])], "b", [], [_x("o", 1)])
    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
             helper.make_node("Greater", ["s", "z"], ["c"]),
             helper.make_node("If", ["c"], ["y"], name="the_branch", then_branch=branch, else_branch=branch)]
    m = _model(nodes, [_x("x", 1)], [_x("y", 1)], [numpy_helper.from_array(np.array(0, np.float32), "z")])
    with pytest.raises(UserError, match="node 'the_branch' is a If"):
        count_onnx(_save(tmp_path, m))


def test_external_data_is_read(tmp_path) -> None:
    p = _save(tmp_path, _cnn(), "ext.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
              location="ext.weights", size_threshold=0)
    assert (tmp_path / "ext.weights").is_file()
    r = count_onnx(p)
    assert (r.macs, r.params) == (CONV_MACS + GROUPED_MACS + DECONV_MACS + GEMM_MACS, PARAMS)
    (tmp_path / "ext.weights").unlink()
    with pytest.raises(UserError, match="external data"):
        count_onnx(p)


def test_not_onnx(tmp_path) -> None:
    p = tmp_path / "bad.onnx"
    p.write_bytes(b"not a protobuf at all \x00\xff")
    with pytest.raises(UserError, match="not an ONNX model|shape inference failed|no graph inputs"):
        count_onnx(p)


# ----------------------------------------------------------------------------- zoo exports
def _export(model, shape) -> onnx.ModelProto:
    import torch

    f = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # do_constant_folding=False keeps BatchNormalization nodes, so parameters and the `all` mode compare too
        torch.onnx.export(model, torch.randn(shape), f, opset_version=13, dynamo=False, do_constant_folding=False)
    return onnx.load_from_string(f.getvalue())


ZOO = ("resnet20", "resnet18", "resnet34", "resnet50", "mobilenetv3_small", "deeplabv3plus_resnet20",
       "deeplabv3plus_mobilenetv3_small", "deeplabv3plus_resnet18", "deeplabv3plus_resnet50", "deeplabv3plus_xception65")


@pytest.mark.parametrize("name", ZOO)
def test_equals_torch_counter_on_every_zoo_export_at_two_sizes(name) -> None:
    import torch

    from hwbench.models import create_model, list_models

    assert set(ZOO) == set(list_models())
    torch.manual_seed(0)
    model = create_model(name).eval()
    for shape in ((1, 3, 64, 64), (2, 3, 64, 96)):
        graph = _export(model, shape)
        for ops in ("convlinear", "all"):
            ours, torch_count = count_onnx("export.onnx", None, ops, model=graph), count(model, shape, ops=ops)
            assert (ours.macs, ours.params) == (torch_count.macs, torch_count.params), (name, shape, ops)
        assert ours.input == list(shape)


def test_project_export_folds_bn_macs_unchanged(tmp_path) -> None:
    """`hwbench export` folds batch norm into the convolutions: conv/linear MACs stay exactly the same."""
    import torch

    from hwbench.export import export_onnx
    from hwbench.models import create_model

    model = create_model("deeplabv3plus_mobilenetv3_small").eval()
    p = export_onnx(model, (1, 3, 64, 128), tmp_path / "m.onnx")
    ours = count_onnx(p)
    assert ours.macs == count(model, (1, 3, 64, 128)).macs
    assert not any(x.kind == "onnx::BatchNormalization" for x in ours.layers)
    assert ours.params < sum(p.numel() for p in model.parameters())  # BN scale/bias folded away
    # the roofline takes its bytes from the graph's tensors: close to the torch table's (fused runtime)
    from hwbench.latency.theoretical import latency

    ratio = latency(ours, "tx2").latency_ms / latency(count(model, (1, 3, 64, 128)), "tx2").latency_ms
    assert 0.9 < ratio < 1.1, ratio
    del torch
