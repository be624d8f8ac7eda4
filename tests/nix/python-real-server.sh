#!/usr/bin/env bash
# Real-server proof for a Python detector: the generated onnx package, built by
# the real builder, deployed by the real sideloadd into a REAL Scrypted whose
# pip cannot work (no pip module, PIP_INDEX_URL at a closed loopback port) and
# whose Hugging Face endpoint is a closed port. Its pip target and model are
# built by nix/python-plugin-environment.nix and laid out as the NixOS module
# lays them out (links). Scrypted must skip pip, the plugin must load and open
# its model with no download; without the pip target, or without the model,
# the same run must fail.
#
# What stands in for what only a Nix machine builds: the Python environment is
# a venv of the machine's python3 with the plugin's pinned versions from PyPI
# (onnxruntime for onnxruntime-gpu, as the alias table maps it), in place of
# nixpkgs' python3.withPackages; the model is a small valid ONNX model made
# with the `onnx` package (huggingface.co cannot be reached here), with the
# `names` metadata the plugin reads, fetched by its sha256 from loopback.
#
# Needs SCRYPTED_START (as tests/nix/real-server.sh) and PYTHON_FOR_SCRYPTED, a
# python3 that can create a venv and pip-install from PyPI. Skipped otherwise.
# shellcheck disable=SC2016
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

if [[ -z ${SCRYPTED_START:-} || -z ${PYTHON_FOR_SCRYPTED:-} ]]; then
  echo "SKIP python-real-server: SCRYPTED_START and PYTHON_FOR_SCRYPTED are not both set (a real Scrypted and a python3 with PyPI; CI has neither)"
  exit 0
fi
# shellcheck source=tests/nix/lib/serve.sh
source tests/nix/lib/serve.sh
tmp=$(mktemp -d)
SCRYPTED_SERVER_PID=
cleanup() {
  [[ -n $SCRYPTED_SERVER_PID ]] && kill "$SCRYPTED_SERVER_PID" 2>/dev/null
  stop_serving
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

echo "--- the plugin, built by the real builder from its pinned tarball"
plugin=$(nix-build --no-out-link -E '(import ./tests/nix/lib/plugins.nix { }).packages.onnx' 2>/dev/null)
unzip -p "$plugin/plugin.zip" requirements.txt >"$tmp/requirements.txt"
pins() { nix-instantiate --eval --strict --json -E "$1" | jq -r '.[]'; }
mapfile -t requirements < <(pins '
  let p = (import ./tests/nix/lib/plugins.nix { }).pins.onnx; in
  map (r: "${if r.name == "onnxruntime-gpu" then "onnxruntime" else r.name}${if r.pin == null then "" else "==" + r.pin}")
    (builtins.filter (r: r.platforms or null == null || builtins.elem "x86_64-linux" r.platforms) p.python.requirements)')
echo "pinned for x86_64-linux: ${requirements[*]}"

echo "--- the Python environment (venv from PyPI, standing in for python3.withPackages)"
env=$tmp/env
"$PYTHON_FOR_SCRYPTED" -m venv "$env"
"$env/bin/pip" install -q "${requirements[@]}" ptpython wheel onnx
version=$("$env/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

echo "--- a small valid ONNX model with the plugin's label metadata"
model=scrypted_yolov9c_relu_test
mkdir -p "$tmp/hub/onnx/$model"
"$env/bin/python" - "$tmp/hub/onnx/$model/$model.onnx" <<'PY'
import sys
import onnx
from onnx import TensorProto, helper
# Input 1x3x320x320; output 1x6x100 (4 box values + 2 classes, 100 anchors),
# all zero: a detector that finds nothing, loadable by onnxruntime.
x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 320, 320])
y = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, 100])
zeros = helper.make_tensor("zeros", TensorProto.FLOAT, [1, 6, 100], [0.0] * 600)
nodes = [
    helper.make_node("ReduceMean", ["images"], ["m"], keepdims=1),
    helper.make_node("Mul", ["m", "zero"], ["mz"]),
    helper.make_node("Add", ["zeros", "mz"], ["output0"]),
]
zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
graph = helper.make_graph(nodes, "fixture", [x], [y], initializer=[zeros, zero])
m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
m.ir_version = 8
helper.set_model_props(m, {"names": "{0: 'person', 1: 'car'}"})
onnx.checker.check_model(m)
onnx.save(m, sys.argv[1])
PY
# The server's python has no pip, as nixpkgs' environment has none.
"$env/bin/python" -m pip uninstall -q -y pip
serve "$tmp/hub" "$tmp/hub.log"
file=onnx/$model/$model.onnx
hash="sha256-$(openssl dgst -sha256 -binary "$tmp/hub/$file" | base64 -w0)"

echo "--- pip target and model, built by nix/python-plugin-environment.nix"
cat >"$tmp/runtime.nix" <<NIX
let
  h = import $PWD/tests/nix/lib/plugins.nix { };
  s = h.standIns;
  pin = h.pins.onnx;
  versions = { onnxruntime = "1.22.0"; pillow = "10.3.0"; opencv4 = "4.10.0.84"; transformers = "5.2.0"; };
  # The venv as the environment: its site-packages, named as nixpkgs' python names them.
  python3 = {
    pythonVersion = "$version";
    sitePackages = "lib/python$version/site-packages";
    stdenv.hostPlatform = { system = "x86_64-linux"; uname = { system = "Linux"; processor = "x86_64"; }; };
    pkgs = builtins.mapAttrs (_: version: { inherit version; }) versions // { ptpython = { }; wheel = { }; };
    withPackages = _: "$env";
  };
