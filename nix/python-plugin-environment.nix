# The offline runtime of a Python plugin (docs/python-plugins.md): its
# requirements from nixpkgs in a `python3.withPackages` environment, and the
# pip target Scrypted would otherwise pip-install into, laid out so that the
# server finds it installed and skips pip. One function for every Python
# plugin: the builder calls it for every package.nix with a `python`
# argument (nixgen renders one for each Python plugin that maps). Builtins
# only, no lib: the tests build it where no nixpkgs is
# (tests/nix/python-environment.sh).
{
  # The interpreter the server starts plugins with (nixpkgs' python3, as the
  # server package's passthru.python): the pip target is named after its
  # version, and the environment must be built from the same package set.
  python3,
  runCommand,
  fetchurl,
  unzip,
  # nix/plugins/python-packages.json: PEP 503 name -> python3Packages attribute.
  aliasTable ? builtins.fromJSON (builtins.readFile ./plugins/python-packages.json),
}:

{
  # The built plugin (package.json and plugin.zip).
  plugin,
  npmName,
  version,
  # requirements.txt as nixgen read it, each line that applies to some Linux
  # platform: { name; pin = "==" version or null; platforms = null (all) or
  # a list of Nix systems for which its environment marker holds }.
  requirements,
  # The plugin's directory in the volume and those above it.
  volumeDirectories,
  # Files of the Hugging Face repository scrypted/plugin-models, as nixgen
  # pinned them: { path = "<plugin>/<model>/<file>"; url; size; hash; }.
  models ? [ ],
}:

