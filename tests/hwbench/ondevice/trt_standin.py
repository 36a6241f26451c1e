"""Stand-ins for `tensorrt` and `pycuda` that expose exactly one TensorRT release's Python names.

tensorrt_python_api.json (beside this file) lists, for TensorRT 8.0.1 ... 11.0, every class of the
Python bindings and the names it binds (extracted from NVIDIA/TensorRT python/src at those tags;
true = deprecated). `modules(release, device)` returns (tensorrt, pycuda, pycuda.driver) modules:
a name the release does not bind raises AttributeError as the real binding does (attribute reads
and writes, module attributes, enum members), so code written against another release fails here.

Behind the names a small simulation, enough to drive `ondevice.py bench/score --backend tensorrt`
and `hwbench measure --backend tensorrt` without a GPU:
- the parser reads the ONNX file (onnx package); layers are its nodes, Reduce* nodes are REDUCE;
- an engine runs the ONNX graph with onnxruntime on the CPU; under FP16 every output of a layer
  not pinned to fp32 passes through float16 (so a sum over many pixels overflows to inf as it
  would in an fp16 reduction), INT8 without calibration or dynamic ranges fails the build;
- the DLA exists when the simulated device has cores; a TX2-like device has no fast INT8;
- pycuda's buffers are numpy arrays, CUDA events stamp a simulated stream clock.
Python 3.6 compatible: it also runs under the fleet's Pythons (test_fleet_py36.py).
"""

import json
import types
from collections import namedtuple
from pathlib import Path

import numpy as np

API = json.loads((Path(__file__).with_name("tensorrt_python_api.json")).read_text())
# release -> (key in the JSON, __version__ the module reports)
RELEASES = {"8.0.1": ("8.0.1", "8.0.1.6"), "8.2.1": ("8.2.1", "8.2.1.8"), "8.4.3": ("8.4.3", "8.4.3.1"),
            "8.5.2": ("8.5.2", "8.5.2.2"), "8.6.1": ("v8.6.1", "8.6.1.6"), "10.0": ("v10.0.0", "10.0.0.6"),
            "10.3": ("v10.3.0", "10.3.0.26"), "10.7": ("v10.7.0", "10.7.0.23"), "10.16": ("v10.16", "10.16.0.1"),
            "11.0": ("v11.0", "11.0.0.7")}
# which JetPack ships which (NVIDIA's JetPack release notes)
JETPACK = {"8.0.1": "JetPack 4.6 (TX2, Xavier)", "8.2.1": "JetPack 4.6.1/4.6.2 (TX2, Xavier)",
           "8.5.2": "JetPack 5.1 (Xavier, Orin)", "8.6.1": "(JetPack 6.0 ships 8.6.2)", "10.3": "JetPack 6.1/6.2 (Orin)"}

TABLE_ENV = "HWBENCH_TRT_TABLE"  # test_trt_releases.py writes each release's outcomes there
COLUMNS = ("score fp16", "score int8", "bench", "DLA", "calibration", "measure")

Device = namedtuple("Device", "name fast_fp16 fast_int8 dla_cores")
XAVIER = Device("Xavier (stand-in)", True, True, 2)
TX2 = Device("TX2 (stand-in)", True, False, 0)
ORIN = Device("Orin (stand-in)", True, True, 2)

_MAGIC = b"STANDIN-ENGINE\n"
DEPRECATED_USED = set()  # "Class.name" of every deprecated binding name touched (cleared by `modules`)


def _note(api, cls, bases, name):
    for c in (cls,) + tuple(bases):
        if (api.get(c) or {}).get(name) is True:
            DEPRECATED_USED.add("%s.%s" % (c, name))


