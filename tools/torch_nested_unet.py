#!/usr/bin/env python3
"""PyTorch twin of Mdm's NestedUNet, built from the same JSON model config, for benchmarking.

  python3 tools/torch_nested_unet.py --config configs/gpu-demo.json --count
  python3 tools/torch_nested_unet.py --config configs/gpu-demo.json --bench --batch 64 [--steps 5] [--json FILE]
  python3 tools/torch_nested_unet.py --config configs/tiny-test.json --bench --batch 4 --steps 1 --device cpu
  python3 tools/torch_nested_unet.py --config configs/imagenet-64-256.json --sample --batch 8 [--sample-steps 250]

The network mirrors src/Mdm.Model/Nn (UNet, NestedUNet, ResNetBlock, ResNet, SelfAttention) layer for layer; the
module names are ml-mdm's state-dict keys, as ours are, so the parameter names, shapes and count match `Mdm.Train info`.
The timed step mirrors bench/Mdm.Bench/TrainStepBench.cs: DiffusionLoss with the default DiffusionConfig (DeepFloyd
schedule, SNR shift p = 1, v-prediction, ε-MSE target, all resolutions weighted 1), backward, global-norm clip 2.0,
AdamW (lr 1e-4, weight decay 0), EMA 0.9999. --sample mirrors bench/Mdm.Bench/SampleBench.cs: ancestral DDPM over
every resolution at once, with classifier-free guidance (2·batch per denoiser call) for class- or text-conditioned
configs, after a 2-step warm-up. Video configs (frames > 1, temporal levels) are not mirrored.
Arguments are parsed before torch is imported, so --help works without torch.
"""
import argparse
import json
import math
import pathlib
import re
import sys


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="PyTorch twin of Mdm's NestedUNet (parameter count and train-step benchmark)")
    p.add_argument("--config", required=True, help="model config JSON (configs/*.json)")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--count", action="store_true", help="print the parameter count and exit")
    mode.add_argument("--bench", action="store_true", help="time the end-to-end training step")
    mode.add_argument("--sample", action="store_true", help="time DDPM sampling (as Mdm.Bench sample)")
    p.add_argument("--sample-steps", type=int, default=250, help="--sample: denoiser steps (default 250)")
    p.add_argument("--guidance", type=float, default=3.0, help="--sample: guidance scale for conditioned configs (default 3)")
    p.add_argument("--batch", type=int, default=16, help="images per step (default 16)")
    p.add_argument("--steps", type=int, default=5, help="timed steps after 1 warm-up step (default 5)")
    p.add_argument("--json", default="", help="append one JSON result line to this file")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="cpu: a smoke test without autocast")
    p.add_argument("--tokens", type=int, default=128, help="text-conditioned configs: tokens per sample (default 128)")
    a = p.parse_args(argv)
    if a.batch < 1 or a.steps < 1 or a.tokens < 1 or a.sample_steps < 1:
        p.error("--batch, --steps, --sample-steps and --tokens must be positive")
    return a


# ---- config (ModelConfig / NestedUNetConfig / UNetConfig; JSON with comments and trailing commas) ---------------------

def _strip_json(text):
    """Drops // and /* */ comments, then trailing commas, outside strings (System.Text.Json's lenient options)."""
    def outside_strings(pattern, s):
        return re.sub(r'("(?:\\.|[^"\\])*")|' + pattern, lambda m: m.group(1) or "", s, flags=re.S)
    return outside_strings(r",(?=\s*[}\]])", outside_strings(r"//[^\n]*|/\*.*?\*/", text))


UNET_DEFAULTS = dict(  # UNetConfig.cs defaults (ml-mdm's dataclass)
    resolutionChannels=[128, 256, 256, 512, 1024], numResnetsPerResolution=[2], attentionLevels=[2, 3],
    numAttentionLayers=[1], temporalDim=None, conditioningFeatureDim=-1, conditioningFeatureProjDim=-1,
    maskedCrossAttention=True, useAttentionFfn=False, microConditioning=None, groups=32, numClasses=0,
    skipMidBlocks=None, skipCondEmb=False, numTemporalAttentionLayers=[0], temporalPositionalEncoding=False,
    temporalMode=False, attentionGroups=32, numLmHeadLayers=0)
