# Just enough of nixpkgs' interface for nix/guest-image.nix to evaluate where no nixpkgs is
# installed (these machines): packages are placeholder paths, builders return their arguments.
# It checks the expression's own logic (the rendered /init, the files it takes from
# guest/rootfs), not that nixpkgs builds it.
rec {
  lib.escapeShellArg = s: "'" + s + "'";
  linuxPackages.kernel = "/stub/kernel";
  makeModulesClosure = args: { outPath = "/stub/modules"; inherit (args) rootModules; };
  busybox = "/stub/busybox";
  dropbear = "/stub/dropbear";
  socat = "/stub/socat";
  kmod = "/stub/kmod";
  e2fsprogs = "/stub/e2fsprogs";
  nix = "/stub/nix";
  runCommand = name: env: script: { outPath = "/stub/${name}"; inherit name script; } // (env.passthru or { });
  writeScript = name: text: { outPath = "/stub/${name}"; inherit name text; };
  closureInfo = args: { outPath = "/stub/closure-info"; };
  makeInitrd = args: args // { outPath = "/stub/initrd"; };
}