class _Restricted(object):
    """An object of binding class `_cls` of release `_api`: public names outside the release's
    list raise AttributeError; listed names that are plain attributes live in `_props`."""

    _cls = ""

    def __init__(self, api):
        object.__setattr__(self, "_api", api)
        object.__setattr__(self, "_props", {})

    def _allowed(self):
        api = object.__getattribute__(self, "_api")
        cls = object.__getattribute__(self, "_cls")
        names = set(api.get(cls) or {})
        for base in object.__getattribute__(self, "_bases"):
            names |= set(api.get(base) or {})
        return names

    _bases = ()

    def __getattribute__(self, name):
        if name.startswith("_"):
            return object.__getattribute__(self, name)
        if name not in object.__getattribute__(self, "_allowed")():
            raise AttributeError("'tensorrt.tensorrt.%s' object has no attribute '%s'"
                                 % (object.__getattribute__(self, "_cls"), name))
        _note(object.__getattribute__(self, "_api"), object.__getattribute__(self, "_cls"),
              object.__getattribute__(self, "_bases"), name)
        try:
            return object.__getattribute__(self, name)
        except AttributeError:
            props = object.__getattribute__(self, "_props")
            if name in props:
                return props[name]
            raise AttributeError("stand-in: %s.%s is bound but not simulated"
                                 % (object.__getattribute__(self, "_cls"), name)) from None

    def __setattr__(self, name, value):
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        if name not in self._allowed():
            raise AttributeError("'tensorrt.tensorrt.%s' object has no attribute '%s'" % (self._cls, name))
        _note(self._api, self._cls, self._bases, name)
        self._props[name] = value


class _EnumValue(object):
    def __init__(self, enum, name, value):
        self.enum, self.name, self.value = enum, name, value

    def __int__(self):
        return self.value

    __index__ = __int__

    def __eq__(self, other):
        return isinstance(other, _EnumValue) and (self.enum, self.name) == (other.enum, other.name)

    def __hash__(self):
        return hash((self.enum, self.name))

    def __repr__(self):
        return "<%s.%s: %d>" % (self.enum, self.name, self.value)


class _Enum(object):
    """An enum class of the bindings: exactly the release's members."""

    def __init__(self, name, members, api=None):
        self._name, self._api = name, api or {}
        self._members = dict((m, _EnumValue(name, m, i)) for i, m in enumerate(members))

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            value = self._members[name]
            _note(self._api, self._name, (), name)
            return value
        except KeyError:
            raise AttributeError("type object '%s' has no attribute '%s'" % (self._name, name)) from None


def _enum_names(api, cls):
    return [k for k in (api.get(cls) or {}) if k.isupper() or k[:1].isupper()]


