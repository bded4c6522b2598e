"""Files that load without running code: the data every file rlgen reads back is made of.

Unpickling a file runs whatever code the file names, and runs and experts are shared like papers:
a colleague's run directory, an expert beside a dataset, a checkpoint in a bug report. So nothing
rlgen reads back is a pickle. Tensors go in torch files read with ``weights_only=True``, which
accepts tensors and plain containers (dict, list, tuple, str, numbers, None) and refuses any other
object before it is built; settings and statistics go in JSON or TOML.

What a checkpoint keeps besides tensors (NumPy arrays and scalars, NumPy generators, RNG states,
stable-baselines3's running statistics, deques) is turned into those plain forms by :func:`encode`
and back by :func:`decode`: an array keeps its dtype and shape, a generator its bit generator's
state, so a run resumed from them goes on bitwise.

A file of the kind rlgen wrote before (a pickle) is refused with :func:`untrusted`'s one-line error,
which names the one way to open it for a user who trusts where it came from: ``rlgen convert
--trust PATH`` (:mod:`rlgen.convert`), which rewrites it in these formats.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlgen.errors import UntrustedFile

#: The command that converts files of the old kind, for a user who trusts them.
TRUST_COMMAND = "rlgen convert --trust"
#: The key that marks a dict :func:`encode` made from something other than a dict.
TAG = "__rlgen__"

# NumPy's bit generators by name, the only ones a file may ask for.
_BIT_GENERATORS = {"PCG64": np.random.PCG64, "PCG64DXSM": np.random.PCG64DXSM, "MT19937": np.random.MT19937,
                   "Philox": np.random.Philox, "SFC64": np.random.SFC64}


def _home_of(path: Path) -> Path:
    """What to convert for a file: the run directory it belongs to (the nearest directory above
    it, up to three levels, with a config.toml), else the file itself."""
    for parent in list(path.parents)[:3]:
        if (parent / "config.toml").is_file():
            return parent
    return path

# The defaults a defaultdict may make, by name.
_FACTORIES = {"list": list, "dict": dict, "float": float, "int": int, "None": None}


def untrusted(path: str | Path) -> UntrustedFile:
    """The one-line error for a file rlgen will not open: a pickle, whose loading could run code."""
    path = Path(path)
    return UntrustedFile(f"{path} is a pickle (written by an older rlgen or another program) and loading it could "
                         f"run any code it holds, so rlgen does not open it; if you trust where it came from, "
                         f"convert it with: {TRUST_COMMAND} {_home_of(path)}")


def is_pickle_or_torch_zip(path: Path) -> bool:
    """Whether a file is a pickle or a torch zip (whose ``data.pkl`` is one), as opposed to noise."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return head[:1] == b"\x80" or zipfile.is_zipfile(path)


def load_tensors(source: str | Path | io.BytesIO, *, name: str | Path | None = None) -> Any:
    """A torch file of tensors and plain containers, read with ``weights_only=True``.

    :param source: a path, or the bytes of a file held in another (``name`` is then the container's path).
    :raises UntrustedFile: the file pickles other objects (one of the old kind, or a planted one).
    :raises Exception: whatever torch raises for a truncated or corrupt file; callers name it.
    """
    if not isinstance(source, io.BytesIO):
        source = Path(source)
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if isinstance(source, io.BytesIO) or is_pickle_or_torch_zip(source):
            raise untrusted(name if name is not None else source) from None
        raise


# ------------------------------------------------------------------------------------------ codec


def encode(obj: Any) -> Any:
    """``obj`` as tensors and plain containers, which ``torch.load(weights_only=True)`` reads back.

    :raises TypeError: an object of a kind a file of rlgen does not hold.
    """
    if isinstance(obj, np.ndarray):
        return _encode_array(obj)
    if isinstance(obj, np.generic):  # before float: np.float64 is one
        return {**_encode_array(np.asarray(obj)), TAG: "scalar"}
    if obj is None or type(obj) in (bool, int, float, str) or isinstance(obj, (torch.Tensor, torch.dtype, torch.device)):
        return obj
    if isinstance(obj, (bool, int, float, str)):  # an enum or another subclass: its plain value
        return next(t for t in (bool, int, float, str) if isinstance(obj, t))(obj)
    if isinstance(obj, complex):
        return {TAG: "complex", "real": obj.real, "imag": obj.imag}
    if isinstance(obj, (bytes, bytearray)):
        return {TAG: "bytes", "data": torch.from_numpy(np.frombuffer(bytes(obj), dtype=np.uint8).copy())}
    if isinstance(obj, np.random.Generator):
        return {TAG: "generator", "state": encode(obj.bit_generator.state)}
    if _is_running_mean_std(obj):
        return {TAG: "running_mean_std", "mean": encode(obj.mean), "var": encode(obj.var), "count": encode(obj.count)}
    if isinstance(obj, collections.deque):
        return {TAG: "deque", "items": [encode(v) for v in obj], "maxlen": obj.maxlen}
    if type(obj) is tuple:
        return tuple(encode(v) for v in obj)
    if type(obj) is list:
        return [encode(v) for v in obj]
    if isinstance(obj, collections.defaultdict) and obj.default_factory in _FACTORIES.values():
        factory = next(k for k, v in _FACTORIES.items() if v is obj.default_factory)
        return {TAG: "defaultdict", "factory": factory, "items": [[encode(k), encode(v)] for k, v in obj.items()]}
    if isinstance(obj, dict) and type(obj) in (dict, collections.OrderedDict):
        if TAG in obj or not all(isinstance(k, (str, int)) for k in obj):
            return {TAG: "dict", "items": [[encode(k), encode(v)] for k, v in obj.items()]}
        return _with_metadata(type(obj)((k, encode(v)) for k, v in obj.items()), obj)
    raise TypeError(f"an rlgen file holds tensors, arrays and plain data, not a {type(obj).__module__}."
                    f"{type(obj).__qualname__}")