in
import $PWD/nix/python-plugin-environment.nix { inherit python3; inherit (s) runCommand fetchurl unzip; } {
  plugin = h.packages.onnx;
  npmName = "@scrypted/onnx";
  inherit (pin) version;
  inherit (pin.python) requirements;
  volumeDirectories = [ "plugins" "plugins/@scrypted" "plugins/@scrypted/onnx" ];
  models = [ { path = "$file"; url = "$served_url/$file"; size = $(stat -c %s "$tmp/hub/$file"); hash = "$hash"; } ];
}
NIX
nix-build --no-out-link "$tmp/runtime.nix" -A pipTarget >/dev/null
nix-build --no-out-link "$tmp/runtime.nix" -A "models.onnx/$model" >/dev/null
provision=$(nix-instantiate --eval --strict --json "$tmp/runtime.nix" -A provision)

volume=$tmp/volume
# What the module's tmpfiles rules do: d for each directory, L+ for each link.
lay_out() { # lay_out [SKIP-PATH-PATTERN]
  jq -r '.directories[]' <<<"$provision" | while read -r d; do mkdir -p "$volume/$d"; done
  jq -r '.symlinks[] | "\(.path) \(.target)"' <<<"$provision" | while read -r path target; do
    [[ -n ${1:-} && $path == $1 ]] && continue
    ln -sfn "$target" "$volume/$path"
  done
}

cargo build --quiet --locked -p sideloadd
sideloadd=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)/debug/sideloadd
closed=http://127.0.0.1:9
start() {
  eval "$(SCRYPTED_PYTHON_PATH="$env/bin/python" PIP_INDEX_URL=$closed/simple HF_ENDPOINT=$closed \
    "$SCRYPTED_START" "$volume" 2>/dev/null)"
  log_from=$(wc -l <"$SCRYPTED_SERVER_LOG")
}
stop() {
  kill "$SCRYPTED_SERVER_PID"
  while kill -0 "$SCRYPTED_SERVER_PID" 2>/dev/null; do sleep 0.1; done
  SCRYPTED_SERVER_PID=
}
since_start() { tail -n +"$((log_from + 1))" "$SCRYPTED_SERVER_LOG"; }
deploy() { # a sideloadd run of onnx alone; its exit status
  jq -n --arg s "$SCRYPTED_SERVER" --arg t "$SCRYPTED_SERVER_TOKEN_FILE" --arg v "$volume" \
    --arg d "$tmp/state" --arg p "$plugin" \
    '{server: $s, tokenFile: $t, stateDir: $d, volume: $v, readyTimeoutSecs: 120,
      plugins: [{name: "@scrypted/onnx", path: $p}]}' >"$tmp/config.json"
  "$sideloadd" run --config "$tmp/config.json" 2>"$tmp/run.log"
}
# Waits up to 60 s for a line of the server's log since this start.
wait_for() {
  for _ in $(seq 600); do
    since_start | grep -qE -- "$1" && return 0
    sleep 0.1
  done
  return 1
}
fresh() { # a new volume with $1 left out of the layout
  rm -rf "$volume" "$tmp/state"
  lay_out "${1:-}"
  start
}

echo "--- laid out: Scrypted skips pip, the plugin loads and opens its model"
fresh
deploy || fail "sideloadd: $(tail -n 5 "$tmp/run.log")"
wait_for "Runtime initialized on thread" || fail "the model was not opened: $(since_start | tail -n 20)"
since_start | grep -qF "requirements.txt (up to date)" || fail "Scrypted did not find the requirements installed"
# The plugin prints "Downloaded/refreshed model" even so: huggingface_hub
# returns a non-empty local_dir when the Hub (a closed port here) cannot be
# reached, and nothing is fetched.
if since_start | grep -E "No module named pip|pip install"; then
  fail "Scrypted ran pip"
fi
since_start | grep -qF "$model.onnx" || fail "the plugin did not name its model file"
echo "ok: requirements.txt (up to date), no pip; $model opened from $(readlink "$volume/plugins/@scrypted/onnx/files/hf/onnx/$model")"
stop

echo "--- without the pip target: the same run fails"
fresh "*/python*"
deploy && fail "onnx loaded without its pip target"
wait_for "No module named pip" || fail "no pip failure in the log: $(since_start | tail -n 10)"
echo "ok: Scrypted tries pip (No module named pip) and the plugin does not load"
stop

echo "--- without the model: the same run fails"
fresh "*/files/hf/*"
deploy || true
wait_for "LocalEntryNotFoundError|Reverting all settings" || fail "no missing-model failure in the log: $(since_start | tail -n 10)"
if since_start | grep -qF "Runtime initialized on thread"; then fail "a model was opened without one laid out"; fi
echo "ok: the plugin cannot open its model (huggingface_hub finds nothing offline)"
stop
echo "python-real-server: all checks passed"
