using Mdm.Kernels;
using Mdm.Model;

namespace Mdm.Train.Data;

/// <summary>
/// A batch's token embeddings on the device as text conditioning; the samples marked in <c>dropped</c> get the
/// empty caption's encoding instead (caption dropout, so guidance has an unconditional model, as ml-mdm trains).
/// </summary>
public sealed class TextBatch : IDisposable
{
    readonly Tensor tokens, mask;

    public Conditioning Conditioning { get; }

    public TextBatch(Backend backend, Batch batch, ITextDataset data, bool[] dropped)
    {
        if (batch.Tokens is null || batch.TokenMask is null) throw new ArgumentException("the batch carries no text");
        int b = batch.Size, l = batch.TokenLength, d = batch.TextDim;
        var t = (float[])batch.Tokens.Clone();
        var m = (float[])batch.TokenMask.Clone();
        for (int i = 0; i < b; i++)
            if (dropped[i])
            {
                data.EmptyCaption.Tokens.CopyTo(t.AsSpan(i * l * d, l * d));
                data.EmptyCaption.Mask.CopyTo(m.AsSpan(i * l, l));
            }
        tokens = backend.FromArray(t, [b, l, d]);
        mask = backend.FromArray(m, [b, l]);
        Conditioning = new Conditioning(Tokens: tokens, TokenMask: mask);
    }

    /// <summary>The first <paramref name="n"/> samples' captions as conditioning, and the empty caption as the negative for guidance.</summary>
    public static (Conditioning Positive, Conditioning Negative, Tensor[] Owned) ForSampling(Backend backend, ITextDataset data, int n)
    {
        int l = data.TokenLength, d = data.TextDim;
        var t = new float[n * l * d];
        var m = new float[n * l];
        for (int i = 0; i < n; i++) data.LoadText(i % data.Count, t.AsSpan(i * l * d, l * d), m.AsSpan(i * l, l));
        var owned = new[]
        {
            backend.FromArray(t, [n, l, d]), backend.FromArray(m, [n, l]),
            backend.FromArray(data.EmptyCaption.Tokens, [1, l, d]), backend.FromArray(data.EmptyCaption.Mask, [1, l]),
        };
        return (new Conditioning(Tokens: owned[0], TokenMask: owned[1]), new Conditioning(Tokens: owned[2], TokenMask: owned[3]), owned);
    }

    public void Dispose()
    {
        tokens.Dispose();
        mask.Dispose();
    }
}
