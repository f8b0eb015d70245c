using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Training;

/// <summary>The per-kernel step profile: launches charged to the op that ran them, times that add up, flop counts.</summary>
[BackendFixtures]
public class StepProfileTests(BackendKind kind) : KernelFixture(kind)
{
    [Test]
    public void LaunchesAreChargedToTheirOpForwardAndBackward()
    {
        int m = 17, k = 33, n = 9;
        var (a, _) = Input(m, k);
        var (b, _) = Input(k, n);
        var va = new Variable(a, requiresGrad: true);
        var vb = new Variable(b, requiresGrad: true);
        ProfileTable table;
        using (var profile = StepProfile.Start(B))
        using (var graph = new Graph())
        {
            var y = F.MatMul(va, vb);
            var loss = F.Sum(F.Silu(y));
            loss.Backward();
            profile.Charge("after backward");
            table = profile.Finish();
        }
        try
        {
            TestContext.Out.WriteLine(table.Format());
            var ops = table.Rows.Select(r => r.Op).ToHashSet();
            Assert.That(ops, Is.SupersetOf(new[] { "matmul", "silu", "sum", "matmul bwd", "silu bwd" }), "every op and its backward has a row");
            var forward = table.Rows.Where(r => r.Op == "matmul").ToList();
            Assert.That(forward.Sum(r => r.Flops), Is.EqualTo(2.0 * m * n * k), "the forward GEMM's flops, 2·M·N·K");
            Assert.That(table.Rows.Where(r => r.Op == "matmul bwd").Sum(r => r.Flops), Is.EqualTo(2 * 2.0 * m * n * k), "dA and dB: two GEMMs");
            Assert.That(table.Rows.Sum(r => r.Percent), Is.EqualTo(100).Within(1e-6));
            Assert.That(table.Rows.Sum(r => r.Milliseconds), Is.EqualTo(table.TotalMilliseconds).Within(1e-9));
            Assert.That(table.Rows.All(r => r.Milliseconds >= 0 && r.Launches > 0), Is.True);
            if (Kind == BackendKind.Cpu)
                Assert.That(table.Rows.All(r => r.Kernel == "host"), Is.True, "the CPU backend is timed per op on the host");
            else
            {
                Assert.That(forward.Select(r => r.Kernel), Has.None.EqualTo("host"), "ILGPU launches carry their catalogue names");
                Assert.That(table.Rows.Where(r => r.Op == "silu").Sum(r => r.Bytes), Is.EqualTo(2L * 4 * m * n), "silu reads y and writes its output");
                Assert.That(table.TotalMilliseconds, Is.LessThanOrEqualTo(table.WallMilliseconds * 1.05 + 0.5), "device-busy time within the wall time");
            }
        }
        finally { a.Dispose(); b.Dispose(); va.Grad?.Dispose(); vb.Grad?.Dispose(); }
    }

    [Test]
    public void ProfilesDoNotNestAndCloseCleanly()
    {
        using (StepProfile.Start(B))
            Assert.Throws<InvalidOperationException>(() => StepProfile.Start(B), "a second profile while one is open");
        Assert.That(LaunchLog.Active, Is.Null, "disposing a profile closes its launch log");
        using var again = StepProfile.Start(B);
        Assert.That(again.Finish().Rows, Is.Not.Null);
        Assert.That(LaunchLog.Active, Is.Null);
    }
}