let
  inherit (python3.stdenv.hostPlatform) system;

  # PEP 503: lower case, every run of `-`, `_` and `.` one `-`.
  chars = s: builtins.genList (i: builtins.substring i 1 s) (builtins.stringLength s);
  upper = chars "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  lower = chars "abcdefghijklmnopqrstuvwxyz";
  normalise =
    name:
    builtins.concatStringsSep "" (
      map (part: if builtins.isList part then "-" else part) (
        builtins.split "[-_.]+" (builtins.replaceStrings upper lower name)
      )
    );
  optional = cond: x: if cond then [ x ] else [ ];
  pinOf = r: r.pin or null;

  applies = r: (r.platforms or null) == null || builtins.elem system r.platforms;
  active = builtins.filter applies requirements;

  aliasOf =
    name:
    aliasTable.packages.${normalise name}
    or (throw "${npmName}: requirement ${name} has no entry in nix/plugins/python-packages.json, so it cannot come from nixpkgs");
  packageOf =
    name:
    let
      attr = (aliasOf name).attr;
    in
    python3.pkgs.${attr}
      or (throw "${npmName}: nix/plugins/python-packages.json maps ${name} to python3Packages.${attr}, which this nixpkgs lacks");

  pythonEnv = python3.withPackages (
    ps: map (r: packageOf r.name) active ++ map (attr: ps.${attr}) aliasTable.base
  );

  # The plugin pins a version; nixpkgs has one version of each package.
  # A package that comes under another name (onnxruntime-gpu as onnxruntime)
  # is said too, with the table's note.
  mismatches = builtins.concatMap (
    r:
    let
      alias = aliasOf r.name;
      have = (packageOf r.name).version;
      renamed = alias.attr != normalise r.name;
      as = if renamed then " as ${alias.attr}" else "";
      pinned = if pinOf r != null then " (plugin pins ${r.pin})" else "";
      note = if alias ? note then " (${alias.note})" else "";
    in
    optional (pinOf r != null && have != r.pin || renamed) "${r.name}${as} ${have}${pinned}${note}"
  ) active;

  # Part of the directory name (server/src/plugin/runtime/python-worker.ts,
  # SCRYPTED_PYTHON_VERSION); upstream bumps it when the layout changes.
  scryptedPythonVersion = "20240317";
  # python<X.Y>-<platform.system()>-<platform.machine()>-<SCRYPTED_PYTHON_VERSION>
  pipTargetName =
    let
      inherit (python3.stdenv.hostPlatform) uname;
    in
    "python${python3.pythonVersion}-${uname.system}-${uname.processor}-${scryptedPythonVersion}";

  # Lines of requirements.txt as the build compares them: `name==pin`, or the
  # bare name where the plugin pins no exact version.
  declared = map (r: if pinOf r != null then "${r.name}==${r.pin}" else r.name) requirements;

  # What plugin_remote.py compares before it runs pip: the packages
  # (importable from the directory, appended to sys.path; the interpreter's
  # own come first anyway) and both markers, byte for byte.
  pipTarget =
    runCommand "${plugin.name}-python"
      {
        nativeBuildInputs = [ unzip ];
        inherit plugin npmName version;
        declared = builtins.concatStringsSep "\n" declared + "\n";
        # SCRYPTED_REQUIREMENTS joined by newlines, with no newline at the end.
        scryptedRequirements = builtins.concatStringsSep "\n" aliasTable.base;
        passAsFile = [
          "declared"
          "scryptedRequirements"
        ];
      }
      ''
        mkdir "$out"
        for entry in ${pythonEnv}/${python3.sitePackages}/*; do
          ln -s "$entry" "$out/"
        done
        unzip -p "$plugin/plugin.zip" requirements.txt >"$out/requirements.installed.txt"
        cp "$scryptedRequirementsPath" "$out/requirements.scrypted.installed.txt"

        # The requirements recorded in package.nix must be the zip's: a
        # hand edit, or a zip that changed under the same pin, stops here.
        # nixgen records a line as its name (extras aside) and the version
        # after `==` up to a comma (crates/nixgen/src/python/requirements.rs).
        sed -E 's/#.*$//; s/;.*$//; s/[[:space:]]+//g; s/\[[^]]*\]//' "$out/requirements.installed.txt" |
          sed -E 's/^([^=<>~!,]+)(==[^,]+)?(,.*|[=<>~!].*)?$/\1\2/; /^$/d' | sort -u >shipped
        sort -u "$declaredPath" >recorded
        if ! cmp -s shipped recorded; then
          echo "$npmName $version: requirements.txt does not match the requirements in package.nix (regenerate it with nixgen):" >&2
          diff recorded shipped >&2 || true
          exit 1
        fi
      '';

  # The plugin downloads a model with snapshot_download(local_dir =
  # <volume>/plugins/<npm name>/files/hf/<plugin>/<model>), then reads
  # <local_dir>/<plugin>/<model>/<file>; with no network it returns local_dir
  # whenever that is a non-empty directory (huggingface_hub 0.26 to 1.1 alike,
  # docs/huggingface-api.md). So each model is one store directory,
  # <plugin>/<model>/<file> inside, linked as local_dir.
  partsOf = path: builtins.filter builtins.isString (builtins.split "/" path);
  modelDirOf =
    file:
    let
      parts = partsOf file.path;
    in
    "${builtins.elemAt parts 0}/${builtins.elemAt parts 1}";
  # Sorted and unique, as attribute names are.
  namesOf =
    list:
    builtins.attrNames (
      builtins.listToAttrs (
        map (name: {
          inherit name;
          value = null;
        }) list
      )
    );
  modelDirs = namesOf (map modelDirOf models);
  fetched = map (f: f // { file = fetchurl { inherit (f) url hash; }; }) models;
  modelTree =
    dir:
    runCommand "${plugin.name}-model-${builtins.replaceStrings [ "/" ] [ "-" ] dir}"
      {
        # One line per file, each ended (read skips an unended last line).
        links = builtins.concatStringsSep "" (
          map (f: "${f.path} ${f.file}\n") (builtins.filter (f: modelDirOf f == dir) fetched)
        );
        passAsFile = [ "links" ];
      }
      ''
        while read -r path file; do
          mkdir -p "$out/$(dirname "$path")"
          ln -s "$file" "$out/$path"
        done <"$linksPath"
      '';
  modelTrees = builtins.listToAttrs (
    map (dir: {
      name = dir;
      value = modelTree dir;
    }) modelDirs
  );
  pluginDir = "plugins/${npmName}";
  hfDirectories =
    if models == [ ] then
      [ ]
    else
      [
        "${pluginDir}/files"
        "${pluginDir}/files/hf"
      ]
      ++ map (owner: "${pluginDir}/files/hf/${owner}") (
        namesOf (map (dir: builtins.head (partsOf dir)) modelDirs)
      );
in
{
  inherit
    pythonEnv
    pipTarget
    pipTargetName
    mismatches
    ;
  # Each model's directory, by `<plugin>/<model>`.
  models = modelTrees;

  # Read by the NixOS module: tmpfiles lays these out under the volume,
  # on the server and on cluster clients.
  provision = {
    directories = volumeDirectories ++ hfDirectories;
    symlinks = [
      {
        path = "${pluginDir}/${pipTargetName}";
        target = pipTarget;
      }
    ]
    ++ map (dir: {
      path = "${pluginDir}/files/hf/${dir}";
      target = modelTrees.${dir};
    }) modelDirs;
    warnings = optional (mismatches != [ ]) (
      "scrypted ${npmName}: its Python packages come from nixpkgs, whose versions differ from the plugin's pins: "
      + builtins.concatStringsSep ", " mismatches
    );
  };
}
