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

    /// <summary>Reads and checks the state of a checkpoint of stage <paramref name="stage"/> (a corrupt value is refused, naming it).</summary>
    public static TrainingState Read(CheckpointReader r, int stage, long stageSteps, int nanStreakLimit)
    {
        long Get(string name, long min, long max)
        {
            var v = r.ReadInt64(Group, name);
            if (v.Length != 1 || v[0] < min || v[0] > max)
                throw new CheckpointFormatException(r.Path, $"training state '{name}' is [{string.Join(", ", v)}], expected one value in {min}..{max}");
            return v[0];
        }
        long step = Get("step", 0, stageSteps);
        if (step != r.Step) throw new CheckpointFormatException(r.Path, $"training state step {step} differs from the checkpoint's step {r.Step}");
        return new((int)Get("stage", stage, stage), step, (int)Get("epoch", 0, int.MaxValue), (int)Get("position", 0, int.MaxValue),
            Get("optimizer_steps", 0, step), Get("ema_updates", 0, step), (int)Get("nan_streak", 0, nanStreakLimit));
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"stage {Stage}, step {Step}, epoch {Epoch}, position {Position}");
}
