# nixpkgs' lib, usable by Nix versions before 2.14: lib.fileset reads file types
# with builtins.readFileType, and older Nix, such as Debian's 2.8, gets the same
# answer from readDir of the parent.
lib:
if builtins ? readFileType then
  lib
else
  lib.extend (
    _: prev: {
      filesystem = prev.filesystem // {
        pathType = path: (builtins.readDir (dirOf path)).${baseNameOf path};
      };
    }
  )
