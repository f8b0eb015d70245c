using Mdm.Kernels.Gpu;

namespace Mdm.Tests.Kernels;

/// <summary>The inline-PTX depot rewrite (no GPU needed): what it changes, and what it must leave alone.</summary>
public class PtxLocalPromotionTests
{
    const string Small = """
        .visible .entry K()
        {
        	.local .align 4 .b8 __local_depot0[4];
        	.local .align 4 .b8 __local_depot1[4];
        	.reg .f32 %f<4>;
        	.reg .b32 %r<4>;
        	.reg .b64 %rd<4>;
        	mov.b64	%rd1, __local_depot0;
        	mov.b64	%rd2, __local_depot1;
        	st.local.f32	[%rd1], 0f3F800000;
        	st.local.b32	[%rd2], %r1;
        	ld.local.f32	%f1, [%rd1];
        	ld.local.b32	%r2, [%rd2];
        	mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%f1,%f1,%f1,%f1}, {%r2,%r2,%r2,%r2}, {%r2,%r2}, {%f1,%f1,%f1,%f1};
        	st.local.f32	[%rd1], %f1;
        }
        """;

    [Test]
    public void DepotsBecomeRegistersAndAccessesBecomeMoves()
    {
        var ptx = PtxLocalPromotion.Promote(Small, out int promoted);
        Assert.That(promoted, Is.EqualTo(2));
        Assert.That(ptx, Does.Not.Contain(".local"));
        Assert.That(ptx, Does.Not.Contain("__local_depot"));
        Assert.That(ptx, Does.Contain(".reg .f32 %depot0;"));
        Assert.That(ptx, Does.Contain(".reg .b32 %depot1;"));
        Assert.That(ptx, Does.Contain("mov.f32\t%depot0, 0f3F800000;"));
        Assert.That(ptx, Does.Contain("mov.b32\t%depot1, %r1;"));
        Assert.That(ptx, Does.Contain("mov.f32\t%f1, %depot0;"));
        Assert.That(ptx, Does.Contain("mov.b32\t%r2, %depot1;"));
        Assert.That(ptx, Does.Contain("mov.f32\t%depot0, %f1;"));
        Assert.That(ptx, Does.Contain("mma.sync"), "everything else is kept");
    }

    [Test]
    public void AnyOtherUseOfADepotLeavesThePtxUnchanged()
    {
        // An offset access or an address used in arithmetic means the depot is not a plain 32-bit variable.
        string withOffset = Small.Replace("ld.local.b32	%r2, [%rd2];", "ld.local.b32	%r2, [%rd2+4];");
        Assert.That(PtxLocalPromotion.Promote(withOffset, out int n1), Is.EqualTo(withOffset));
        Assert.That(n1, Is.Zero);
        string withArithmetic = Small.Replace("mov.b64	%rd2, __local_depot1;", "mov.b64	%rd2, __local_depot1;\n\tadd.s64	%rd3, %rd2, 8;");
        Assert.That(PtxLocalPromotion.Promote(withArithmetic, out int n2), Is.EqualTo(withArithmetic));
        Assert.That(n2, Is.Zero);
        string mixedTypes = Small.Replace("ld.local.b32	%r2, [%rd2];", "ld.local.f32	%f2, [%rd2];");
        Assert.That(PtxLocalPromotion.Promote(mixedTypes, out int n3), Is.EqualTo(mixedTypes));
        Assert.That(n3, Is.Zero);
    }

    [Test]
    public void TheTensorCoreGemmsCompileWithoutLocalMemoryAndWithTheirLaunchBounds()
    {
        var results = PtxCompiler.CompileAll().Where(r => r.Name.StartsWith("MatmulBF16TensorCore", StringComparison.Ordinal)).ToList();
        Assert.That(results, Has.Count.EqualTo(32), "4 transpose forms × 4 tile and warp layouts × f32 / bf16 C");
        foreach (var r in results)
        {
            if (r.Name.Contains("BF16Out", StringComparison.Ordinal))
                Assert.That(r.Ptx, Does.Contain("st.global.v4.u32"), $"{r.Name}: the bf16 C goes out in 16-byte stores");
            Assert.That(r.Ptx, Does.Not.Contain(".local"), $"{r.Name}: a depot was left in local memory");
            Assert.That(r.Ptx, Does.Contain("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"), r.Name);
            Assert.That(r.Ptx, Does.Contain("ldmatrix.sync.aligned.m8n8.x4"), r.Name);
            Assert.That(r.Ptx, Does.Contain("cp.async.cg.shared.global"), r.Name);
            // The 64×128 tile: 4 groups of 128 threads per multiprocessor; the others 2.
            Assert.That(r.Ptx, Does.Contain(r.Name.Contains("M64", StringComparison.Ordinal) ? ".minnctapersm 4" : ".minnctapersm 2"), $"{r.Name}: launch bounds missing");
            // The 4-stage pipelines wait for all but two copy groups, the 3-stage one for all but one.
            bool fourStages = r.Name.Contains("M64", StringComparison.Ordinal) || r.Name.Contains("BK32", StringComparison.Ordinal);
            Assert.That(r.Ptx, Does.Contain(fourStages ? "cp.async.wait_group 2;" : "cp.async.wait_group 1;"), r.Name);
        }
    }
}
