# A stand-in for the nixpkgs flake input, for tests/nix/eval.sh: nixpkgs' real
# lib (copied in beside this file) and a package set of the stand-ins, so the
# flake can be evaluated and its plugins built by nix's own flake machinery
# (pure evaluation, flake.lock handling) without the real nixpkgs.
{
  outputs =
    _:
    let
      lib = import ./lib-compat.nix (import ./lib);
      pkgsFor =
        system:
        let
          standIns = import ./stand-ins.nix { inherit lib system; };
        in
        lib.makeExtensible (
          self:
          removeAttrs standIns [ "hostTools" ]
          // {
            callPackage = lib.callPackageWith self;
            newScope = extra: lib.callPackageWith (self // extra);
          }
        );
    in
    {
      inherit lib;
      legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] pkgsFor;
    };
}
