#!/usr/bin/env python3
"""PyTorch side of the GPU comparison: the same ops and shapes as bench/Mdm.Bench/Gpu/BenchCases.cs.

Times each op with CUDA events after a warm-up and writes one JSON line per case (same schema as `Mdm.Bench gpu`).
Arguments are parsed before torch is imported, so `--list` works on machines without PyTorch.
"""
import argparse
import json
import sys


def cases(quick):
    act = [2, 8, 9, 9] if quick else [16, 256, 64, 64]
    rows = [7, 113] if quick else [4096, 4096]
    n = act[0] * act[1] * act[2] * act[3]
    nr = rows[0] * rows[1]
    # (op, shape, bytes, flops, setup(torch) -> tensors, run(tensors))
    return [
        ("copy", act, 8 * n, 0, lambda t: (t.randn(act), t.empty(act)), lambda a: a[1].copy_(a[0])),
        ("add", act, 12 * n, n, lambda t: (t.randn(act), t.randn(act), t.empty(act)), lambda a: t_ops.add(a[0], a[1], out=a[2])),
        ("add_bias", act, 8 * n, n, lambda t: (t.randn(act), t.randn([1, act[1], 1, 1]), t.empty(act)), lambda a: t_ops.add(a[0], a[1], out=a[2])),
        ("mul", act, 12 * n, n, lambda t: (t.randn(act), t.randn(act), t.empty(act)), lambda a: t_ops.mul(a[0], a[1], out=a[2])),
        ("silu_fwd", act, 8 * n, 4 * n, lambda t: (t.randn(act), t.empty(act)), lambda a: t_ops.nn.functional.silu(a[0])),
        ("silu_bwd", act, 12 * n, 8 * n, lambda t: (t.randn(act), t.randn(act)), lambda a: t_ops.ops.aten.silu_backward(a[1], a[0])),
        ("sum_rows", rows, 4 * nr, nr, lambda t: (t.randn(rows),), lambda a: a[0].sum(dim=1)),
        ("sum_nhw", act, 4 * n, n, lambda t: (t.randn(act),), lambda a: a[0].sum(dim=(0, 2, 3))),
    ] + more_cases(quick, act, n)


def more_cases(quick, act, n):
    """The issue-7 targets. PyTorch runs its fast path: bf16 where Mdm's target is bf16, eager separate kernels for
    GroupNorm+FiLM+SiLU (what a PyTorch model does), cudnn.benchmark + channels_last for convs, fused AdamW."""
    F = lambda: t_ops.nn.functional
    groups = min(32, act[1])
    out = [("gn_film_silu_fwd", act, 8 * n, 10 * n,
            lambda t: (t.randn(act), t.ones([act[1]]), t.zeros([act[1]]), t.randn([act[0], act[1], 1, 1]), t.randn([act[0], act[1], 1, 1])),
            lambda a: F().silu(F().group_norm(a[0], groups, a[1], a[2]) * (1 + a[3]) + a[4]))]
    gemms = [[33, 40, 24]] if quick else [[4096, 4096, 4096], [16384, 768, 256], [4096, 3072, 768], [768, 256, 16384]]
    for gm, gn, gk in gemms:
        # PyTorch's bf16 matmul returns bf16: the same run stands against Mdm's f32-C and bf16-C cases.
        for name, c_bytes in (("matmul_bf16", 4), ("matmul_bf16_bf16out", 2)):
            out.append((name, [gm, gn, gk], 2 * (gm * gk + gk * gn) + c_bytes * gm * gn, 2 * gm * gn * gk,
                        lambda t, gm=gm, gn=gn, gk=gk: (t.randn([gm, gk]).bfloat16(), t.randn([gk, gn]).bfloat16()), lambda a: a[0] @ a[1]))
    mm = 33 if quick else 4096
    out.append(("matmul_f32", [mm, mm, mm], 3 * 4 * mm * mm, 2 * mm ** 3,
                lambda t: (t.randn([mm, mm]), t.randn([mm, mm])), lambda a: a[0] @ a[1]))
    for n_tok, d in ((17 if quick else 1024, 8 if quick else 64), (9 if quick else 256, 8 if quick else 96)):
        qs = [1 if quick else 16, 8, n_tok, d]
        e = qs[0] * qs[1] * n_tok * d
        f = 4 * qs[0] * qs[1] * n_tok * n_tok * d
        out.append(("attention_fwd", qs, 16 * e, f,
                    lambda t, qs=qs: tuple(t.randn(qs).bfloat16() for _ in range(3)),
                    lambda a: F().scaled_dot_product_attention(a[0], a[1], a[2])))
        out.append(("attention_bwd", qs, 36 * e, 2.5 * f, lambda t, qs=qs: _attention_graph(t, qs), _attention_backward))
    cx = [1, 4, 9, 9] if quick else [16, 256, 64, 64]
    out.append(("conv3x3_fwd", cx, 8 * cx[0] * cx[1] * cx[2] * cx[3], 2 * cx[0] * cx[1] * cx[2] * cx[3] * cx[1] * 9,
                lambda t: _conv_inputs(t, cx), lambda a: F().conv2d(a[0], a[1], a[2], padding=1)))
    out.append(("conv3x3_bwd", cx, 12 * cx[0] * cx[1] * cx[2] * cx[3], 4 * cx[0] * cx[1] * cx[2] * cx[3] * cx[1] * 9,
                lambda t: _conv_graph(t, cx), _conv_backward))
    np_ = 1000 if quick else 25_000_000
    out.append(("adam_clip", [np_], 28 * np_, 0, lambda t: _adam_state(t, np_), _adam_step))
    out.append(("ema", [np_], 12 * np_, 0, lambda t: (t.randn([np_]), t.randn([np_])), lambda a: a[0].lerp_(a[1], 1e-4)))
    return out


