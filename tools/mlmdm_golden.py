#!/usr/bin/env python3
"""Writes the golden files under tests/golden/ from apple/ml-mdm's own code (fetched by you, never copied here).

  git clone https://github.com/apple/ml-mdm /tmp/ml-mdm
  OMP_NUM_THREADS=2 /usr/bin/python3 tools/mlmdm_golden.py --ml-mdm /tmp/ml-mdm [--out tests/golden]

Needs PyTorch (Debian: apt-get install python3-torch python3-yaml); einops, rotary_embedding_torch, torchinfo and tqdm
are replaced by the stand-ins of mlmdm_stubs.py when they are not installed.

For each tests/golden/*.yaml (an ml-mdm model YAML) it builds ml-mdm's UNet / NestedUNet from the unet_config, sets
every parameter to seeded random values (stored as f32), runs the forward in float64 on seeded inputs (2 samples,
text tokens with padding when the model takes text), and back-propagates sum_r <output_r, cotangent_r>. NAME.safetensors
holds param.KEY (Mdm's names, see mlmdm_stubs.to_mdm_state; F16, the values are F16-exact), input.x.R, input.times,
input.tokens, input.mask, output.R, cotangent.R, grad.KEY (the first GRAD_ELEMENTS of the flattened gradient),
grad_input.x.R and grad_input.tokens, F32; a video config's clips are
[clips * frames, C, H, W] with 4 frames per clip.
sampler-*.safetensors: ml-mdm's NestedSampler with a fake denoiser (prediction_r = a_r * x_r + b_r * t / 1000, t the
model's time input) from seeded x_T, its per-step noise recorded as noise.STEP.R, the state after every step as
x.STEP.R and the final highest-resolution sample as final.
block-*.safetensors: single blocks (SelfAttention with 32-group norms, cross-attention and FFN; an lm_head block; a
temporal attention block with rotary encoding), small enough to check on every backend.
"""
import argparse
import json
import pathlib
import struct
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

FRAMES = 4          # frames per clip of the video config
TOKENS = 5          # text tokens per sample; sample 0 has 3 real ones
GRAD_ELEMENTS = 256 # parameter gradients stored: the first elements of each flattened tensor (keeps the files small)
SAMPLERS = [
    # name, resolutions (high -> low), shifted, power, threshold, eta, steps, a_r, b_r
    ("sampler-unshifted-dynamic", [8, 2], False, 1.0, "DYNAMIC", None, 5, [0.6, 0.4], [0.3, -0.2]),
    ("sampler-shifted-dynamic-if-ddim", [8, 4, 2], True, 1.0, "DYNAMIC_IF", 0.5, 4, [0.7, 0.5, 0.3], [-0.4, 0.2, 0.5]),
]


