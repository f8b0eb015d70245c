namespace Mdm.Kernels.Collectives;

/// <summary>One process, no communication: every reduction is the identity and the barrier returns at once.</summary>
public sealed class SingleProcessCollective : Collective
{
    public override int Rank => 0;
    public override int WorldSize => 1;
    public override int LocalRank => 0;
    public override string Name => "single process";

    public override void AllReduceSum(Span<float> buffer) { }

    public override void Broadcast(Span<byte> buffer, int root) => CheckRoot(root);

    public override void Barrier() { }

    public override void Dispose() { }
}
