"""The on-device tests of this folder again, under the real Python 3.8 of the fleet (Xavier, JetPack 5) with
numpy / onnxruntime / Pillow of that era (fleet.py): ondevice.py and these tests copied to a tree of
their own (the device gets the one file; tests needing torch or `al` skip there and run on this
interpreter). The summary line is printed at the end of `make test` (tests/conftest.py); a machine
without Python 3.8 skips with a one-line reason. One file per version: xdist runs them side by side.
"""

from .fleet import check_under


def test_ondevice_suite_under_python_3_8(tmp_path, tmp_path_factory):
    check_under("3.8", tmp_path, tmp_path_factory.getbasetemp())