def decode(obj: Any) -> Any:
    """What :func:`encode` was given, from what it returned (as read back from a file)."""
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    if type(obj) is tuple:
        return tuple(decode(v) for v in obj)
    if not isinstance(obj, dict):
        return obj
    tag = obj.get(TAG)
    if tag is None:
        return _with_metadata(type(obj)((k, decode(v)) for k, v in obj.items()), obj)
    if tag == "array":
        return _decode_array(obj)
    if tag == "scalar":
        return _decode_array(obj)[()]
    if tag == "object_array":
        out = np.empty(len(obj["items"]), dtype=object)
        out[:] = [decode(v) for v in obj["items"]]
        return out.reshape(obj["shape"])
    if tag == "complex":
        return complex(obj["real"], obj["imag"])
    if tag == "bytes":
        return obj["data"].numpy().tobytes()
    if tag == "generator":
        state = decode(obj["state"])
        name = state.get("bit_generator") if isinstance(state, dict) else None
        if name not in _BIT_GENERATORS:
            raise ValueError(f"unknown NumPy bit generator {name!r}")
        generator = np.random.Generator(_BIT_GENERATORS[name]())
        generator.bit_generator.state = state
        return generator
    if tag == "running_mean_std":
        from stable_baselines3.common.running_mean_std import RunningMeanStd

        rms = RunningMeanStd()
        rms.mean, rms.var, rms.count = decode(obj["mean"]), decode(obj["var"]), decode(obj["count"])
        return rms
    if tag == "deque":
        return collections.deque((decode(v) for v in obj["items"]), maxlen=obj["maxlen"])
    if tag == "dict":
        return {decode(k): decode(v) for k, v in obj["items"]}
    if tag == "defaultdict":
        return collections.defaultdict(_FACTORIES[obj["factory"]], {decode(k): decode(v) for k, v in obj["items"]})
    raise ValueError(f"unknown kind of value {tag!r} in an rlgen file")


def _with_metadata(out: dict, source: dict) -> dict:
    """``out`` with the ``_metadata`` of ``source`` (a torch state dict's module versions), if any."""
    if hasattr(source, "_metadata"):
        out._metadata = source._metadata  # type: ignore[attr-defined]
    return out


def _is_running_mean_std(obj: Any) -> bool:
    return type(obj).__name__ == "RunningMeanStd" and type(obj).__module__.startswith("stable_baselines3")


def _encode_array(a: np.ndarray) -> dict[str, Any]:
    if a.dtype.hasobject:
        return {TAG: "object_array", "shape": list(a.shape), "items": [encode(v) for v in a.ravel()]}
    shape = list(a.shape)
    a = np.ascontiguousarray(a).reshape(a.shape)  # ascontiguousarray makes a 0-d array 1-d
    if not a.flags.writeable:
        a = a.copy()
    try:  # a tensor of the same dtype where torch has one, which anyone can read
        data = torch.from_numpy(a) if a.dtype.isnative else None
    except TypeError:
        data = None
    if data is None:  # strings, big-endian numbers: the bytes
        data = torch.from_numpy(a.reshape(-1).view(np.uint8).copy())
    return {TAG: "array", "dtype": a.dtype.str, "shape": shape, "data": data}


def _decode_array(obj: dict[str, Any]) -> np.ndarray:
    dtype, shape, data = np.dtype(obj["dtype"]), tuple(obj["shape"]), obj["data"]
    if not isinstance(data, torch.Tensor) or dtype.hasobject:
        raise ValueError("an array of an rlgen file is damaged")
    out = data.numpy()
    if out.dtype != dtype:
        out = out.reshape(-1).view(np.uint8).view(dtype)
    return out.reshape(shape)

