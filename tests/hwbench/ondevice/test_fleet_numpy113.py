"""The numpy paths of ondevice.py (test_old_numpy.py) under Python 3.6 with numpy 1.13.3, JetPack 4.6's
system numpy (fleet.py; onnxruntime and onnx need numpy >= 1.16, so only these tests run there).
Skipped with a one-line reason where Python 3.6 is absent."""

from .fleet import check_under


def test_numpy_paths_under_numpy_1_13(tmp_path, tmp_path_factory):
    check_under("3.6-numpy1.13", tmp_path, tmp_path_factory.getbasetemp())
