using Mdm.Kernels;
using Mdm.Model.Checkpoints;

namespace Mdm.Model;

/// <summary>
/// Precomputed text conditioning (no T5 in-process): a safetensors file with "tokens" [B, S, D] (F32 or BF16, the
/// encoder's last hidden state, already zero at padded positions) and "mask" [B, S] (1 = real token, 0 = padding),
/// as ml-mdm feeds its UNet (§1.7). Rows can be sliced out for a batch.
/// </summary>
public static class TextEmbeddings
{
    public const string TokensKey = "tokens", MaskKey = "mask";

    /// <summary>Loads rows [start, start + count) (all rows when count is null) onto a backend.</summary>
    public static Conditioning Load(string path, Backend backend, int start = 0, int? count = null, int? expectedWidth = null)
    {
        using var file = SafeTensorsFile.Open(path);
        if (!file.Contains(TokensKey) || !file.Contains(MaskKey))
            throw new CheckpointFormatException(path, $"text embeddings need tensors '{TokensKey}' [B,S,D] and '{MaskKey}' [B,S]; found {string.Join(", ", file.Names)}");
        var t = file.Entry(TokensKey).Shape;
        var m = file.Entry(MaskKey).Shape;
        if (t.Length != 3 || m.Length != 2 || m[0] != t[0] || m[1] != t[1])
            throw new CheckpointFormatException(path, $"'{TokensKey}' must be [B,S,D] and '{MaskKey}' [B,S] with the same B and S; got [{string.Join(",", t)}] and [{string.Join(",", m)}]");
        int b = (int)t[0], s = (int)t[1], d = (int)t[2];
        if (expectedWidth is { } w && w != d)
            throw new CheckpointFormatException(path, $"token width {d} does not match the model's conditioning feature dim {w}");
        int n = count ?? b - start;
        if (start < 0 || n < 1 || start + n > b)
            throw new ArgumentException($"{path}: rows [{start}, {start + n}) are outside the {b} prompts in the file");
        var tokens = file.ReadF32(TokensKey).AsSpan(start * s * d, n * s * d);
        var mask = file.ReadF32(MaskKey).AsSpan(start * s, n * s);
        foreach (var v in mask)
            if (v != 0f && v != 1f) throw new CheckpointFormatException(path, $"'{MaskKey}' must hold only 0 and 1, found {v}");
        return new Conditioning(Tokens: backend.FromArray(tokens, n, s, d), TokenMask: backend.FromArray(mask, n, s));
    }

    /// <summary>Writes tokens [B,S,D] and mask [B,S] (e.g. from a Python T5 run converted once, or for tests).</summary>
    public static void Save(string path, float[] tokens, float[] mask, int batch, int sequence, int width)
    {
        var w = new SafeTensorsWriter();
        w.AddF32(TokensKey, [batch, sequence, width], tokens);
        w.AddF32(MaskKey, [batch, sequence], mask);
        w.Save(path);
    }
}