# ----------------------------------------------------------------------------------- tensorrt
def modules(release, device=XAVIER):
    """(tensorrt, pycuda, pycuda.driver) for `release` (a key of RELEASES) on a simulated `device`."""
    key, version = RELEASES[release]
    api = API[key]
    DEPRECATED_USED.clear()
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    enums = {}
    for cls in ("BuilderFlag", "NetworkDefinitionCreationFlag", "DeviceType", "MemoryPoolType", "TensorIOMode",
                "LayerType", "DataType", "Severity"):
        if cls in api:
            enums[cls] = _Enum(cls, _enum_names(api, cls), api)
            setattr(trt, cls, enums[cls])
    dt = enums["DataType"]
    # tensorrt/__init__.py (Python, in every release): DataType aliases and nptype
    trt.float32, trt.float16, trt.int8, trt.int32 = dt.FLOAT, dt.HALF, dt.INT8, dt.INT32
    np_of = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "BOOL": np.bool_}
    trt.nptype = lambda t: np_of[t.name]

    def restricted(name, bases=()):
        def deco(impl):
            cls = type(name, (impl,), {"_cls": name, "_bases": bases})
            if name in api:
                setattr(trt, name, cls)
            return cls
        return deco

    sev = enums.get("Severity")

    class LoggerMeta(type):
        def __getattr__(cls, name):
            if sev is not None and name in sev._members:
                return sev._members[name]
            raise AttributeError("type object 'Logger' has no attribute '%s'" % name)

    class Logger(_Restricted, metaclass=LoggerMeta):
        _cls, _bases = "Logger", ("ILogger",)

        def __init__(self, min_severity=None):
            _Restricted.__init__(self, api)

    trt.Logger = Logger

    @restricted("ITensor")
    class Tensor(_Restricted):
        def __init__(self, name, shape, dtype=None):
            _Restricted.__init__(self, api)
            self._name, self._shape, self._dtype, self._range = name, tuple(shape), dtype or dt.FLOAT, None

        @property
        def name(self):
            return self._name

        @property
        def shape(self):
            return self._shape

        @property
        def dtype(self):
            return self._dtype

        @property
        def dynamic_range(self):
            return self._range

        def set_dynamic_range(self, lo, hi):
            self._range = (float(lo), float(hi))
            return True

    @restricted("ILayer")
    class Layer(_Restricted):
        def __init__(self, op, inputs, outputs):
            _Restricted.__init__(self, api)
            self._op, self._inputs, self._outputs = op, inputs, outputs
            self._precision, self._out_types = None, {}

        @property
        def type(self):
            return enums["LayerType"].REDUCE if self._op.startswith("Reduce") else enums["LayerType"].ELEMENTWISE

        @property
        def name(self):
            return self._op

        @property
        def num_inputs(self):
            return len(self._inputs)

        @property
        def num_outputs(self):
            return len(self._outputs)

        def get_input(self, i):
            return self._inputs[i]

        def get_output(self, i):
            return self._outputs[i]

        @property
        def precision(self):
            return self._precision

        @precision.setter
        def precision(self, v):  # only reached when the release binds `precision` (checked in __setattr__)
            self._precision = v

        def __setattr__(self, name, value):
            if name == "precision" and "precision" in self._allowed():
                object.__setattr__(self, "_precision", value)
                return
            _Restricted.__setattr__(self, name, value)

        def set_output_type(self, i, t):
            self._out_types[i] = t

    @restricted("INetworkDefinition")
    class Network(_Restricted):
        def __init__(self, flags):
            _Restricted.__init__(self, api)
            self._flags, self._inputs, self._outputs, self._layers, self._onnx = flags, [], [], [], None

        @property
        def num_layers(self):
            return len(self._layers)

        @property
        def num_inputs(self):
            return len(self._inputs)

        @property
        def num_outputs(self):
            return len(self._outputs)

        def get_layer(self, i):
            return self._layers[i]

        def get_input(self, i):
            return self._inputs[i]

        def get_output(self, i):
            return self._outputs[i]

    @restricted("OnnxParser")
    class OnnxParser(_Restricted):
        def __init__(self, network, logger):
            _Restricted.__init__(self, api)
            self._net, self._errors = network, []

        def parse_from_file(self, path):
            import onnx

            if key < "8.5" and key[0] == "8" and self._net._flags != 1 << int(enums["NetworkDefinitionCreationFlag"].EXPLICIT_BATCH):
                self._errors.append("ONNX needs an explicit-batch network (create_network(1 << EXPLICIT_BATCH))")
                return False
            try:
                m = onnx.load(str(path))
            except Exception as e:  # noqa: BLE001 - the real parser reports, never raises
                self._errors.append("cannot parse: %s" % e)
                return False
            g = m.graph
            inits = set(i.name for i in g.initializer)
            tensors = {}
            for vi in g.input:
                if vi.name in inits:
                    continue
                dims = [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]
                t = Tensor(vi.name, dims)
                tensors[vi.name] = t
                self._net._inputs.append(t)
            for node in g.node:
                ins = [tensors.get(n) for n in node.input if n in tensors]
                outs = [Tensor(n, ()) for n in node.output]
                for t in outs:
                    tensors[t.name] = t
                self._net._layers.append(Layer(node.op_type, ins, outs))
            self._net._outputs = [tensors[o.name] for o in g.output]
            self._net._onnx = str(path)
            return True

        @property
        def num_errors(self):
            return len(self._errors)

        def get_error(self, i):
            return self._errors[i]

    @restricted("IOptimizationProfile")
    class Profile(_Restricted):
        def __init__(self):
            _Restricted.__init__(self, api)
            self._shapes = {}

        def set_shape(self, name, lo, opt, hi):
            self._shapes[name] = (tuple(lo), tuple(opt), tuple(hi))

    @restricted("IBuilderConfig")
    class Config(_Restricted):
        def __init__(self):
            _Restricted.__init__(self, api)
            self._flags, self._pools, self._profiles = set(), {}, []
            self._props.update(max_workspace_size=0, default_device_type=enums["DeviceType"].GPU, DLA_core=-1,
                               int8_calibrator=None)

        def set_flag(self, f):
            self._flags.add(f.name)

        def get_flag(self, f):
            return f.name in self._flags

        def set_memory_pool_limit(self, pool, n):
            self._pools[pool.name] = int(n)

        def add_optimization_profile(self, p):
            self._profiles.append(p)
            return len(self._profiles) - 1

        def set_calibration_profile(self, p):
            self._props["calibration_profile"] = p
            return True

    @restricted("Builder")
    class Builder(_Restricted):
        def __init__(self, logger):
            _Restricted.__init__(self, api)

        def create_network(self, flags=0):
            return Network(int(flags))

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        @property
        def platform_has_fast_fp16(self):
            return device.fast_fp16

        @property
        def platform_has_fast_int8(self):
            return device.fast_int8

        @property
        def num_DLA_cores(self):
            return device.dla_cores

        def build_serialized_network(self, network, config):
            flags = sorted(config._flags)
            if "INT8" in flags and not device.fast_int8:
                return None                                    # TensorRT logs "no INT8 support" and fails
            calib = config._props.get("int8_calibrator")
            calibrated = None
            if "INT8" in flags:
                if calib is not None:
                    n = calib.get_batch_size()
                    batches = 0
                    while calib.get_batch([network.get_input(0).name]) is not None:
                        batches += 1
                    if batches == 0 and calib.read_calibration_cache() is None:
                        return None
                    calib.write_calibration_cache(b"standin-calibration n=%d batches=%d" % (n, batches))
                    calibrated = "entropy:%d" % batches
                else:
                    tensors = [t for layer in network._layers for t in layer._inputs + layer._outputs]
                    if any(t.dynamic_range is None for t in tensors):
                        return None                            # missing scales: the build fails
                    calibrated = "ranges"
            dla = config._props.get("default_device_type") == enums["DeviceType"].DLA
            fp32_ops = [layer._op for layer in network._layers if layer._precision == trt.float32
                        and all(t == trt.float32 for t in layer._out_types.values())]
            obeyed = bool(set(flags) & {"OBEY_PRECISION_CONSTRAINTS", "STRICT_TYPES"})
            inp = network.get_input(0)
            shape = list(inp.shape)
            for p in config._profiles:
                if inp.name in p._shapes:
                    shape = list(p._shapes[inp.name][1])
            meta = {"release": key, "onnx": network._onnx, "input": inp.name, "shape": shape,
                    "outputs": [t.name for t in network._outputs], "flags": flags,
                    "dla_core": config._props.get("DLA_core") if dla else None, "calibrated": calibrated,
                    "fp32_ops": fp32_ops if obeyed else [],
                    "layer_ops": dict((t.name, layer._op) for layer in network._layers for t in layer._outputs)}
            return bytearray(_MAGIC + json.dumps(meta).encode())

    @restricted("ICudaEngine")
    class Engine(_Restricted):
        def __init__(self, meta):
            _Restricted.__init__(self, api)
            self._meta = meta
            self._names = [meta["input"]] + list(meta["outputs"])

        def create_execution_context(self):
            return Context(self)

        # 8.5+ named tensors
        @property
        def num_io_tensors(self):
            return len(self._names)

        def get_tensor_name(self, i):
            return self._names[i]

        def get_tensor_mode(self, name):
            return enums["TensorIOMode"].INPUT if name == self._meta["input"] else enums["TensorIOMode"].OUTPUT

        def get_tensor_shape(self, name):
            return self._shape_of(name)

        def _shape_of(self, name):
            return tuple(self._meta["shape"]) if name == self._meta["input"] else ()

        def get_tensor_dtype(self, name):
            return dt.FLOAT

        # 8.0-8.6 bindings
        @property
        def num_bindings(self):
            return len(self._names)

        def binding_is_input(self, i):
            return i == 0

        def get_binding_shape(self, i):
            return self._shape_of(self._names[i])

        def get_binding_dtype(self, i):
            return dt.FLOAT

        def get_binding_name(self, i):
            return self._names[i]

    @restricted("IExecutionContext")
    class Context(_Restricted):
        def __init__(self, engine):
            _Restricted.__init__(self, api)
            self._engine, self._addr, self._shapes = engine, {}, {}
            import onnxruntime as ort

            so = ort.SessionOptions()
            so.intra_op_num_threads = 1
            self._sess = ort.InferenceSession(engine._meta["onnx"], sess_options=so,
                                              providers=["CPUExecutionProvider"])
            self._out_shapes = dict((o.name, tuple(d if isinstance(d, int) else 1 for d in o.shape))
                                    for o in self._sess.get_outputs())

        def set_input_shape(self, name, shape):
            self._shapes[name] = tuple(shape)
            return True

        def set_binding_shape(self, i, shape):
            self._shapes[self._engine._names[i]] = tuple(shape)
            return True

        def get_tensor_shape(self, name):
            return self._shape(name)

        def _shape(self, name):
            m = self._engine._meta
            if name == m["input"]:
                return self._shapes.get(name, tuple(m["shape"]))
            return self._out_shapes[name]

        def get_binding_shape(self, i):
            return self._shape(self._engine._names[i])

        def set_tensor_address(self, name, addr):
            self._addr[name] = int(addr)
            return True

        def _run(self, addrs, stream_handle):
            m = self._engine._meta
            x = _MEMORY[addrs[m["input"]]].view(np.float32).reshape(self._shape(m["input"]))
            outs = self._sess.run(None, {m["input"]: x})
            for name, y in zip([o.name for o in self._sess.get_outputs()], outs):
                y = np.asarray(y, dtype=np.float32)
                fp16 = "FP16" in m["flags"] and m["layer_ops"].get(name) not in m["fp32_ops"]
                if fp16:
                    with np.errstate(over="ignore"):
                        y = y.astype(np.float16).astype(np.float32)
                buf = _MEMORY[addrs[name]]
                buf[: y.nbytes] = np.frombuffer(y.tobytes(), dtype=np.uint8)
            ms = 2.0 / (2 if "FP16" in m["flags"] else 1) / (2 if "INT8" in m["flags"] else 1)
            _STREAMS[stream_handle].clock_ms += ms * (1.5 if m["dla_core"] is not None else 1.0)
            return True

        def execute_async_v3(self, stream_handle):
            return self._run(self._addr, stream_handle)

        def execute_async_v2(self, bindings, stream_handle):
            return self._run(dict(zip(self._engine._names, bindings)), stream_handle)

    @restricted("Runtime")
    class Runtime(_Restricted):
        def __init__(self, logger):
            _Restricted.__init__(self, api)
            self._props["DLA_core"] = -1

        def deserialize_cuda_engine(self, data):
            data = bytes(data)
            if not data.startswith(_MAGIC):
                return None
            meta = json.loads(data[len(_MAGIC):].decode())
            if meta["release"] != key:
                return None                                    # engines do not cross releases
            return Engine(meta)

    if "IInt8EntropyCalibrator2" in api:
        base = type("IInt8EntropyCalibrator2", (object,), {"__init__": lambda self: None})
        trt.IInt8EntropyCalibrator2 = base
        if any((api.get(c) or {}).get("IInt8EntropyCalibrator2") for c in ("<module>", "tensorrt")):
            DEPRECATED_USED.add("IInt8EntropyCalibrator2")

    pycuda, driver = _pycuda(device)
    return trt, pycuda, driver


