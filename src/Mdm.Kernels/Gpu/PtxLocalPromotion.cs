using System.Text;
using System.Text.RegularExpressions;

namespace Mdm.Kernels.Gpu;

/// <summary>
/// Rewrites ILGPU's per-operand inline-PTX depots into registers. ILGPU passes every <c>CudaAsm.EmitRef</c> operand
/// through its own 4-byte <c>.local</c> depot (store before the asm, load after). ptxas promotes a handful of those
/// back to registers, but not the ~190 of the tensor-core GEMM's loop (760 bytes of stack, LDL/STL around every HMMA,
/// seen with ptxas 12.4). Each depot here is only ever addressed as <c>mov.b64 %rdX, __local_depotN;</c> followed by
/// <c>ld.local/st.local [%rdX]</c> of one 32-bit value, so it is exactly a 32-bit variable: the pass declares a
/// register per depot and turns the loads and stores into moves. A PTX that uses a depot any other way is returned
/// unchanged (the audit then shows the stack frame).
/// </summary>
public static class PtxLocalPromotion
{
    static readonly Regex DepotDecl = new(@"^\s*\.local \.align 4 \.b8 (__local_depot\d+)\[4\];\s*$", RegexOptions.Multiline);
    static readonly Regex DepotAddress = new(@"^\s*mov\.b64\s+(%rd\d+),\s*(__local_depot\d+);\s*$", RegexOptions.Multiline);
    static readonly Regex Access = new(@"^(\s*)(ld|st)\.local\.(f32|b32)\s+(.*);\s*$");
    static readonly Regex AddressRegister = new(@"%rd\d+");

    /// <summary>The PTX with every promotable depot in a register; <paramref name="promoted"/> = how many.</summary>
    public static string Promote(string ptx, out int promoted)
    {
        promoted = 0;
        var depots = DepotDecl.Matches(ptx).Select(m => m.Groups[1].Value).ToHashSet();
        if (depots.Count == 0) return ptx;
        var addressOf = new Dictionary<string, string>();   // %rdX -> depot
        foreach (Match m in DepotAddress.Matches(ptx))
            if (depots.Contains(m.Groups[2].Value)) addressOf[m.Groups[1].Value] = m.Groups[2].Value;
        if (addressOf.Count == 0) return ptx;

        // Pass 1: every use of an address register must be a plain 32-bit ld/st.local at offset 0; note each depot's type.
        var type = new Dictionary<string, string>();
        var lines = ptx.Split('\n');
        foreach (var line in lines)
        {
            if (DepotAddress.IsMatch(line) || DepotDecl.IsMatch(line)) continue;
            foreach (Match r in AddressRegister.Matches(line))
            {
                if (!addressOf.TryGetValue(r.Value, out var depot)) continue;
                var a = Access.Match(line);
                if (!a.Success || !a.Groups[4].Value.Contains($"[{r.Value}]")) return ptx;
                string t = a.Groups[3].Value;
                if (type.TryGetValue(depot, out var seen) && seen != t) return ptx;
                type[depot] = t;
            }
        }

        // Pass 2: declarations become registers, address moves disappear, loads/stores become moves.
        var sb = new StringBuilder(ptx.Length);
        foreach (var line in lines)
        {
            var decl = DepotDecl.Match(line);
            if (decl.Success && type.TryGetValue(decl.Groups[1].Value, out var t))
            {
                sb.Append("\t.reg .").Append(t).Append(' ').Append(Register(decl.Groups[1].Value)).Append(";\n");
                promoted++;
                continue;
            }
            var mov = DepotAddress.Match(line);
            if (mov.Success && type.ContainsKey(mov.Groups[2].Value)) continue;
            var acc = Access.Match(line);
            if (acc.Success)
            {
                var operands = acc.Groups[4].Value;
                var r = AddressRegister.Match(operands);
                if (r.Success && addressOf.TryGetValue(r.Value, out var depot) && type.ContainsKey(depot))
                {
                    string reg = Register(depot), ty = acc.Groups[3].Value;
                    var parts = operands.Split(',', 2);
                    string rewritten = acc.Groups[2].Value == "ld"
                        ? $"mov.{ty}\t{parts[0].Trim()}, {reg};"                        // ld.local %f, [%rd]  ->  mov %f, depot
                        : $"mov.{ty}\t{reg}, {parts[1].Trim()};";                      // st.local [%rd], v   ->  mov depot, v
                    sb.Append(acc.Groups[1].Value).Append(rewritten).Append('\n');
                    continue;
                }
            }
            sb.Append(line).Append('\n');
        }
        if (sb.Length > 0 && !ptx.EndsWith('\n')) sb.Length--;
        return sb.ToString();
    }

    static string Register(string depot) => "%depot" + depot["__local_depot".Length..];
}
