namespace Mdm.Kernels.Collectives;

/// <summary>A collective started without waiting (<see cref="Collective.StartAllReduceSum(Memory{float})"/>).</summary>
public abstract class PendingCollective
{
    /// <summary>An operation that completed when it was started.</summary>
    public static readonly PendingCollective Done = new Completed();

    /// <summary>Lets the operation progress (MPI moves non-blocking collectives only inside MPI calls) and says whether
    /// it has completed.</summary>
    public abstract bool Test();

    /// <summary>Returns once the operation has completed.</summary>
    public abstract void Wait();

    sealed class Completed : PendingCollective
    {
        public override bool Test() => true;
        public override void Wait() { }
    }
}