NESTED_DEFAULTS = dict(outer={}, innerUnet=None, innerNested=None, skipInnerUnetInput=False, skipNormalization=False,
                       interpConditioning=False)
MODEL_DEFAULTS = dict(imageSize=64, imageChannels=3, frames=1, unet=None, nested=None)


def _section(d, defaults, where):
    """Fills in the defaults; unknown fields are errors (as in our [JsonUnmappedMemberHandling(Disallow)])."""
    if set(d) - set(defaults):
        raise ValueError(f"{where}: unknown field(s) {sorted(set(d) - set(defaults))}")
    d = {**defaults, **d}
    if defaults is UNET_DEFAULTS and (d["temporalMode"] or any(d["numTemporalAttentionLayers"])):
        raise ValueError(f"{where}: video (temporal) levels are not mirrored by this script")
    if defaults is UNET_DEFAULTS and d["numLmHeadLayers"]:
        raise ValueError(f"{where}: lm_head layers are not mirrored by this script")
    if defaults is NESTED_DEFAULTS and d["interpConditioning"]:
        raise ValueError(f"{where}: interp_layer1/2 are not mirrored by this script")
    if defaults is NESTED_DEFAULTS:
        if (d["innerUnet"] is None) == (d["innerNested"] is None):
            raise ValueError(f"{where}: set exactly one of innerUnet and innerNested")
        d["outer"] = _section(d["outer"], UNET_DEFAULTS, where + ".outer")
        for key, defs in (("innerUnet", UNET_DEFAULTS), ("innerNested", NESTED_DEFAULTS)):
            d[key] = _section(d[key], defs, f"{where}.{key}") if d[key] is not None else None
    return d


def load_config(path):
    root = json.loads(_strip_json(pathlib.Path(path).read_text()))
    m = _section(root.get("model", root), MODEL_DEFAULTS, "model")
    if m["frames"] != 1:
        raise ValueError("model.frames: video models are not mirrored by this script")
    if (m["unet"] is None) == (m["nested"] is None):
        raise ValueError("model: set exactly one of unet and nested")
    m["unet"] = _section(m["unet"], UNET_DEFAULTS, "model.unet") if m["unet"] is not None else None
    m["nested"] = _section(m["nested"], NESTED_DEFAULTS, "model.nested") if m["nested"] is not None else None
    return m


def innermost(m):
    n = m["nested"]
    while n is not None and n["innerNested"] is not None:
        n = n["innerNested"]
    return m["unet"] if n is None else n["innerUnet"]

