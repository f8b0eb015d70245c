using System.Globalization;
using System.Text;
using Mdm.Kernels;

namespace Mdm.Model.Training;

/// <summary>
/// Memory of one training step by category, from the backend allocator's live and peak bytes:
/// the state that lives across steps (parameters, optimizer moments, EMA copies, everything else live when the step
/// starts, such as the input batch), the activations the forward leaves for the backward (live bytes when the loss is
/// ready minus the step's start), the parameter gradients, and the allocator's peak over the step. At the peak the
/// backward holds part of the activations, part of the gradients and its temporaries:
/// <see cref="BackwardAtPeak"/> = peak − start − activations is what it added on top of the forward's end.
/// The GPU allocator rounds blocks up (CachingAllocator.RoundSize), so its live bytes include that rounding.
/// </summary>
public sealed record StepMemoryReport(string Device, long Parameters, long Optimizer, long Ema, long AtStart,
    long Activations, long Gradients, long Peak)
{
    /// <summary>Live at the start of the step besides parameters, optimizer and EMA (inputs, caches, other tensors).</summary>
    public long OtherAtStart => AtStart - Parameters - Optimizer - Ema;
    public long BackwardAtPeak => Peak - AtStart - Activations;

    public string Format()
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(c, $"memory of one training step on {Device} (MiB; % of the peak):");
        void Row(string name, long bytes) => sb.AppendLine(c, $"  {name,-40} {bytes / 1048576.0,10:F1} {100.0 * bytes / Math.Max(1, Peak),6:F1} %");
        Row("parameters", Parameters);
        Row("optimizer state (AdamW m, v)", Optimizer);
        Row("EMA copies", Ema);
        Row("other live at the step's start", OtherAtStart);
        Row("activations kept for the backward", Activations);
        Row("backward: gradients + temporaries at peak", BackwardAtPeak);
        Row("allocator peak", Peak);
        sb.Append(c, $"  (parameter gradients in all: {Gradients / 1048576.0:F1} MiB)");
        return sb.ToString();
    }
}

/// <summary>Takes a <see cref="StepMemoryReport"/>: call the phases in order around one step.</summary>
public sealed class StepMemoryMeter(Backend backend)
{
    long atStart, activations, gradients;

    /// <summary>Before the forward: the live bytes now are the step's start, and the peak restarts here.</summary>
    public void StepStarting()
    {
        backend.Synchronize();
        atStart = backend.Memory.LiveBytes;
        backend.ResetPeakMemory();
    }

    /// <summary>The loss is computed and the graph holds what the backward needs.</summary>
    public void ForwardDone()
    {
        backend.Synchronize();
        activations = backend.Memory.LiveBytes - atStart;
    }

    public void BackwardDone(IEnumerable<(string Name, Autograd.Variable Param)> parameters) =>
        gradients = parameters.Sum(p => p.Param.Grad?.Bytes ?? 0);

    /// <summary>After the optimizer and EMA: the report.</summary>
    public StepMemoryReport Report(IEnumerable<(string Name, Autograd.Variable Param)> parameters, AdamWOptimizer optimizer, ExponentialMovingAverage? ema)
    {
        backend.Synchronize();
        return new StepMemoryReport(backend.Info.Name, parameters.Sum(p => p.Param.Data.Bytes), optimizer.StateBytes, ema?.StateBytes ?? 0,
            atStart, activations, gradients, backend.Memory.PeakLiveBytes);
    }
}
