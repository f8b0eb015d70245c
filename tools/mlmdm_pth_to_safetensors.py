#!/usr/bin/env python3
"""Converts an ml-mdm PyTorch checkpoint (.pth, a pickle: {"state_dict": ...} as ml-mdm's UNet.save writes it, or a
bare state dict) into a safetensors file Mdm loads, and reports every key it renames or drops and, given the Mdm model's
expected names, every missing, unexpected or mismatched key.

  /usr/bin/python3 tools/mlmdm_pth_to_safetensors.py vis_model_256x256.pth model.safetensors \\
      [--expect mdm-model.safetensors] [--ml-mdm /tmp/ml-mdm] [--bf16]

--expect   a safetensors file with the Mdm model's parameters (e.g. a checkpoint of the converted config, written by
           `Mdm.Train train --config converted.json --steps 0`, or any file with the same names); only names and shapes
           are read. Without it only the renames are reported.
--ml-mdm   an apple/ml-mdm checkout, needed only when the pickle refers to ml-mdm classes (e.g. old configs stored
           next to the weights); its modules are loaded with the stand-ins of mlmdm_stubs.py.
Exit codes: 0 written (all keys matched when --expect is given), 1 written but keys differ, 2 bad arguments or input.
The tensor names follow ml-mdm's state dict (Mdm uses the same names); see mlmdm_stubs.to_mdm_state for the changes.
"""
import argparse
import json
import pathlib
import struct
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))


def read_safetensors_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    return {k: v["shape"] for k, v in header.items() if k != "__metadata__"}


def write_safetensors(path, tensors, metadata, bf16):
    import torch

    header, offset = {"__metadata__": metadata}, 0
    payload = []
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if bf16 and t.is_floating_point():
            data, dtype = t.to(torch.bfloat16).view(torch.int16).numpy().tobytes(), "BF16"
        elif t.is_floating_point():
            data, dtype = t.to(torch.float32).numpy().tobytes(), "F32"
        else:
            data, dtype = t.to(torch.int64).numpy().tobytes(), "I64"
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        payload.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    tmp = pathlib.Path(str(path) + ".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for d in payload:
            f.write(d)
    tmp.replace(path)


def main(argv=None):
    p = argparse.ArgumentParser(description="ml-mdm .pth checkpoint -> safetensors for Mdm")
    p.add_argument("pth")
    p.add_argument("out")
    p.add_argument("--expect", help="safetensors file whose names and shapes the result must match")
    p.add_argument("--expect-prefix", default="", help="only expected names with this prefix, matched without it")
    p.add_argument("--ml-mdm", help="ml-mdm checkout, when the pickle refers to its classes")
    p.add_argument("--bf16", action="store_true", help="store floating tensors as BF16 (default F32)")
    a = p.parse_args(argv)

    def fail(message):
        print(f"error: {message}", file=sys.stderr)
        return 2

    if not pathlib.Path(a.pth).is_file():
        return fail(f"{a.pth}: no such file")
    import torch
    import mlmdm_stubs

    if a.ml_mdm:
        mlmdm_stubs.load(a.ml_mdm)
    try:
        checkpoint = torch.load(a.pth, map_location="cpu")
    except Exception as e:  # a pickle can fail in many ways; name the file and the cause in one line
        return fail(f"{a.pth}: cannot load ({type(e).__name__}: {e}); pass --ml-mdm if it refers to ml-mdm classes")
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        return fail(f"{a.pth}: no state dict of tensors (expected a mapping, or one under 'state_dict')")

    report = []
    try:
        tensors = mlmdm_stubs.to_mdm_state(state, report)
    except SystemExit as e:
        return fail(str(e).removeprefix("error: "))
    for line in report:
        print(line)
    other = sorted(k for k in checkpoint if k != "state_dict") if isinstance(checkpoint, dict) and "state_dict" in checkpoint else []
    if other:
        print(f"not converted (not weights): {', '.join(other)}")

    status = 0
    if a.expect:
        expected = {k[len(a.expect_prefix):]: v for k, v in read_safetensors_header(a.expect).items() if k.startswith(a.expect_prefix)}
        missing = sorted(set(expected) - set(tensors))
        unexpected = sorted(set(tensors) - set(expected))
        mismatched = sorted(k for k in set(expected) & set(tensors) if list(tensors[k].shape) != expected[k])
        for k in missing:
            print(f"missing: {k} {expected[k]}")
        for k in unexpected:
            print(f"unexpected: {k} {list(tensors[k].shape)}")
        for k in mismatched:
            print(f"shape mismatch: {k}: checkpoint {list(tensors[k].shape)}, Mdm {expected[k]}")
        print(f"{len(tensors)} tensors; {len(missing)} missing, {len(unexpected)} unexpected, {len(mismatched)} shape mismatches")
        status = 1 if missing or unexpected or mismatched else 0
    write_safetensors(a.out, tensors, {"source": pathlib.Path(a.pth).name, "converted_by": "tools/mlmdm_pth_to_safetensors.py"}, a.bf16)
    print(f"wrote {a.out}")
    return status


if __name__ == "__main__":
    sys.exit(main())