# ------------------------------------------------------------------------------------- pycuda
_MEMORY = {}   # device address -> uint8 buffer
_STREAMS = {}  # stream handle -> stream


def _pycuda(device):
    pycuda = types.ModuleType("pycuda")
    driver = types.ModuleType("pycuda.driver")
    pycuda.driver = driver
    state = {"init": False, "next": 0x1000}

    class Dev(object):
        def __init__(self, i):
            self.i = i

        @staticmethod
        def count():
            return 1

        def name(self):
            return device.name

        def make_context(self):
            return Ctx()

    class Ctx(object):
        def pop(self):
            pass

        @staticmethod
        def get_device():
            return Dev(0)

    class Allocation(object):
        def __init__(self, n):
            state["next"] += ((n + 255) // 256 + 1) * 256
            self.addr = state["next"]
            _MEMORY[self.addr] = np.zeros(n, dtype=np.uint8)

        def __int__(self):
            return self.addr

        __index__ = __int__

        def free(self):
            _MEMORY.pop(self.addr, None)

    class Stream(object):
        def __init__(self):
            self.clock_ms = 0.0
            self.handle = id(self)
            _STREAMS[self.handle] = self

    class Event(object):
        def record(self, stream=None):
            self.t = stream.clock_ms if stream is not None else 0.0

        def synchronize(self):
            pass

        def time_since(self, other):
            return self.t - other.t

    def _copy(dst, src, stream, ms_per_mb=0.1):
        a = np.ascontiguousarray(src).view(np.uint8).reshape(-1)
        dst[: a.size] = a
        if stream is not None:
            stream.clock_ms += 0.01 + ms_per_mb * a.size / 1e6

    def memcpy_htod_async(dev, host, stream=None):
        _copy(_MEMORY[int(dev)], host, stream)

    def memcpy_htod(dev, host):
        _copy(_MEMORY[int(dev)], host, None)

    def memcpy_dtoh_async(host, dev, stream=None):
        h = host.reshape(-1).view(np.uint8)
        h[:] = _MEMORY[int(dev)][: h.size]
        if stream is not None:
            stream.clock_ms += 0.01

    driver.init = lambda: state.update(init=True)
    driver.Device, driver.Context, driver.Stream, driver.Event = Dev, Ctx, Stream, Event
    driver.mem_alloc = Allocation
    driver.pagelocked_empty = lambda shape, dtype: np.empty(shape, dtype=dtype)
    driver.memcpy_htod_async, driver.memcpy_htod, driver.memcpy_dtoh_async = memcpy_htod_async, memcpy_htod, memcpy_dtoh_async
    return pycuda, driver


def install(monkeypatch, release, device=XAVIER):
    """Put the stand-ins of `release` in sys.modules for one test (and a fresh CUDA context cache)."""
    import importlib.machinery
    import sys

    from hwbench import ondevice

    trt, pycuda, driver = modules(release, device)
    for name, mod in (("tensorrt", trt), ("pycuda", pycuda), ("pycuda.driver", driver)):
        mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(ondevice, "_CUDA_CONTEXT", {})
    return trt


def markdown_table(results):
    """release -> {column: 'works' | refusal} as a markdown table."""
    lines = ["| TensorRT | shipped with | " + " | ".join(COLUMNS) + " | deprecated names used |",
             "|" + "---|" * (len(COLUMNS) + 3)]
    for r in sorted(results, key=lambda r: [int(x) for x in r.split(".")]):
        cells = [v if v == "works" or v.startswith("n/a") else "refused: " + v.split(" (")[0]
                 for v in (results[r][c] for c in COLUMNS)]
        dep = ", ".join(results[r].get("deprecated", [])) or "none"
        lines.append("| {} | {} | {} | {} |".format(r, JETPACK.get(r, ""), " | ".join(cells), dep))
    return "\n".join(lines)


if __name__ == "__main__":  # python tests/hwbench/ondevice/trt_standin.py: run the release tests, print the table
    import os
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
                        str(Path(__file__).with_name("test_trt_releases.py")), "-k", "test_release"],
                       env=dict(os.environ, **{TABLE_ENV: d}), stdout=subprocess.DEVNULL, check=False)
        print(markdown_table(dict((f.stem, json.loads(f.read_text())) for f in Path(d).glob("*.json"))))
