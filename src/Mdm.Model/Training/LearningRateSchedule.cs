namespace Mdm.Model.Training;

/// <summary>ml-mdm's schedule: linear warmup lr·min(step, warmup)/warmup (step ≥ 1), then constant.</summary>
public sealed record LearningRateSchedule(double BaseLr, int WarmupSteps)
{
    public double At(long step)
    {
        if (WarmupSteps <= 0) return BaseLr;
        long s = Math.Max(1, step);
        return BaseLr * Math.Min(s, WarmupSteps) / WarmupSteps;
    }
}
