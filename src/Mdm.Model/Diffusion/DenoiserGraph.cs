using Mdm.Autograd;
using Mdm.Autograd.Nn;
using Mdm.Kernels;

namespace Mdm.Model.Diffusion;

/// <summary>
/// The sampler's denoiser call as a replayed CUDA graph (<see cref="Backend.Capture"/>). The first call with a new
/// <see cref="GraphKey"/> (input shapes, batch, labels, autocast, the addresses of the parameters and of the text
/// conditioning, the master weights' version, since a replay reads the cached BF16 weight copies) copies its inputs into tensors of its own, runs the denoiser once eagerly on them (so the allocator
/// holds every block the forward needs), captures the same call and replays it; later calls with that key copy the
/// inputs in, set the timesteps (the time embedding's sinusoid is recomputed at each replay) and replay. A changed key
/// captures again. Where the backend has no graphs, or the call cannot be captured (it reads a tensor back, as the
/// masked text pooling does), it logs one line and calls the denoiser eagerly from then on.
/// </summary>
public sealed class DenoiserGraph(IDenoiser denoiser, Action<string> log) : IDisposable
{
    GraphKey? key;
    CapturedWork? graph;
    Tensor[] staticInputs = [], staticOutputs = [];
    int[] staticTimesteps = [];

    /// <summary>Why calls run eagerly (logged once), or null while graphs are used.</summary>
    public string? Fallback { get; private set; }
    public int Captures { get; private set; }
    public int Replays { get; private set; }
    /// <summary>Kernels in the captured call (0 before a capture).</summary>
    public int Launches => graph?.Launches ?? 0;

    /// <summary>The denoiser's predictions (high → low): replayed, owned by this object and valid until the next call;
    /// eagerly, owned by the caller's <see cref="Graph"/> as a direct call's would be.</summary>
    public Tensor[] Predict(IReadOnlyList<Tensor> inputs, int[] timesteps, Conditioning conditioning)
    {
        if (Fallback is null && denoiser.Backend.CaptureUnsupported is { } unsupported) FallBack(unsupported);
        if (Fallback is not null) return Eager(inputs, timesteps, conditioning);
        var next = KeyOf(inputs, timesteps.Length, conditioning);
        if (graph is not null && key!.Difference(next) is { } changed)
        {
            log($"graph: capturing the denoiser call again: {changed}");
            DropGraph();
        }
        if (graph is null && !CaptureFor(next, inputs, timesteps, conditioning)) return Eager(inputs, timesteps, conditioning);
        for (int r = 0; r < inputs.Count; r++) Ops.Copy(inputs[r], staticInputs[r]);
        timesteps.CopyTo(staticTimesteps, 0);
        graph!.Replay();
        Replays++;
        return staticOutputs;
    }

    /// <summary>What a captured call depends on (see the class summary).</summary>
    public GraphKey KeyOf(IReadOnlyList<Tensor> inputs, int batch, Conditioning c)
    {
        IEnumerable<Tensor> parameters = denoiser is Module m ? m.Parameters().Select(p => p.Data) : [];
        var tensors = parameters.Concat(new[] { c.Tokens, c.TokenMask }.OfType<Tensor>());
        return GraphKey.Of(tensors,
            ("inputs", inputs.Select(t => $"{t.DType} {t.ShapeString}")), ("batch", batch), ("labels", c.ClassLabels),
            ("bf16 autocast", MixedPrecision.Enabled), ("master weights version", MixedPrecision.MasterWeightsVersion));
    }

    bool CaptureFor(GraphKey next, IReadOnlyList<Tensor> inputs, int[] timesteps, Conditioning conditioning)
    {
        var backend = denoiser.Backend;
        staticInputs = inputs.Select(t => Ops.Copy(t)).ToArray();
        staticOutputs = inputs.Select(t => backend.Empty(t.Shape)).ToArray();
        staticTimesteps = (int[])timesteps.Clone();
        ForwardInto();   // eagerly: every block the forward takes is in the allocator's cache before the capture
        var captured = backend.Capture(ForwardInto, out var whyNot);
        if (captured is null)
        {
            FallBack(whyNot);
            DropGraph();
            return false;
        }
        graph = captured;
        key = next;
        Captures++;
        return true;

        void ForwardInto()
        {
            using var g = new Graph();
            var predictions = denoiser.Forward(staticInputs.Select(t => new Variable(t)).ToArray(), staticTimesteps, conditioning);
            if (predictions.Length != staticOutputs.Length)
                throw new InvalidOperationException($"DenoiserGraph: the denoiser returned {predictions.Length} outputs for {staticOutputs.Length} inputs");
            for (int r = 0; r < predictions.Length; r++) Ops.Copy(predictions[r].Data, staticOutputs[r]);
        }
    }

    void FallBack(string reason)
    {
        Fallback = reason;
        log($"graph: the denoiser call runs eagerly: {reason}");
    }

    Tensor[] Eager(IReadOnlyList<Tensor> inputs, int[] timesteps, Conditioning conditioning) =>
        denoiser.Forward(inputs.Select(t => new Variable(t)).ToArray(), timesteps, conditioning).Select(v => v.Data).ToArray();

    void DropGraph()
    {
        graph?.Dispose();
        graph = null;
        key = null;
        foreach (var t in staticInputs.Concat(staticOutputs)) t.Dispose();
        staticInputs = staticOutputs = [];
    }

    public void Dispose() => DropGraph();
}
