# Makes a stand-in exactly as strict about its arguments as the nixpkgs
# function it stands in for, from the facts recorded in tests/nix/nixpkgs.json
# (read from nixpkgs' own source at the flake's lock). Without this a stand-in
# that accepts any argument lets through a call that nixpkgs refuses, and the
# first to notice is a user's `nixos-rebuild`.
#
# `wrap name impl` is a functor: called with an attribute set it refuses an
# argument nixpkgs does not take (where nixpkgs' pattern has no `...`) and a
# missing argument nixpkgs requires, naming the function and its nixpkgs file,
# then calls impl. It carries `standInFor = name` so tests/nix/stand-ins.sh can
# check that every stand-in is wrapped with its own facts.
let
  # Beside this file where a copy of it stands alone (the stand-in nixpkgs
  # flake of tests/nix/eval.sh), one directory up in the repository.
  factsFile = if builtins.pathExists ./nixpkgs.json then ./nixpkgs.json else ../nixpkgs.json;
  facts = builtins.fromJSON (builtins.readFile factsFile);

  factsOf =
    name:
    facts.functions.${name}
      or (throw "tests/nix/nixpkgs.json records nothing about ${name}: read its definition in nixpkgs and add it");

  problems =
    name: args:
    let
      f = factsOf name;
      declared = f.args;
      given = builtins.attrNames args;
      unexpected = if f.open then [ ] else builtins.filter (a: !(declared ? ${a})) given;
      missing = builtins.filter (a: declared.${a} == "required" && !(args ? ${a})) (
        builtins.attrNames declared
      );
    in
    map (a: "called with unexpected argument '${a}'") unexpected
    ++ map (a: "called without required argument '${a}'") missing;

  wrap = name: impl: {
    standInFor = name;
    __functionArgs = builtins.mapAttrs (_: kind: kind == "optional") (factsOf name).args;
    __functor =
      _: args:
      let
        found = problems name args;
      in
      if found == [ ] then
        impl args
      else
        throw "stand-in for nixpkgs' ${name} (${(factsOf name).file}): ${builtins.head found}";
  };
in
{
  inherit facts problems wrap;
}
