# Checks every stand-in for nixpkgs against tests/nix/nixpkgs.json, the
# signatures read from nixpkgs' own source at the flake's lock: each function
# recorded there has a stand-in at the same attribute path in every set of
# stand-ins that offers it, an attribute-set function is wrapped with its own
# facts, and it refuses what nixpkgs refuses (an argument nixpkgs' closed
# pattern lacks; each argument nixpkgs requires, left out). Returns the list of
# failures; tests/nix/stand-ins.sh prints them.
{
  # The sets of stand-ins, by the file that defines them.
  sets ? {
    "tests/nix/lib/stand-ins.nix" = import ./stand-ins.nix { };
    "tests/nix/lib/scrypted-package.nix" = (import ./scrypted-package.nix { }).standIns;
  },
}:
let
  inherit (import ./strict.nix) facts;

  getPath =
    set: path:
    builtins.foldl' (acc: key: if acc != null && acc ? ${key} then acc.${key} else null) set path;

  failuresFor =
    setName: set: name:
    let
      f = facts.functions.${name};
      standIn = getPath set (builtins.filter builtins.isString (builtins.split "[.]" name));
      required = builtins.filter (a: f.args.${a} == "required") (builtins.attrNames f.args);
      # Every argument nixpkgs takes, as null: the wrapper checks names before
      # the stand-in looks at any value.
      full = builtins.mapAttrs (_: _: null) f.args;
      refuses = args: !(builtins.tryEval (builtins.seq (standIn args) true)).success;
      where = "${setName}: ${name}";
    in
    if standIn == null then
      [ ]
    else if f.call == "hook" then
      # A setup hook is a package put into nativeBuildInputs.
      (if (standIn.type or null) == "derivation" then [ ] else [ "${where} is not a package" ])
    else if f.call != "attrs" then
      (if builtins.isFunction standIn then [ ] else [ "${where} is not a function" ])
    else if (standIn.standInFor or null) != name then
      [ "${where} is not wrapped with its facts (strict.wrap \"${name}\")" ]
    else
      (
        if !f.open && !refuses (full // { __notAnArgumentOfNixpkgs = null; }) then
          [ "${where} accepts an argument nixpkgs' closed pattern does not have" ]
        else
          [ ]
      )
      ++ builtins.concatMap (
        a: if refuses (removeAttrs full [ a ]) then [ ] else [ "${where} accepts a call without '${a}'" ]
      ) required;

  # A recorded function that no set stands in for is stale, and the reverse
  # (a wrapped stand-in without facts) cannot happen: wrap throws.
  unused = builtins.filter (
    name:
    builtins.all (
      setName:
      getPath sets.${setName} (builtins.filter builtins.isString (builtins.split "[.]" name)) == null
    ) (builtins.attrNames sets)
  ) (builtins.attrNames facts.functions);
in
builtins.concatMap (
  setName:
  builtins.concatMap (failuresFor setName sets.${setName}) (builtins.attrNames facts.functions)
) (builtins.attrNames sets)
++ map (name: "tests/nix/nixpkgs.json records ${name}, which no stand-in stands in for") unused
