namespace Mdm.Train.Data;

/// <summary>A dataset whose samples carry precomputed text embeddings: [L, D] tokens and an [L] mask (1 = real token).</summary>
public interface ITextDataset : IDataset
{
    /// <summary>L: tokens per caption (padded).</summary>
    int TokenLength { get; }

    /// <summary>D: the width of one token embedding.</summary>
    int TextDim { get; }

    /// <summary>Writes sample <paramref name="index"/>'s tokens [L, D] and mask [L]; safe from several threads.</summary>
    void LoadText(int index, Span<float> tokens, Span<float> mask);

    /// <summary>The encoding of the empty caption: caption dropout during training and the negative for guidance.</summary>
    (float[] Tokens, float[] Mask) EmptyCaption { get; }

    /// <summary>The caption text of sample <paramref name="index"/> ("" when the dataset has none).</summary>
    string CaptionOf(int index);
}

/// <summary>A dataset that decides the order of each epoch itself (e.g. shard order plus a shuffle buffer).</summary>
public interface IEpochOrder : IDataset
{
    /// <summary>The dataset indices epoch <paramref name="epoch"/> visits, a pure function of (seed, epoch).</summary>
    int[] EpochOrder(long seed, int epoch);
}