def write_safetensors(path, tensors, metadata, half=()):
    """F32 tensors, F16 for the names in `half` (values that are exactly F16)."""
    import torch

    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        dtype = (torch.float16, "F16") if name in half else (torch.float32, "F32")
        data = tensors[name].detach().to(dtype[0]).contiguous().cpu().numpy().tobytes()
        header[name] = {"dtype": dtype[1], "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def build_config(node, unet, nested):
    fields = {k: v for k, v in node.items() if k not in ("inner_config", "resnet_config")}
    resnet = unet.ResNetConfig(**(node.get("resnet_config") or {}))
    if node.get("inner_config") is None:
        return unet.UNetConfig(resnet_config=resnet, **fields)
    inner = build_config(node["inner_config"], unet, nested)
    return nested.NestedUNetConfig(resnet_config=resnet, inner_config=inner, **fields)


def randomize(model, gen):
    import torch

    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("pos_emb.freqs"):
                continue
            noise = torch.randn(p.shape, generator=gen)
            if p.dim() == 1:
                p.copy_(1 + 0.2 * noise if name.endswith("weight") else 0.2 * noise)
            else:
                p.copy_(noise / max(1, p[0].numel()) ** 0.5)
            p.copy_(p.half().float())     # exactly F16, so the file can store it in half the bytes


def model_golden(yaml_path, out_dir, mods, seed):
    import torch
    import yaml

    unet, nested, _ = mods
    doc = yaml.safe_load(yaml_path.read_text())
    size, kind = int(doc["sample_image_size"]), doc.get("model", "unet")
    config = build_config(doc["unet_config"], unet, nested)
    model = (nested.NestedUNet if kind.startswith("nested") else unet.UNet)(3, 3, config)
    gen = torch.Generator().manual_seed(seed)
    randomize(model, gen)
    params = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model = model.double()

    video = bool(config.num_temporal_attention_layers)
    frames = FRAMES if video else 1
    scales = getattr(model, "nest_ratio", []) + [1]        # each stream's size over the lowest one's
    sizes = [size // scales[0] * s for s in scales]
    batch = 2
    xs = [torch.randn(batch * frames, 3, s, s, generator=gen).double().requires_grad_() for s in sizes]
    times = torch.tensor([37, 901])
    text = doc["unet_config"].get("conditioning_feature_dim", -1)
    tensors = {f"param.{k}": v for k, v in mods_state(params).items()}
    if text > 0:
        tokens = torch.randn(batch, TOKENS, text, generator=gen).double().requires_grad_()
        mask = torch.ones(batch, TOKENS, dtype=torch.float64)
        mask[0, 3:] = 0
        outs = model(xs if len(xs) > 1 else xs[0], times, tokens, mask)
        tensors.update({"input.tokens": tokens, "input.mask": mask})
    else:
        tokens = None
        outs = model(xs if len(xs) > 1 else xs[0], times)
    outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
    cotangents = [torch.randn(o.shape, generator=gen).double() for o in outs]
    sum(((o * c).sum() for o, c in zip(outs, cotangents))).backward()

    for r, (x, o, c) in enumerate(zip(xs, outs, cotangents)):
        tensors.update({f"input.x.{r}": x, f"output.{r}": o, f"cotangent.{r}": c, f"grad_input.x.{r}": x.grad})
    tensors["input.times"] = times.double()
    if tokens is not None:
        tensors["grad_input.tokens"] = tokens.grad
    grads = {k: (p.grad if p.grad is not None else torch.zeros_like(p)).flatten()[:GRAD_ELEMENTS]
             for k, p in model.named_parameters() if p.requires_grad}
    tensors.update({f"grad.{k}": v for k, v in mods_state(grads).items()})
    name = yaml_path.stem
    write_safetensors(out_dir / f"{name}.safetensors", tensors,
                      {"source": "apple/ml-mdm", "config": yaml_path.name, "seed": str(seed), "frames": str(frames),
                       "precision": "float64 forward and backward of F16-exact parameters",
                       "grad": f"the first {GRAD_ELEMENTS} elements of each flattened parameter gradient"},
                      half={k for k in tensors if k.startswith("param.")})
    return name, sum(p.numel() for p in params.values())


def mods_state(state):
    from mlmdm_stubs import to_mdm_state
    return to_mdm_state(state)


class FakeDenoiser:
    """ml-mdm's sampler calls model(x_t, t, lm_outputs, lm_mask, micros) and reads model.vision_model.nest_ratio."""

    def __init__(self, sizes, a, b):
        self.vision_model = type("Vision", (), {"nest_ratio": [s // sizes[-1] for s in sizes[:-1]]})()
        self.a, self.b = a, b

    def __call__(self, x_t, t, lm_outputs, lm_mask, micros):
        return [a * x + b * t.view(-1, 1, 1, 1).to(x.dtype) / 1000 for x, a, b in zip(x_t, self.a, self.b)]


def sampler_golden(spec, out_dir, samplers, seed):
    import torch

    name, sizes, shifted, power, threshold, eta, steps, a, b = spec
    config = samplers.SamplerConfig(num_diffusion_steps=1000, schedule_type=samplers.ScheduleType.DEEPFLOYD,
                                    prediction_type=samplers.PredictionType.V_PREDICTION,
                                    threshold_function=samplers.ThresholdType[threshold],
                                    schedule_shifted=shifted, schedule_shifted_power=power)
    sampler = samplers.NestedSampler(config)
    gen = torch.Generator().manual_seed(seed)
    x_T = [torch.randn(2, 3, s, s, generator=gen) for s in sizes]
    tensors = {f"xT.{r}": x for r, x in enumerate(x_T)}
    draws, trajectory = [], []
    randn_like = torch.randn_like

    def recorded_noise(like, *args, **kwargs):
        z = torch.randn(like.shape, generator=gen).to(like.dtype)
        draws.append(z)
        return z

    inner = sampler.get_xt_minus_1

    def recorded_step(model, t, x_t, *args, **kwargs):
        if isinstance(x_t, torch.Tensor):        # the first step: ml-mdm would draw the lower x_T here; use ours
            x_t = [x_t] + [x.clone() for x in x_T[1:]]
        x0, x_s, extra = inner(model, t, x_t, *args, **kwargs)
        trajectory.append([x.clone() for x in x_s])
        return x0, x_s, extra

    sampler.get_xt_minus_1 = recorded_step
    torch.randn_like = recorded_noise
    try:
        final = sampler.sample(FakeDenoiser(sizes, a, b), x_T[0].clone(), None, None, {},
                               num_inference_steps=steps, ddim_eta=eta, resample_steps=True)
    finally:
        torch.randn_like = randn_like
    per_step = len(draws) // steps if draws else 0
    for i, z in enumerate(draws):
        tensors[f"noise.{i // per_step}.{i % per_step}"] = z
    for i, xs in enumerate(trajectory):
        tensors.update({f"x.{i}.{r}": x for r, x in enumerate(xs)})
    tensors["final"] = final
    write_safetensors(out_dir / f"{name}.safetensors", tensors, {
        "source": "apple/ml-mdm samplers.NestedSampler", "seed": str(seed), "resolutions": ",".join(map(str, sizes)),
        "schedule": "DEEPFLOYD", "num_diffusion_steps": "1000", "prediction": "V_PREDICTION",
        "schedule_shifted": str(shifted).lower(), "schedule_shifted_power": str(power), "threshold": threshold,
        "ddim_eta": "none" if eta is None else str(eta), "steps": str(steps),
        "fake_a": ",".join(map(str, a)), "fake_b": ",".join(map(str, b))})
    return name, len(trajectory)


def block_goldens(out_dir, unet, seed):
    """Single ml-mdm blocks, small enough for every backend: block-NAME.safetensors with param.KEY (F16-exact),
    input.x (and input.tokens, input.mask), output, cotangent, grad_input.x and grad.KEY (whole gradients)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.float64)
    blocks = [
        # name, module, x shape, forward(module, x, tokens, mask), token width, frames
        ("block-attention", unet.SelfAttention(32, cond_dim=16, use_attention_ffn=True), (2, 32, 3, 5),
         lambda m, x, tok: m(x, tok, mask), 16, 1),
        ("block-lm-head", unet.SelfAttention1DBlock(16), (2, 5, 16), lambda m, x, tok: m(x, mask), 0, 1),
        ("block-temporal", unet.TemporalAttentionBlock(32, num_head_channels=32, down=True, pos_emb=True), (2 * 4, 32, 4, 4),
         lambda m, x, tok: m(x, torch.zeros(2, 1, dtype=torch.float64)), 0, 4),
    ]
    for name, module, shape, forward, width, frames in blocks:
        randomize(module, gen)
        params = {k: v.detach().clone() for k, v in module.state_dict().items()}
        module = module.double()
        x = torch.randn(shape, generator=gen).double().requires_grad_()
        tokens = torch.randn(2, 5, width, generator=gen).double() if width else None
        out = forward(module, x, tokens)
        cotangent = torch.randn(out.shape, generator=gen).double()
        (out * cotangent).sum().backward()
        tensors = {f"param.{k}": v for k, v in mods_state(params).items()}
        tensors.update({"input.x": x, "input.mask": mask, "output": out, "cotangent": cotangent, "grad_input.x": x.grad})
        if tokens is not None:
            tensors["input.tokens"] = tokens
        tensors.update({f"grad.{k}": v.grad for k, v in module.named_parameters() if v.requires_grad})
        write_safetensors(out_dir / f"{name}.safetensors", tensors,
                          {"source": "apple/ml-mdm models/unet.py", "block": type(module).__name__, "seed": str(seed),
                           "frames": str(frames)}, half={k for k in tensors if k.startswith("param.")})
        print(f"{name}.safetensors: {sum(p.numel() for p in params.values())} parameters")


def main(argv=None):
    p = argparse.ArgumentParser(description="golden files from apple/ml-mdm's own model and sampler code")
    p.add_argument("--ml-mdm", required=True, help="path of an apple/ml-mdm checkout")
    p.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent.parent / "tests" / "golden"),
                   help="folder with the golden YAMLs; the .safetensors files are written there")
    p.add_argument("--seed", type=int, default=20240611)
    a = p.parse_args(argv)
    import torch
    import mlmdm_stubs

    torch.manual_seed(a.seed)
    mods = mlmdm_stubs.load(a.ml_mdm)
    out = pathlib.Path(a.out)
    yamls = sorted(out.glob("*.yaml"))
    if not yamls:
        raise SystemExit(f"error: no golden YAMLs in {out}")
    for i, y in enumerate(yamls):
        name, count = model_golden(y, out, mods, a.seed + i)
        print(f"{name}.safetensors: {count} parameters")
    block_goldens(out, mods[0], a.seed + 50)
    for i, spec in enumerate(SAMPLERS):
        name, steps = sampler_golden(spec, out, mods[2], a.seed + 100 + i)
        print(f"{name}.safetensors: {steps} steps")


if __name__ == "__main__":
    main()
