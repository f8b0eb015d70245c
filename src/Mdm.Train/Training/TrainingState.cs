using System.Globalization;
using Mdm.Model.Checkpoints;

namespace Mdm.Train.Training;

/// <summary>Where a run is: which stage, which step, and where the data loader continues (saved in checkpoints).</summary>
public sealed record TrainingState(int Stage, long Step, int Epoch, int Position, long OptimizerSteps, long EmaUpdates, int NanStreak)
{
    public const string Group = "state";

    public IEnumerable<(string Name, long[] Values)> ToIntegers() =>
    [
        ("stage", [Stage]), ("step", [Step]), ("epoch", [Epoch]), ("position", [Position]),
        ("optimizer_steps", [OptimizerSteps]), ("ema_updates", [EmaUpdates]), ("nan_streak", [NanStreak]),
    ];

    public static TrainingState Read(CheckpointReader r)
    {
        long Get(string n) => r.ReadInt64(Group, n)[0];
        return new((int)Get("stage"), Get("step"), (int)Get("epoch"), (int)Get("position"), Get("optimizer_steps"), Get("ema_updates"), (int)Get("nan_streak"));
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"stage {Stage}, step {Step}, epoch {Epoch}, position {Position}");
}