def _attention_graph(t, qs):
    q, k, v = (t.randn(qs).bfloat16().requires_grad_() for _ in range(3))
    o = t_ops.nn.functional.scaled_dot_product_attention(q, k, v)
    return (q, k, v, o, t.randn(qs).bfloat16())


def _attention_backward(a):
    return t_ops.autograd.grad(a[3], (a[0], a[1], a[2]), a[4], retain_graph=True)


def _conv_inputs(t, cx):
    t_ops.backends.cudnn.benchmark = True
    x = t.randn(cx).bfloat16().to(memory_format=t_ops.channels_last)
    w = t.randn([cx[1], cx[1], 3, 3]).bfloat16().to(memory_format=t_ops.channels_last)
    return (x, w, t.randn([cx[1]]).bfloat16())


def _conv_graph(t, cx):
    x, w, b = _conv_inputs(t, cx)
    x, w = x.requires_grad_(), w.requires_grad_()
    y = t_ops.nn.functional.conv2d(x, w, b, padding=1)
    return (x, w, y, t.randn(cx).bfloat16().to(memory_format=t_ops.channels_last))


def _conv_backward(a):
    """Input and weight gradient (what Mdm's conv3x3_bwd times); the bias gradient is a separate reduction there."""
    return t_ops.autograd.grad(a[2], (a[0], a[1]), a[3], retain_graph=True)


def _adam_state(t, n):
    p = t_ops.nn.Parameter(t.randn([n]))
    p.grad = t.randn([n])
    opt = t_ops.optim.AdamW([p], lr=1e-4, weight_decay=0, fused=True)
    return (p, opt)


def _adam_step(a):
    t_ops.nn.utils.clip_grad_norm_([a[0]], 2.0)
    a[1].step()


t_ops = None


class _Factory:
    """Allocates on the GPU in float32."""

    def __init__(self, torch):
        self.torch = torch

    def randn(self, shape):
        return self.torch.randn(*shape, device="cuda", dtype=self.torch.float32)

    def empty(self, shape):
        return self.torch.empty(*shape, device="cuda", dtype=self.torch.float32)

    def ones(self, shape):
        return self.torch.ones(*shape, device="cuda", dtype=self.torch.float32)

    def zeros(self, shape):
        return self.torch.zeros(*shape, device="cuda", dtype=self.torch.float32)


def time_case(torch, tensors, run, reps):
    """Median-free mean over `reps` runs between two CUDA events, after 5 warm-up runs."""
    for _ in range(5):
        run(tensors)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        run(tensors)
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / reps


def main(argv):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--json", default="", help="write one JSON line per case to this file")
    p.add_argument("--quick", action="store_true", help="tiny shapes (checks the script, not the GPU)")
    p.add_argument("--list", action="store_true", help="print the cases and exit (no torch needed)")
    p.add_argument("--reps", type=int, default=50)
    args = p.parse_args(argv)
    if args.list:
        for op, shape, nbytes, flops, _, _ in cases(args.quick):
            print(f"{op:14} {'x'.join(map(str, shape)):18} bytes={nbytes} flops={flops}")
        return 0

    global t_ops
    import torch
    t_ops = torch
    if not torch.cuda.is_available():
        print("torch_bench: CUDA is not available", file=sys.stderr)
        return 1
    card = torch.cuda.get_device_name(0)
    f = _Factory(torch)
    out = []
    for op, shape, nbytes, flops, setup, run in cases(args.quick):
        try:
            ms = time_case(torch, setup(f), run, args.reps)
        except Exception as e:  # one broken case must not hide the others
            print(f"{op:14} {'x'.join(map(str, shape)):18} FAILED: {type(e).__name__}: {e}", flush=True)
            continue
        r = dict(op=op, shape="x".join(map(str, shape)), ms=ms, bytes=nbytes, flops=flops,
                 gbps=nbytes / (ms * 1e6), tflops=flops / (ms * 1e9), card=card, impl="torch " + torch.__version__)
        out.append(r)
        print(f"{op:14} {r['shape']:18} {ms:9.4f} ms  {r['gbps']:8.1f} GB/s   [{card}]", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            for r in out:
                fh.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
