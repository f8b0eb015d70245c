using Mdm.Autograd;
using Mdm.Kernels;

namespace Mdm.Model.Nn;

/// <summary>
/// Rearrangements of video features. A clip batch is kept on an explicit frames axis: [B·F, C, H, W] with frame f of
/// clip b at row b·F + f (the row-major view of [B, F, C, H, W]). ml-mdm instead tiles F = n² frames into an n×n grid
/// of one image and re-tiles at every resolution change; the frames axis needs no re-tiling, allows any F (not only
/// squares) and makes every per-frame op (convs, GroupNorm, spatial attention) a plain batched op.
/// </summary>
public static class FrameOps
{
    /// <summary>[B, ...] → [B·F, ...]: every row repeated F times consecutively (per-clip values onto each frame).</summary>
    public static Variable RepeatPerFrame(Variable x, int frames)
    {
        if (frames < 1) throw new ArgumentOutOfRangeException(nameof(frames), frames, "frames must be ≥ 1");
        if (frames == 1) return x;
        var s = x.Shape;
        var withAxis = F.Reshape(x, [s[0], 1, .. s[1..]]);
        var repeated = F.Concat(Enumerable.Repeat(withAxis, frames).ToList(), 1);
        return F.Reshape(repeated, [s[0] * frames, .. s[1..]]);
    }

    /// <summary>Text tokens [B, S, D] and key mask [B, S] of each clip repeated for its F frames (cross-attention of
    /// a clip batch). The repeated mask is a graph-owned constant, alive until the graph is disposed.</summary>
    public static (Variable Tokens, Tensor? Mask) RepeatTokensPerFrame(Variable tokens, Tensor? mask, int frames)
    {
        var t = RepeatPerFrame(tokens, frames);
        if (mask is null) return (t, null);
        var m = mask.ToArray();
        int b = mask.Dim(0), s = mask.Dim(1);
        var r = new float[m.Length * frames];
        for (int i = 0; i < b; i++)
            for (int f = 0; f < frames; f++) Array.Copy(m, i * s, r, (i * frames + f) * s, s);
        return (t, HostInput.Constant(mask.Backend, r, b * frames, s).Data);
    }

    /// <summary>Clips in a batch of <paramref name="rows"/> frames, or a clear exception naming <paramref name="what"/>.</summary>
    public static int Clips(int rows, int frames, string what)
    {
        if (frames < 1 || rows % frames != 0)
            throw new ArgumentException($"{what}: a batch of {rows} frames is not a whole number of {frames}-frame clips");
        return rows / frames;
    }

    /// <summary>[B·F, C, h, w] → [B·h·w, F, C]: one length-F sequence of C-wide tokens per clip and pixel.</summary>
    public static Variable FramesToSequences(Variable x, int frames)
    {
        int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], w = x.Shape[3], b = Clips(n, frames, "FramesToSequences");
        var t = F.Permute(F.Reshape(x, b, frames, c, h * w), 0, 3, 1, 2);
        return F.Reshape(t, b * h * w, frames, c);
    }

    /// <summary>Inverse of <see cref="FramesToSequences"/>: [B·h·w, F, C] → [B·F, C, h, w].</summary>
    public static Variable SequencesToFrames(Variable x, int h, int w)
    {
        int rows = x.Shape[0], frames = x.Shape[1], c = x.Shape[2], b = Clips(rows, h * w, "SequencesToFrames");
        var t = F.Permute(F.Reshape(x, b, h * w, frames, c), 0, 2, 3, 1);
        return F.Reshape(t, b * frames, c, h, w);
    }

    /// <summary>[B·F, C, h, w] → [B·h·w, C, F]: the NCL layout of a Conv1d along time.</summary>
    public static Variable FramesToTimeSeries(Variable x, int frames)
    {
        int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], w = x.Shape[3], b = Clips(n, frames, "FramesToTimeSeries");
        var t = F.Permute(F.Reshape(x, b, frames, c, h * w), 0, 3, 2, 1);
        return F.Reshape(t, b * h * w, c, frames);
    }

    /// <summary>Inverse of <see cref="FramesToTimeSeries"/>: [B·h·w, C, F] → [B·F, C, h, w].</summary>
    public static Variable TimeSeriesToFrames(Variable x, int h, int w)
    {
        int rows = x.Shape[0], c = x.Shape[1], frames = x.Shape[2], b = Clips(rows, h * w, "TimeSeriesToFrames");
        var t = F.Permute(F.Reshape(x, b, h * w, c, frames), 0, 3, 2, 1);
        return F.Reshape(t, b * frames, c, h, w);
    }

    /// <summary>Nearest ×2 along the last axis: [N, C, L] → [N, C, 2L] (each step repeated twice).</summary>
    public static Variable UpsampleTimeNearest2x(Variable x)
    {
        int n = x.Shape[0], c = x.Shape[1], l = x.Shape[2];
        var col = F.Reshape(x, n, c, l, 1);
        return F.Reshape(F.Concat([col, col], 3), n, c, 2 * l);
    }

    /// <summary>Every <paramref name="ratio"/>-th frame of each clip (frames 0, r, 2r, …) of a host clip batch
    /// [B·F, C, H, W]: the low-resolution stream of a temporal nesting level (§6.2).</summary>
    public static Tensor SubsampleFrames(Tensor clips, int frames, int ratio)
    {
        if (clips.Rank != 4) throw new ArgumentException($"SubsampleFrames: expected [B·F, C, H, W], got {clips.ShapeString}");
        if (ratio < 1 || frames % ratio != 0)
            throw new ArgumentException($"SubsampleFrames: {frames} frames cannot be subsampled by {ratio}");
        int b = Clips(clips.Dim(0), frames, "SubsampleFrames"), kept = frames / ratio;
        var parts = new List<Tensor>();
        var byClip = clips.Reshape(b, frames, (int)(clips.Numel / clips.Dim(0)));
        var split = Ops.Split(byClip, Enumerable.Repeat(1, frames).ToArray(), 1);
        try
        {
            for (int f = 0; f < frames; f += ratio) parts.Add(split[f]);
            using var joined = Ops.Concat(parts, 1);
            return Ops.Copy(joined.Reshape(b * kept, clips.Dim(1), clips.Dim(2), clips.Dim(3)));
        }
        finally { foreach (var s in split) s.Dispose(); }
    }
}
