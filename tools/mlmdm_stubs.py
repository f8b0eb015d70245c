"""Loads apple/ml-mdm's model and sampler modules from a checkout the user fetched, with small stand-ins for the
packages they import but these tools do not need or cannot install offline. Shared by mlmdm_golden.py and
mlmdm_pth_to_safetensors.py.

Stand-ins (only what ml-mdm's unet.py, nested_unet.py and samplers.py call):
  einops                 rearrange / repeat on plain axis names and parenthesised groups;
  rotary_embedding_torch RotaryEmbedding(dim).rotate_queries_or_keys(t) along axis -2: channels (2i, 2i+1) rotate by
                         position·theta^(-2i/dim), freqs held as a frozen nn.Parameter as the library holds them;
  torchinfo, tqdm, simple_parsing-based ml_mdm.config, ml_mdm.s3_helpers, ml_mdm.utils.fix_old_checkpoints: no-ops.
A real package that is installed is used instead of its stand-in.
"""
import importlib
import pathlib
import re
import sys
import types


def _axes(side):
    """'b c (n h) (m w)' -> [['b'], ['c'], ['n', 'h'], ['m', 'w']]"""
    return [g.strip("()").split() for g in re.findall(r"\([^)]*\)|\S+", side)]


def _rearrange(t, pattern, expand, /, **sizes):
    lhs, rhs = (s.strip() for s in pattern.split("->"))
    left, right = _axes(lhs), _axes(rhs)
    if len(left) != t.dim():
        raise ValueError(f"einops stand-in: '{lhs}' has {len(left)} axes, the tensor {t.dim()}")
    known = dict(sizes)
    for group, dim in zip(left, t.shape):
        unknown = [a for a in group if a not in known]
        product = 1
        for a in group:
            if a in known:
                product *= known[a]
        if len(unknown) > 1:
            raise ValueError(f"einops stand-in: cannot infer {unknown} in '{lhs}'")
        if unknown:
            known[unknown[0]] = dim // product
    elementary = [a for g in left for a in g]
    t = t.reshape([known[a] for a in elementary])
    order = [a for g in right for a in g if a in elementary]
    t = t.permute([elementary.index(a) for a in order])
    if expand:
        for i, a in enumerate(a for g in right for a in g):
            if a not in elementary:
                t = t.unsqueeze(i)
        t = t.expand([known[a] for g in right for a in g])
    shape = []
    for g in right:
        size = 1
        for a in g:
            size *= known[a]
        shape.append(size)
    return t.reshape(shape)


def _einops():
    m = types.ModuleType("einops")
    def rearrange(tensor, pattern, /, **sizes):
        return _rearrange(tensor, pattern, False, **sizes)

    def repeat(tensor, pattern, /, **sizes):
        return _rearrange(tensor, pattern, True, **sizes)

    m.rearrange, m.repeat = rearrange, repeat
    return m


def _rotary(torch):
    m = types.ModuleType("rotary_embedding_torch")

    class RotaryEmbedding(torch.nn.Module):
        def __init__(self, dim, theta=10000):
            super().__init__()
            freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
            self.freqs = torch.nn.Parameter(freqs, requires_grad=False)

        def rotate_queries_or_keys(self, t, seq_dim=-2):
            n = t.shape[seq_dim]
            angles = torch.arange(n, dtype=self.freqs.dtype)[:, None] * self.freqs[None, :]
            angles = angles.repeat_interleave(2, dim=-1).to(t.dtype)          # [n, dim]: pair (2i, 2i+1) shares i
            pairs = t.reshape(*t.shape[:-1], -1, 2)
            rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).reshape(t.shape)
            return t * angles.cos() + rotated * angles.sin()

    m.RotaryEmbedding = RotaryEmbedding
    return m


def _package(name, path=None, **attrs):
    m = types.ModuleType(name)
    if path is not None:
        m.__path__ = [str(path)]
    for k, v in attrs.items():
        setattr(m, k, v)
    sys.modules[name] = m
    return m


def find_package(checkout):
    """The ml_mdm package directory of a checkout (the repository root or the package itself)."""
    root = pathlib.Path(checkout).expanduser().resolve()
    for candidate in (root, root / "ml_mdm", root / "ml-mdm-matryoshka" / "ml_mdm"):
        if (candidate / "models" / "unet.py").is_file() and (candidate / "samplers.py").is_file():
            return candidate
    raise SystemExit(f"error: no ml-mdm checkout at {root} (expected ml-mdm-matryoshka/ml_mdm/models/unet.py under it)")


def load(checkout):
    """Returns (unet, nested_unet, samplers) modules of the checkout."""
    import torch

    pkg = find_package(checkout)
    for name, make in (("einops", _einops), ("rotary_embedding_torch", lambda: _rotary(torch))):
        try:
            importlib.import_module(name)
        except ImportError:
            sys.modules[name] = make()
    try:
        importlib.import_module("torchinfo")
    except ImportError:
        _package("torchinfo", summary=lambda *a, **k: None)
    try:
        importlib.import_module("tqdm")
    except ImportError:
        _package("tqdm", tqdm=lambda it=None, *a, **k: it)

    identity = lambda *names: (lambda cls: cls)
    ml = _package("ml_mdm", pkg)
    ml.config = _package("ml_mdm.config", register_model_config=identity, register_model=identity,
                         register_pipeline_config=identity, register_pipeline=identity)
    ml.s3_helpers = _package("ml_mdm.s3_helpers")
    utils = _package("ml_mdm.utils", pkg / "utils")
    utils.fix_old_checkpoints = _package("ml_mdm.utils.fix_old_checkpoints", mimic_old_modules=lambda: None)
    ml.utils = utils
    ml.models = _package("ml_mdm.models", pkg / "models")
    unet = importlib.import_module("ml_mdm.models.unet")
    nested = importlib.import_module("ml_mdm.models.nested_unet")
    samplers = importlib.import_module("ml_mdm.samplers")
    return unet, nested, samplers


def to_mdm_state(state_dict, report=None):
    """ml-mdm state-dict keys -> Mdm's. The names are the same except: 'module.' (DDP) and 'vision_model.' (the
    diffusion wrapper) prefixes are dropped, and rotary frequency tables (*.pos_emb.freqs, constants Mdm computes)
    are dropped after checking they hold the standard values. `report` (a list) receives one line per change."""
    import torch

    out = {}
    for key, value in state_dict.items():
        name = key
        for prefix in ("module.", "vision_model."):
            if name.startswith(prefix):
                name = name[len(prefix):]
        if name.endswith("pos_emb.freqs"):
            dim = 2 * value.numel()
            expected = 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim))
            if not torch.allclose(value.float().cpu(), expected, rtol=1e-6, atol=0):
                raise SystemExit(f"error: {key}: rotary frequencies differ from theta = 10000; Mdm cannot load them")
            if report is not None:
                report.append(f"dropped {key} (rotary frequencies, theta 10000, computed by Mdm)")
            continue
        if name != key and report is not None:
            report.append(f"renamed {key} -> {name}")
        out[name] = value
    return out