def resolutions(m):
    r, n = [m["imageSize"]], m["nested"]
    while n is not None:                 # NestedUNetConfig.NestRatio = 2^(outer levels − 1)
        r.append(r[-1] // (1 << (len(n["outer"]["resolutionChannels"]) - 1)))
        n = n["innerNested"]
    return r

def per_level(values, i):               # a list of length 1 is broadcast to every level
    return values[0] if len(values) == 1 else values[i]

def temporal_dim(u):
    return u["temporalDim"] or 4 * u["resolutionChannels"][0]

def attention_layers(u, i):
    return per_level(u["numAttentionLayers"], i) if i in u["attentionLevels"] else 0

def micro_conditions(u):                 # "scale:64,foo:1" → [("scale", 64.0), ("foo", 1.0)]
    s = u["microConditioning"]
    return [] if not s or not s.strip() else [(k.strip(), float(v)) for k, v in (it.split(":") for it in s.split(","))]


# ---- the network ------------------------------------------------------------------------------------------------------

def build_model(m):
    """ModelFactory.Build: the text width and the cross-attention width come from the innermost UNet."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    inner_cfg = innermost(m)
    text_dim = inner_cfg["conditioningFeatureDim"]
    cross_dim = -1 if text_dim <= 0 else (inner_cfg["conditioningFeatureProjDim"] if inner_cfg["conditioningFeatureProjDim"] > 0 else text_dim)
    heads = 8                            # SelfAttention.Heads

    def zero(mod):                       # our zeroInit layers (conv2, proj_out, ffn.3, conv_out, adapters, cond_layers.*.1)
        for p in mod.parameters():
            nn.init.zeros_(p)
        return mod

    def sinusoid(values, t):             # Sinusoid.Embed: T/8 frequencies, [sin, cos] → width T/4
        half = t // 8
        freqs = torch.exp(-torch.arange(half, device=values.device, dtype=torch.float64) * (math.log(10000) / half))
        a = values.double()[:, None] * freqs
        return torch.cat([a.sin(), a.cos()], 1).float()

    def attention(q, k, v, mask=None):   # scale 1/√d; mask [B,1,1,S] bool, True = attend
        if hasattr(F, "scaled_dot_product_attention"):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        s = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5   # torch < 2.0 fallback (the CPU check)
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        return s.softmax(-1) @ v

    class ResNet(nn.Module):             # ResNet.cs: FiLM ResNet, h = SiLU(norm2(h)·(1 + a) + b)
        def __init__(self, cin, cout, t, groups):
            super().__init__()
            self.norm1 = nn.GroupNorm(groups, cin)
            self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
            self.time_layer = nn.Linear(t, 2 * cout)
            self.norm2 = nn.GroupNorm(groups, cout)
            self.conv2 = zero(nn.Conv2d(cout, cout, 3, padding=1))
            self.conv3 = nn.Conv2d(cin, cout, 1) if cin != cout else None

        def forward(self, x, temb_act):
            h = self.conv1(F.silu(self.norm1(x)))
            a, b = self.time_layer(temb_act)[:, :, None, None].chunk(2, dim=1)
            h = self.conv2(F.silu(self.norm2(h) * (1 + a) + b))
            return h + (x if self.conv3 is None else self.conv3(x))

    class SelfAttention(nn.Module):      # SelfAttention.cs: self-attn (+ cross-attn on text), summed, one proj_out; FFN
        def __init__(self, c, groups, cond_dim, ffn):
            super().__init__()
            self.norm = nn.GroupNorm(groups, c)
            self.qkv = nn.Conv2d(c, 3 * c, 1)
            if cond_dim > 0:
                self.norm_cond = nn.LayerNorm(cond_dim)
                self.kv_cond = nn.Linear(cond_dim, 2 * c)
            self.cross = cond_dim > 0
            self.proj_out = zero(nn.Conv2d(c, c, 1))
            # torch Sequential indices as in ml-mdm: 0 norm, 1 conv, 2 GELU, 3 conv (zero-init)
            self.ffn = nn.Sequential(nn.GroupNorm(groups, c), nn.Conv2d(c, 4 * c, 1), nn.GELU(), zero(nn.Conv2d(4 * c, c, 1))) if ffn else None

        def forward(self, x, tokens, mask):
            b, c, h, w = x.shape
            d = c // heads
            # [B, 3C, H, W] → [B, 3·heads, d, N] → [B, 3·heads, N, d]; head i owns channels [i·d, (i+1)·d) of q, k, v
            q, k, v = self.qkv(self.norm(x)).reshape(b, 3 * heads, d, h * w).transpose(2, 3).chunk(3, dim=1)
            o = attention(q, k, v)
            if self.cross:
                # [B, S, 2C] → [B, S, 2·heads, d] → [B, 2·heads, S, d]; the same q attends to the text tokens
                kv = self.kv_cond(self.norm_cond(tokens)).reshape(b, tokens.shape[1], 2 * heads, d).transpose(1, 2)
                kc, vc = kv.chunk(2, dim=1)
                o = o + attention(q, kc, vc, mask)
            x = x + self.proj_out(o.transpose(2, 3).reshape(b, c, h, w))
            return x if self.ffn is None else x + self.ffn(x)

    class ResNetBlock(nn.Module):        # ResNetBlock.cs: one UNet level; attn stored flat (attn[i·L + j])
        def __init__(self, ins, cout, t, groups, layers, cond_dim, ffn, resample, attn_groups):
            super().__init__()
            self.layers, self.up = layers, resample == "up"
            self.resnets = nn.ModuleList(ResNet(c, cout, t, groups) for c in ins)
            if layers > 0:
                self.attn = nn.ModuleList(SelfAttention(cout, attn_groups, cond_dim, ffn) for _ in range(len(ins) * layers))
            # down: stride-2 3×3 conv; up: nearest ×2 then 3×3 conv
            self.resample = nn.Conv2d(cout, cout, 3, stride=2 if resample == "down" else 1, padding=1) if resample else None

        def forward(self, x, temb_act, tokens, mask, skips=None, acts=None):
            for i, resnet in enumerate(self.resnets):
                if skips is not None:
                    x = torch.cat([x, skips[i]], 1)
                x = resnet(x, temb_act)
                for j in range(self.layers):
                    x = self.attn[i * self.layers + j](x, tokens, mask)
                if acts is not None:
                    acts.append(x)
            if self.resample is not None:
                x = self.resample(F.interpolate(x, scale_factor=2, mode="nearest") if self.up else x)
                if acts is not None:
                    acts.append(x)
            return x

    class UNet(nn.Module):               # UNet.cs; owner = Role.Innermost (owns lm_proj, cond_emb, class_emb, mid block)
        def __init__(self, u, owner, image_channels):
            super().__init__()
            t, groups, chans = temporal_dim(u), u["groups"], u["resolutionChannels"]
            self.t, self.masked, self.normalize = t, u["maskedCrossAttention"], False
            self.temb_layer1, self.temb_layer2 = nn.Linear(t // 4, t), nn.Linear(t, t)
            self.cond_emb = nn.Linear(cross_dim, t, bias=False) if owner and text_dim > 0 and not u["skipCondEmb"] else None
            # class_emb is a bias-free Dense over a one-hot with an extra "no class" row: weight [T, classes + 1]
            self.class_emb = nn.Linear(u["numClasses"] + 1, t, bias=False) if owner and u["numClasses"] > 0 else None
            self.micro = micro_conditions(u)
            if self.micro:
                self.cond_layers = nn.ModuleDict({key: nn.ModuleList([nn.Linear(t // 4, t), zero(nn.Linear(t, t))]) for key, _ in self.micro})
            ch = chans[0]
            self.conv_in = nn.Conv2d(image_channels, ch, 3, padding=1)
            skip_chans, levels = [ch], len(chans)
            self.down_blocks = nn.ModuleList()
            for i, c in enumerate(chans):
                n = per_level(u["numResnetsPerResolution"], i)
                ins = [ch] + [c] * (n - 1)
                skip_chans += [c] * n + ([c] if i != levels - 1 else [])
                cond = cross_dim if i in u["attentionLevels"] else -1
                self.down_blocks.append(ResNetBlock(ins, c, t, groups, attention_layers(u, i), cond, u["useAttentionFfn"],
                                                    "down" if i != levels - 1 else None, u["attentionGroups"]))
                ch = c
            self.mid_blocks = None
            if owner and u["skipMidBlocks"] is not True:
                self.mid_blocks = nn.ModuleList([ResNetBlock([ch], ch, t, groups, 1, cross_dim, u["useAttentionFfn"], None, u["attentionGroups"]),
                                                 ResNetBlock([ch], ch, t, groups, 0, -1, False, None, u["attentionGroups"])])
            self.up_blocks = nn.ModuleList()   # up_blocks.0 is the deepest level; each ResNet eats one skip
            for i in reversed(range(levels)):
                c, ins = chans[i], []
                for _ in range(per_level(u["numResnetsPerResolution"], i) + 1):
                    ins.append(ch + skip_chans.pop()); ch = c
                cond = cross_dim if i in u["attentionLevels"] else -1
                self.up_blocks.append(ResNetBlock(ins, c, t, groups, attention_layers(u, i), cond, u["useAttentionFfn"],
                                                  "up" if i != 0 else None, u["attentionGroups"]))
            self.norm_out = nn.GroupNorm(groups, ch)
            self.conv_out = zero(nn.Conv2d(ch, image_channels, 3, padding=1))
            self.lm_proj = nn.Linear(text_dim, u["conditioningFeatureProjDim"]) \
                if self.cond_emb is not None and u["conditioningFeatureProjDim"] > 0 else None

        def conditioning(self, labels, tokens, mask):
            """forward_conditioning: (pooled embedding added to temb, cross-attention tokens, bool key mask)."""
            emb = None
            if text_dim > 0:
                if self.lm_proj is not None:
                    tokens = self.lm_proj(tokens)
                if self.cond_emb is not None:  # masked mean of the (projected) tokens
                    pooled = (tokens * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1)
                    emb = self.cond_emb(pooled)
                mask = mask.bool()[:, None, None, :] if self.masked else None
            if self.class_emb is not None:     # one-hot · Wᵀ as a row gather
                e = self.class_emb.weight.t()[labels]
                emb = e if emb is None else emb + e
            return emb, tokens, mask

        def time_embedding(self, t, cond_emb):
            temb = self.temb_layer2(F.silu(self.temb_layer1(sinusoid(t, self.t))))
            if cond_emb is not None:
                temb = temb + cond_emb
            for key, default in self.micro:   # no values given: each key uses its default ("scale" as is, others ×1000)
                v = torch.full_like(t, default if key == "scale" else default * 1000, dtype=torch.float64)
                first, second = self.cond_layers[key]
                temb = temb + second(F.silu(first(sinusoid(v, self.t))))
            return F.silu(temb)

        def denoise(self, streams, index, features, t, cond):
            """forward_denoising: returns (predictions of streams[index:], final features before norm_out).
            features: the outer level's in_adapter output, added after conv_in."""
            emb, tokens, mask = cond
            temb_act = self.time_embedding(t, emb)
            xt = streams[index]
            if self.normalize:                 # StdNormalize: per-sample unbiased std over (C, H, W)
                xt = xt / xt.std(dim=(1, 2, 3), keepdim=True)
            x = self.conv_in(xt)
            if features is not None:
                x = x + features
            skips = [x]
            for block in self.down_blocks:     # records every ResNet output and resample output as a skip
                x = block(x, temb_act, tokens, mask, acts=skips)
            x, low = self.middle(x, temb_act, streams, index, t, cond)
            for block in self.up_blocks:       # each ResNet eats one skip, newest first
                n = len(block.resnets)
                taken = skips[-n:][::-1]
                del skips[-n:]
                x = block(x, temb_act, tokens, mask, skips=taken)
            return [self.conv_out(F.silu(self.norm_out(x)))] + low, x

        def middle(self, x, temb_act, streams, index, t, cond):
            """The bottleneck: the mid block (ResNet → attention → ResNet) if any; returns (x, lower predictions)."""
            if self.mid_blocks is not None:
                x = self.mid_blocks[0](x, temb_act, cond[1], cond[2])
                x = self.mid_blocks[1](x, temb_act, None, None)
            return x, []

        def forward(self, streams, t, labels=None, tokens=None, mask=None):
            return self.denoise(streams, 0, None, t, self.conditioning(labels, tokens, mask))[0]

    class NestedUNet(UNet):              # NestedUNet.cs: outer shallow UNet whose bottleneck hosts inner_unet
        def __init__(self, n, image_channels):
            super().__init__(n["outer"], False, image_channels)
            self.normalize = not n["skipNormalization"]
            self.inner_unet = NestedUNet(n["innerNested"], image_channels) if n["innerNested"] is not None \
                else UNet(n["innerUnet"], True, image_channels)
            last, first = n["outer"]["resolutionChannels"][-1], self.inner_unet.conv_in.out_channels
            self.in_adapter = None if n["skipInnerUnetInput"] else zero(nn.Conv2d(last, first, 3, padding=1))
            self.out_adapter = zero(nn.Conv2d(first, last, 3, padding=1))

        def conditioning(self, labels, tokens, mask):
            return self.inner_unet.conditioning(labels, tokens, mask)

        def middle(self, x, temb_act, streams, index, t, cond):
            """in_adapter(bottleneck) joins the inner model's conv_in output; out_adapter(inner features) is added back."""
            to_inner = self.in_adapter(x) if self.in_adapter is not None else None
            low, inner_features = self.inner_unet.denoise(streams, index + 1, to_inner, t, cond)
            return x + self.out_adapter(inner_features), low

    return NestedUNet(m["nested"], m["imageChannels"]) if m["nested"] is not None \
        else UNet(m["unet"], True, m["imageChannels"])


# ---- the training step ------------------------------------------------------------------------------------------------

def gamma_tables(res, device, n_steps=1000, power=1.0):
    """NoiseSchedule: DeepFloyd base gammas (N + 1 entries, g[0] = 1), per stream shifted by s_r = R_r / R_lowest in SNR.
    Returns (√g_r, √(1 − g_r)) tables [streams, N + 1] on the device."""
    import torch
    ab = lambda tau: math.cos((tau + 0.008) / 1.008 * math.pi / 2) ** 2   # noqa: E731 – iDDPM squaredcos_cap_v2
    g = [1.0]
    for i in range(1, n_steps + 1):
        g.append(g[-1] * (1 - min(1 - ab(i / n_steps) / ab((i - 1) / n_steps), 0.999)))
    g = torch.tensor(g, dtype=torch.float64)
    logsnr = g.log() - (1 - g).log()     # +inf at g[0] = 1: sigmoid gives 1
    shifted = torch.stack([torch.sigmoid(logsnr - power * math.log(r / res[-1])) for r in res])
    return shifted.sqrt().float().to(device), (1 - shifted).sqrt().float().to(device)


def diffusion_loss(model, images, res, alpha, sigma, labels, tokens, mask):
    """DiffusionLoss.Compute: avg-pool pyramid, t ~ U{0..N−1} shared by the streams, x_t = √g·x + √(1−g)·ε,
    v-prediction converted to ε̂ = √(1−g)·x_t + √g·v̂, loss = mean_b Σ_r mean_CHW (ε̂ − ε)²."""
    import torch
    import torch.nn.functional as F
    b = images.shape[0]
    t = torch.randint(0, alpha.shape[1] - 1, (b,), device=images.device)
    pyramid = [images]
    for r in range(1, len(res)):
        pyramid.append(F.avg_pool2d(pyramid[-1], res[r - 1] // res[r]))
    noisy, coefs, noises = [], [], []
    for r, x in enumerate(pyramid):
        a, s = alpha[r][t + 1].view(b, 1, 1, 1), sigma[r][t + 1].view(b, 1, 1, 1)
        eps = torch.randn_like(x)
        noisy.append(a * x + s * eps); coefs.append((a, s)); noises.append(eps)
    preds = model(noisy, t, labels, tokens, mask)
    total = 0
    for (a, s), xt, v, eps in zip(coefs, noisy, preds, noises):
        total = total + ((s * xt + a * v.float() - eps) ** 2).mean(dim=(1, 2, 3)).sum()
    return total / b


def bench(args, m):
    import contextlib
    import statistics
    import time
    import torch
    dev = torch.device(args.device)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("CUDA is not available (use --device cpu for a smoke test)")
        torch.backends.cudnn.benchmark = True   # usual eager practice; its autotuning falls in the warm-up step
    torch.manual_seed(1)
    model = build_model(m).to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, fused=args.device == "cuda")
    except (TypeError, RuntimeError):      # older torch without fused AdamW
        opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    ema = [p.detach().clone() for p in params]
    res, size, ch, b = resolutions(m), m["imageSize"], m["imageChannels"], args.batch
    alpha, sigma = gamma_tables(res, dev)
    images = torch.rand(b, ch, size, size, device=dev) * 2 - 1
    inner = innermost(m)
    labels = torch.arange(b, device=dev) % inner["numClasses"] if inner["numClasses"] > 0 else None
    tokens = mask = None
    if inner["conditioningFeatureDim"] > 0:  # our bench passes no text; random tokens, the later half of some padded
        tokens = torch.randn(b, args.tokens, inner["conditioningFeatureDim"], device=dev)
        mask = torch.ones(b, args.tokens, device=dev)
        mask[1::2, (args.tokens + 1) // 2:] = 0
    use_autocast = args.device == "cuda"
    card = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    n_params = sum(p.numel() for p in params)
    print(f"{args.config}: {n_params / 1e6:.2f} M parameters, batch {b} at {size}², torch {torch.__version__} on {card}"
          f"{', bf16 autocast' if use_autocast else ', fp32'}")

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16) if use_autocast else contextlib.nullcontext():
            loss = diffusion_loss(model, images, res, alpha, sigma, labels, tokens, mask)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 2.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():              # EMA 0.9999: ema += (1 − d)·(p − ema)
            if hasattr(torch, "_foreach_lerp_"):
                torch._foreach_lerp_(ema, params, 1 - 0.9999)
            else:                          # torch < 2.0 (the CPU check)
                torch._foreach_mul_(ema, 0.9999); torch._foreach_add_(ema, params, alpha=1 - 0.9999)
        return loss.detach()

    times = []
    for s in range(args.steps + 1):        # step 0 is the warm-up
        if args.device == "cuda" and s == args.steps:
            torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
        if args.device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record(); loss = step(); end.record(); torch.cuda.synchronize()
            ms = start.elapsed_time(end)
        else:
            t0 = time.perf_counter(); loss = step(); ms = (time.perf_counter() - t0) * 1000
        if s > 0:
            times.append(ms)
        print(f"step {s}: {ms:8.1f} ms  loss {loss.item():.4f}")
    median = statistics.median(times)
    ips = b / (median / 1000)
    print(f"median {median / 1000:.3f} s/step, {ips:.1f} images/s")
    peak = torch.cuda.max_memory_allocated() if args.device == "cuda" else 0
    if args.device == "cuda":               # the last step's peak, as Mdm.Bench step --memory-report measures it
        print(f"peak memory allocated in the last step: {peak / 2**20:.1f} MiB (torch.cuda.max_memory_allocated)")
    if args.json:
        impl = f"torch {torch.__version__} eager " + ("bf16 autocast" if use_autocast else "fp32 cpu")
        with open(args.json, "a") as f:
            f.write(json.dumps({"op": "train_step", "shape": f"{pathlib.Path(args.config).stem}-b{b}", "ms": median,
                                "bytes": 0, "flops": 0, "gbps": 0, "tflops": 0, "card": card, "impl": impl,
                                "images_per_s": ips, "peak_bytes": peak}) + "\n")


def sample_bench(args, m):
    """Ancestral DDPM (η = 1): x̂0 from the v-prediction, clipped to [−1, 1], then x_s = √g_s·x̂0 + √(1 − g_s − σ²)·ε̂
    + σ·z with σ² = (1 − g_s)/(1 − g_t)·(1 − g_t/g_s), on the per-stream shifted gammas."""
    import contextlib
    import time
    import torch
    dev = torch.device(args.device)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("CUDA is not available (use --device cpu for a smoke test)")
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(1)
    model = build_model(m).to(dev).eval()
    res, ch, b = resolutions(m), m["imageChannels"], args.batch
    alpha, sigma = gamma_tables(res, dev)
    gamma = alpha.double() ** 2
    inner = innermost(m)
    labels = tokens = mask = None
    if inner["numClasses"] > 0:            # the unconditional half uses the null class (the last embedding row)
        labels = torch.arange(b, device=dev) % inner["numClasses"]
        labels = torch.cat([labels, torch.full_like(labels, inner["numClasses"])])
    if inner["conditioningFeatureDim"] > 0:
        tokens = torch.randn(b, args.tokens, inner["conditioningFeatureDim"], device=dev)
        mask = torch.ones(b, args.tokens, device=dev)
        mask[1::2, (args.tokens + 1) // 2:] = 0
        tokens = torch.cat([tokens, torch.zeros_like(tokens)]); mask = torch.cat([mask, torch.ones_like(mask)])
    guided = labels is not None or tokens is not None
    use_autocast = args.device == "cuda"
    card = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    n = alpha.shape[1] - 1

    def run(steps):
        taus = [round(n - i * n / steps) for i in range(steps + 1)]
        xs = [torch.randn(b, ch, r, r, device=dev) for r in res]
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16) if use_autocast else contextlib.nullcontext():
            for t, s in zip(taus[:-1], taus[1:]):
                inputs = [torch.cat([x, x]) for x in xs] if guided else xs
                tt = torch.full((inputs[0].shape[0],), t - 1, device=dev)
                preds = model(inputs, tt, labels, tokens, mask)
                for r, (x, v) in enumerate(zip(xs, preds)):
                    v = v.float()
                    if guided:
                        v = v[b:] + args.guidance * (v[:b] - v[b:])
                    gt, gs = gamma[r][t].item(), gamma[r][s].item()
                    x0 = (math.sqrt(gt) * x - math.sqrt(1 - gt) * v).clamp(-1, 1)
                    eps = (x - math.sqrt(gt) * x0) / math.sqrt(1 - gt)
                    var = 0.0 if s == 0 else (1 - gs) / (1 - gt) * (1 - gt / gs)
                    xs[r] = math.sqrt(gs) * x0 + math.sqrt(max(1 - gs - var, 0.0)) * eps + math.sqrt(var) * torch.randn_like(x)
        return xs

    def timed(steps):
        if args.device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter(); run(steps)
        if args.device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    print(f"{args.config}: {args.sample_steps} DDPM steps at {'→'.join(map(str, res))} px, batch {b}"
          f"{f', guidance {args.guidance} (model batch {2 * b})' if guided else ', no guidance'}, torch {torch.__version__} on {card}"
          f"{', bf16 autocast' if use_autocast else ', fp32'}")
    warm = timed(2)
    seconds = timed(args.sample_steps)
    ips = b / seconds
    print(f"warm-up (2 steps) {warm:.2f} s; sampling {seconds:.2f} s, {1000 * seconds / args.sample_steps:.1f} ms/step, {ips:.2f} images/s")
    if args.json:
        impl = f"torch {torch.__version__} eager " + ("bf16 autocast" if use_autocast else "fp32 cpu")
        with open(args.json, "a") as f:
            f.write(json.dumps({"op": "sample", "shape": f"{pathlib.Path(args.config).stem}-b{b}-s{args.sample_steps}{'-cfg' if guided else ''}",
                                "ms": 1000 * seconds, "bytes": 0, "flops": 0, "gbps": 0, "tflops": 0, "card": card,
                                "impl": impl, "images_per_s": ips}) + "\n")


def main(argv=None):
    args = parse_args(argv)
    try:
        m = load_config(args.config)
        try:
            import torch  # noqa: F401
        except ImportError:
            raise RuntimeError("PyTorch is not installed (pip install torch)") from None
        if args.count:
            print(sum(p.numel() for p in build_model(m).parameters()))
        elif args.sample:
            sample_bench(args, m)
        else:
            bench(args, m)
    except Exception as e:  # noqa: BLE001 – one clear line (e.g. CUDA out of memory), exit code 1
        first = (str(e).strip().splitlines() or [""])[0]
        print(f"error: {type(e).__name__}: {first}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
