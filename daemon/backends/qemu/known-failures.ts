// QEMU failures with a known cause and a known way out, told apart by what QEMU wrote on
// stderr, so the status says what to do instead of "killed by SIGABRT".

const KNOWN: Array<{ pattern: RegExp; explanation: string }> = [
  {
    // NixOS/nixpkgs#532038: a QEMU 11 built against a macOS SDK older than 15 asserts on an SME2
    // register id at every vCPU init on macOS >= 15.2, whatever the CPU model or Mac.
    pattern: /hvf_arch_init_vcpu: assertion failed: \(HV_SYS_REG_SMCR_EL1/,
    explanation:
      'this QEMU build aborts under hvf on macOS 15.2 and later because it was built against a macOS SDK older ' +
      "than 15 (nixpkgs' qemu 11.0 before NixOS/nixpkgs#536526, see #532038); use a QEMU built with the macOS 15 " +
      'SDK (a current nixpkgs, or Homebrew)',
  },
  {
    // QEMU #2665: before 9.2.3 hvf passed the M4's SME through; vendor builds may carry an old tree.
    pattern: /Property 'host-arm-cpu\.sme' not found|cannot disable sme\d+/,
    explanation:
      'this QEMU cannot run `-cpu host` on an Apple M4 (SME, QEMU issue #2665, fixed in 9.2.3 and 10.0); ' +
      'install a newer QEMU',
  },
];

/** The known cause behind QEMU's stderr, or null. */
export function explainQemuFailure(stderr: string | undefined): string | null {
  if (!stderr) return null;
  return KNOWN.find((k) => k.pattern.test(stderr))?.explanation ?? null;
}
